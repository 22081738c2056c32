"""The real-cosign test vectors in shared/vectors/cosign-classic (see shared/vectors/README.md)."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from signet.crypto.keys import load_public_key_pem
from signet.reasons import Reason
from signet.trust.model import Attestor, TrustConfig, TrustedKey

VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "cosign-classic"
_PREFIX = b"\x00sigstore-json\n"
UNKNOWN_DIGEST = "sha256:" + "0" * 64

# name -> (attestors that verify, the first failure's reason); attestor "a" holds cosign.pub,
# "b" holds cosign2.pub. Keyless and private-PKI signatures must never count as verified.
EXPECTED: dict[str, tuple[tuple[str, ...], Reason | None]] = {
    "dir-img-cosign-valid": (("a",), None),
    "dir-img-cosign-valid-2": (("a",), None),
    "dir-img-cosign-valid-with-tag": (("a",), None),
    "dir-img-cosign-mixed": (("a",), None),
    "dir-img-cosign-key-rekor-valid": (("b",), None),
    "dir-img-cosign-modified-manifest": ((), Reason.DIGEST_MISMATCH),
    "dir-img-cosign-manifest-digest-error": ((), Reason.DIGEST_MISMATCH),
    "dir-img-cosign-no-manifest": ((), Reason.DIGEST_MISMATCH),
    "dir-img-cosign-other-attachment": ((), Reason.NO_SIGNATURE),
    "dir-img-cosign-fulcio-rekor-valid": ((), Reason.NOT_SIGNED_BY_ATTESTOR),
    "dir-img-cosign-pki-valid": ((), Reason.NOT_SIGNED_BY_ATTESTOR),
    "unknown-cosign-key.signature": ((), Reason.NOT_SIGNED_BY_ATTESTOR),
}


@dataclass(frozen=True)
class Layer:
    media_type: str
    payload: bytes
    annotations: dict[str, str]

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.payload).hexdigest()

    def descriptor(self, digest: str | None = None) -> dict[str, object]:
        return {
            "mediaType": self.media_type,
            "size": len(self.payload),
            "digest": digest or self.digest,
            "annotations": self.annotations,
        }


def signed_digest(name: str) -> str:
    """The digest the vector's signatures are for (the sha256 of its manifest.json)."""
    manifest = VECTORS / name / "manifest.json"
    if not manifest.exists():
        return UNKNOWN_DIGEST
    return "sha256:" + hashlib.sha256(manifest.read_bytes()).hexdigest()


def layers(name: str) -> list[Layer]:
    if not VECTORS.is_dir():
        raise RuntimeError(f"the shared vectors are missing at {VECTORS}")
    path = VECTORS / name
    files = sorted(path.glob("signature-*")) if path.is_dir() else [path]
    found = []
    for file in files:
        raw = file.read_bytes()
        assert raw.startswith(_PREFIX), file
        document = json.loads(raw[len(_PREFIX) :])
        found.append(
            Layer(
                document["mimeType"], base64.b64decode(document["payload"]), document["annotations"]
            )
        )
    return found


def trust() -> TrustConfig:
    return TrustConfig(
        tuple(
            Attestor(name, (TrustedKey(name, load_public_key_pem((VECTORS / file).read_bytes())),))
            for name, file in (("a", "cosign.pub"), ("b", "cosign2.pub"))
        )
    )
