package signetimagesignatures_test

import rego.v1

import data.signetimagesignatures

# -- fixtures ---------------------------------------------------------------------------------

# As validation sees them: pinned to a digest by Signet's mutator.
signed_image := "registry.example.com/team/app@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

unsigned_image := "registry.example.com/team/tool@sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

both_image := "registry.example.com/team/both@sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"

# As written in a manifest, when the mutator did not run.
signed_tag := "registry.example.com/team/app:1.0"

digest := "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

report(image, verified, failures) := {
	"version": 1,
	"image": image,
	"digest": digest,
	"verified": verified,
	"signatures": [{"attestor": a, "key": "k", "format": "cosign-classic", "scheme": "ecdsa-p256-sha256"} | some a in verified],
	"failures": failures,
}

failure(attestor, reason) := {
	"attestor": attestor,
	"reason": reason,
	"remediation": sprintf("sign registry.example.com/team/x@%v with a %v key", [digest, attestor]),
}

# The provider's answers, by image: dev-team signed `signed_image`; nobody signed `unsigned_image`.
answers := {
	signed_image: report(signed_image, ["dev-team"], [failure("security-team", "NOT_SIGNED_BY_ATTESTOR")]),
	unsigned_image: report(unsigned_image, [], [failure("dev-team", "NO_SIGNATURE"), failure("security-team", "NO_SIGNATURE")]),
	both_image: report(both_image, ["dev-team", "security-team"], []),
	signed_tag: report(signed_tag, ["dev-team"], []),
}

provider_ok(request) := {
	"responses": [[key, answers[key]] | some key in request.keys; answers[key]],
	"errors": [],
	"status_code": 200,
	"system_error": "",
}

# Gatekeeper answered every key from its cache: no HTTP call, so status_code is 0.
provider_cached(request) := object.union(provider_ok(request), {"status_code": 0})

provider_down(_) := {
	"responses": [],
	"errors": [],
	"status_code": 500,
	"system_error": "failed to send external data request: dial tcp: connection refused",
}

provider_transient(request) := {
	"responses": [[key, answers[key]] | some key in request.keys; key != unsigned_image],
	"errors": [],
	"status_code": 200,
	"system_error": sprintf("%v: REGISTRY_UNAVAILABLE: registry.example.com answered 503", [unsigned_image]),
}

provider_forgets(_) := {"responses": [], "errors": [], "status_code": 200, "system_error": ""}

provider_item_error(request) := {
	"responses": [],
	"errors": [[key, "INVALID_REFERENCE: no"] | some key in request.keys],
	"status_code": 200,
	"system_error": "",
}

provider_version_2(request) := {
	"responses": [[key, object.union(answers[key], {"version": 2})] | some key in request.keys],
	"errors": [],
	"status_code": 200,
	"system_error": "",
}

provider_not_an_object(request) := {
	"responses": [[key, "verified"] | some key in request.keys],
	"errors": [],
	"status_code": 200,
	"system_error": "",
}

provider_undefined(_) := x if {
	false
	x := {}
}

pod(containers) := {"kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": containers}}

container(name, image) := {"name": name, "image": image}

review(obj) := {"operation": "CREATE", "kind": {"kind": obj.kind}, "object": obj}

inp(obj, parameters) := {"review": review(obj), "parameters": parameters}

# Functions are not values in Rego, so a test names its provider by a word; `mock` answers as
# that provider would.
default provider := "ok"

mock(request) := provider_ok(request) if provider == "ok"

mock(request) := provider_cached(request) if provider == "cached"

mock(request) := provider_down(request) if provider == "down"

mock(request) := provider_transient(request) if provider == "transient"

mock(request) := provider_forgets(request) if provider == "forgets"

mock(request) := provider_item_error(request) if provider == "item-error"

mock(request) := provider_version_2(request) if provider == "version-2"

mock(request) := provider_not_an_object(request) if provider == "not-an-object"

mock(request) := provider_undefined(request) if provider == "undefined"

violations(obj, parameters, name) := found if {
	found := signetimagesignatures.violation with input as inp(obj, parameters)
		with signetimagesignatures.external_data as mock
		with provider as name
}

messages(obj, parameters, name) := {v.msg | some v in violations(obj, parameters, name)}

require_dev := {"requiredAttestors": ["dev-team"]}

# -- admitted ---------------------------------------------------------------------------------

test_signed_by_the_required_attestor_is_admitted if {
	count(violations(pod([container("app", signed_image)]), require_dev, "ok")) == 0
}

test_admitted_from_gatekeepers_cache_with_status_code_0 if {
	count(violations(pod([container("app", signed_image)]), require_dev, "cached")) == 0
}

test_without_requirements_one_attestor_is_enough if {
	count(violations(pod([container("app", signed_image)]), {}, "ok")) == 0
}

test_m_of_n_satisfied if {
	parameters := {"anyOf": {"attestors": ["dev-team", "security-team", "qa"], "minimum": 2}}
	count(violations(pod([container("app", both_image)]), parameters, "ok")) == 0
}

test_a_pod_without_images_never_calls_the_provider if {
	count(violations(pod([]), require_dev, "down")) == 0
}

# -- denied, with the container, the image, the reason and the fix ---------------------------------

test_unsigned_is_denied_with_reason_and_remediation if {
	messages(pod([container("tool", unsigned_image)]), require_dev, "ok") == {sprintf(
		"container <tool> image <%v>: not signed by <dev-team>: NO_SIGNATURE -> sign registry.example.com/team/x@%v with a dev-team key",
		[unsigned_image, digest],
	)}
}

# -- key lifecycle: revoked and out-of-window keys deny, naming the key and why ---------------------

revoked_image := "registry.example.com/team/old@sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"

revoked_detail := "key dev-2025 of dev-team was revoked at 2026-03-01T09:00:00Z (leaked in a CI log); what is revoked never counts again, whenever it signed"

lifecycle_failure(reason, detail) := object.union(failure("dev-team", reason), {"detail": detail})

lifecycle_answers := {
	revoked_image: report(revoked_image, [], [lifecycle_failure("KEY_REVOKED", revoked_detail)]),
	signed_image: report(signed_image, [], [lifecycle_failure("KEY_EXPIRED", "key dev-2025 of dev-team was valid until 2026-01-01T00:00:00Z; the signature's time 2026-06-01T12:00:00Z (verification-time) is after it")]),
	unsigned_image: report(unsigned_image, [], [{"attestor": "dev-team", "reason": "KEY_NOT_YET_VALID", "remediation": "sign it with a dev-team key valid now"}]),
}

provider_lifecycle(request) := {
	"responses": [[key, lifecycle_answers[key]] | some key in request.keys],
	"errors": [],
	"status_code": 200,
	"system_error": "",
}

lifecycle_messages(obj, parameters) := {v.msg | some v in signetimagesignatures.violation with input as inp(obj, parameters)
	with signetimagesignatures.external_data as provider_lifecycle}

test_a_revoked_key_is_denied_naming_the_key_the_reason_and_the_time if {
	lifecycle_messages(pod([container("old", revoked_image)]), require_dev) == {sprintf(
		"container <old> image <%v>: not signed by <dev-team>: KEY_REVOKED (%v) -> sign registry.example.com/team/x@%v with a dev-team key",
		[revoked_image, revoked_detail, digest],
	)}
}

test_an_expired_key_is_denied_naming_the_window_and_the_time_used if {
	some msg in lifecycle_messages(pod([container("app", signed_image)]), require_dev)
	contains(msg, "not signed by <dev-team>: KEY_EXPIRED (key dev-2025 of dev-team was valid until 2026-01-01T00:00:00Z; the signature's time 2026-06-01T12:00:00Z (verification-time) is after it) -> ")
}

test_a_lifecycle_reason_without_detail_still_denies_by_its_code if {
	lifecycle_messages(pod([container("tool", unsigned_image)]), require_dev) == {sprintf(
		"container <tool> image <%v>: not signed by <dev-team>: KEY_NOT_YET_VALID -> sign it with a dev-team key valid now",
		[unsigned_image],
	)}
}

test_a_lifecycle_refusal_is_named_in_m_of_n_and_without_requirements if {
	parameters := {"anyOf": {"attestors": ["dev-team", "security-team"], "minimum": 1}}
	some short in lifecycle_messages(pod([container("old", revoked_image)]), parameters)
	contains(short, sprintf("; dev-team: KEY_REVOKED (%v) -> ", [revoked_detail]))
	some none in lifecycle_messages(pod([container("old", revoked_image)]), {})
	contains(none, sprintf("not signed by any trusted attestor: KEY_REVOKED (%v) -> ", [revoked_detail]))
}

test_every_required_attestor_must_sign if {
	msgs := messages(pod([container("app", signed_image)]), {"requiredAttestors": ["dev-team", "security-team"]}, "ok")
	count(msgs) == 1
	some msg in msgs
	contains(msg, "not signed by <security-team>: NOT_SIGNED_BY_ATTESTOR")
}

test_a_required_attestor_the_provider_does_not_know if {
	some msg in messages(pod([container("app", signed_image)]), {"requiredAttestors": ["nobody"]}, "ok")
	contains(msg, "the provider knows no attestor <nobody>")
}

test_m_of_n_short if {
	parameters := {"anyOf": {"attestors": ["dev-team", "security-team", "qa"], "minimum": 2}}
	msgs := messages(pod([container("app", signed_image)]), parameters, "ok")
	count(msgs) == 1
	some msg in msgs
	contains(msg, "signed by 1 of the required attestors; at least 2 of [dev-team, security-team, qa] must sign")
	contains(msg, "security-team: NOT_SIGNED_BY_ATTESTOR -> sign")
}

test_without_requirements_none_verified_is_denied if {
	some msg in messages(pod([container("tool", unsigned_image)]), {}, "ok")
	contains(msg, "not signed by any trusted attestor: NO_SIGNATURE -> sign")
}

test_every_container_kind_is_checked if {
	obj := {"kind": "Pod", "spec": {
		"containers": [container("app", signed_image)],
		"initContainers": [container("init", unsigned_image)],
		"ephemeralContainers": [container("debug", unsigned_image)],
	}}
	msgs := messages(obj, require_dev, "ok")
	count(msgs) == 2
	some init in msgs
	startswith(init, sprintf("initContainer <init> image <%v>", [unsigned_image]))
	some debug in msgs
	startswith(debug, sprintf("ephemeralContainer <debug> image <%v>", [unsigned_image]))
}

test_an_image_volume_is_checked_like_a_container if {
	obj := {"kind": "Pod", "spec": {
		"containers": [container("app", signed_image)],
		"volumes": [
			{"name": "payload", "image": {"reference": unsigned_image, "pullPolicy": "IfNotPresent"}},
			{"name": "tools", "image": {"reference": signed_image}},
			{"name": "scratch", "emptyDir": {}},
		],
	}}
	msgs := messages(obj, require_dev, "ok")
	msgs == {sprintf(
		"imageVolume <payload> image <%v>: not signed by <dev-team>: NO_SIGNATURE -> sign registry.example.com/team/x@%v with a dev-team key",
		[unsigned_image, digest],
	)}
	signetimagesignatures.keys == [signed_image, unsigned_image] with input as inp(obj, require_dev)
}

test_an_image_volume_written_by_tag_is_denied if {
	obj := {"kind": "Pod", "spec": {"containers": [], "volumes": [{"name": "payload", "image": {"reference": signed_tag}}]}}
	some msg in messages(obj, require_dev, "ok")
	startswith(msg, sprintf("imageVolume <payload> image <%v>: not pinned to a digest", [signed_tag]))
}

# -- digests ------------------------------------------------------------------------------------

test_a_signed_image_written_by_tag_is_denied_with_its_pinned_form if {
	msgs := messages(pod([container("app", signed_tag)]), require_dev, "ok")
	msgs == {sprintf(
		"container <app> image <%v>: not pinned to a digest; the pinning mutator did not run, so what the kubelet pulls may not be what was verified. Write it as <registry.example.com/team/app@%v>, or have Gatekeeper's mutating webhook fail closed (mutatingWebhookFailurePolicy: Fail)",
		[signed_tag, digest],
	)}
}

test_a_tag_without_an_answer_gets_both_problems if {
	msgs := messages(pod([container("app", signed_tag)]), require_dev, "down")
	count(msgs) == 2
	some pin in msgs
	contains(pin, "Write it as <registry.example.com/team/app@sha256:<digest>>")
}

test_a_tag_is_accepted_when_the_constraint_does_not_require_digests if {
	parameters := object.union(require_dev, {"requireDigest": false})
	count(violations(pod([container("app", signed_tag)]), parameters, "ok")) == 0
}

test_a_tag_and_digest_reference_is_pinned if {
	image := sprintf("registry.example.com/team/app:1.0@%v", [digest])
	signetimagesignatures.pinned(image)
	not signetimagesignatures.pinned(signed_tag)
	not signetimagesignatures.pinned("registry.example.com/team/app@sha256:ABC")
	not signetimagesignatures.pinned(sprintf("registry.example.com/team/app@%v:1", [digest]))
}

test_an_exempt_image_needs_no_digest if {
	parameters := object.union(require_dev, {"exemptImages": ["registry.example.com/team/app"]})
	count(violations(pod([container("app", signed_tag)]), parameters, "down")) == 0
}

test_update_is_checked_like_create if {
	obj := pod([container("tool", unsigned_image)])
	update := {"review": object.union(review(obj), {"operation": "UPDATE"}), "parameters": require_dev}
	count(signetimagesignatures.violation) == 1 with input as update
		with signetimagesignatures.external_data as provider_ok
}

# -- fail closed --------------------------------------------------------------------------------

test_provider_down_denies_every_image if {
	msgs := messages(pod([container("app", signed_image), container("tool", unsigned_image)]), require_dev, "down")
	count(msgs) == 2
	every msg in msgs {
		contains(msg, "not verified: the provider could not answer now (failed to send external data request: dial tcp: connection refused)")
	}
}

test_a_transient_key_is_denied_and_the_others_judged if {
	msgs := messages(pod([container("app", signed_image), container("tool", unsigned_image)]), require_dev, "transient")
	msgs == {sprintf("container <tool> image <%v>: not verified: the provider could not answer now (%v: REGISTRY_UNAVAILABLE: registry.example.com answered 503); retry shortly", [unsigned_image, unsigned_image])}
}

test_a_key_missing_from_the_answer_is_denied if {
	msgs := messages(pod([container("app", signed_image)]), require_dev, "forgets")
	msgs == {sprintf("container <app> image <%v>: not verified: the signet provider gave no answer for this image", [signed_image])}
}

test_an_item_error_is_denied if {
	some msg in messages(pod([container("app", signed_image)]), require_dev, "item-error")
	contains(msg, "signature check failed: INVALID_REFERENCE: no")
}

test_an_unknown_report_version_is_denied if {
	some msg in messages(pod([container("app", signed_image)]), require_dev, "version-2")
	contains(msg, "unknown report version <2>")
}

test_a_report_that_is_not_an_object_is_denied if {
	some msg in messages(pod([container("app", signed_image)]), require_dev, "not-an-object")
	contains(msg, "unknown report version <verified>")
}

test_an_undefined_external_data_result_is_denied if {
	some msg in messages(pod([container("app", signed_image)]), require_dev, "undefined")
	contains(msg, "the external_data call returned nothing")
}

# -- what is asked, and exemptions ---------------------------------------------------------------

test_keys_are_distinct_sorted_and_exclude_exempt_images if {
	obj := pod([
		container("b", unsigned_image),
		container("a", signed_image),
		container("c", signed_image),
		container("d", "mirror.trusted.example.com/team/base:1"),
	])
	parameters := {"requiredAttestors": ["dev-team"], "exemptImages": ["*.trusted.example.com/team/*"]}
	signetimagesignatures.keys == [signed_image, unsigned_image] with input as inp(obj, parameters)
}

exempt_cases := [
	["*.trusted.example.com/team/*", "a.trusted.example.com/team/app:1", true],
	["*.trusted.example.com/team/*", "a.trusted.example.com/team/app@sha256:abc", true],
	["*.trusted.example.com/team/*", "evil.example.com/x.trusted.example.com/team/a", false],
	["*.trusted.example.com/team/*", "trusted.example.com.evil.io/team/a", false],
	["*.trusted.example.com/team/*", "a.trusted.example.com/team/sub/app", false],
	["*.trusted.example.com/team/**", "a.trusted.example.com/team/sub/app:1", true],
	["registry.example.com/team/app", "registry.example.com/team/app:1.0", true],
	["registry.example.com/team/app", "registry.example.com/team/app2:1.0", false],
	["localhost:5000/*", "localhost:5000/app:v1", true],
	["localhost:5000/*", "localhost:50000/app:v1", false],
	["registry.example.com/team/app@sha256:*", "registry.example.com/team/app@sha256:abc", true],
	["registry.example.com/team/app@sha256:*", "registry.example.com/team/app:1", false],
]

test_exemptions_are_host_anchored if {
	matched := {[c[0], c[1]] |
		some c in exempt_cases
		signetimagesignatures.exempt(c[1]) with input as {"parameters": {"exemptImages": [c[0]]}}
	}
	matched == {[c[0], c[1]] | some c in exempt_cases; c[2]}
}

governed_cases := [
	# `*` stays within a path segment: a nested repository needs `**`.
	["registry.k8s.io/*", "registry.k8s.io/pause:3.10", true],
	["registry.k8s.io/*", "registry.k8s.io/sig-storage/csi-provisioner:v5", false],
	["registry.k8s.io/**", "registry.k8s.io/sig-storage/csi-provisioner:v5", true],
	# Short names are not normalised: `nginx` is not docker.io/library/nginx.
	["docker.io/library/*", "nginx:1.27", false],
	["docker.io/library/*", "docker.io/library/nginx:1.27", true],
	["nginx", "nginx:1.27", true],
	# Anchored at both ends, as exemptions are.
	["registry.example.com/team/*", "evil.example/registry.example.com/team/app", false],
]

test_images_scopes_a_constraint_with_the_exemption_globs if {
	matched := {[c[0], c[1]] |
		some c in governed_cases
		signetimagesignatures.governed(c[1]) with input as {"parameters": {"images": [c[0]]}}
	}
	matched == {[c[0], c[1]] | some c in governed_cases; c[2]}
}

test_without_images_every_image_is_governed if {
	signetimagesignatures.governed("anything.example/x:1") with input as {"parameters": {}}
}

test_only_governed_images_are_asked_about_and_can_be_denied if {
	obj := pod([container("app", unsigned_image), container("tool", "other.example/tool:1")])
	parameters := {"requiredAttestors": ["dev-team"], "images": ["registry.example.com/**"]}
	signetimagesignatures.keys == [unsigned_image] with input as inp(obj, parameters)
}

test_an_empty_report_without_requirements_is_denied if {
	empty := report(signed_image, [], [])
	verdict := signetimagesignatures.none_verified(empty) with input as {"parameters": {}}
	verdict == {"not signed by any trusted attestor: no signature verified"}
}
