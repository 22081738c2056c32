# The provider's real answers, recorded by tests/integration/test_serve.py into
# testdata/contract/data.json: the policy must read them as the provider writes them.
package signetimagesignatures_contract_test

import rego.v1

import data.signatures.testdata.contract
import data.signetimagesignatures

signed := contract.request_keys[0]

unsigned := contract.request_keys[1]

down := contract.request_keys[2]

# What Gatekeeper hands the policy for that ProviderResponse (frameworks' NewRegoResponse).
recorded(_) := {
	"responses": [[item.key, item.value] | some item in contract.answer.response.items; not item.error],
	"errors": [[item.key, item.error] | some item in contract.answer.response.items; item.error],
	"status_code": 200,
	"system_error": contract.answer.response.systemError,
}

messages(images) := {v.msg |
	some v in signetimagesignatures.violation with input as {
		"review": {"object": {"kind": "Pod", "spec": {"containers": [{"name": sprintf("c%v", [i]), "image": image} | some i, image in images]}}},
		"parameters": {"requiredAttestors": ["dev-team"]},
	}
		with signetimagesignatures.external_data as recorded
}

test_recorded_signed_image_is_admitted if {
	messages([signed]) == set()
}

test_recorded_unsigned_image_is_denied_with_the_providers_remediation if {
	some msg in messages([unsigned])
	startswith(msg, sprintf("container <c0> image <%v>: not signed by <dev-team>: NO_SIGNATURE -> sign registry.test:5000/serve/app@sha256:", [unsigned]))
}

test_recorded_transient_failure_is_denied if {
	some msg in messages([down])
	contains(msg, "REGISTRY_UNAVAILABLE")
	contains(msg, "retry shortly")
}

signed_tag := contract.request_keys[3]

test_recorded_tag_is_denied_naming_the_digest_it_resolved_to if {
	some msg in messages([signed_tag])
	contains(msg, sprintf("image <%v>: not pinned to a digest", [signed_tag]))
	contains(msg, sprintf("Write it as <%v>", [signed]))
}

# Signed and attested with cosign v3's defaults: a Sigstore bundle and SLSA v1 provenance.
attested := contract.request_keys[4]

provenance_from(builder) := [{"predicateType": "https://slsa.dev/provenance/v1", "attestors": ["dev-team"], "builderIds": [builder]}]

messages_requiring(images, attestations) := {v.msg |
	some v in signetimagesignatures.violation with input as {
		"review": {"object": {"kind": "Pod", "spec": {"containers": [{"name": sprintf("c%v", [i]), "image": image} | some i, image in images]}}},
		"parameters": {"requiredAttestors": ["dev-team"], "requiredAttestations": attestations},
	}
		with signetimagesignatures.external_data as recorded
}

test_recorded_bundle_signature_is_admitted if {
	messages([attested]) == set()
}

test_recorded_provenance_from_the_allowed_builder_is_admitted if {
	messages_requiring([attested], provenance_from("https://ci.example/builders/release@v1")) == set()
}

test_recorded_provenance_from_another_builder_is_denied if {
	some msg in messages_requiring([attested], provenance_from("https://ci.example/builders/other"))
	contains(msg, "found one by dev-team from builder <https://ci.example/builders/release@v1> of source <https://git.example/team/app>")
}

test_recorded_image_without_provenance_is_denied if {
	some msg in messages_requiring([signed], provenance_from("https://ci.example/builders/release@v1"))
	contains(msg, "no https://slsa.dev/provenance/v1 attestation by [dev-team] from builder")
}
