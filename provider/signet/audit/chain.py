"""The hash chain and its signed checkpoints, as bytes: what a line is, what it hashes to, and
what a checkpoint's signature covers. No I/O: the writer and the verifier share this.

    record line     = canonical({"seq": n, "prev": H(previous line), "decision": {...}})
    checkpoint line = canonical({"checkpoint": C, "signature": b64(sig), "scheme": s, "key": fp})
    sig             = sign(canonical(C))
    H(line)         = hex SHA-256 of the line's bytes, without its newline

The previous line of the first line of a segment is the last line of the segment before it;
of the replica's first line, none: `prev` is `GENESIS`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from signet.audit.record import Decision, canonical, parse_canonical
from signet.crypto.keys import PublicKey

if TYPE_CHECKING:
    from signet.crypto.keyfile import Signer

__all__ = [
    "GENESIS",
    "Checkpoint",
    "CheckpointLine",
    "RecordLine",
    "check_replica",
    "checkpoint_line",
    "line_hash",
    "parse_line",
    "record_line",
    "segment_name",
    "segment_number",
    "signature_problem",
]

GENESIS: Final = "0" * 64
_HEX64: Final = re.compile(r"[0-9a-f]{64}")
_SEGMENT: Final = re.compile(r"segment-([0-9]{6,})\.jsonl")
_REPLICA: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_RECORD_FIELDS: Final = frozenset({"seq", "prev", "decision"})
_CHECKPOINT_LINE_FIELDS: Final = frozenset({"checkpoint", "signature", "scheme", "key"})
_CHECKPOINT_FIELDS: Final = (
    "replica",
    "segment",
    "first_seq",
    "last_seq",
    "count",
    "head",
    "time",
)


def line_hash(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


def check_replica(name: str) -> str:
    """`name` if it can name a replica's directory (a host name's characters); else ValueError."""
    if not _REPLICA.fullmatch(name):
        raise ValueError(
            f"replica name {name!r}: expected 1-63 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def segment_name(number: int) -> str:
    return f"segment-{number:06d}.jsonl"


def segment_number(name: str) -> int | None:
    """The number of a segment file's name; None for any other name."""
    match = _SEGMENT.fullmatch(name)
    return int(match.group(1)) if match else None


@dataclass(frozen=True, slots=True)
class RecordLine:
    seq: int
    prev: str
    decision: Decision


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What a signature seals: the records `first_seq`..`last_seq` of one segment so far, the
    last of which hashes to `head` (and through the chain, everything before it)."""

    replica: str
    segment: int
    first_seq: int
    last_seq: int
    count: int
    head: str
    time: float

    def __post_init__(self) -> None:
        check_replica(self.replica)
        for name in ("segment", "first_seq", "last_seq", "count"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ValueError(f"checkpoint.{name}: expected a positive integer")
        if type(self.head) is not str or not _HEX64.fullmatch(self.head):
            raise ValueError("checkpoint.head: expected 64 lowercase hex digits")
        if type(self.time) is not float:
            raise ValueError("checkpoint.time: expected a number with a fraction")

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _CHECKPOINT_FIELDS}

    def message(self) -> bytes:
        """The bytes the signature is over."""
        return canonical(self.to_json())


@dataclass(frozen=True, slots=True)
class CheckpointLine:
    checkpoint: Checkpoint
    signature: bytes
    scheme: str
    key: str  # the signing key's fingerprint (SHA-256 of its DER SubjectPublicKeyInfo)


def record_line(seq: int, prev: str, decision: Decision) -> bytes:
    return canonical({"seq": seq, "prev": prev, "decision": decision.to_json()})


def checkpoint_line(checkpoint: Checkpoint, signer: Signer) -> bytes:
    signature, scheme = signer.sign(checkpoint.message())
    return canonical(
        {
            "checkpoint": checkpoint.to_json(),
            "signature": base64.b64encode(signature).decode("ascii"),
            "scheme": scheme,
            "key": signer.public.fingerprint,
        }
    )


def parse_line(line: bytes) -> RecordLine | CheckpointLine:
    """A record or a checkpoint, from one line (without its newline) in canonical form.

    Raises ValueError naming what is wrong. Checks only the line itself: whether it fits the
    chain is the verifier's question."""
    document = parse_canonical(line)
    names = frozenset(document)
    if names == _RECORD_FIELDS:
        seq, prev = document["seq"], document["prev"]
        if type(seq) is not int or seq < 1:
            raise ValueError("seq: expected a positive integer")
        if type(prev) is not str or not _HEX64.fullmatch(prev):
            raise ValueError("prev: expected 64 lowercase hex digits")
        return RecordLine(seq, prev, Decision.from_json(document["decision"]))
    if names == _CHECKPOINT_LINE_FIELDS:
        return _checkpoint(document)
    raise ValueError(
        f"fields {sorted(names)}: neither a record (seq, prev, decision) nor a checkpoint "
        "(checkpoint, signature, scheme, key)"
    )


def signature_problem(line: CheckpointLine, keys: Mapping[str, PublicKey]) -> str | None:
    """Why `line`'s signature does not hold under `keys` (by fingerprint), or None if it does."""
    key = keys.get(line.key)
    if key is None:
        return f"the checkpoint is signed by key {line.key[:16]}, not one of the trusted keys"
    scheme = key.verify(line.checkpoint.message(), line.signature)
    if scheme is None:
        return f"the checkpoint's signature does not verify under key {line.key[:16]}"
    if scheme != line.scheme:
        return f"the checkpoint says scheme {line.scheme!r}, but its signature is {scheme!r}"
    return None


def _checkpoint(document: Mapping[str, Any]) -> CheckpointLine:
    body = document["checkpoint"]
    if not isinstance(body, dict) or set(body) != set(_CHECKPOINT_FIELDS):
        raise ValueError(f"checkpoint: expected exactly the fields {', '.join(_CHECKPOINT_FIELDS)}")
    encoded, scheme, key = document["signature"], document["scheme"], document["key"]
    if type(encoded) is not str:
        raise ValueError("signature: expected a base64 string")
    try:
        signature = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("signature: not base64") from None
    if base64.b64encode(signature).decode("ascii") != encoded:  # unused bits set, say
        raise ValueError("signature: not canonical base64")
    if type(scheme) is not str or not scheme:
        raise ValueError("scheme: expected a non-empty string")
    if type(key) is not str or not _HEX64.fullmatch(key):
        raise ValueError("key: expected a key fingerprint (64 lowercase hex digits)")
    try:
        checkpoint = Checkpoint(**body)
    except TypeError as exc:  # not str keys; cannot happen after the field check
        raise ValueError(f"checkpoint: {exc}") from None
    return CheckpointLine(checkpoint, signature, scheme, key)
