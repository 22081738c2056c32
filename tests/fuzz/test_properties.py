"""Property-based fuzzing of every parser attackers feed (see harness.py for the property)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from signet.attest import provenance
from signet.attest.statement import STATEMENT_TYPES
from signet.formats.cosign_classic import manifest as cosign
from signet.formats.judge import Evidence, judge
from signet.formats.sigstore_bundle.bundle import BUNDLE_MEDIA_TYPES
from signet.formats.sigstore_bundle.referrer import EMPTY_MEDIA_TYPE, OCI_MANIFEST
from signet.formats.sigstore_bundle.verify import BundleEvidence, FetchedBundle
from tests.fuzz import harness
from tests.fuzz.known_bugs import FIXED, KnownBug, tolerating

Test = TypeVar("Test", bound=Callable[..., None])

JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=40),
)
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)
DIGESTS = st.one_of(
    st.just(harness.NOBODYS_DIGEST),
    st.from_regex(r"sha256:[0-9a-f]{64}", fullmatch=True),
    st.from_regex(r"(sha256|sha512|md5)?:?[0-9a-fA-F]{0,70}\n?", fullmatch=True),
    JSON,
)
SIGNATURES = st.one_of(
    st.binary(max_size=200).map(lambda b: base64.b64encode(b).decode()),
    st.text(max_size=100),
    JSON,
)


def _encode(document: Any) -> bytes:
    return json.dumps(document).encode()


def layers() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "mediaType": st.one_of(st.just(cosign.SIGNATURE_MEDIA_TYPE), st.text(max_size=30)),
            "size": st.one_of(st.integers(min_value=-5, max_value=2**40), st.booleans(), JSON),
            "digest": DIGESTS,
        },
        optional={
            "annotations": st.one_of(
                st.fixed_dictionaries(
                    {cosign.SIGNATURE_ANNOTATION: SIGNATURES},
                    optional={"dev.sigstore.cosign/certificate": st.text(max_size=50)},
                ),
                JSON,
            )
        },
    )


MANIFESTS = st.one_of(
    st.fixed_dictionaries(
        {"schemaVersion": st.one_of(st.just(2), JSON), "layers": st.lists(layers(), max_size=8)},
        optional={"mediaType": st.one_of(st.just(cosign.OCI_MANIFEST), st.text(max_size=30))},
    ).map(_encode),
    JSON.map(_encode),
    st.binary(max_size=300),
)
PAYLOADS = st.one_of(
    st.fixed_dictionaries(
        {
            "critical": st.one_of(
                st.fixed_dictionaries(
                    {
                        "type": st.one_of(st.just(cosign.SIGNATURE_TYPE), st.text(max_size=20)),
                        "image": st.one_of(
                            st.fixed_dictionaries({"docker-manifest-digest": DIGESTS}), JSON
                        ),
                        "identity": JSON,
                    }
                ),
                JSON,
            )
        },
        optional={"optional": JSON},
    ).map(_encode),
    st.binary(max_size=200),
)
REFERENCES = st.one_of(
    st.text(alphabet="abcAB09.:/@_-[]%\u00e9\n ", max_size=80),
    st.from_regex(
        r"([a-z0-9.-]{1,20}(:[0-9]{1,6})?/)?[a-z0-9._-]{1,12}(/[a-z0-9._-]{1,10}){0,3}"
        r"(:[\w.-]{1,20})?(@sha256:[0-9a-f]{60,68})?",
        fullmatch=True,
    ),
)
REQUESTS = st.one_of(
    st.fixed_dictionaries(
        {
            "apiVersion": st.sampled_from(
                ["externaldata.gatekeeper.sh/v1beta1", "externaldata.gatekeeper.sh/v1alpha1", "x"]
            ),
            "kind": st.sampled_from(["ProviderRequest", "ProviderResponse"]),
            "request": st.one_of(
                st.fixed_dictionaries({"keys": st.lists(st.one_of(REFERENCES, JSON), max_size=6)}),
                JSON,
            ),
        }
    ).map(_encode),
    st.binary(max_size=200),
)
HEADER_NAMES = st.sampled_from(
    [
        "Content-Length",
        "Content-Type",
        "Content-Encoding",
        "Docker-Content-Digest",
        "WWW-Authenticate",
        "Location",
        "Retry-After",
        "Transfer-Encoding",
    ]
)
ANSWERS = st.builds(
    lambda status, headers, body: (
        bytes([status]) + b"\n".join(f"{n}: {v}".encode() for n, v in headers) + b"\n\n" + body
    ),
    st.integers(min_value=0, max_value=255),
    st.lists(st.tuples(HEADER_NAMES, st.text(max_size=60)), max_size=4),
    st.one_of(st.binary(max_size=200), MANIFESTS),
)


# -- Sigstore bundles, referrers, DSSE, in-toto and SLSA --------------------------------------


def _b64(data: bytes, variant: int) -> str:
    """Base64 as writers produce it: standard, URL-safe, unpadded (both), or with junk."""
    text = base64.b64encode(data).decode()
    if variant == 1:
        text = base64.urlsafe_b64encode(data).decode()
    elif variant == 2:
        text = text.rstrip("=")
    elif variant == 3:
        text = base64.urlsafe_b64encode(data).decode().rstrip("=")
    elif variant == 4:
        text = text + "\n"
    elif variant == 5:
        text = text[:-1]
    return text


def base64_of(data: st.SearchStrategy[bytes]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.builds(_b64, data, st.integers(min_value=0, max_value=5)),
        st.text(alphabet="ABCab01+/-_=", max_size=20),
        JSON,
    )


HEX64 = st.one_of(
    st.sampled_from(
        [d.removeprefix("sha256:") for d in (harness.SIGNED_DIGEST, harness.NOBODYS_DIGEST)]
    ),
    st.from_regex(r"[0-9a-f]{64}", fullmatch=True),
    st.from_regex(r"[0-9a-fA-F]{62,66}\n?", fullmatch=True),
    JSON,
)
FACT_VALUES = st.one_of(
    st.text(max_size=30),
    st.integers(min_value=1020, max_value=1030).map(lambda n: "x" * n),  # MAX_FACT_LENGTH
    JSON,
)
URIS = st.one_of(
    st.from_regex(
        r"(git\+)?(https?|ssh)://([a-z]{1,5}@)?[a-z.]{1,12}(/[a-z@]{0,8}){0,3}(@[a-z/@]{0,12})?",
        fullmatch=True,
    ),
    st.text(alphabet="git+:/@ab", max_size=20),
    JSON,
)
SOURCE_DIGESTS = st.one_of(
    st.dictionaries(
        st.sampled_from(["sha1", "gitCommit", "sha256", "sha512", "md5"]), FACT_VALUES, max_size=3
    ),
    JSON,
)


def _object_or_json(
    fields: dict[str, st.SearchStrategy[Any]],
) -> st.SearchStrategy[Any]:
    return st.one_of(st.fixed_dictionaries({}, optional=fields), JSON)


SLSA_V02 = _object_or_json(
    {
        "builder": _object_or_json({"id": FACT_VALUES}),
        "buildType": FACT_VALUES,
        "invocation": _object_or_json(
            {
                "configSource": _object_or_json(
                    {"uri": URIS, "digest": SOURCE_DIGESTS, "entryPoint": FACT_VALUES}
                )
            }
        ),
    }
)
SLSA_V1 = _object_or_json(
    {
        "buildDefinition": _object_or_json(
            {
                "buildType": FACT_VALUES,
                "externalParameters": _object_or_json(
                    {
                        "workflow": _object_or_json(
                            {"repository": FACT_VALUES, "ref": FACT_VALUES, "path": FACT_VALUES}
                        )
                    }
                ),
                "resolvedDependencies": st.one_of(
                    st.lists(_object_or_json({"uri": URIS, "digest": SOURCE_DIGESTS}), max_size=3),
                    JSON,
                ),
            }
        ),
        "runDetails": _object_or_json({"builder": _object_or_json({"id": FACT_VALUES})}),
    }
)
PREDICATE_TYPES = st.one_of(
    st.sampled_from(
        [harness.SIGN, provenance.SLSA_V02, provenance.SLSA_V1, "https://example/other", ""]
    ),
    JSON,
)
STATEMENT_DOCUMENTS = st.fixed_dictionaries(
    {},
    optional={
        "_type": st.one_of(st.sampled_from(STATEMENT_TYPES), JSON),
        "subject": st.one_of(
            st.lists(
                st.fixed_dictionaries(
                    {"digest": st.one_of(st.fixed_dictionaries({"sha256": HEX64}), JSON)},
                    optional={"name": st.text(max_size=20)},
                ),
                max_size=4,
            ),
            JSON,
        ),
        "predicateType": PREDICATE_TYPES,
        "predicate": st.one_of(SLSA_V02, SLSA_V1, JSON),
    },
)
STATEMENTS = st.one_of(STATEMENT_DOCUMENTS.map(_encode), JSON.map(_encode), st.binary(max_size=200))
SIGNATURE_BYTES = st.one_of(
    st.sampled_from(sorted(harness.genuine()[0].signatures)), st.binary(max_size=80)
)
ENVELOPE_DOCUMENTS = st.fixed_dictionaries(
    {},
    optional={
        "payloadType": st.one_of(
            st.sampled_from([harness.IN_TOTO, "application/json", ""]), st.text(max_size=20), JSON
        ),
        "payload": st.one_of(
            base64_of(STATEMENTS),
            st.integers(min_value=4090, max_value=4100).map(
                lambda n: base64.b64encode(b"x" * n).decode()  # ENVELOPE_MAX_PAYLOAD
            ),
        ),
        "signatures": st.one_of(
            st.lists(
                st.fixed_dictionaries(
                    {"sig": base64_of(SIGNATURE_BYTES)}, optional={"keyid": st.text(max_size=8)}
                ),
                max_size=10,
            ),
            JSON,
        ),
    },
)
ENVELOPES = st.one_of(ENVELOPE_DOCUMENTS.map(_encode), JSON.map(_encode), st.binary(max_size=200))
MEDIA_TYPES = st.one_of(
    st.sampled_from(
        [*BUNDLE_MEDIA_TYPES, "application/vnd.dev.sigstore.bundle+json;version=0.4", ""]
    ),
    JSON,
)
VERIFICATION_MATERIAL = _object_or_json(
    {
        "publicKey": _object_or_json({"hint": st.one_of(st.text(max_size=44), JSON)}),
        "certificate": JSON,
        "x509CertificateChain": JSON,
        "tlogEntries": st.one_of(st.lists(JSON, max_size=3), JSON),
        "timestampVerificationData": _object_or_json(
            {"rfc3161Timestamps": st.one_of(st.lists(JSON, max_size=3), JSON)}
        ),
    }
)
MESSAGE_SIGNATURES = _object_or_json(
    {
        "messageDigest": _object_or_json(
            {
                "algorithm": st.one_of(
                    st.sampled_from(["SHA2_256", "SHA2_384", "SHA2_512", "SHA3_256"]),
                    JSON,  # an array or object here: FIXED "bundle-unhashable-..."
                ),
                "digest": base64_of(st.binary(max_size=64)),
            }
        ),
        "signature": base64_of(st.binary(max_size=80)),
    }
)
BUNDLE_DOCUMENTS = st.fixed_dictionaries(
    {"mediaType": MEDIA_TYPES, "verificationMaterial": VERIFICATION_MATERIAL},
    optional={
        "dsseEnvelope": st.one_of(ENVELOPE_DOCUMENTS, JSON),
        "messageSignature": MESSAGE_SIGNATURES,
    },
)
BUNDLES = st.one_of(BUNDLE_DOCUMENTS.map(_encode), JSON.map(_encode), st.binary(max_size=300))
DESCRIPTORS = st.fixed_dictionaries(
    {},
    optional={
        "mediaType": st.one_of(st.sampled_from([OCI_MANIFEST, cosign.OCI_MANIFEST]), JSON),
        "digest": DIGESTS,
        "size": st.one_of(st.integers(min_value=-5, max_value=2**64), st.booleans(), JSON),
        "artifactType": st.one_of(MEDIA_TYPES, st.just(EMPTY_MEDIA_TYPE)),
        "annotations": st.one_of(
            st.dictionaries(
                st.sampled_from(["dev.sigstore.bundle.predicateType", "x"]), JSON, max_size=2
            ),
            JSON,
        ),
    },
)
REFERRERS = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "mediaType": st.one_of(st.just(OCI_MANIFEST), JSON),
            "artifactType": st.one_of(MEDIA_TYPES, st.just(EMPTY_MEDIA_TYPE)),
            "config": _object_or_json(
                {"mediaType": st.one_of(MEDIA_TYPES, st.just(EMPTY_MEDIA_TYPE))}
            ),
            "layers": st.one_of(st.lists(DESCRIPTORS, max_size=4), JSON),
            "subject": _object_or_json({"digest": DIGESTS}),
            "annotations": _object_or_json(
                {"dev.sigstore.bundle.predicateType": st.one_of(PREDICATE_TYPES, JSON)}
            ),
        },
    ).map(_encode),
    JSON.map(_encode),
    st.binary(max_size=300),
)
INDEXES = st.one_of(
    st.fixed_dictionaries(
        {"manifests": st.one_of(st.lists(st.one_of(DESCRIPTORS, JSON), max_size=6), JSON)},
        optional={"schemaVersion": JSON, "mediaType": st.text(max_size=40)},
    ).map(_encode),
    st.integers(min_value=1020, max_value=1030).map(
        lambda n: _encode({"manifests": [{}] * n})  # MAX_DESCRIPTORS
    ),
    JSON.map(_encode),
    st.binary(max_size=300),
)
PROVENANCE = st.one_of(
    st.fixed_dictionaries(
        {"predicateType": PREDICATE_TYPES, "predicate": st.one_of(SLSA_V02, SLSA_V1, JSON)}
    ).map(_encode),
    st.one_of(SLSA_V02, SLSA_V1).map(_encode),
    JSON.map(_encode),
)


def _forgery(
    media_type: Any,
    hint: Any,
    kinds: list[str],
    payload_type: Any,
    payload: Any,
    signatures: Any,
) -> bytes:
    """The fuzz key's genuine bundle with some of its parts swapped for others."""
    document: dict[str, Any] = json.loads(harness.SIGNED_BUNDLE)
    document["mediaType"] = media_type
    material: dict[str, Any] = {"publicKey": {"hint": hint}}
    material.update({kind: {"rawBytes": ""} for kind in kinds})
    document["verificationMaterial"] = material
    document["dsseEnvelope"] = {
        "payloadType": payload_type,
        "payload": payload,
        "signatures": signatures,
    }
    return _encode(document)


_FUZZ, _FUZZ_ATTESTED, _FUZZ_OTHER = harness.genuine()[:3]
SIGNED_PAYLOADS = st.sampled_from([_FUZZ.payload, _FUZZ_ATTESTED.payload, _FUZZ_OTHER.payload])
SIGNED_SIGNATURES = st.sampled_from(
    sorted(_FUZZ.signatures | _FUZZ_ATTESTED.signatures | _FUZZ_OTHER.signatures)
)


def _flip(data: bytes, position: int, bit: int) -> bytes:
    if not data:
        return data
    position %= len(data)
    return data[:position] + bytes([data[position] ^ (1 << bit)]) + data[position + 1 :]


def _edit(data: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    """Byte-level mutations: at each position, delete a few bytes and insert others."""
    for position, deleted, inserted in edits:
        at = position % (len(data) + 1)
        data = data[:at] + inserted + data[at + deleted :]
    return data


FLIPPED = st.builds(
    _flip,
    st.one_of(SIGNED_PAYLOADS, SIGNED_SIGNATURES),
    st.integers(min_value=0, max_value=2000),
    st.integers(min_value=0, max_value=7),
)


def _well_encoded(data: st.SearchStrategy[bytes]) -> st.SearchStrategy[str]:
    """Base64 in one of the four forms a verifier must accept."""
    return st.builds(_b64, data, st.sampled_from([0, 1, 2, 3]))


_PARTS = ("mediaType", "hint", "kinds", "payloadType", "payload", "signatures")


@st.composite
def _forgeries(draw: st.DrawFn) -> bytes:
    """One of the fuzz key's genuine bundles with at most two of its parts swapped, flipped or
    broken (the others genuine, in any of the encodings a verifier must accept): what verifies
    must then be exactly a genuine payload and signature."""
    real = draw(st.sampled_from([_FUZZ, _FUZZ_ATTESTED, _FUZZ_OTHER]))
    changed = draw(st.lists(st.sampled_from(_PARTS), max_size=2, unique=True))
    own = st.fixed_dictionaries({"sig": _well_encoded(st.sampled_from(sorted(real.signatures)))})
    other = st.fixed_dictionaries({"sig": base64_of(st.one_of(SIGNED_SIGNATURES, FLIPPED))})
    genuine: dict[str, st.SearchStrategy[Any]] = {
        "mediaType": st.just(harness.BUNDLE_V03),
        "hint": st.just(harness.key_hint(harness.SIGNER.public.der)),
        "kinds": st.just([]),
        "payloadType": st.just(harness.IN_TOTO),
        "payload": _well_encoded(st.just(real.payload)),
        "signatures": st.lists(own, min_size=1, max_size=2),
    }
    forged: dict[str, st.SearchStrategy[Any]] = {
        "mediaType": st.one_of(st.sampled_from([*BUNDLE_MEDIA_TYPES, "x"]), MEDIA_TYPES),
        "hint": st.one_of(st.sampled_from([harness.key_hint(b"another key"), None]), JSON),
        "kinds": st.sampled_from([["certificate"], ["x509CertificateChain", "certificate"]]),
        "payloadType": st.one_of(
            st.sampled_from(
                [
                    "application/vnd.in-toto+json ",
                    "application/json",
                    "application/vnd.in-toto+JSON",
                ]
            ),
            st.text(max_size=10),
        ),
        "payload": st.one_of(
            _well_encoded(st.one_of(SIGNED_PAYLOADS, FLIPPED, STATEMENTS)), base64_of(STATEMENTS)
        ),
        "signatures": st.lists(st.one_of(own, other), min_size=1, max_size=3),
    }
    parts = [draw(forged[p] if p in changed else genuine[p]) for p in _PARTS]
    return _forgery(*parts)


FORGERIES = _forgeries()
EDITED = st.builds(
    _edit,
    st.sampled_from([harness.SIGNED_BUNDLE, harness.ATTESTED_BUNDLE, harness.OTHER_BUNDLE]),
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=2000),
            st.integers(min_value=0, max_value=3),
            st.binary(max_size=3),
        ),
        min_size=1,
        max_size=3,
    ),
)
JUDGED_BUNDLES = st.one_of(FORGERIES, EDITED, BUNDLES)


def seeded(target: str) -> Callable[[Test], Test]:
    """Decorate a test with the target's seeds as explicit examples."""

    def decorate(test: Test) -> Test:
        for seed in harness.seeds(target):
            test = example(seed)(test)
        return test

    return decorate


@seeded("reference")
@given(REFERENCES.map(lambda t: t.encode()))
def test_references(data: bytes) -> None:
    harness.reference(data)


@seeded("provider_request")
@given(REQUESTS)
def test_provider_requests(data: bytes) -> None:
    harness.provider_request(data)


@seeded("signature_manifest")
@given(MANIFESTS)
def test_signature_manifests(data: bytes) -> None:
    harness.signature_manifest(data)


@seeded("payload")
@given(PAYLOADS)
def test_payloads(data: bytes) -> None:
    harness.payload(data)


@seeded("verification")
@given(st.builds(lambda m, p: m + b"\n--\n" + p, MANIFESTS, PAYLOADS))
def test_verification(data: bytes) -> None:
    harness.verification(data)


@seeded("registry_answer")
@given(ANSWERS)
def test_registry_answers(data: bytes) -> None:
    tolerating("registry_answer", harness.registry_answer)(data)


@seeded("validate")
@given(REQUESTS)
def test_validate(data: bytes) -> None:
    harness.validate(data)


@seeded("bundle")
@given(BUNDLES)
def test_bundles(data: bytes) -> None:
    tolerating("bundle", harness.bundle)(data)


@seeded("referrer")
@given(REFERRERS)
def test_referrers(data: bytes) -> None:
    harness.referrer(data)


@seeded("referrers_index")
@given(INDEXES)
def test_referrers_indexes(data: bytes) -> None:
    harness.referrers_index(data)


@seeded("dsse_envelope")
@given(ENVELOPES)
def test_dsse_envelopes(data: bytes) -> None:
    tolerating("dsse_envelope", harness.dsse_envelope)(data)


@seeded("statement")
@given(STATEMENTS)
def test_statements(data: bytes) -> None:
    harness.statement(data)


@seeded("provenance")
@given(PROVENANCE)
def test_provenance(data: bytes) -> None:
    harness.provenance_predicate(data)


@seeded("judge")
@given(JUDGED_BUNDLES)
def test_judge(data: bytes) -> None:
    tolerating("judge", harness.judge_bundle)(data)


def test_every_target_has_a_property_test() -> None:
    tested = {name.removeprefix("test_") for name in globals() if name.startswith("test_")}
    expected = {
        "references": "reference",
        "provider_requests": "provider_request",
        "signature_manifests": "signature_manifest",
        "payloads": "payload",
        "verification": "verification",
        "registry_answers": "registry_answer",
        "validate": "validate",
        "bundles": "bundle",
        "referrers": "referrer",
        "referrers_indexes": "referrers_index",
        "dsse_envelopes": "dsse_envelope",
        "statements": "statement",
        "provenance": "provenance",
        "judge": "judge",
        "trusted_roots": "trusted_root",
        "rfc3161_timestamps": "rfc3161_timestamp",
        "log_entries": "log_entry",
        "keyless_bundles": "keyless_bundle",
    }
    assert {expected[t] for t in tested if t in expected} == set(harness.TARGETS)


@pytest.mark.parametrize("target", sorted(harness.TARGETS))
def test_every_seed_passes(target: str) -> None:
    for seed in harness.seeds(target):
        harness.TARGETS[target](seed)


@pytest.mark.parametrize(
    ("seed", "digest", "verified", "attested"),
    [
        (harness.SIGNED_BUNDLE, harness.SIGNED_DIGEST, ("fuzz",), ()),
        (harness.ATTESTED_BUNDLE, harness.SIGNED_DIGEST, (), ("fuzz",)),
        (harness.OTHER_BUNDLE, harness.SIGNED_DIGEST, (), ()),
        (
            harness.SEEDS / "v3.1.3-p256-sign.bundle.json",
            harness.OBSERVED_DIGEST,
            ("observed",),
            (),
        ),
        (
            harness.SEEDS / "v3.1.3-p256-slsa-v1.bundle.json",
            harness.OBSERVED_DIGEST,
            (),
            ("observed",),
        ),
    ],
)
def test_the_judge_seeds_verify_where_they_should(
    seed: bytes | Path, digest: str, verified: tuple[str, ...], attested: tuple[str, ...]
) -> None:
    """The judge target starts from evidence that verifies: else its property says little."""
    data = seed.read_bytes() if isinstance(seed, Path) else seed
    evidence = Evidence(bundles=BundleEvidence((FetchedBundle(harness.REFERRER, data),)))
    report = judge("registry.example/fuzz@" + digest, digest, evidence, harness.BUNDLE_TRUST)
    assert report.verified == verified
    assert tuple(a.attestor for a in report.attestations) == attested


@pytest.mark.parametrize("bug", FIXED, ids=[bug.name for bug in FIXED])
def test_fixed_crashes_stay_fixed(bug: KnownBug) -> None:
    """What the fuzzers found, fixed: each reproducer now ends in a documented outcome."""
    for target in bug.targets:
        harness.TARGETS[target](bug.reproducer)


def spliced(target: str) -> st.SearchStrategy[bytes]:
    """A seed of `target` with a few bytes overwritten, inserted or cut at some place."""
    return st.tuples(
        st.sampled_from(harness.seeds(target)),
        st.integers(min_value=0, max_value=2**20),
        st.binary(max_size=8),
        st.integers(min_value=0, max_value=8),
    ).map(lambda t: t[0][: t[1] % (len(t[0]) + 1)] + t[2] + t[0][t[1] % (len(t[0]) + 1) + t[3] :])


@given(spliced("trusted_root"))
def test_trusted_roots(data: bytes) -> None:
    harness.TARGETS["trusted_root"](data)


@given(spliced("rfc3161_timestamp"))
def test_rfc3161_timestamps(data: bytes) -> None:
    harness.TARGETS["rfc3161_timestamp"](data)


@given(spliced("log_entry"))
def test_log_entries(data: bytes) -> None:
    harness.TARGETS["log_entry"](data)


@given(spliced("keyless_bundle"))
def test_keyless_bundles(data: bytes) -> None:
    harness.TARGETS["keyless_bundle"](data)
