"""Property-based fuzzing of every parser attackers feed (see harness.py for the property)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from signet.formats.cosign_classic import manifest as cosign
from tests.fuzz import harness

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
    harness.registry_answer(data)


@seeded("validate")
@given(REQUESTS)
def test_validate(data: bytes) -> None:
    harness.validate(data)


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
    }
    assert {expected[t] for t in tested if t in expected} == set(harness.TARGETS)


@pytest.mark.parametrize("target", sorted(harness.TARGETS))
def test_every_seed_passes(target: str) -> None:
    for seed in harness.seeds(target):
        harness.TARGETS[target](seed)
