"""The verification algorithm and the cosign classic format, on material built in the test, and
on the real-cosign vectors in shared/vectors."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from signet import cosign
from signet.keyfile import PrivateKey, generate
from signet.reasons import DeterministicFailure, Reason
from signet.report import Failure, Report
from signet.trust import Attestor, TrustConfig, TrustedKey
from signet.verify import ClassicEvidence, verify
from tests.support import vectors

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
IMAGE = "registry.example/team/app:1.0"


def layer(payload: bytes, signature: bytes) -> dict[str, object]:
    return cosign.signature_layer_descriptor(
        "sha256:" + hashlib.sha256(payload).hexdigest(), len(payload), signature
    )


def evidence(
    *layers: tuple[bytes, bytes], extra: list[dict[str, object]] | None = None
) -> ClassicEvidence:
    descriptors = [layer(p, s) for p, s in layers] + (extra or [])
    raw = cosign.signature_manifest({}, descriptors)
    payloads = {str(d["digest"]): p for d, (p, _) in zip(descriptors, layers, strict=False)}
    return ClassicEvidence(cosign.parse_signature_manifest(raw), payloads)


def signed(key: PrivateKey, digest: str) -> tuple[bytes, bytes]:
    payload = cosign.make_payload("registry.example/team/app", digest)
    return payload, key.sign(payload)[0]


def trust(**keys: PrivateKey) -> TrustConfig:
    return TrustConfig(tuple(Attestor(n, (TrustedKey(n, k.public),)) for n, k in keys.items()))


DEV, SEC = generate("p256"), generate("ed25519")


def test_signed_by_one_of_two_attestors() -> None:
    report = verify(IMAGE, D1, evidence(signed(DEV, D1)), trust(dev=DEV, sec=SEC))
    assert report.verified == ("dev",)
    assert report.signatures[0].scheme == "ecdsa-p256-sha256"
    (failure,) = report.failures
    assert (failure.attestor, failure.reason) == ("sec", Reason.NOT_SIGNED_BY_ATTESTOR)
    assert failure.remediation == f"sign registry.example/team/app@{D1} with a sec key"


def test_no_signature_manifest() -> None:
    report = verify(IMAGE, D1, None, trust(dev=DEV))
    assert report.verified == ()
    assert report.reasons == (Reason.NO_SIGNATURE,)


def test_a_signature_over_another_digest_is_a_mismatch() -> None:
    report = verify(IMAGE, D1, evidence(signed(DEV, D2)), trust(dev=DEV))
    assert report.verified == ()
    assert report.failures[0].reason is Reason.DIGEST_MISMATCH
    assert D2 in report.failures[0].detail


def test_a_tampered_payload_does_not_verify() -> None:
    payload, signature = signed(DEV, D1)
    tampered = payload.replace(b'"optional":null', b'"optional":{"ok":1}')
    report = verify(IMAGE, D1, evidence((tampered, signature)), trust(dev=DEV))
    assert report.verified == ()
    assert report.reasons == (Reason.NOT_SIGNED_BY_ATTESTOR,)


def test_duplicates_count_once_and_other_layers_are_ignored() -> None:
    one = signed(DEV, D1)
    junk = {"mediaType": "application/octet-stream", "digest": D2, "size": 3}
    report = verify(IMAGE, D1, evidence(one, one, one, extra=[junk]), trust(dev=DEV))
    assert report.verified == ("dev",)
    assert len(report.signatures) == 1


def test_a_trusted_signature_over_a_malformed_payload() -> None:
    payload = b'{"critical":{"type":"cosign container image signature"}}'
    report = verify(IMAGE, D1, evidence((payload, DEV.sign(payload)[0])), trust(dev=DEV))
    assert report.failures[0].reason is Reason.SIGNATURE_INVALID


def test_a_payload_that_could_not_be_fetched() -> None:
    good = signed(DEV, D1)
    found = evidence(good)
    broken = ClassicEvidence(
        found.manifest,
        {d: DeterministicFailure(Reason.SIGNATURE_INVALID, "blob missing") for d in found.payloads},
    )
    report = verify(IMAGE, D1, broken, trust(dev=DEV))
    assert report.verified == ()
    assert (None, Reason.SIGNATURE_INVALID) in [(f.attestor, f.reason) for f in report.failures]


def test_report_v1_shape() -> None:
    document = verify(IMAGE, D1, evidence(signed(DEV, D1)), trust(dev=DEV, sec=SEC)).to_json()
    assert set(document) == {"version", "image", "digest", "verified", "signatures", "failures"}
    assert document["version"] == 1
    assert set(document["signatures"][0]) == {"attestor", "key", "format", "scheme"}
    assert document["signatures"][0]["format"] == "cosign-classic"
    assert {"attestor", "reason", "remediation"} <= set(document["failures"][0])


def test_a_report_cannot_hold_a_transient_reason() -> None:
    with pytest.raises(ValueError, match="transient"):
        Failure(None, Reason.REGISTRY_TIMEOUT, "retry")
    with pytest.raises(ValueError):
        Report(IMAGE, D1, verified=("dev",))


# -- the classic format ---------------------------------------------------------------------


def manifest(layers: list[dict[str, object]], **fields: object) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": cosign.OCI_MANIFEST,
            "config": {},
            "layers": layers,
            **fields,
        }
    ).encode()


def test_caps() -> None:
    many = [layer(b"p", bytes([i % 256, i // 256])) for i in range(cosign.MAX_SIGNATURES + 1)]
    with pytest.raises(DeterministicFailure) as caught:
        cosign.parse_signature_manifest(manifest(many))
    assert caught.value.reason is Reason.LIMIT_EXCEEDED
    layers: list[dict[str, object]] = [{"mediaType": "x"}] * (cosign.MAX_LAYERS + 1)
    with pytest.raises(DeterministicFailure, match="1001 layers"):
        cosign.parse_signature_manifest(manifest(layers))
    big = {**layer(b"p", b"s"), "size": cosign.MAX_PAYLOAD_SIZE + 1}
    parsed = cosign.parse_signature_manifest(manifest([big]))
    assert parsed.problems[0].reason is Reason.LIMIT_EXCEEDED


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", Reason.UNSUPPORTED_FORMAT),
        (b"[" * 100_000, Reason.UNSUPPORTED_FORMAT),
        (json.dumps({"schemaVersion": 1, "layers": []}).encode(), Reason.UNSUPPORTED_FORMAT),
        (
            json.dumps({"schemaVersion": 2, "mediaType": cosign.OCI_MANIFEST}).encode(),
            Reason.UNSUPPORTED_FORMAT,
        ),
    ],
)
def test_unusable_manifests(raw: bytes, reason: Reason) -> None:
    with pytest.raises(DeterministicFailure) as caught:
        cosign.parse_signature_manifest(raw)
    assert caught.value.reason is reason


def test_a_bad_layer_is_a_problem_while_good_layers_survive() -> None:
    good = layer(b"p", b"sig")
    bad = {**layer(b"q", b"sig"), "annotations": {cosign.SIGNATURE_ANNOTATION: "***"}}
    parsed = cosign.parse_signature_manifest(manifest([bad, good]))
    assert [x.signature for x in parsed.layers] == [b"sig"]
    assert "base64" in parsed.problems[0].message


def test_wrapped_base64_is_accepted() -> None:
    wrapped = {**layer(b"p", b"s" * 80)}
    text = base64.b64encode(b"s" * 80).decode()
    wrapped["annotations"] = {cosign.SIGNATURE_ANNOTATION: text[:60] + "\n" + text[60:]}
    assert cosign.parse_signature_manifest(manifest([wrapped])).layers[0].signature == b"s" * 80


def test_payload_parsing() -> None:
    parsed = cosign.parse_payload(cosign.make_payload("r/a", D1))
    assert (parsed.docker_reference, parsed.digest, parsed.optional) == ("r/a", D1, None)
    other = b'{"critical":{"type":"something else","image":{"docker-manifest-digest":"%s"}}}'
    with pytest.raises(DeterministicFailure) as caught:
        cosign.parse_payload(other % D1.encode())
    assert caught.value.reason is Reason.UNSUPPORTED_FORMAT


def test_make_payload_is_byte_for_byte_what_cosign_signs() -> None:
    real = vectors.layers("dir-img-cosign-valid")[0].payload
    claimed = json.loads(real)["critical"]
    ours = cosign.make_payload(
        claimed["identity"]["docker-reference"], claimed["image"]["docker-manifest-digest"]
    )
    assert ours == real


def test_signature_tag() -> None:
    assert cosign.signature_tag(D1) == "sha256-" + "1" * 64 + ".sig"


# -- the real-cosign vectors ------------------------------------------------------------------


@pytest.mark.parametrize("name", list(vectors.EXPECTED))
def test_vectors(name: str) -> None:
    verified, reason = vectors.EXPECTED[name]
    found = vectors.layers(name)
    parsed = cosign.parse_signature_manifest(manifest([layer.descriptor() for layer in found]))
    evidence = ClassicEvidence(parsed, {layer.digest: layer.payload for layer in found})
    digest = vectors.signed_digest(name)

    report = verify(f"vectors/{name}@{digest}", digest, evidence, vectors.trust())

    assert report.verified == verified
    if reason is not None:
        assert report.failures[0].reason is reason
    if "fulcio" in name or "pki" in name:  # keyless / certificate signatures: never a pass yet
        assert (None, Reason.UNSUPPORTED_FORMAT) in [
            (f.attestor, f.reason) for f in report.failures
        ]
