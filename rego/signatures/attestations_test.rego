# requiredAttestations: provenance (or any predicate) each image must carry, from whom, and what
# it must say.
package signetimagesignatures_attestations_test

import rego.v1

import data.signetimagesignatures

digest := "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

image := sprintf("registry.example.com/team/app@%v", [digest])

plain := "registry.example.com/team/plain@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

slsa_v1 := "https://slsa.dev/provenance/v1"

builder := "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v2.1.0"

source := "https://github.com/example/app"

provenance := {
	"attestor": "ci",
	"key": "ci-2026",
	"format": "sigstore-bundle",
	"predicateType": slsa_v1,
	"facts": {"builderId": builder, "sourceRepository": source, "sourceRef": "refs/heads/main"},
}

report(name, attestations) := {
	"version": 1,
	"image": name,
	"digest": digest,
	"verified": ["ci"],
	"signatures": [{"attestor": "ci", "key": "ci-2026", "format": "sigstore-bundle", "scheme": "ecdsa-p256-sha256"}],
	"failures": [],
	"attestations": attestations,
}

# A report from a provider older than attestations has no such field.
older_report := object.remove(report(plain, []), ["attestations"])

answers := {image: report(image, [provenance]), plain: older_report}

mock(request) := {
	"responses": [[key, answers[key]] | some key in request.keys],
	"errors": [],
	"status_code": 200,
	"system_error": "",
}

messages(name, wanted) := {v.msg |
	some v in signetimagesignatures.violation with input as {
		"review": {"object": {"kind": "Pod", "spec": {"containers": [{"name": "app", "image": name}]}}},
		"parameters": {"requiredAttestors": ["ci"], "requiredAttestations": wanted},
	}
		with signetimagesignatures.external_data as mock
}

test_provenance_from_an_allowed_builder_and_source_is_admitted if {
	messages(image, [{"predicateType": slsa_v1, "attestors": ["ci"], "builderIds": [builder], "sourceRepositories": [source]}]) == set()
}

test_a_requirement_with_only_a_predicate_type_is_met_by_any_attestor if {
	messages(image, [{"predicateType": slsa_v1}]) == set()
}

test_no_requirement_needs_no_attestation if {
	messages(plain, []) == set()
}

test_another_builder_is_denied_naming_what_was_found_and_the_fix if {
	msgs := messages(image, [{"predicateType": slsa_v1, "builderIds": ["https://ci.example/trusted"]}])
	msgs == {sprintf("container <app> image <%v>: no %v attestation from builder [https://ci.example/trusted]; found one by ci from builder <%v> of source <%v> -> attest %v with cosign attest --type slsaprovenance1 (signed by a trusted attestor's key)", [image, slsa_v1, builder, source, image])}
}

test_another_source_repository_is_denied if {
	some msg in messages(image, [{"predicateType": slsa_v1, "sourceRepositories": ["https://github.com/example/other"]}])
	contains(msg, "of source [https://github.com/example/other]; found one by ci")
}

test_an_attestation_by_another_attestor_is_denied if {
	some msg in messages(image, [{"predicateType": slsa_v1, "attestors": ["security-team"]}])
	contains(msg, "attestation by [security-team]; found one by ci")
	contains(msg, "(signed by security-team)")
}

test_another_predicate_type_is_denied if {
	some msg in messages(image, [{"predicateType": "https://slsa.dev/provenance/v0.2"}])
	contains(msg, "no https://slsa.dev/provenance/v0.2 attestation; found none of that type -> attest")
	contains(msg, "cosign attest --type slsaprovenance ")
}

test_a_report_without_attestations_is_denied if {
	some msg in messages(plain, [{"predicateType": slsa_v1}])
	contains(msg, sprintf("container <app> image <%v>: no %v attestation; found none of that type", [plain, slsa_v1]))
}

test_every_requirement_must_be_met if {
	msgs := messages(image, [{"predicateType": slsa_v1}, {"predicateType": "https://spdx.dev/Document"}])
	count(msgs) == 1
	some msg in msgs
	contains(msg, "no https://spdx.dev/Document attestation")
	contains(msg, "cosign attest --type https://spdx.dev/Document")
}

test_a_fact_that_is_missing_does_not_meet_an_allow_list if {
	bare := object.union(object.remove(provenance, ["facts"]), {"facts": {}})
	found := {v.msg |
		some v in signetimagesignatures.violation with input as {
			"review": {"object": {"kind": "Pod", "spec": {"containers": [{"name": "app", "image": image}]}}},
			"parameters": {"requiredAttestations": [{"predicateType": slsa_v1, "builderIds": [builder]}]},
		}
			with signetimagesignatures.external_data as mock
			with answers as {image: report(image, [bare])}
	}
	count(found) == 1
}
