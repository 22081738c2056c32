"""The verification algorithm against signatures made by the real cosign (shared/vectors).

Each `dir-img-cosign-*/signature-N` is one classic `.sig` layer as `\\x00sigstore-json\\n` + JSON
`{"mimeType", "payload" (base64), "annotations"}`; the signed digest is the sha256 of the folder's
`manifest.json`. Attestor "a" trusts `cosign.pub`, attestor "b" trusts `cosign2.pub`.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from signet.formats.cosign_classic import manifest as cosign
from signet.formats.cosign_classic.verify import ClassicEvidence
from signet.formats.judge import Evidence
from signet.formats.judge import judge as judge_all
from signet.model.report import Report
from signet.reasons import Reason
from tests.support.vectors import VECTORS, Layer, trust
from tests.support.vectors import layers as layers_of

OTHER_DIGEST = "sha256:" + "0" * 64

NOT_SIGNED = Reason.NOT_SIGNED_BY_ATTESTOR
# name -> (attestors verified, {attestor (None: the image itself): reason of its failure})
EXPECTED: dict[str, tuple[tuple[str, ...], dict[str | None, Reason]]] = {
    "dir-img-cosign-valid": (("a",), {"b": NOT_SIGNED}),
    "dir-img-cosign-valid-2": (("a",), {"b": NOT_SIGNED}),
    "dir-img-cosign-valid-with-tag": (("a",), {"b": NOT_SIGNED}),
    "dir-img-cosign-mixed": (("a",), {"b": NOT_SIGNED}),
    "dir-img-cosign-key-rekor-valid": (("b",), {"a": NOT_SIGNED}),
    "dir-img-cosign-modified-manifest": ((), {"a": Reason.DIGEST_MISMATCH, "b": NOT_SIGNED}),
    "dir-img-cosign-manifest-digest-error": ((), {"a": Reason.DIGEST_MISMATCH, "b": NOT_SIGNED}),
    "dir-img-cosign-no-manifest": ((), {"a": Reason.DIGEST_MISMATCH, "b": NOT_SIGNED}),
    "dir-img-cosign-other-attachment": ((), {"a": Reason.NO_SIGNATURE, "b": Reason.NO_SIGNATURE}),
    # Keyless (Fulcio) and private-PKI signatures: no configured key made them, and they are
    # named as a format Signet cannot judge yet; never a pass.
    "dir-img-cosign-fulcio-rekor-valid": (
        (),
        {"a": NOT_SIGNED, "b": NOT_SIGNED, None: Reason.UNSUPPORTED_FORMAT},
    ),
    "dir-img-cosign-pki-valid": (
        (),
        {"a": NOT_SIGNED, "b": NOT_SIGNED, None: Reason.UNSUPPORTED_FORMAT},
    ),
    "unknown-cosign-key.signature": ((), {"a": NOT_SIGNED, "b": NOT_SIGNED}),
}


def admitted_digest(name: str) -> str:
    """The sha256 of the vector's manifest.json; without one, a digest nothing signed."""
    manifest = VECTORS / name / "manifest.json"
    if manifest.is_file():
        return "sha256:" + hashlib.sha256(manifest.read_bytes()).hexdigest()
    if name.endswith(".signature"):  # a lone signature: admit the digest it names
        payload = json.loads(layers_of(name)[0].payload)
        digest: str = payload["critical"]["image"]["docker-manifest-digest"]
        return digest
    return OTHER_DIGEST


def evidence(found: list[Layer]) -> Evidence:
    raw = cosign.signature_manifest({}, [layer.descriptor() for layer in found])
    return Evidence(
        classic=ClassicEvidence(
            cosign.parse_signature_manifest(raw), {layer.digest: layer.payload for layer in found}
        )
    )


def judge(name: str, found: list[Layer] | None = None) -> Report:
    digest = admitted_digest(name)
    return judge_all(
        f"vectors/{name}@{digest}", digest, evidence(found or layers_of(name)), trust()
    )


def test_the_vectors_are_there_and_all_covered() -> None:
    # Fail, never skip: without the vectors these tests would prove nothing.
    assert VECTORS.is_dir(), f"the shared cosign vectors are missing at {VECTORS}"
    on_disk = {p.name for p in VECTORS.glob("dir-img-cosign-*")}
    on_disk |= {p.name for p in VECTORS.glob("*.signature")}
    assert on_disk == set(EXPECTED)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_vector(name: str) -> None:
    verified, failures = EXPECTED[name]
    report = judge(name)
    assert report.verified == verified
    assert {f.attestor: f.reason for f in report.failures} == failures
    assert len(report.failures) == len(failures)
    for signature in report.signatures:
        assert (signature.format, signature.scheme) == ("cosign-classic", "ecdsa-p256-sha256")
        assert signature.key == signature.attestor


def test_the_copied_signature_names_the_digest_it_was_made_for() -> None:
    report = judge("dir-img-cosign-modified-manifest")
    (mismatch,) = [f for f in report.failures if f.reason is Reason.DIGEST_MISMATCH]
    signed = json.loads(layers_of("dir-img-cosign-modified-manifest")[0].payload)
    assert signed["critical"]["image"]["docker-manifest-digest"] in mismatch.detail
    assert admitted_digest("dir-img-cosign-modified-manifest") in mismatch.detail


def test_the_valid_signature_admits_no_other_digest() -> None:
    found = layers_of("dir-img-cosign-valid")
    report = judge_all("vectors/x", OTHER_DIGEST, evidence(found), trust())
    assert report.verified == ()
    assert report.failures[0].reason is Reason.DIGEST_MISMATCH


def test_an_edited_real_payload_does_not_verify() -> None:
    (real,) = layers_of("dir-img-cosign-valid")
    edited = real.payload.replace(b"single-sample", b"single-sampLe")
    assert edited != real.payload
    report = judge("dir-img-cosign-valid", [Layer(real.media_type, edited, real.annotations)])
    assert report.verified == ()
    assert {f.attestor: f.reason for f in report.failures} == {"a": NOT_SIGNED, "b": NOT_SIGNED}


def test_a_signature_moved_onto_another_payload_does_not_verify() -> None:
    (valid,) = layers_of("dir-img-cosign-valid")
    (rekor,) = layers_of("dir-img-cosign-key-rekor-valid")
    swapped = Layer(valid.media_type, rekor.payload, valid.annotations)
    report = judge_all(
        "vectors/x", admitted_digest("dir-img-cosign-key-rekor-valid"), evidence([swapped]), trust()
    )
    assert report.verified == ()
