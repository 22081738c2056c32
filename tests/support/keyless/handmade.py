"""Classic keyless `.sig` signatures built by hand, for evidence cosign cannot be made to write.

cosign always gets its Fulcio certificate first and the RFC 3161 timestamp after signing, so its
timestamps never predate its certificates. Here every step is a plain request, in either order:
an ECDSA P-256 key signs cosign's simple-signing payload; the timestamp authority stamps the
signature (a DER TimeStampReq over its SHA-256); Fulcio certifies the key (its v2 REST API, the
proof of possession a signature over the token's email); and the layer, config and manifest are
pushed under the `.sig` tag exactly as cosign v3.1.3 writes them (`check_like_cosign` rebuilds a
real cosign `.sig` manifest with the same code and compares the bytes).

Fulcio v1.8.8 sets notBefore to `time.Now()` when it issues, and the timestamp authority v2.1.3
its genTime to `time.Now()`; both are encoded to the second (truncated). A timestamp taken more
than a second before the certificate therefore has genTime < notBefore.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import time
from dataclasses import dataclass

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.images import (
    OCI_CONFIG,
    OCI_MANIFEST,
    digest_of,
    get_manifest,
    put_blob,
    put_manifest,
)

from .inspect import (
    CERTIFICATE_ANNOTATION,
    CHAIN_ANNOTATION,
    SIGNATURE_ANNOTATION,
    TIMESTAMP_ANNOTATION,
    blob,
    tag_for,
)

SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
_SHA256 = bytes.fromhex("0609608648016503040201")  # OBJECT IDENTIFIER 2.16.840.1.101.3.4.2.1
_TIMEOUT = 30


def payload(docker_reference: str, digest: str) -> bytes:
    """cosign's simple-signing payload: Go's json.Marshal of it (this key order, compact)."""
    document = {
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature",
        },
        "optional": None,
    }
    return json.dumps(document, separators=(",", ":")).encode()


def _der(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def _children(data: bytes) -> list[tuple[int, bytes]]:
    """The (tag, content) of each DER element in `data` (single-byte tags, definite lengths)."""
    found = []
    offset = 0
    while offset < len(data):
        tag, size = data[offset], data[offset + 1]
        offset += 2
        if size & 0x80:
            count = size & 0x7F
            size = int.from_bytes(data[offset : offset + count], "big")
            offset += count
        found.append((tag, data[offset : offset + size]))
        offset += size
    return found


def timestamp_request(signature: bytes) -> bytes:
    """TimeStampReq: version 1, messageImprint SHA-256 of `signature`, certReq true."""
    algorithm = _der(0x30, _SHA256 + b"\x05\x00")
    imprint = _der(0x30, algorithm + _der(0x04, hashlib.sha256(signature).digest()))
    return _der(0x30, _der(0x02, b"\x01") + imprint + _der(0x01, b"\xff"))


def gen_time(response: bytes) -> datetime.datetime:
    """The genTime of a DER TimeStampResp (its status must be granted)."""
    ((_, resp),) = _children(response)
    (_, status), (_, token) = _children(resp)[:2]
    if _children(status)[0] != (0x02, b"\x00"):
        raise RuntimeError(f"the timestamp authority refused: {status.hex()}")
    (_, signed_data) = _children(token)[1]  # ContentInfo: contentType, [0] SignedData
    (_, signed_data) = _children(signed_data)[0]
    (_, encapsulated) = _children(signed_data)[2]  # version, digestAlgorithms, encapContentInfo
    (_, content) = _children(encapsulated)[1]
    ((_, tst_info),) = _children(_children(content)[0][1])
    tag, value = _children(tst_info)[4]  # version, policy, messageImprint, serialNumber, genTime
    if tag != 0x18:
        raise RuntimeError(f"not a GeneralizedTime genTime: tag {tag:#x}")
    text = value.decode()
    stamp = datetime.datetime.strptime(text[:14], "%Y%m%d%H%M%S").replace(tzinfo=datetime.UTC)
    if "." in text:
        stamp += datetime.timedelta(seconds=float("0" + text[14:].rstrip("Z")))
    return stamp


def request_timestamp(tsa_url: str, signature: bytes) -> bytes:
    """An RFC 3161 TimeStampResp (DER) over `signature`, from the TSA at `tsa_url`."""
    response = httpx.post(
        tsa_url,
        content=timestamp_request(signature),
        headers={"Content-Type": "application/timestamp-query"},
        timeout=_TIMEOUT,
    )
    response.raise_for_status()
    gen_time(response.content)  # granted, and readable
    return response.content


def request_certificate(
    fulcio_url: str, token: str, email: str, key: ec.EllipticCurvePrivateKey
) -> list[x509.Certificate]:
    """Fulcio's certificate for `key` and the token's identity, and its chain (leaf first)."""
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    proof = key.sign(email.encode(), ec.ECDSA(hashes.SHA256()))
    request = {
        "credentials": {"oidcIdentityToken": token},
        "publicKeyRequest": {
            "publicKey": {"algorithm": "ECDSA", "content": public.decode()},
            "proofOfPossession": base64.b64encode(proof).decode(),
        },
    }
    response = httpx.post(f"{fulcio_url}/api/v2/signingCert", json=request, timeout=_TIMEOUT)
    if response.status_code != 200:
        raise RuntimeError(f"Fulcio refused: {response.status_code} {response.text}")
    answer = response.json()
    issued = answer.get("signedCertificateDetachedSct") or answer["signedCertificateEmbeddedSct"]
    pem = "".join(issued["chain"]["certificates"]).encode()
    return x509.load_pem_x509_certificates(pem)


def _signature_manifest(
    payload_digest: str, size: int, annotations: dict[str, str]
) -> tuple[bytes, bytes]:
    """The `.sig` manifest of one layer as cosign writes it, and its config blob."""
    config = {
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": [payload_digest]},
        "config": {},
    }
    config_raw = json.dumps(config, separators=(",", ":")).encode()
    layer = {"mediaType": SIMPLESIGNING, "size": size, "digest": payload_digest}
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": OCI_CONFIG,
            "size": len(config_raw),
            "digest": digest_of(config_raw),
        },
        "layers": [{**layer, "annotations": dict(sorted(annotations.items()))}],
    }
    return json.dumps(manifest, separators=(",", ":")).encode(), config_raw


def _annotations(signature: bytes, leaf_pem: str, timestamp: bytes) -> dict[str, str]:
    stamp = {"SignedRFC3161Timestamp": base64.b64encode(timestamp).decode()}
    return {
        SIGNATURE_ANNOTATION: base64.b64encode(signature).decode(),
        CERTIFICATE_ANNOTATION: leaf_pem,
        CHAIN_ANNOTATION: "",  # what cosign v3.1.3 writes with a trusted root's CA
        TIMESTAMP_ANNOTATION: json.dumps(stamp, separators=(",", ":")),
    }


def push_signature(
    url: str,
    repository: str,
    digest: str,
    signed: bytes,
    signature: bytes,
    leaf: x509.Certificate,
    timestamp: bytes,
) -> str:
    """Push payload, config and `.sig` manifest for `repository@digest`; return the tag."""
    leaf_pem = leaf.public_bytes(serialization.Encoding.PEM).decode()
    payload_digest = put_blob(url, repository, signed)
    raw, config = _signature_manifest(
        payload_digest, len(signed), _annotations(signature, leaf_pem, timestamp)
    )
    put_blob(url, repository, config)
    tag = tag_for(digest, ".sig")
    put_manifest(url, repository, tag, raw, OCI_MANIFEST)
    return tag


def check_like_cosign(url: str, registry: str, repository: str, digest: str) -> None:
    """Rebuild the `.sig` manifest and payload cosign pushed for `repository@digest` from their
    parts with this module's code; raise unless the bytes are cosign's."""
    raw, _ = get_manifest(url, repository, tag_for(digest, ".sig"))
    (layer,) = json.loads(raw)["layers"]
    annotations: dict[str, str] = layer["annotations"]
    stamp = json.loads(annotations[TIMESTAMP_ANNOTATION])["SignedRFC3161Timestamp"]
    rebuilt, config = _signature_manifest(
        layer["digest"],
        layer["size"],
        _annotations(
            base64.b64decode(annotations[SIGNATURE_ANNOTATION]),
            annotations[CERTIFICATE_ANNOTATION],
            base64.b64decode(stamp),
        ),
    )
    signed = blob(url, repository, layer["digest"])
    if signed != payload(f"{registry}/{repository}", digest):
        raise RuntimeError(f"cosign's payload for {repository} is not ours: {signed!r}")
    if rebuilt != raw or digest_of(config) != json.loads(raw)["config"]["digest"]:
        raise RuntimeError(f"cosign's .sig manifest for {repository} is not ours:\n{raw!r}")


@dataclass
class Handmade:
    """One hand-made signature under way: the key, what it signed, and what was asked so far."""

    name: str
    digest: str
    key: ec.EllipticCurvePrivateKey
    signed: bytes
    signature: bytes
    timestamp: bytes | None = None
    stamped_at: float = 0.0  # time.monotonic() of the timestamp request
    chain: tuple[x509.Certificate, ...] = ()

    @classmethod
    def start(cls, name: str, registry: str, digest: str) -> Handmade:
        key = ec.generate_private_key(ec.SECP256R1())
        signed = payload(f"{registry}/{name}", digest)
        signature = key.sign(signed, ec.ECDSA(hashes.SHA256()))  # DER, as cosign's
        return cls(name, digest, key, signed, signature)

    def stamp(self, tsa_url: str) -> None:
        self.timestamp = request_timestamp(tsa_url, self.signature)
        self.stamped_at = time.monotonic()

    def certify(self, fulcio_url: str, token: str, email: str) -> None:
        self.chain = tuple(request_certificate(fulcio_url, token, email, self.key))

    def push(self, url: str) -> str:
        if self.timestamp is None or not self.chain:
            raise RuntimeError(f"{self.name}: not timestamped and certified yet")
        return push_signature(
            url, self.name, self.digest, self.signed, self.signature, self.chain[0], self.timestamp
        )

    @property
    def backdated(self) -> bool:
        """Whether the timestamp's genTime is before the certificate's notBefore."""
        if self.timestamp is None or not self.chain:
            raise RuntimeError(f"{self.name}: not timestamped and certified yet")
        return gen_time(self.timestamp) < self.chain[0].not_valid_before_utc

    def facts(self) -> dict[str, str]:
        """What stack.json records of it: the times the scenario is about."""
        if self.timestamp is None or not self.chain:
            raise RuntimeError(f"{self.name}: not timestamped and certified yet")
        leaf = self.chain[0]
        return {
            "genTime": _rfc3339(gen_time(self.timestamp)),
            "notBefore": _rfc3339(leaf.not_valid_before_utc),
            "notAfter": _rfc3339(leaf.not_valid_after_utc),
        }


def _rfc3339(moment: datetime.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
