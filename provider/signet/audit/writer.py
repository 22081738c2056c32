"""`DecisionLog`: appends decisions to a replica's chain on a thread of its own.

The provider's event loop calls `submit`, which only puts the decisions in a bounded queue: it
never touches the disk, never blocks and never raises. When the queue is full the decisions are
dropped and counted (`stats.dropped`), with a warning on `signet.audit` at most once per
`warn_every` seconds: admission goes on, because the provider's answer does not depend on the
log — a dropped decision is a gap the counters show, not a refused pod.

The thread writes each record line with `os.write` as it arrives (so a crashed process loses
only what was still queued), and a checkpoint after `checkpoint_records` records, after
`checkpoint_seconds` with records unsealed, when a segment reaches `segment_bytes` (the segment
then closes) and on `close`. It fsyncs the segment at every checkpoint, and the directory when a
segment is created: a power loss can lose at most the records after the last checkpoint.

A write that fails (a full disk, say) is counted in `stats.write_errors` (and logged, at most
once per `warn_every` seconds) and its record is lost; the segment it was written to is
abandoned (it may end in a torn line) and the next record starts a new segment chained from the
last line written whole — as after a crash. A checkpoint that cannot be signed is counted the
same way; its records stay unsealed until one can be (retried at the next record, or after
`checkpoint_seconds`).

Call `close` at shutdown. The thread is a daemon (a forgotten log must not keep the process
alive): a process that exits without closing loses what is queued, as a crash would.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Final

from signet.audit.chain import (
    GENESIS,
    Checkpoint,
    RecordLine,
    check_replica,
    checkpoint_line,
    line_hash,
    parse_line,
    record_line,
    segment_name,
    segment_number,
)
from signet.audit.record import Decision

if TYPE_CHECKING:
    from signet.crypto.keyfile import Signer

__all__ = ["DecisionLog", "LogSettings", "LogStats"]

log = logging.getLogger("signet.audit")

_STOP: Final = object()
_LOCK_FILE: Final = ".lock"


@dataclass(frozen=True, slots=True)
class LogSettings:
    segment_bytes: int = 8 * 1024 * 1024  # a segment closes with a checkpoint past this size
    queue_records: int = 10_000
    checkpoint_records: int = 1_000
    checkpoint_seconds: float = 60.0  # the longest a written record stays unsealed
    warn_every: float = 60.0  # seconds between warnings about drops, and about write errors

    def __post_init__(self) -> None:
        for name in ("segment_bytes", "queue_records", "checkpoint_records"):
            if getattr(self, name) < 1:
                raise ValueError(f"audit log {name} must be at least 1")
        if not self.checkpoint_seconds > 0 or self.warn_every < 0:
            raise ValueError("audit log checkpoint_seconds must be positive, warn_every >= 0")


@dataclass(frozen=True, slots=True)
class LogStats:
    """Counters since the log was opened (for `signet_audit_*` metrics); `torn_bytes` is what a
    crash left at the end of the newest segment when it was opened."""

    written: int
    dropped: int
    checkpoints: int
    write_errors: int
    torn_bytes: int


class DecisionLog:
    def __init__(
        self,
        directory: Path | str,
        signer: Signer,
        *,
        replica: str | None = None,
        settings: LogSettings | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Open (or create) `directory/replica/` and continue its chain. Raises OSError when the
        directory cannot be written or another process has this replica's log open, and
        ValueError when the newest segment's last line is not one of ours."""
        self.replica = check_replica(replica or socket.gethostname())
        self.settings = settings or LogSettings()
        self.path = Path(directory) / self.replica
        self._signer = signer
        self._clock = clock
        self._queue: queue.Queue[object] = queue.Queue(self.settings.queue_records)
        self._drop_lock = threading.Lock()
        self._last_warning = self._last_error = -float("inf")
        self._closing = False
        self._written = self._dropped = self._checkpoints = self._write_errors = 0
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock_fd = _lock(self.path / _LOCK_FILE)
        try:
            self._seq, self._prev, self._segment, self._torn = _recover(self.path)
        except BaseException:
            os.close(self._lock_fd)
            raise
        # The thread's own state: the open segment and what is not sealed yet.
        self._fd: int | None = None
        self._size = 0
        self._first_seq = self._count = self._unsealed = 0
        self._head = GENESIS
        self._unsealed_since = 0.0
        self._thread = threading.Thread(target=self._run, name="signet-audit", daemon=True)
        self._thread.start()

    @property
    def stats(self) -> LogStats:
        return LogStats(
            self._written, self._dropped, self._checkpoints, self._write_errors, self._torn
        )

    def submit(self, decisions: Sequence[Decision]) -> bool:
        """Queue `decisions` to be written; False when some were dropped (queue full, closed)."""
        try:
            if self._closing:
                self._drop(len(decisions))
                return False
            for index, decision in enumerate(decisions):
                try:
                    self._queue.put_nowait(decision)
                except queue.Full:
                    self._drop(len(decisions) - index)
                    return False
            return True
        except Exception:  # the caller is answering an admission request: never raise into it
            log.exception("could not queue decisions for the audit log")
            return False

    def close(self, timeout: float | None = None) -> None:
        """Write what is queued, seal it with a checkpoint, and stop the thread."""
        if not self._closing:
            self._closing = True
            self._queue.put(_STOP)
        self._thread.join(timeout)
        if not self._thread.is_alive() and self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def __enter__(self) -> DecisionLog:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _drop(self, count: int) -> None:
        with self._drop_lock:
            self._dropped += count
            now = time.monotonic()
            if now - self._last_warning >= self.settings.warn_every:
                self._last_warning = now
                log.warning(
                    "the audit log is not keeping up (queue of %d full, or closed): "
                    "%d decisions dropped so far",
                    self.settings.queue_records,
                    self._dropped,
                )

    # The thread.

    def _run(self) -> None:
        while True:
            item = self._next()
            if item is _STOP:
                break
            if item is not None:
                self._guarded(self._append, item)
            if (
                self._fd is not None
                and self._unsealed
                and (
                    self._unsealed >= self.settings.checkpoint_records
                    or time.monotonic() - self._unsealed_since >= self.settings.checkpoint_seconds
                )
            ):
                self._guarded(self._seal, False)
        while True:  # what was queued after the stop (a submit racing close)
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP:
                self._guarded(self._append, item)
        if self._unsealed:
            self._guarded(self._seal, False)
        self._abandon()

    def _next(self) -> object:
        """The next queued item, or None when a time-based checkpoint is due first."""
        timeout = None
        if self._unsealed and self._fd is not None:  # else nothing to seal until a record
            due = self._unsealed_since + self.settings.checkpoint_seconds
            timeout = max(0.0, due - time.monotonic())
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def _guarded(self, step: Callable[..., None], *args: object) -> None:
        try:
            step(*args)
        except Exception as exc:  # a full disk, a signing token gone: count, keep the thread
            self._write_errors += 1
            now = time.monotonic()
            if now - self._last_error >= self.settings.warn_every:  # a full disk: not each time
                self._last_error = now
                log.exception(
                    "audit log %s: %s failed (%d errors so far)",
                    self.path,
                    step.__name__.lstrip("_"),
                    self._write_errors,
                )
            if isinstance(exc, OSError):  # what reached the file is unknown: start afresh
                self._abandon()

    def _append(self, decision: object) -> None:
        if not isinstance(decision, Decision):
            raise TypeError(f"not a Decision: {type(decision).__name__}")
        line = record_line(self._seq, self._prev, decision)
        if self._fd is None:
            self._open_segment()
        self._write(line)
        if not self._count:
            self._first_seq = self._seq
        if not self._unsealed:
            self._unsealed_since = time.monotonic()
        self._head = self._prev = line_hash(line)
        self._seq += 1
        self._count += 1
        self._unsealed += 1
        self._written += 1
        if self._size >= self.settings.segment_bytes:
            self._seal(True)

    def _seal(self, rotate: bool) -> None:
        """Write a checkpoint over the segment so far and fsync; close the segment if `rotate`."""
        if self._fd is None or not self._unsealed:
            return
        # Should signing fail, the time-based retry waits a full period, not a busy loop.
        self._unsealed_since = time.monotonic()
        checkpoint = Checkpoint(
            replica=self.replica,
            segment=self._segment,
            first_seq=self._first_seq,
            last_seq=self._seq - 1,
            count=self._count,
            head=self._head,
            time=float(self._clock()),
        )
        line = checkpoint_line(checkpoint, self._signer)
        self._write(line)
        os.fsync(self._fd)
        self._prev = line_hash(line)
        self._unsealed = 0
        self._checkpoints += 1
        if rotate:
            self._abandon()

    def _open_segment(self) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
        self._fd = os.open(self.path / segment_name(self._segment), flags, 0o644)
        self._size = self._count = 0
        directory = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def _write(self, line: bytes) -> None:
        assert self._fd is not None
        view = memoryview(line + b"\n")
        while view:
            written = os.write(self._fd, view)
            self._size += written
            view = view[written:]

    def _abandon(self) -> None:
        """Close the open segment; the next record starts the next one."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            self._segment += 1
            with contextlib.suppress(OSError):
                os.close(fd)


def _lock(path: Path) -> int:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise OSError(f"{path.parent}: another process has this replica's audit log open") from None
    return fd


def _recover(path: Path) -> tuple[int, str, int, int]:
    """(next seq, prev, next segment number, torn bytes) for continuing the chain in `path`.

    A new segment is always started: a segment once closed, cleanly or by a crash, is never
    written again. Bytes after the newest segment's last newline are a torn line from a crash;
    they are left in place (verify reports them) and the chain continues from the last whole
    line."""
    numbers = sorted(n for p in path.iterdir() if (n := segment_number(p.name)) is not None)
    torn = 0
    for number in reversed(numbers):
        data = (path / segment_name(number)).read_bytes()
        end = data.rfind(b"\n")
        torn += len(data) - (end + 1)
        if end < 0:
            continue
        last = data[data.rfind(b"\n", 0, end) + 1 : end]
        try:
            parsed = parse_line(last)
        except ValueError as exc:
            raise ValueError(
                f"{path / segment_name(number)}: the last line is not an audit record or "
                f"checkpoint ({exc}); check the log with `signet audit verify`"
            ) from None
        seq = parsed.seq if isinstance(parsed, RecordLine) else parsed.checkpoint.last_seq
        if torn:
            log.warning(
                "audit log %s: %d bytes of a torn line (a crash while writing) after the last "
                "whole line; continuing the chain from it in a new segment",
                path,
                torn,
            )
        return seq + 1, line_hash(last), numbers[-1] + 1, torn
    return 1, GENESIS, (numbers[-1] + 1) if numbers else 1, torn
