"""Checkpoints: a transparency log's signed tree head, as a signed note (c2sp.org/signed-note,
c2sp.org/tlog-checkpoint; Rekor v1 writes the same format).

1. The envelope is at most 8 KiB of UTF-8 without control characters other than newline. Its
   last blank line separates the note text (which ends in a newline) from 1 to 16 signature
   lines, each `— <key name> <base64(4-byte key ID || signature)>`; a malformed line fails the
   whole note.
2. A signature line is the log's when its key name is the log's origin (its base URL without
   the scheme) and its key ID is one the log's key has: the first four bytes of SHA-256 of the
   key's DER SubjectPublicKeyInfo (Rekor v1, any key; c2sp's ECDSA type), or, as c2sp and
   rekor-tiles (Rekor v2) derive it, of SHA-256(name || 0x0A || 0x01 || 32-byte key) for
   Ed25519 and SHA-256(name || 0x0A || 0xFF || "PKIX-RSA-PKCS#1v1.5" || SPKI) for RSA.
3. The note text is at least three non-empty lines: the origin, the tree size (decimal, no
   leading zeroes), the root hash (base64 of 32 bytes); extension lines after them are ignored.
   The origin is the log's, or (a Rekor v1 shard) the log's followed by ` - <tree id>`. (The
   text is read before its signature is checked, but nothing read is used unless it verifies.)
4. Other lines (witness cosignatures, other keys) are ignored, wherever they stand. Every line
   of the log's must verify over the note text, and there must be at least one.
5. The size and root hash are returned; that they are the inclusion proof's is the caller's
   check.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from signet.keyless.root import LogKey
from signet.reasons import DeterministicFailure, Reason

__all__ = ["MAX_CHECKPOINT_SIZE", "MAX_SIGNATURE_LINES", "Checkpoint", "verify_checkpoint"]

MAX_CHECKPOINT_SIZE: Final = 8 * 1024
# c2sp.org/signed-note: verifiers must accept at least 16.
MAX_SIGNATURE_LINES: Final = 16
_SIGNATURE_PREFIX: Final = "\u2014 "
_STANDARD_BASE64: Final = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_TREE_SIZE: Final = re.compile(r"0|[1-9][0-9]{0,18}")
_MAX_TREE_SIZE: Final = 2**63 - 1
_ED25519_TYPE: Final = b"\x01"
_RSA_TYPE: Final = b"\xffPKIX-RSA-PKCS#1v1.5"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    origin: str
    size: int
    root_hash: bytes


@dataclass(frozen=True, slots=True)
class _SignatureLine:
    name: str
    key_id: bytes
    signature: bytes


def verify_checkpoint(envelope: str, log: LogKey) -> Checkpoint:
    """The checkpoint `envelope` says, once a signature by `log`'s key is found and verified."""
    text, lines = _split_note(envelope)
    checkpoint = _parse_text(text, log.origin)
    key_ids = _key_ids(log)
    ours = [line for line in lines if line.name == log.origin and line.key_id in key_ids]
    if not ours:
        raise _invalid(f"the checkpoint has no signature by the log {log.origin}")
    signed = text.encode()
    for line in ours:
        if not log.verify(signed, line.signature):
            raise _invalid(f"the checkpoint's signature by {log.origin} does not verify")
    return checkpoint


def _split_note(envelope: str) -> tuple[str, list[_SignatureLine]]:
    try:
        size = len(envelope.encode())
    except UnicodeEncodeError:  # a lone surrogate, from a JSON escape
        raise _invalid("the checkpoint is not UTF-8 text") from None
    if size > MAX_CHECKPOINT_SIZE:
        raise _invalid(f"the checkpoint is larger than {MAX_CHECKPOINT_SIZE} bytes")
    if any(ord(c) < 0x20 and c != "\n" for c in envelope):
        raise _invalid("the checkpoint holds a control character")
    split = envelope.rfind("\n\n")
    if split < 0:
        raise _invalid("the checkpoint has no blank line before its signatures")
    text, block = envelope[: split + 1], envelope[split + 2 :]
    if not block or not block.endswith("\n"):
        raise _invalid("the checkpoint has no signature lines, or they do not end in a newline")
    raw_lines = block[:-1].split("\n")
    if len(raw_lines) > MAX_SIGNATURE_LINES:
        raise _invalid(
            f"the checkpoint has {len(raw_lines)} signature lines; the limit is "
            f"{MAX_SIGNATURE_LINES}"
        )
    return text, [_signature_line(line, i) for i, line in enumerate(raw_lines)]


def _signature_line(line: str, index: int) -> _SignatureLine:
    what = f"signature line {index + 1} of the checkpoint"
    if not line.startswith(_SIGNATURE_PREFIX):
        raise _invalid(f"{what} does not start with an em dash and a space")
    name, _, encoded = line[len(_SIGNATURE_PREFIX) :].partition(" ")
    if not name or "+" in name or any(c.isspace() for c in name):
        raise _invalid(f"{what} has no valid key name")
    if not encoded or not _STANDARD_BASE64.fullmatch(encoded):
        raise _invalid(f"{what} has no base64 signature")
    try:
        decoded = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid(f"{what} has no base64 signature") from None
    if len(decoded) < 5:
        raise _invalid(f"{what} is too short to hold a key ID and a signature")
    return _SignatureLine(name, decoded[:4], decoded[4:])


def _key_ids(log: LogKey) -> frozenset[bytes]:
    spki = log.key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    ids = {hashlib.sha256(spki).digest()[:4]}
    name = log.origin.encode() + b"\n"
    if isinstance(log.key, ed25519.Ed25519PublicKey):
        raw = log.key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        ids.add(hashlib.sha256(name + _ED25519_TYPE + raw).digest()[:4])
    elif isinstance(log.key, rsa.RSAPublicKey):
        ids.add(hashlib.sha256(name + _RSA_TYPE + spki).digest()[:4])
    return frozenset(ids)


def _parse_text(text: str, origin: str) -> Checkpoint:
    lines = text[:-1].split("\n")
    if len(lines) < 3 or not all(lines):
        raise _invalid(
            "the checkpoint's text is not an origin, a tree size and a root hash on three "
            "non-empty lines"
        )
    claimed, size, root = lines[0], lines[1], lines[2]
    if claimed != origin and not re.fullmatch(re.escape(origin) + r" - [0-9]{1,20}", claimed):
        raise _invalid(f"the checkpoint's origin {claimed[:100]!r} is not the log {origin}")
    if not _TREE_SIZE.fullmatch(size) or int(size) > _MAX_TREE_SIZE:
        raise _invalid("the checkpoint's tree size is not a decimal number")
    try:
        root_hash = base64.b64decode(root, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid("the checkpoint's root hash is not base64") from None
    if len(root_hash) != 32:
        raise _invalid("the checkpoint's root hash is not 32 bytes")
    return Checkpoint(claimed, int(size), root_hash)


def _invalid(message: str) -> DeterministicFailure:
    return DeterministicFailure(Reason.SIGNATURE_INVALID, message)
