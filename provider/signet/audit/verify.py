"""Verification of a decision-log directory: every replica's chain, line by line.

For each replica (a subdirectory), the algorithm:

1. The segment files are `segment-000001.jsonl` up to the newest, with no number missing.
2. Each segment is split at newlines. Bytes after the last newline of a file are a torn line (a
   writer that crashed mid-write): a warning, not part of the chain. Every other line must be
   a record or a checkpoint in canonical form (re-encoding it gives back its bytes).
3. A record's `seq` is one more than the record before it (the first is 1), and its `prev` is
   the hash of the line before it — across segments, the last whole line of the segment before;
   for the first line of all, `GENESIS`.
4. A checkpoint follows at least one record of its segment; its replica and segment name the
   file it is in; `first_seq`, `last_seq` and `count` are the segment's records so far; `head`
   is the hash of the record just before it; and its signature verifies, under the scheme it
   names, with one of the given keys (any other key is a failure). The next line's `prev` is the
   checkpoint's hash, so removing a checkpoint breaks the chain too.
5. A segment that does not end with a checkpoint is a warning (its writer stopped without
   closing it); its records are sealed by the next checkpoint, if a later segment has one.
6. Records after the last checkpoint of the replica are *unsealed*: nothing proves they are all
   there (a crash and a truncation look the same), so they are a warning, counted.

The first failure ends the replica's verification (nothing after it can be trusted); the other
replicas are still verified. A whole replica, or whole trailing segments that end at a
checkpoint, can be deleted without a trace: compare the heads reported with a copy kept
elsewhere (the `signet_audit_*` metrics, say) to detect that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, NoReturn

from signet.audit.chain import (
    GENESIS,
    CheckpointLine,
    RecordLine,
    check_replica,
    line_hash,
    parse_line,
    segment_name,
    segment_number,
    signature_problem,
)
from signet.audit.record import Decision
from signet.crypto.keys import PublicKey

__all__ = ["Problem", "ReplicaReport", "Verification", "replicas", "verify_log"]

# Called with (replica, seq, decision) for every record, in order, as it is verified.
OnRecord = Callable[[str, int, Decision], None]

_IGNORED: Final = frozenset({".lock"})


@dataclass(frozen=True, slots=True)
class Problem:
    """Where something is wrong (or, as a warning, unproven) and what."""

    replica: str
    message: str
    segment: str | None = None
    line: int | None = None
    seq: int | None = None

    def __str__(self) -> str:
        where = self.replica if self.segment is None else f"{self.replica}/{self.segment}"
        if self.line is not None:
            where += f" line {self.line}"
            if self.seq is not None:
                where += f" (seq {self.seq})"
        return f"{where}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        return {
            "replica": self.replica,
            "segment": self.segment,
            "line": self.line,
            "seq": self.seq,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class ReplicaReport:
    replica: str
    segments: int
    records: int
    checkpoints: int
    last_seq: int  # 0 when there are no records
    sealed_seq: int  # the last seq a checkpoint covers, 0 for none
    head: str  # the hash of the last whole line, GENESIS for none
    unsealed: int
    warnings: tuple[Problem, ...] = ()
    failure: Problem | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "replica": self.replica,
            "ok": self.failure is None,
            "segments": self.segments,
            "records": self.records,
            "checkpoints": self.checkpoints,
            "lastSeq": self.last_seq,
            "sealedSeq": self.sealed_seq,
            "head": self.head,
            "unsealed": self.unsealed,
            "warnings": [w.to_json() for w in self.warnings],
            "failure": None if self.failure is None else self.failure.to_json(),
        }


@dataclass(frozen=True, slots=True)
class Verification:
    replicas: tuple[ReplicaReport, ...]

    @property
    def failures(self) -> tuple[Problem, ...]:
        return tuple(r.failure for r in self.replicas if r.failure is not None)

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return tuple(w for r in self.replicas for w in r.warnings)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": not self.failures,
            "replicas": [r.to_json() for r in self.replicas],
        }


def replicas(directory: Path) -> list[str]:
    """The replica subdirectories of `directory`, sorted. Raises ValueError when there are none
    (or `directory` is one replica's own directory), OSError when it cannot be read."""
    names = sorted(p.name for p in directory.iterdir() if p.is_dir() and _is_replica(p.name))
    if not names:
        if any(segment_number(p.name) is not None for p in directory.iterdir()):
            raise ValueError(
                f"{directory} holds segments itself: give the directory above it, which holds "
                "one subdirectory per replica"
            )
        raise ValueError(f"{directory}: no replica logs (subdirectories with segment files)")
    return names


def verify_log(
    directory: Path, keys: Iterable[PublicKey], on_record: OnRecord | None = None
) -> Verification:
    """Verify every replica under `directory` against the checkpoint keys `keys`. Raises
    OSError when a file cannot be read: unreadable is not the same as tampered."""
    by_fingerprint = {key.fingerprint: key for key in keys}
    return Verification(
        tuple(
            _Replica(name, by_fingerprint, on_record).verify(directory / name)
            for name in replicas(directory)
        )
    )


def _is_replica(name: str) -> bool:
    try:
        check_replica(name)
    except ValueError:
        return False
    return True


class _Failed(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


@dataclass
class _Replica:
    """One replica's chain as it is walked: what the next line must be."""

    name: str
    keys: dict[str, PublicKey]
    on_record: OnRecord | None
    seq: int = 1  # the next record's
    prev: str = GENESIS  # the next line's
    head: str = GENESIS  # the hash of the last record
    segments: int = 0
    records: int = 0
    checkpoints: int = 0
    sealed_seq: int = 0
    segment_first: int = 0  # the first seq of the current segment
    segment_count: int = 0
    warnings: list[Problem] = field(default_factory=list)

    def verify(self, path: Path) -> ReplicaReport:
        failure = None
        try:
            for number, segment in self._segments(path):
                self._segment(number, segment, path / segment)
        except _Failed as failed:
            failure = failed.problem
        unsealed = self.seq - 1 - self.sealed_seq
        if failure is None and unsealed:
            # 6. the tail no checkpoint covers
            self._warn(
                f"{unsealed} records (seq {self.sealed_seq + 1}..{self.seq - 1}) after the last "
                "checkpoint are unsealed: a crash and a truncation look the same"
            )
        return ReplicaReport(
            self.name,
            self.segments,
            self.records,
            self.checkpoints,
            self.seq - 1,
            self.sealed_seq,
            self.prev,
            unsealed,
            tuple(self.warnings),
            failure,
        )

    def _segments(self, path: Path) -> list[tuple[int, str]]:
        # 1. consecutive segment numbers from 1
        found: dict[int, str] = {}
        for entry in sorted(path.iterdir()):
            number = segment_number(entry.name)
            if number is not None and entry.is_file():
                found[number] = entry.name
            elif entry.name not in _IGNORED:
                self._warn(f"{entry.name} is not a segment file; ignored")
        if not found:
            self._warn("no segments (all of them deleted, or a writer that never wrote)")
        for expected, number in enumerate(sorted(found), start=1):
            if number != expected:
                raise _Failed(
                    Problem(
                        self.name, f"segment {segment_name(expected)} is missing", found[number]
                    )
                )
        return sorted(found.items())

    def _segment(self, number: int, segment: str, path: Path) -> None:
        # 2. whole lines, and what a crash may have left after them
        data = path.read_bytes()
        lines = data.split(b"\n")
        torn = lines.pop()
        self.segments += 1
        self.segment_count = 0
        last: RecordLine | CheckpointLine | None = None
        for index, line in enumerate(lines, start=1):
            try:
                last = parse_line(line)
            except ValueError as exc:
                self._fail(segment, index, None, str(exc))
            digest = line_hash(line)
            if isinstance(last, RecordLine):
                self._record(segment, index, last)
                self.head = digest
            else:
                self._checkpoint(number, segment, index, last)
            self.prev = digest
        if torn:
            self._warn(
                f"ends in a torn line of {len(torn)} bytes (a crash while writing it)",
                segment,
                len(lines) + 1,
            )
        if not isinstance(last, CheckpointLine):
            # 5. sealed, if at all, by a later segment's checkpoint
            self._warn("ends without a checkpoint (its writer stopped without closing it)", segment)

    def _record(self, segment: str, index: int, record: RecordLine) -> None:
        # 3. consecutive seq, and prev chained to the line before
        if record.seq != self.seq:
            self._fail(
                segment,
                index,
                record.seq,
                f"seq {record.seq} where {self.seq} was expected (a record removed, reordered "
                "or inserted)",
            )
        if record.prev != self.prev:
            self._fail(segment, index, record.seq, f"prev does not match {self._before(index)}")
        if self.segment_count == 0:
            self.segment_first = record.seq
        self.segment_count += 1
        self.records += 1
        self.seq += 1
        if self.on_record is not None:
            self.on_record(self.name, record.seq, record.decision)

    def _checkpoint(self, number: int, segment: str, index: int, line: CheckpointLine) -> None:
        # 4. the checkpoint's fields, then its signature
        checkpoint = line.checkpoint
        if self.segment_count == 0:
            self._fail(segment, index, None, "a checkpoint with no record of its segment before it")
        if self.prev != self.head:
            self._fail(segment, index, None, "a checkpoint right after another checkpoint")
        expected = {
            "replica": (checkpoint.replica, self.name),
            "segment": (checkpoint.segment, number),
            "first_seq": (checkpoint.first_seq, self.segment_first),
            "last_seq": (checkpoint.last_seq, self.seq - 1),
            "count": (checkpoint.count, self.segment_count),
            "head": (checkpoint.head, self.head),
        }
        for name, (got, want) in expected.items():
            if got != want:
                what = f"the hash of line {index - 1}" if name == "head" else repr(want)
                self._fail(segment, index, None, f"checkpoint {name} is {got!r}, not {what}")
        problem = signature_problem(line, self.keys)
        if problem is not None:
            self._fail(segment, index, None, problem)
        self.checkpoints += 1
        self.sealed_seq = checkpoint.last_seq

    def _before(self, index: int) -> str:
        if index > 1:
            return f"the hash of line {index - 1}"
        if self.segments > 1:
            return f"the hash of the last line of {segment_name(self.segments - 1)}"
        return "the genesis value (the replica's first line)"

    def _fail(self, segment: str, index: int, seq: int | None, message: str) -> NoReturn:
        raise _Failed(Problem(self.name, message, segment, index, seq))

    def _warn(self, message: str, segment: str | None = None, line: int | None = None) -> None:
        self.warnings.append(Problem(self.name, message, segment, line))
