"""DSSE envelopes (secure-systems-lab/dsse, protocol v1): what is signed is the PAE, not the JSON.

`PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, lengths as ASCII
decimal byte counts, body the *decoded* payload. Standard and URL-safe base64 are both accepted
(the protocol says a verifier must), strictly: no stray characters.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any, Final

from signet.reasons import DeterministicFailure, Reason

__all__ = ["IN_TOTO_PAYLOAD_TYPE", "Envelope", "decode_base64", "pae", "parse_envelope"]

IN_TOTO_PAYLOAD_TYPE: Final = "application/vnd.in-toto+json"
# Sigstore bundles carry exactly one signature; classic cosign attestations too. A few more are
# read (another signer's), never more than this.
_MAX_SIGNATURES: Final = 8
_MAX_SIGNATURE_B64: Final = 4096
_BASE64: Final = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")


@dataclass(frozen=True, slots=True)
class Envelope:
    payload_type: str
    payload: bytes
    signatures: tuple[bytes, ...]

    @property
    def signed_bytes(self) -> bytes:
        return pae(self.payload_type, self.payload)


def pae(payload_type: str, payload: bytes) -> bytes:
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def decode_base64(text: Any, what: str) -> bytes:
    """Standard or URL-safe base64, padded or not; anything else is SIGNATURE_INVALID."""
    if not isinstance(text, str) or not _BASE64.fullmatch(text):
        raise DeterministicFailure(Reason.SIGNATURE_INVALID, f"{what} is not base64")
    padded = text + "=" * (-len(text) % 4)
    try:
        return base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DeterministicFailure(Reason.SIGNATURE_INVALID, f"{what} is not base64") from exc


def parse_envelope(document: Any, *, max_payload: int) -> Envelope:
    """An envelope from its JSON object (as in a bundle, or a classic `.att` layer)."""
    if not isinstance(document, dict):
        raise DeterministicFailure(Reason.SIGNATURE_INVALID, "the DSSE envelope is not an object")
    payload_type = document.get("payloadType")
    if not isinstance(payload_type, str) or not payload_type:
        raise DeterministicFailure(Reason.SIGNATURE_INVALID, "the DSSE envelope has no payloadType")
    try:
        payload_type.encode()
    except UnicodeEncodeError as exc:  # a lone surrogate, from a JSON escape (found by fuzzing)
        raise DeterministicFailure(
            Reason.SIGNATURE_INVALID, "the DSSE payloadType is not text"
        ) from exc
    encoded = document.get("payload")
    if isinstance(encoded, str) and len(encoded) > 4 * max_payload // 3 + 4:
        raise DeterministicFailure(
            Reason.LIMIT_EXCEEDED, f"the DSSE payload is larger than {max_payload} bytes"
        )
    payload = decode_base64(encoded, "the DSSE payload")
    if len(payload) > max_payload:  # the check above allows a few bytes more
        raise DeterministicFailure(
            Reason.LIMIT_EXCEEDED, f"the DSSE payload is larger than {max_payload} bytes"
        )
    signatures = document.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        raise DeterministicFailure(Reason.SIGNATURE_INVALID, "the DSSE envelope has no signatures")
    if len(signatures) > _MAX_SIGNATURES:
        raise DeterministicFailure(
            Reason.LIMIT_EXCEEDED,
            f"the DSSE envelope has {len(signatures)} signatures; the limit is {_MAX_SIGNATURES}",
        )
    decoded = []
    for index, entry in enumerate(signatures):
        sig = entry.get("sig") if isinstance(entry, dict) else None
        if not isinstance(sig, str) or not sig or len(sig) > _MAX_SIGNATURE_B64:
            raise DeterministicFailure(
                Reason.SIGNATURE_INVALID, f"DSSE signature {index} has no usable 'sig'"
            )
        decoded.append(decode_base64(sig, f"DSSE signature {index}"))
    return Envelope(payload_type, payload, tuple(dict.fromkeys(decoded)))
