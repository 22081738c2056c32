# outageGraceSeconds: a stale answer (the provider's last verdict for the digest, during a
# registry outage) counts only within the constraint's grace; by default it is denied.
package signetimagesignatures_outage_test

import rego.v1

import data.signetimagesignatures

digest := "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

image := sprintf("registry.example.com/team/app@%v", [digest])

# 2026-12-01T12:00:00Z, as time.now_ns() in these tests.
now_ns := 1796126400000000000

fresh := {
	"version": 1,
	"image": image,
	"digest": digest,
	"verified": ["dev-team"],
	"signatures": [{"attestor": "dev-team", "key": "k", "format": "cosign-classic", "scheme": "ecdsa-p256-sha256"}],
	"failures": [],
	"attestations": [],
}

stale(verified_at) := object.union(fresh, {"stale": {
	"verifiedAt": verified_at,
	"reason": "REGISTRY_UNAVAILABLE",
	"detail": "registry.example.com answered 503",
}})

# Verified 10 minutes before now.
ten_minutes_old := stale("2026-12-01T11:50:00Z")

violations(report, parameters) := found if {
	found := signetimagesignatures.violation with input as {
		"review": {"operation": "CREATE", "kind": {"kind": "Pod"}, "object": {
			"kind": "Pod",
			"metadata": {"name": "p"},
			"spec": {"containers": [{"name": "app", "image": image}]},
		}},
		"parameters": object.union({"requiredAttestors": ["dev-team"]}, parameters),
	}
		with signetimagesignatures.external_data as answering(report)
		with time.now_ns as now_ns
}

answering(report) := function if {
	function := {"responses": [[image, report]], "errors": [], "system_error": ""}
}

messages(report, parameters) := {v.msg | some v in violations(report, parameters)}

test_a_stale_answer_is_denied_by_default_naming_the_outage_and_the_time if {
	found := messages(ten_minutes_old, {})
	count(found) == 1
	some message in found
	contains(message, "container <app> image <registry.example.com/team/app@sha256:")
	contains(message, "not verified now: REGISTRY_UNAVAILABLE (registry.example.com answered 503)")
	contains(message, "last verified it at 2026-12-01T11:50:00Z (600s ago)")
	contains(message, "admits such an answer for 0s (outageGraceSeconds)")
}

test_a_stale_answer_within_the_grace_is_admitted if {
	count(violations(ten_minutes_old, {"outageGraceSeconds": 600})) == 0
	count(violations(ten_minutes_old, {"outageGraceSeconds": 3600})) == 0
}

test_a_stale_answer_older_than_the_grace_is_denied if {
	found := messages(ten_minutes_old, {"outageGraceSeconds": 599})
	count(found) == 1
	some message in found
	contains(message, "(600s ago)")
}

test_a_stale_answer_still_needs_its_attestors if {
	unsigned := object.union(ten_minutes_old, {"verified": [], "signatures": [], "failures": [{
		"attestor": "dev-team",
		"reason": "NO_SIGNATURE",
		"remediation": "sign it",
	}]})
	found := messages(unsigned, {"outageGraceSeconds": 3600})
	some message in found
	contains(message, "not signed by <dev-team>: NO_SIGNATURE")
}

test_a_stale_answer_from_the_future_is_denied_even_with_grace if {
	found := messages(stale("2026-12-01T12:05:00Z"), {"outageGraceSeconds": 3600})
	count(found) == 1
	some message in found
	contains(message, "(age unknown)")
}

test_a_stale_answer_with_an_unreadable_time_is_denied if {
	found := messages(stale("yesterday"), {"outageGraceSeconds": 3600})
	count(found) == 1
	some message in found
	contains(message, "last verified it at yesterday (age unknown)")
}

test_a_stale_marker_that_is_not_an_object_is_denied if {
	count(violations(object.union(fresh, {"stale": "yes"}), {"outageGraceSeconds": 3600})) == 1
}

test_a_fresh_answer_is_unaffected_by_the_grace if {
	count(violations(fresh, {})) == 0
	count(violations(fresh, {"outageGraceSeconds": 60})) == 0
}
