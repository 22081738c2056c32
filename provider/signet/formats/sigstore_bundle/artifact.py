"""Verifying a key-based Sigstore bundle over an artifact (a file), as `cosign verify-blob --key`
and the sigstore-conformance suite do. No I/O happens here.

1. Parse the bundle (`bundle.parse_bundle`): malformed is SIGNATURE_INVALID, a version Signet does
   not know UNSUPPORTED_FORMAT, too big LIMIT_EXCEEDED.
2. A certificate (keyless) bundle is UNSUPPORTED_FORMAT: only keys are configured here.
3. A message signature: its `messageDigest` must be the artifact's digest under the algorithm it
   names (else DIGEST_MISMATCH), and its signature must verify over the artifact's bytes under
   one of `keys`.
4. A DSSE envelope: it must carry an in-toto statement (else UNSUPPORTED_FORMAT) whose signature
   verifies over the envelope's PAE under one of `keys`; only then is the statement parsed, and
   one of its subjects must be the artifact's sha256 (else DIGEST_MISMATCH).
5. A signature that verifies under none of `keys` is SIGNATURE_INVALID when the bundle's key hint
   names one of them (tampered), else NOT_SIGNED_BY_ATTESTOR. No keys at all is
   NOT_SIGNED_BY_ATTESTOR.

The keys are tried in the order given; the hint never chooses, adds or skips one. Transparency-log
entries and timestamps are not checked (the key is the trust), as in `verify`.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from typing import Final

from signet.attest.dsse import IN_TOTO_PAYLOAD_TYPE
from signet.attest.statement import parse_statement
from signet.crypto.keys import PublicKey
from signet.formats.sigstore_bundle.bundle import Bundle, parse_bundle
from signet.reasons import DeterministicFailure, Reason

__all__ = ["verify_artifact"]

# The statement's subject digest that binds it to the artifact.
_SUBJECT_ALGORITHM: Final = "sha256"


def verify_artifact(raw_bundle: bytes, artifact: bytes, keys: Sequence[PublicKey]) -> str:
    """The scheme under which `raw_bundle` verifies `artifact` with one of `keys`; otherwise a
    DeterministicFailure saying why not."""
    # Steps 1 and 2.
    bundle = parse_bundle(raw_bundle)
    if bundle.has_certificate:
        raise DeterministicFailure(
            Reason.UNSUPPORTED_FORMAT,
            "the bundle carries a certificate; keyless verification is not supported",
        )
    # Step 3.
    if bundle.message is not None:
        message = bundle.message
        actual = hashlib.new(message.algorithm, artifact).digest()
        if actual != message.digest:
            raise DeterministicFailure(
                Reason.DIGEST_MISMATCH,
                f"the bundle signs a message whose {message.algorithm} is "
                f"{message.digest.hex()}, not the artifact's {actual.hex()}",
            )
        return _verified(bundle, artifact, message.signature, keys)
    # Step 4.
    envelope = bundle.envelope
    assert envelope is not None  # parse_bundle: exactly one of message and envelope
    if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE:
        raise DeterministicFailure(
            Reason.UNSUPPORTED_FORMAT,
            f"the bundle signs a {envelope.payload_type!r} payload, not {IN_TOTO_PAYLOAD_TYPE!r}",
        )
    (signature,) = envelope.signatures  # parse_bundle: exactly one
    scheme = _verified(bundle, envelope.signed_bytes, signature, keys)
    statement = parse_statement(envelope.payload)
    digest = f"{_SUBJECT_ALGORITHM}:{hashlib.sha256(artifact).hexdigest()}"
    if not statement.names(digest):
        raise DeterministicFailure(
            Reason.DIGEST_MISMATCH,
            f"the statement's subjects are {', '.join(statement.subject_digests) or 'none'}, "
            f"not the artifact's {digest}",
        )
    return scheme


def _verified(bundle: Bundle, message: bytes, signature: bytes, keys: Sequence[PublicKey]) -> str:
    """Step 5: the scheme of the first key the signature verifies under."""
    for key in keys:
        scheme = key.verify(message, signature)
        if scheme is not None:
            return scheme
    if not keys:
        raise DeterministicFailure(
            Reason.NOT_SIGNED_BY_ATTESTOR, "no key to verify the bundle with"
        )
    hints = {base64.b64encode(bytes.fromhex(key.fingerprint)).decode() for key in keys}
    if bundle.key_hint in hints:
        raise DeterministicFailure(
            Reason.SIGNATURE_INVALID,
            "the bundle names one of the keys, but its signature does not verify under it "
            "(tampered or corrupt)",
        )
    raise DeterministicFailure(
        Reason.NOT_SIGNED_BY_ATTESTOR,
        f"the bundle's signature verifies under none of the {len(keys)} key(s)",
    )
