"""Transparency-log (Rekor v1 and v2) entries: what one proves about a signature. No I/O.

An entry comes from a Sigstore bundle (`verificationMaterial.tlogEntries[]`, protobuf-JSON) or
from a classic cosign signature layer (annotation `dev.sigstore.cosign/bundle`). Parsing checks
its shape; `verify_log_entry` then judges it, in the order of the Sigstore client
specification (and sigstore-python, sigstore-go):

1. The entry is from a log the trusted root lists, found by its log ID.
2. Its canonicalized body describes exactly the signed content: this signature, this signer,
   this artifact digest or DSSE envelope (`keyless.tlog_body`), and its declared kindVersion is
   the body's.
3. Its signed entry timestamp (inclusion promise), when there is one, verifies under the log's
   key over the canonical JSON `{"body","integratedTime","logID","logIndex"}` (RFC 8785: sorted
   keys, no spaces; `logID` in hex, `logIndex` the global index). It is required when no
   inclusion proof is (bundle v0.1, classic layers); a promise without an integrated time fails.
4. Its inclusion proof, when it has a checkpoint, verifies: the RFC 6962 leaf hash of the body is
   at the proof's index of a tree of the proof's size with the proof's root hash
   (`keyless.merkle`), and the checkpoint is signed by this log's key and names that size and
   root hash (`keyless.checkpoint`). It is required (with its checkpoint) when the caller says
   so (bundles v0.2 and later) and for every Rekor v2 entry, whose proof index must be the
   entry's. Without its checkpoint a proof proves nothing, and is ignored where not required.
5. Nothing is trusted before it is checked: a negative index, bad base64, a missing field, or
   input past a limit (body 128 KiB, 64 proof hashes, checkpoint 8 KiB, 16 signature lines)
   fails SIGNATURE_INVALID, saying which; no parser exception escapes.
6. The integration time is returned only when a verified promise signs it (never for Rekor v2),
   and is not judged here: the caller checks it against the certificate, the log key's validity
   and the clock.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from signet.attest.dsse import decode_base64
from signet.keyless.checkpoint import MAX_CHECKPOINT_SIZE, verify_checkpoint
from signet.keyless.merkle import MAX_PROOF_HASHES, leaf_hash, verify_inclusion
from signet.keyless.root import LogKey, TrustedRoot
from signet.keyless.tlog_body import MAX_BODY_SIZE, SignedContent, check_body
from signet.model.json_object import json_object
from signet.reasons import DeterministicFailure, Reason

__all__ = [
    "InclusionProof",
    "LogEntry",
    "LoggedAt",
    "SignedContent",
    "parse_cosign_bundle_annotation",
    "parse_log_entry",
    "verify_log_entry",
]

_MAX_INT64: Final = 2**63 - 1
_LATEST_TIME: Final = 253402300799  # 9999-12-31T23:59:59Z
_DECIMAL: Final = re.compile(r"-?[0-9]{1,20}")
_HEX: Final = re.compile(r"(?:[0-9a-fA-F]{2}){1,64}")
_MAX_LOG_ID_B64: Final = 128
_MAX_SET_B64: Final = 4096
_MAX_BODY_B64: Final = 4 * (MAX_BODY_SIZE // 3 + 1)
_MAX_ANNOTATION: Final = _MAX_BODY_B64 + 16 * 1024


@dataclass(frozen=True, slots=True)
class InclusionProof:
    log_index: int  # the index in this tree (a Rekor v1 shard), not the global one
    tree_size: int
    root_hash: bytes
    hashes: tuple[bytes, ...]
    checkpoint: str | None  # the signed note, as given


@dataclass(frozen=True, slots=True)
class LogEntry:
    """An entry as given: parsed, not yet verified."""

    log_index: int  # global
    log_id: bytes
    kind_version: tuple[str, str] | None  # as declared; a classic annotation declares none
    body: bytes  # the canonicalized body
    integrated_time: int | None = None  # unix seconds; unsigned unless the promise verifies
    signed_entry_timestamp: bytes | None = None
    inclusion_proof: InclusionProof | None = None


@dataclass(frozen=True, slots=True)
class LoggedAt:
    """What a verified entry proves."""

    log_index: int
    log_url: str  # the log key's base_url
    integrated_time: datetime | None  # only when signed (a verified SET); None for Rekor v2
    log_key: LogKey


def parse_log_entry(value: object) -> LogEntry:
    """One item of a bundle's `verificationMaterial.tlogEntries` (protobuf-JSON)."""
    entry = _object(value, "the transparency-log entry")
    kind_version = _object(entry.get("kindVersion"), "the entry's kindVersion")
    kind, version = kind_version.get("kind"), kind_version.get("version")
    if not isinstance(kind, str) or not kind or not isinstance(version, str) or not version:
        raise _invalid("the entry's kindVersion has no kind and version")
    time = _integer(entry.get("integratedTime"), "the entry's integratedTime")
    if time > _LATEST_TIME:
        raise _invalid("the entry's integratedTime is beyond the year 9999")
    promise = entry.get("inclusionPromise")
    signed_entry_timestamp = None
    if promise is not None:
        encoded = _object(promise, "the entry's inclusionPromise").get("signedEntryTimestamp")
        if encoded is not None and encoded != "":
            signed_entry_timestamp = _base64(encoded, "the signed entry timestamp", _MAX_SET_B64)
    proof = entry.get("inclusionProof")
    return LogEntry(
        log_index=_integer(entry.get("logIndex"), "the entry's logIndex"),
        log_id=_base64(
            _object(entry.get("logId"), "the entry's logId").get("keyId"),
            "the entry's logId.keyId",
            _MAX_LOG_ID_B64,
        ),
        kind_version=(kind, version),
        body=_body(entry.get("canonicalizedBody")),
        integrated_time=time or None,  # protobuf-JSON leaves out a zero
        signed_entry_timestamp=signed_entry_timestamp,
        inclusion_proof=None if proof is None else _inclusion_proof(proof),
    )


def parse_cosign_bundle_annotation(text: str) -> LogEntry:
    """A classic `.sig` layer's `dev.sigstore.cosign/bundle`: a Rekor v1 signed entry timestamp."""
    what = "Rekor bundle annotation"
    if len(text) > _MAX_ANNOTATION:
        raise _invalid(f"the {what} is longer than {_MAX_ANNOTATION} characters")
    try:
        raw = text.encode()
    except UnicodeEncodeError:  # a lone surrogate, from a JSON escape
        raise _invalid(f"the {what} is not text") from None
    document = json_object(raw, what, Reason.SIGNATURE_INVALID)
    payload = _object(document.get("Payload"), f"the {what}'s Payload")
    log_id = payload.get("logID")
    if not isinstance(log_id, str) or not _HEX.fullmatch(log_id):
        raise _invalid(f"the {what}'s logID is not hexadecimal")
    time = _json_integer(payload.get("integratedTime"), f"the {what}'s integratedTime")
    if not 0 < time <= _LATEST_TIME:
        raise _invalid(f"the {what}'s integratedTime is not a time")
    return LogEntry(
        log_index=_json_integer(payload.get("logIndex"), f"the {what}'s logIndex"),
        log_id=bytes.fromhex(log_id),
        kind_version=None,
        body=_body(payload.get("body")),
        integrated_time=time,
        signed_entry_timestamp=_base64(
            document.get("SignedEntryTimestamp"), f"the {what}'s SignedEntryTimestamp", _MAX_SET_B64
        ),
    )


def verify_log_entry(
    entry: LogEntry, content: SignedContent, root: TrustedRoot, *, require_inclusion_proof: bool
) -> LoggedAt:
    """What `entry` proves about `content`, once steps 1-4 of the module docstring hold."""
    # Step 1.
    log = root.tlog(entry.log_id)
    if log is None:
        raise _invalid(
            f"the entry is from a log the trusted root does not list (log ID {entry.log_id.hex()})"
        )
    # Step 2.
    rekor_v2 = check_body(entry.body, entry.kind_version, content)
    # Step 3.
    integrated_time = None
    if entry.signed_entry_timestamp is not None:
        integrated_time = _verify_promise(entry, entry.signed_entry_timestamp, log)
    elif not require_inclusion_proof:
        raise _invalid(
            "the entry has no signed entry timestamp, which is required where an inclusion "
            "proof is not"
        )
    # Step 4.
    proof = entry.inclusion_proof
    if proof is not None and proof.checkpoint is not None:
        _verify_proof(entry, proof, proof.checkpoint, log, rekor_v2)
    elif require_inclusion_proof or rekor_v2:
        raise _invalid("the entry has no inclusion proof with a checkpoint")
    return LoggedAt(entry.log_index, log.base_url, integrated_time, log)


def _verify_promise(entry: LogEntry, promise: bytes, log: LogKey) -> datetime:
    if entry.integrated_time is None:
        raise _invalid("the entry has a signed entry timestamp but no integrated time")
    signed = {
        "body": base64.b64encode(entry.body).decode(),
        "integratedTime": entry.integrated_time,
        "logID": entry.log_id.hex(),
        "logIndex": entry.log_index,
    }
    canonical = json.dumps(signed, sort_keys=True, separators=(",", ":")).encode()
    if not log.verify(canonical, promise):
        raise _invalid(
            f"the signed entry timestamp does not verify under the key of {log.base_url}"
        )
    return datetime.fromtimestamp(entry.integrated_time, UTC)


def _verify_proof(
    entry: LogEntry, proof: InclusionProof, envelope: str, log: LogKey, rekor_v2: bool
) -> None:
    if rekor_v2 and proof.log_index != entry.log_index:
        raise _invalid(
            f"the inclusion proof is for index {proof.log_index}, the entry is {entry.log_index}"
        )
    verify_inclusion(
        leaf_hash(entry.body), proof.log_index, proof.tree_size, proof.hashes, proof.root_hash
    )
    checkpoint = verify_checkpoint(envelope, log)
    if checkpoint.size != proof.tree_size:
        raise _invalid(
            f"the checkpoint is for a tree of {checkpoint.size}, the inclusion proof of "
            f"{proof.tree_size}"
        )
    if checkpoint.root_hash != proof.root_hash:
        raise _invalid("the checkpoint's root hash is not the inclusion proof's")


def _inclusion_proof(value: object) -> InclusionProof:
    proof = _object(value, "the entry's inclusionProof")
    hashes = proof.get("hashes", [])
    if not isinstance(hashes, list):
        raise _invalid("the inclusion proof's hashes are not a list")
    if len(hashes) > MAX_PROOF_HASHES:
        raise _invalid(
            f"the inclusion proof has {len(hashes)} hashes; the limit is {MAX_PROOF_HASHES}"
        )
    checkpoint = proof.get("checkpoint")
    envelope = None
    if checkpoint is not None:
        envelope = _object(checkpoint, "the inclusion proof's checkpoint").get("envelope")
        if envelope is not None and not isinstance(envelope, str):
            raise _invalid("the inclusion proof's checkpoint envelope is not text")
        if envelope is not None and len(envelope) > MAX_CHECKPOINT_SIZE:
            raise _invalid(f"the checkpoint is larger than {MAX_CHECKPOINT_SIZE} bytes")
    return InclusionProof(
        log_index=_integer(proof.get("logIndex"), "the inclusion proof's logIndex"),
        tree_size=_integer(proof.get("treeSize"), "the inclusion proof's treeSize"),
        root_hash=_base64(proof.get("rootHash"), "the inclusion proof's rootHash", 128),
        hashes=tuple(_base64(h, f"inclusion proof hash {i}", 128) for i, h in enumerate(hashes)),
        checkpoint=envelope or None,
    )


def _body(value: object) -> bytes:
    body = _base64(value, "the entry's canonicalized body", _MAX_BODY_B64)
    if len(body) > MAX_BODY_SIZE:
        raise _invalid(f"the entry's canonicalized body is larger than {MAX_BODY_SIZE} bytes")
    return body


def _object(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _invalid(f"{what} is missing or not an object")
    return value


def _base64(value: object, what: str, limit: int) -> bytes:
    if isinstance(value, str) and len(value) > limit:
        raise _invalid(f"{what} is longer than {limit} characters")
    if not isinstance(value, str) or not value:
        raise _invalid(f"{what} is missing")
    return decode_base64(value, what)


def _integer(value: object, what: str) -> int:
    """A protobuf-JSON int64 (a decimal string or a number; absent is zero), not negative."""
    if value is None:
        return 0
    if isinstance(value, str) and _DECIMAL.fullmatch(value):
        value = int(value)
    return _json_integer(value, what)


def _json_integer(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(f"{what} is missing or not an integer")
    if value < 0:
        raise _invalid(f"{what} is negative")
    if value > _MAX_INT64:
        raise _invalid(f"{what} is larger than a 64-bit integer")
    return value


def _invalid(message: str) -> DeterministicFailure:
    return DeterministicFailure(Reason.SIGNATURE_INVALID, message)
