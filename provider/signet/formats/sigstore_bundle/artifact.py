"""Verifying a Sigstore bundle over an artifact (a file), as `cosign verify-blob` and the
sigstore-conformance suite do: with keys, or keyless with a trusted root and identities. No I/O.

1. Parse the bundle (`bundle.parse_bundle`): malformed is SIGNATURE_INVALID, a version Signet does
   not know UNSUPPORTED_FORMAT, too big LIMIT_EXCEEDED.
2. A certificate (keyless) bundle without a keyless policy is UNSUPPORTED_FORMAT.
3. A message signature: its `messageDigest` must be the artifact's digest under the algorithm it
   names (else DIGEST_MISMATCH), and its signature must verify over the artifact's bytes under
   one of `keys`.
4. A DSSE envelope: it must carry an in-toto statement (else UNSUPPORTED_FORMAT) whose signature
   verifies over the envelope's PAE under one of `keys`; only then is the statement parsed, and
   one of its subjects must be the artifact's sha256 (else DIGEST_MISMATCH).
5. Keyless: the checks of `signet.keyless.verify`, then the certified identity must be one the
   policy accepts (else NOT_SIGNED_BY_ATTESTOR). With keys: a signature that verifies under
   none of `keys` is SIGNATURE_INVALID when the bundle's key hint names one of them (tampered),
   else NOT_SIGNED_BY_ATTESTOR. No keys at all is NOT_SIGNED_BY_ATTESTOR.

The keys are tried in the order given; the hint never chooses, adds or skips one. Transparency-log
entries and timestamps of a key-based bundle are not checked (the key is the trust), as in
`verify`.
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
from signet.formats.sigstore_bundle.verify import keyless_evidence
from signet.keyless.verify import verify as verify_keyless
from signet.reasons import DeterministicFailure, Reason
from signet.trust.model import Keyless

__all__ = ["verify_artifact"]

# The statement's subject digest that binds it to the artifact.
_SUBJECT_ALGORITHM: Final = "sha256"


def verify_artifact(
    raw_bundle: bytes,
    artifact: bytes,
    keys: Sequence[PublicKey] = (),
    keyless: Keyless | None = None,
) -> str:
    """How `raw_bundle` verifies `artifact`: the scheme under one of `keys`, or for a certificate
    bundle the identity `keyless` accepts; otherwise a DeterministicFailure saying why not."""
    # Steps 1 and 2.
    bundle = parse_bundle(raw_bundle)
    if bundle.has_certificate and keyless is None:
        raise DeterministicFailure(
            Reason.UNSUPPORTED_FORMAT,
            "the bundle carries a certificate; keyless verification is not configured",
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
        return _verified(bundle, artifact, artifact, message.signature, keys, keyless)
    # Step 4.
    envelope = bundle.envelope
    assert envelope is not None  # parse_bundle: exactly one of message and envelope
    if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE:
        raise DeterministicFailure(
            Reason.UNSUPPORTED_FORMAT,
            f"the bundle signs a {envelope.payload_type!r} payload, not {IN_TOTO_PAYLOAD_TYPE!r}",
        )
    (signature,) = envelope.signatures  # parse_bundle: exactly one
    verified = _verified(bundle, artifact, envelope.signed_bytes, signature, keys, keyless)
    statement = parse_statement(envelope.payload)
    digest = f"{_SUBJECT_ALGORITHM}:{hashlib.sha256(artifact).hexdigest()}"
    if not statement.names(digest):
        raise DeterministicFailure(
            Reason.DIGEST_MISMATCH,
            f"the statement's subjects are {', '.join(statement.subject_digests) or 'none'}, "
            f"not the artifact's {digest}",
        )
    return verified


def _verified(
    bundle: Bundle,
    artifact: bytes,
    message: bytes,
    signature: bytes,
    keys: Sequence[PublicKey],
    keyless: Keyless | None,
) -> str:
    """Step 5: the identity, or the scheme of the first key the signature verifies under."""
    if bundle.has_certificate:
        assert keyless is not None
        signed = verify_keyless(keyless_evidence(bundle, artifact), keyless)
        if not any(accepted.matches(signed.identity) for accepted in keyless.identities):
            raise DeterministicFailure(
                Reason.NOT_SIGNED_BY_ATTESTOR,
                f"signed by {signed.identity.subject} (issuer {signed.identity.issuer})",
            )
        return signed.identity.subject
    return _verified_by_key(bundle, message, signature, keys)


def _verified_by_key(
    bundle: Bundle, message: bytes, signature: bytes, keys: Sequence[PublicKey]
) -> str:
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
