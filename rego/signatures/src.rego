# Signet image signatures: every image of a Pod (containers, initContainers, ephemeralContainers,
# image volumes) must be pinned to a digest and carry valid signatures from the attestors the
# constraint requires, as reported by the Signet external data provider. Every way the answer can
# be missing or unusable is a violation.
package signetimagesignatures

# Rego v1 syntax (the template declares source version v1); Gatekeeper refuses `import rego.v1`.

report_version := 1

default_provider := "signet"

provider := object.get(input.parameters, "provider", default_provider)

required := object.get(input.parameters, "requiredAttestors", [])

any_of := object.get(input.parameters, "anyOf", {})

any_of_attestors := object.get(any_of, "attestors", [])

any_of_minimum := object.get(any_of, "minimum", 1)

exempt_patterns := object.get(input.parameters, "exemptImages", [])

# With `images`, a constraint governs only the images these patterns match (the same globs as
# `exemptImages`); without it, every image.
governed_patterns := object.get(input.parameters, "images", [])

# Attestations each image must carry, e.g. SLSA provenance from an allowed builder:
# [{"predicateType": "https://slsa.dev/provenance/v1", "attestors": ["ci"],
#   "builderIds": ["https://…"], "sourceRepositories": ["https://…"]}]. Lists left out allow any.
required_attestations := object.get(input.parameters, "requiredAttestations", [])

# A tag is resolved when Signet verifies it and again when the kubelet pulls it, and may point at
# another image by then; only a digest names what was verified. Signet's pinning mutator writes
# the digest in; when it did not run (Gatekeeper's mutating webhook fails open by default), this
# is what stops the tag.
require_digest := object.get(input.parameters, "requireDigest", true)

# During a registry outage Signet may answer a digest from the verdict it last reached under the
# same trust, marked `stale` (when it was verified, and why it could not be now). Such an answer
# counts only within this many seconds of that verification; 0, the default, denies it.
outage_grace_seconds := object.get(input.parameters, "outageGraceSeconds", 0)

# Every place the reviewed Pod names an image, with the kind word used in messages.
images_named contains {"kind": "container", "name": c.name, "image": c.image} if {
	some c in object.get(input.review.object.spec, "containers", [])
}

images_named contains {"kind": "initContainer", "name": c.name, "image": c.image} if {
	some c in object.get(input.review.object.spec, "initContainers", [])
}

images_named contains {"kind": "ephemeralContainer", "name": c.name, "image": c.image} if {
	some c in object.get(input.review.object.spec, "ephemeralContainers", [])
}

# Image volumes (Kubernetes 1.31+, on by default from 1.35) mount an image's files into the Pod.
images_named contains {"kind": "imageVolume", "name": v.name, "image": v.image.reference} if {
	some v in object.get(input.review.object.spec, "volumes", [])
	is_string(v.image.reference)
}

checked contains c if {
	some c in images_named
	governed(c.image)
	not exempt(c.image)
}

keys := sort({c.image | some c in checked})

# One call per review; Gatekeeper caches answers per key. If the call yields nothing at all
# (a malformed call is undefined, not an error), the default still denies every image.
default answer := {
	"responses": [],
	"errors": [],
	"system_error": "the external_data call returned nothing",
}

answer := external_data({"provider": provider, "keys": keys})

reports[key] := value if {
	some pair in object.get(answer, "responses", [])
	key := pair[0]
	value := pair[1]
}

errors[key] := message if {
	some pair in object.get(answer, "errors", [])
	key := pair[0]
	message := pair[1]
}

system_error := object.get(answer, "system_error", "")

# -- violations ---------------------------------------------------------------------------------

violation contains {"msg": msg} if {
	some c in checked
	some problem in problems(c.image)
	msg := sprintf("%v <%v> image <%v>: %v", [c.kind, c.name, c.image, problem])
}

violation contains {"msg": msg} if {
	require_digest
	some c in checked
	not pinned(c.image)
	msg := sprintf("%v <%v> image <%v>: not pinned to a digest; the pinning mutator did not run, so what the kubelet pulls may not be what was verified. Write it as <%v>, or have Gatekeeper's mutating webhook fail closed (mutatingWebhookFailurePolicy: Fail)", [c.kind, c.name, c.image, pinned_form(c.image)])
}

pinned(image) if regex.match(`@sha256:[0-9a-f]{64}$`, image)

pinned_form(image) := sprintf("%v@%v", [image_name(image), reports[image].digest]) if {
	is_string(reports[image].digest)
} else := sprintf("%v@sha256:<digest>", [image_name(image)])

# The provider said this image failed in a way it reports as an error.
problems(image) := {sprintf("signature check failed: %v", [errors[image]])} if {
	errors[image]
}

# No answer for this image: transient (named in systemError) or missing entirely.
problems(image) := {sprintf("not verified: the provider could not answer now (%v); retry shortly", [system_error])} if {
	not errors[image]
	not reports[image]
	system_error != ""
}

problems(image) := {"not verified: the signet provider gave no answer for this image"} if {
	not errors[image]
	not reports[image]
	system_error == ""
}

problems(image) := {sprintf("not verified: unknown report version <%v> (this policy reads version %v)", [version_of(reports[image]), report_version])} if {
	not errors[image]
	not valid_report(reports[image])
}

problems(image) := (attestor_problems(reports[image]) | attestation_problems(reports[image])) | stale_problems(reports[image]) if {
	not errors[image]
	valid_report(reports[image])
}

valid_report(report) if {
	is_object(report)
	report.version == report_version
	is_array(report.verified)
}

version_of(report) := report.version if is_object(report)

else := report

verified_set(report) := {a | some a in object.get(report, "verified", [])}

attestor_problems(report) := (required_missing(report) | any_of_short(report)) | none_verified(report)

required_missing(report) := {missing_message(report, name) |
	some name in required
	not name in verified_set(report)
}

any_of_short(report) := {sprintf("signed by %v of %v; at least %v of [%v] must sign%v", [have, "the required attestors", any_of_minimum, concat(", ", any_of_attestors), hints(report, any_of_attestors)])} if {
	count(any_of_attestors) > 0
	have := count({a | some a in any_of_attestors; a in verified_set(report)})
	have < any_of_minimum
} else := set()

# Without any requirement in the constraint, at least one configured attestor must have signed.
none_verified(report) := {sprintf("not signed by any trusted attestor: %v", [image_failures(report)])} if {
	count(required) == 0
	count(any_of_attestors) == 0
	count(verified_set(report)) == 0
} else := set()

missing_message(report, name) := sprintf("not signed by <%v>: %v -> %v", [name, reason_text(failure), failure.remediation]) if {
	some failure in object.get(report, "failures", [])
	failure.attestor == name
} else := sprintf("not signed by <%v>: NOT_SIGNED_BY_ATTESTOR (the provider knows no attestor <%v>; check the trust config)", [name, name])

hints(report, names) := concat("", [sprintf("; %v: %v -> %v", [f.attestor, reason_text(f), f.remediation]) |
	some f in object.get(report, "failures", [])
	f.attestor in names
])

image_failures(report) := concat("; ", [sprintf("%v -> %v", [reason_text(f), f.remediation]) |
	some f in object.get(report, "failures", [])
]) if {
	count(object.get(report, "failures", [])) > 0
} else := "no signature verified"

# A valid signature the trust config's key lifecycle refuses: the message says which key or
# identity, the revocation (reason, time) or the validity window, and the signing time used.
lifecycle_reasons := {"KEY_REVOKED", "KEY_EXPIRED", "KEY_NOT_YET_VALID"}

reason_text(failure) := sprintf("%v (%v)", [failure.reason, failure.detail]) if {
	failure.reason in lifecycle_reasons
	is_string(failure.detail)
} else := failure.reason

# -- stale answers (registry outages) ---------------------------------------------------------

stale_problems(report) := set() if {
	object.get(report, "stale", false) == false
} else := set() if {
	outage_grace_seconds > 0
	stale_age_seconds(report) >= 0
	stale_age_seconds(report) <= outage_grace_seconds
} else := {sprintf("not verified now: %v (%v); Signet last verified it at %v (%v), and this constraint admits such an answer for %vs (outageGraceSeconds) -> retry when the registry answers again", [
	stale_field(report, "reason", "the registry did not answer"),
	stale_field(report, "detail", "no detail"),
	stale_field(report, "verifiedAt", "an unknown time"),
	stale_age_words(report),
	outage_grace_seconds,
])}

# A malformed `stale` must still yield a message: an undefined one would admit.
stale_field(report, name, fallback) := report.stale[name] if {
	is_object(report.stale)
	is_string(report.stale[name])
} else := fallback

stale_age_seconds(report) := (time.now_ns() - time.parse_rfc3339_ns(stale_field(report, "verifiedAt", ""))) / 1000000000

stale_age_words(report) := sprintf("%vs ago", [round(stale_age_seconds(report))]) if {
	stale_age_seconds(report) >= 0
} else := "age unknown"

# -- attestations ---------------------------------------------------------------------------------

attestation_problems(report) := {missing_attestation(report, wanted) |
	some wanted in required_attestations
	not attested(report, wanted)
}

attested(report, wanted) if {
	some attestation in object.get(report, "attestations", [])
	meets(attestation, wanted)
}

meets(attestation, wanted) if {
	attestation.predicateType == wanted.predicateType
	allowed(attestation.attestor, object.get(wanted, "attestors", []))
	allowed(object.get(attestation.facts, "builderId", null), object.get(wanted, "builderIds", []))
	allowed(object.get(attestation.facts, "sourceRepository", null), object.get(wanted, "sourceRepositories", []))
}

# An empty list allows anything; otherwise the value must be one of the list, exactly.
allowed(_, values) if count(values) == 0

allowed(value, values) if value in values

missing_attestation(report, wanted) := sprintf("no %v attestation%v; found %v -> attest %v with cosign attest --type %v (signed by %v)", [
	wanted.predicateType,
	attestation_wanted(wanted),
	found_attestations(report, wanted.predicateType),
	pinned_report_image(report),
	cosign_type(wanted.predicateType),
	signer_words(wanted),
])

attestation_wanted(wanted) := concat("", [
	list_words(" by ", object.get(wanted, "attestors", [])),
	list_words(" from builder ", object.get(wanted, "builderIds", [])),
	list_words(" of source ", object.get(wanted, "sourceRepositories", [])),
])

list_words(prefix, values) := "" if {
	count(values) == 0
} else := sprintf("%v[%v]", [prefix, concat(", ", values)])

found_attestations(report, predicate_type) := concat("; ", [sprintf("one by %v from builder <%v> of source <%v>", [a.attestor, object.get(a.facts, "builderId", "?"), object.get(a.facts, "sourceRepository", "?")]) |
	some a in object.get(report, "attestations", [])
	a.predicateType == predicate_type
]) if {
	some a in object.get(report, "attestations", [])
	a.predicateType == predicate_type
} else := "none of that type"

pinned_report_image(report) := sprintf("%v@%v", [image_name(report.image), report.digest]) if {
	is_string(report.digest)
} else := report.image

cosign_type(predicate_type) := "slsaprovenance1" if predicate_type == "https://slsa.dev/provenance/v1"

else := "slsaprovenance" if predicate_type == "https://slsa.dev/provenance/v0.2"

else := predicate_type

signer_words(wanted) := concat(" or ", object.get(wanted, "attestors", [])) if {
	count(object.get(wanted, "attestors", [])) > 0
} else := "a trusted attestor's key"

# -- scope and exemptions: host-anchored globs ---------------------------------------------------

# Patterns are matched against the image as written, with or without its tag or digest. `*` never
# crosses a `/`, and a pattern is anchored at both ends, so `*.trusted.example.com/team/*` matches
# `a.trusted.example.com/team/app:1` but never `evil.example.com/x.trusted.example.com/team/a`.
exempt(image) if {
	some pattern in exempt_patterns
	matches(pattern, image)
}

governed(_) if count(governed_patterns) == 0

governed(image) if {
	some pattern in governed_patterns
	matches(pattern, image)
}

# `**` crosses `/`s. Nothing is normalised: `nginx` is matched as `nginx`, not as
# `docker.io/library/nginx` — name both forms when Pods use both.
matches(pattern, image) if glob.match(pattern, ["/"], image_name(image))

matches(pattern, image) if glob.match(pattern, ["/"], image)

# The image without its tag or digest, for patterns that name repositories.
image_name(image) := trim_suffix(split(image, "@")[0], concat("", [":", tag(image)])) if {
	tag(image) != ""
} else := split(image, "@")[0]

tag(image) := parts[count(parts) - 1] if {
	repo := split(image, "@")[0]
	parts := split(repo, ":")
	count(parts) > 1
	not contains(parts[count(parts) - 1], "/")
} else := ""
