"""cosign's classic `.sig` format: the signature manifest, its layers, and the signed payload."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from signet.formats.cosign_classic import manifest as cosign
from signet.reasons import DeterministicFailure, Reason
from tests.support import vectors

VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "cosign-classic"
D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
PAYLOAD = cosign.make_payload("registry.example/team/app", D1)


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer(payload: bytes = PAYLOAD, signature: bytes = b"sig", **fields: Any) -> dict[str, Any]:
    """A signature layer descriptor; keyword arguments replace (or, given None, drop) fields."""
    descriptor = cosign.signature_layer_descriptor(digest_of(payload), len(payload), signature)
    for name, value in fields.items():
        if value is None:
            descriptor.pop(name, None)
        else:
            descriptor[name] = value
    return descriptor


def annotated(text: object) -> dict[str, Any]:
    return layer(annotations={cosign.SIGNATURE_ANNOTATION: text})


def manifest(layers: Any, **fields: Any) -> bytes:
    """A signature manifest; keyword arguments replace top-level fields."""
    document = {
        "schemaVersion": 2,
        "mediaType": cosign.OCI_MANIFEST,
        "config": {},
        "layers": layers,
    }
    document.update(fields)
    return json.dumps(document).encode()


def failure_of(raw: bytes) -> DeterministicFailure:
    with pytest.raises(DeterministicFailure) as caught:
        cosign.parse_signature_manifest(raw)
    return caught.value


def distinct_layers(count: int) -> list[dict[str, Any]]:
    return [layer(signature=i.to_bytes(2, "big")) for i in range(count)]


# -- the signature manifest -------------------------------------------------------------------


def test_a_signature_layer_is_read() -> None:
    parsed = cosign.parse_signature_manifest(manifest([layer(signature=b"\x01\x02")]))
    assert parsed.problems == ()
    (found,) = parsed.layers
    assert found == cosign.SignatureLayer(digest_of(PAYLOAD), len(PAYLOAD), b"\x01\x02")


def test_duplicate_layers_are_kept_once_in_order() -> None:
    a, b = layer(signature=b"a"), layer(signature=b"b")
    parsed = cosign.parse_signature_manifest(manifest([a, b, a, a, b]))
    assert [x.signature for x in parsed.layers] == [b"a", b"b"]
    # Same payload, different signatures (ECDSA is randomised): two signatures, not one.
    other = layer(payload=b"other payload", signature=b"a")
    assert len(cosign.parse_signature_manifest(manifest([a, other])).layers) == 2


def test_duplicates_do_not_count_towards_the_signature_limit() -> None:
    copies = [layer()] * (cosign.MAX_SIGNATURES + 1)
    assert len(cosign.parse_signature_manifest(manifest(copies)).layers) == 1


@pytest.mark.parametrize(
    "other",
    [
        {"mediaType": "application/octet-stream", "digest": D2, "size": 3},
        {
            "mediaType": "text/plain",
            "digest": D2,
            "size": 3,
            "annotations": {cosign.SIGNATURE_ANNOTATION: "c2ln"},
        },
        {"mediaType": "application/vnd.dsse.envelope.v1+json", "digest": D2, "size": 3},
        {"digest": D2, "size": 3},
        "a string",
        42,
        None,
        [],
    ],
)
def test_layers_of_other_media_types_are_ignored(other: Any) -> None:
    parsed = cosign.parse_signature_manifest(manifest([other, layer(), other]))
    assert len(parsed.layers) == 1
    assert parsed.problems == ()
    assert cosign.parse_signature_manifest(manifest([other])) == cosign.SignatureManifest((), ())


def test_the_layer_limit() -> None:
    ignored = {"mediaType": "application/octet-stream"}
    assert cosign.parse_signature_manifest(manifest([ignored] * cosign.MAX_LAYERS)).layers == ()
    failure = failure_of(manifest([ignored] * (cosign.MAX_LAYERS + 1)))
    assert failure.reason is Reason.LIMIT_EXCEEDED
    assert "1001 layers; the limit is 1000" in failure.message


def test_the_signature_limit() -> None:
    parsed = cosign.parse_signature_manifest(manifest(distinct_layers(cosign.MAX_SIGNATURES)))
    assert len(parsed.layers) == cosign.MAX_SIGNATURES
    failure = failure_of(manifest(distinct_layers(cosign.MAX_SIGNATURES + 1)))
    assert failure.reason is Reason.LIMIT_EXCEEDED
    assert "101 signatures; the limit is 100" in failure.message


def test_malformed_layers_count_towards_the_signature_limit() -> None:
    layers = [*distinct_layers(cosign.MAX_SIGNATURES), annotated("***")]
    assert failure_of(manifest(layers)).reason is Reason.LIMIT_EXCEEDED


@pytest.mark.parametrize(
    ("bad", "reason", "problem"),
    [
        (layer(digest=None), Reason.SIGNATURE_INVALID, "has no sha256 digest"),
        (layer(digest="sha512:" + "a" * 128), Reason.SIGNATURE_INVALID, "has no sha256 digest"),
        (layer(digest=D1.upper()), Reason.SIGNATURE_INVALID, "has no sha256 digest"),
        (layer(digest=D1 + "\n"), Reason.SIGNATURE_INVALID, "has no sha256 digest"),
        (layer(digest=7), Reason.SIGNATURE_INVALID, "has no sha256 digest"),
        (layer(size=None), Reason.SIGNATURE_INVALID, "has no valid size"),
        (layer(size=-1), Reason.SIGNATURE_INVALID, "has no valid size"),
        (layer(size=True), Reason.SIGNATURE_INVALID, "has no valid size"),
        (layer(size="12"), Reason.SIGNATURE_INVALID, "has no valid size"),
        (layer(size=12.0), Reason.SIGNATURE_INVALID, "has no valid size"),
        (layer(size=cosign.MAX_PAYLOAD_SIZE + 1), Reason.LIMIT_EXCEEDED, "the limit is 65536"),
        (layer(annotations=None), Reason.SIGNATURE_INVALID, "no usable"),
        (layer(annotations=["x"]), Reason.SIGNATURE_INVALID, "no usable"),
        (layer(annotations={"other": "c2ln"}), Reason.SIGNATURE_INVALID, "no usable"),
        (annotated(""), Reason.SIGNATURE_INVALID, "no usable"),
        (annotated(None), Reason.SIGNATURE_INVALID, "no usable"),
        (annotated(["c2ln"]), Reason.SIGNATURE_INVALID, "no usable"),
        (annotated("A" * 4100), Reason.SIGNATURE_INVALID, "no usable"),
        (annotated("***"), Reason.SIGNATURE_INVALID, "not valid base64"),
        (annotated("c2ln!"), Reason.SIGNATURE_INVALID, "not valid base64"),
        (annotated("c2l"), Reason.SIGNATURE_INVALID, "not valid base64"),
        (annotated("c2ln ZmFr"), Reason.SIGNATURE_INVALID, "not valid base64"),
    ],
)
def test_a_malformed_layer_is_a_problem_while_good_layers_survive(
    bad: dict[str, Any], reason: Reason, problem: str
) -> None:
    good = layer(payload=b"good", signature=b"good signature")
    parsed = cosign.parse_signature_manifest(manifest([good, bad, good]))
    assert [x.signature for x in parsed.layers] == [b"good signature"]
    (found,) = parsed.problems
    assert found.reason is reason
    assert "signature layer 1" in found.message
    assert problem in found.message


@pytest.mark.parametrize("separator", ["\n", "\r\n"])
def test_base64_with_line_breaks_is_accepted(separator: str) -> None:
    signature = bytes(range(256))
    text = base64.b64encode(signature).decode()
    wrapped = separator.join(text[i : i + 64] for i in range(0, len(text), 64)) + separator
    (found,) = cosign.parse_signature_manifest(manifest([annotated(wrapped)])).layers
    assert found.signature == signature


def test_keyless_annotations_are_read() -> None:
    keyless = layer(annotations=_keyless_annotations(1))
    (found,) = cosign.parse_signature_manifest(manifest([keyless])).layers
    assert found.keyless is not None
    assert found.keyless.certificate.startswith(b"\x30\x82")
    assert len(found.keyless.chain) == 2
    assert found.keyless.log_entry is not None
    assert found.keyless.timestamp is None


@pytest.mark.parametrize(
    "broken",
    [
        {"dev.sigstore.cosign/certificate": "-----BEGIN CERTIFICATE-----..."},
        {"dev.sigstore.cosign/chain": "not pem"},
        {"dev.sigstore.cosign/bundle": "{"},
        {"dev.sigstore.cosign/rfc3161timestamp": '{"SignedRFC3161Timestamp": "!"}'},
        {"dev.sigstore.cosign/certificate": "c" * (65 * 1024)},
    ],
    ids=["certificate", "chain", "bundle", "timestamp", "huge"],
)
def test_unusable_keyless_annotations_are_a_layer_problem(broken: dict[str, str]) -> None:
    keyless = layer(annotations={**_keyless_annotations(1), **broken})
    parsed = cosign.parse_signature_manifest(manifest([keyless]))
    assert parsed.layers == ()
    ((problem),) = parsed.problems
    assert problem.reason is Reason.SIGNATURE_INVALID


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"\xff\xfe\x00",
        b"[" * 10_000,
        b'{"a":' * 10_000,
        b"[]",
        b'"a string"',
        b"null",
        b"1" * 5000,
    ],
    ids=[
        "empty",
        "text",
        "not-utf8",
        "deep-array",
        "deep-object",
        "array",
        "string",
        "null",
        "huge-int",
    ],
)
def test_a_manifest_that_is_not_a_json_object_is_a_deterministic_failure(raw: bytes) -> None:
    failure = failure_of(raw)
    assert failure.reason is Reason.UNSUPPORTED_FORMAT
    assert "signature manifest is not" in failure.message


@pytest.mark.parametrize(
    "raw",
    [
        b"{" + b" " * cosign.MAX_MANIFEST_SIZE + b"}",
        b'{"layers":[' + b",".join([b"{}"] * 20_000) + b"]}",
        b"[" * 100_000,
        b'{"a":[' + b",".join([b"0"] * 50_000) + b"]}",
    ],
    ids=["over-the-size-cap", "padded-with-objects", "deep-array", "padded-with-numbers"],
)
def test_a_manifest_too_costly_to_parse_is_refused_before_parsing(raw: bytes) -> None:
    """A registry allows 4 MiB manifests; padded with `{}` that is ~100 MiB and most of a second
    to parse. The size cap and the count of JSON values refuse it without parsing."""
    failure = failure_of(raw)
    assert failure.reason is Reason.LIMIT_EXCEEDED


def _keyless_annotations(index: int) -> dict[str, str]:
    """What cosign puts on a keyless signature layer: certificate, chain and Rekor bundle (a
    real one, from the vectors)."""
    (real,) = vectors.layers("dir-img-cosign-fulcio-rekor-valid")
    return {
        **real.annotations,
        cosign.SIGNATURE_ANNOTATION: base64.b64encode(index.to_bytes(2, "big") * 36).decode(),
    }


def _plain_annotations(index: int) -> dict[str, str]:
    return {cosign.SIGNATURE_ANNOTATION: base64.b64encode(index.to_bytes(2, "big") * 36).decode()}


@pytest.mark.parametrize(
    ("count", "annotations"),
    [(cosign.MAX_LAYERS, _plain_annotations), (cosign.MAX_SIGNATURES, _keyless_annotations)],
    ids=["1000-plain-layers", "100-keyless-signatures"],
)
def test_a_manifest_at_the_layer_and_signature_limits_fits_the_caps(
    count: int, annotations: Any
) -> None:
    """The size cap and the count of JSON values refuse nothing cosign could write."""
    signatures = min(count, cosign.MAX_SIGNATURES)
    layers = [layer(annotations=annotations(i)) for i in range(signatures)]
    layers += [
        layer(annotations=annotations(i), mediaType="application/vnd.other")
        for i in range(count - signatures)
    ]
    raw = manifest(layers)
    assert len(raw) <= cosign.MAX_MANIFEST_SIZE
    parsed = cosign.parse_signature_manifest(raw)
    assert (len(parsed.layers), parsed.problems) == (signatures, ())


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"schemaVersion": 1}, "schemaVersion 1"),
        ({"schemaVersion": "2"}, "schemaVersion '2'"),
        ({"schemaVersion": None}, "schemaVersion None"),
        ({"mediaType": "application/vnd.oci.image.index.v1+json"}, "image.index"),
        (
            {"mediaType": "application/vnd.docker.distribution.manifest.list.v2+json"},
            "manifest.list",
        ),
        (
            {"mediaType": "application/vnd.docker.distribution.manifest.v1+prettyjws"},
            "v1+prettyjws",
        ),
    ],
)
def test_not_an_image_manifest(fields: dict[str, Any], problem: str) -> None:
    failure = failure_of(manifest([layer()], **fields))
    assert failure.reason is Reason.UNSUPPORTED_FORMAT
    assert problem in failure.message


@pytest.mark.parametrize("layers", [None, {"0": {}}, "layers", 1])
def test_a_manifest_without_a_layers_list(layers: Any) -> None:
    failure = failure_of(manifest(layers))
    assert failure.reason is Reason.UNSUPPORTED_FORMAT
    assert "no layers list" in failure.message


@pytest.mark.parametrize("media_type", [cosign.OCI_MANIFEST, cosign.DOCKER_MANIFEST])
def test_oci_and_docker_manifests_are_read(media_type: str) -> None:
    assert (
        len(cosign.parse_signature_manifest(manifest([layer()], mediaType=media_type)).layers) == 1
    )
    no_media_type = json.loads(manifest([layer()]))
    del no_media_type["mediaType"]  # optional in OCI; cosign omits nothing, others may
    assert len(cosign.parse_signature_manifest(json.dumps(no_media_type).encode()).layers) == 1


def test_what_signet_writes_it_reads_back() -> None:
    descriptors = [cosign.signature_layer_descriptor(digest_of(PAYLOAD), len(PAYLOAD), b"s1")]
    config = cosign.signature_config([digest_of(PAYLOAD)])
    raw = cosign.signature_manifest(
        {"mediaType": cosign.OCI_CONFIG, "digest": digest_of(config), "size": len(config)},
        descriptors,
    )
    (found,) = cosign.parse_signature_manifest(raw).layers
    assert (found.digest, found.signature) == (digest_of(PAYLOAD), b"s1")
    assert cosign.existing_layers(raw) == descriptors


# -- the payload ------------------------------------------------------------------------------


def payload_with(critical: Any = None, **top: Any) -> bytes:
    document: dict[str, Any] = {
        "critical": {
            "identity": {"docker-reference": "registry.example/team/app"},
            "image": {"docker-manifest-digest": D1},
            "type": cosign.SIGNATURE_TYPE,
        },
        "optional": None,
    }
    if critical is not None:
        document["critical"] = critical
    document.update(top)
    return json.dumps(document).encode()


def test_a_payload_is_read() -> None:
    parsed = cosign.parse_payload(PAYLOAD)
    assert parsed == cosign.Payload("registry.example/team/app", D1, None)


@pytest.mark.parametrize(
    ("optional", "expected"),
    [
        (None, None),
        (
            {"creator": "containers/image", "timestamp": 1657296609},
            {"creator": "containers/image", "timestamp": 1657296609},
        ),
        ([1, 2], None),
        ("text", None),
        (7, None),
    ],
)
def test_optional_is_read_leniently(optional: Any, expected: dict[str, Any] | None) -> None:
    assert cosign.parse_payload(payload_with(optional=optional)).optional == expected
    without = json.loads(payload_with())
    del without["optional"]
    assert cosign.parse_payload(json.dumps(without).encode()).optional is None


def test_a_missing_identity_is_an_empty_reference() -> None:
    critical = {"image": {"docker-manifest-digest": D1}, "type": cosign.SIGNATURE_TYPE}
    assert cosign.parse_payload(payload_with(critical)).docker_reference == ""
    critical["identity"] = {"docker-reference": 5}
    assert cosign.parse_payload(payload_with(critical)).docker_reference == ""


def critical_with(**changes: Any) -> dict[str, Any]:
    critical: dict[str, Any] = json.loads(payload_with())["critical"]
    for name, value in changes.items():
        if value is None:
            critical.pop(name)
        else:
            critical[name] = value
    return critical


@pytest.mark.parametrize(
    ("raw", "reason", "problem"),
    [
        # The type must be the cosign signature type, exactly.
        (
            payload_with(critical_with(type="something else")),
            Reason.UNSUPPORTED_FORMAT,
            "'something else'",
        ),
        (
            payload_with(critical_with(type="Cosign container image signature")),
            Reason.UNSUPPORTED_FORMAT,
            "payload type",
        ),
        (payload_with(critical_with(type=None)), Reason.UNSUPPORTED_FORMAT, "payload type is None"),
        (
            payload_with(critical_with(type=["cosign container image signature"])),
            Reason.UNSUPPORTED_FORMAT,
            "payload type",
        ),
        # Strict about `critical`: it must be an object, with an image naming a sha256 digest.
        (payload_with(critical=[]), Reason.SIGNATURE_INVALID, "no 'critical' object"),
        (payload_with(critical="x"), Reason.SIGNATURE_INVALID, "no 'critical' object"),
        (json.dumps({"optional": None}).encode(), Reason.SIGNATURE_INVALID, "no 'critical' object"),
        (
            payload_with(critical_with(image=None)),
            Reason.SIGNATURE_INVALID,
            "docker-manifest-digest",
        ),
        (payload_with(critical_with(image=D1)), Reason.SIGNATURE_INVALID, "docker-manifest-digest"),
        (payload_with(critical_with(image={})), Reason.SIGNATURE_INVALID, "docker-manifest-digest"),
        (
            payload_with(critical_with(image={"docker-manifest-digest": None})),
            Reason.SIGNATURE_INVALID,
            "docker-manifest-digest",
        ),
        (
            payload_with(critical_with(image={"docker-manifest-digest": 1})),
            Reason.SIGNATURE_INVALID,
            "docker-manifest-digest",
        ),
        (
            payload_with(critical_with(image={"docker-manifest-digest": D1.upper()})),
            Reason.SIGNATURE_INVALID,
            "docker-manifest-digest",
        ),
        (
            payload_with(critical_with(image={"docker-manifest-digest": D1[:-1]})),
            Reason.SIGNATURE_INVALID,
            "docker-manifest-digest",
        ),
        (
            payload_with(critical_with(image={"docker-manifest-digest": D1 + "\n"})),
            Reason.SIGNATURE_INVALID,
            "docker-manifest-digest",
        ),
        (
            payload_with(critical_with(image={"docker-manifest-digest": "sha512:" + "1" * 128})),
            Reason.SIGNATURE_INVALID,
            "docker-manifest-digest",
        ),
        (
            payload_with(critical_with(image={"Docker-Manifest-Digest": D1})),
            Reason.SIGNATURE_INVALID,
            "docker-manifest-digest",
        ),
        # Not a JSON object at all.
        (b"", Reason.SIGNATURE_INVALID, "payload is not JSON"),
        (b"not json", Reason.SIGNATURE_INVALID, "payload is not JSON"),
        (b"[" * 100_000, Reason.SIGNATURE_INVALID, "payload is not JSON"),
        (b"[]", Reason.SIGNATURE_INVALID, "not a JSON object"),
        (b"null", Reason.SIGNATURE_INVALID, "not a JSON object"),
    ],
)
def test_unusable_payloads(raw: bytes, reason: Reason, problem: str) -> None:
    with pytest.raises(DeterministicFailure) as caught:
        cosign.parse_payload(raw)
    assert caught.value.reason is reason
    assert problem in caught.value.message


# -- make_payload and signature_tag -----------------------------------------------------------


def vector_payload(name: str) -> bytes:
    """The payload of `name`/signature-1: `\\x00sigstore-json\\n` + JSON with a base64 payload."""
    prefix = b"\x00sigstore-json\n"
    raw = (VECTORS / name / "signature-1").read_bytes()
    assert raw.startswith(prefix), f"{name}/signature-1 is not in the documented format"
    return base64.b64decode(json.loads(raw[len(prefix) :])["payload"])


@pytest.mark.parametrize(
    "name",
    ["dir-img-cosign-valid", "dir-img-cosign-key-rekor-valid", "dir-img-cosign-fulcio-rekor-valid"],
)
def test_make_payload_is_byte_for_byte_what_cosign_signs(name: str) -> None:
    assert VECTORS.is_dir(), f"the shared vectors are missing at {VECTORS}"
    real = vector_payload(name)
    claimed = json.loads(real)["critical"]
    ours = cosign.make_payload(
        claimed["identity"]["docker-reference"], claimed["image"]["docker-manifest-digest"]
    )
    assert ours == real


def test_make_payload_is_what_cosign_signs_for_the_valid_vector() -> None:
    expected = (
        b'{"critical":{"identity":{"docker-reference":"192.168.64.2:5000/cosign-signed-single-sample"},'
        b'"image":{"docker-manifest-digest":"sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00"},'
        b'"type":"cosign container image signature"},"optional":null}'
    )
    assert vector_payload("dir-img-cosign-valid") == expected
    assert (
        cosign.make_payload(
            "192.168.64.2:5000/cosign-signed-single-sample",
            "sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00",
        )
        == expected
    )


@pytest.mark.parametrize("digest", ["sha256:abc", D1.upper(), D1 + "\n", "sha512:" + "1" * 128])
def test_make_payload_and_signature_tag_refuse_a_bad_digest(digest: str) -> None:
    with pytest.raises(ValueError, match="not a sha256 digest"):
        cosign.make_payload("registry.example/app", digest)
    with pytest.raises(ValueError, match="not a sha256 digest"):
        cosign.signature_tag(digest)


def test_signature_tag() -> None:
    assert cosign.signature_tag(D1) == "sha256-" + "1" * 64 + ".sig"
    hex_digest = "634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00"
    assert cosign.signature_tag(f"sha256:{hex_digest}") == f"sha256-{hex_digest}.sig"
