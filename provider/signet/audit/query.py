"""Finding decisions in a log: filters, and the replicas' chains merged in time order.

A scan, not an index: the log is append-only JSON lines read offline, a scan of a few hundred
megabytes takes seconds, and an index would be a second copy of the records that verification
does not cover (a tampered index would answer for a log that verifies). With keys, the scan *is*
the verification (`verify_log` hands each record over as it checks it), so what is printed is
what was verified, read once. Without keys, lines that do not parse are skipped and counted.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from signet.audit.chain import RecordLine, parse_line, segment_number
from signet.audit.record import Decision
from signet.audit.verify import Verification, replicas, verify_log
from signet.crypto.keys import PublicKey

__all__ = ["Filter", "Match", "Result", "parse_time", "query"]

_EPOCH: Final = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_RELATIVE: Final = re.compile(r"([0-9]+)([smhd])")
_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_time(text: str, now: float) -> float:
    """Unix seconds from RFC 3339 with a time zone (`2026-12-02T16:00:00Z`), Unix seconds
    (`1764691200`, `1764691200.5`) or a duration before `now` (`90s`, `30m`, `1h`, `7d`)."""
    text = text.strip()
    if _EPOCH.fullmatch(text):
        return float(text)
    relative = _RELATIVE.fullmatch(text)
    if relative:
        return now - int(relative.group(1)) * _UNITS[relative.group(2)]
    try:
        when = datetime.datetime.fromisoformat(text.upper())  # RFC 3339 allows "t" and "z"
    except ValueError:
        when = None
    if when is None or "T" not in text.upper() or when.tzinfo is None:
        raise ValueError(
            f"{text!r} is not a time: expected RFC 3339 with a time zone "
            "(2026-12-02T16:00:00Z), Unix seconds (1764691200) or a duration before now "
            "(90s, 30m, 1h, 7d)"
        )
    return when.timestamp()


@dataclass(frozen=True, slots=True)
class Filter:
    """What a decision must match; every filter given must hold. `image` is a substring of the
    image as written (case-sensitive), the others are exact; `since` is inclusive, `until`
    exclusive."""

    digest: str | None = None
    image: str | None = None
    attestor: str | None = None  # an attestor that verified, or signed
    key_id: str | None = None  # a signer's key id, or "keyless"
    reason: str | None = None
    since: float | None = None
    until: float | None = None

    def matches(self, decision: Decision) -> bool:
        signers = decision.signers
        return (
            (self.digest is None or decision.digest == self.digest)
            and (self.image is None or self.image in decision.key)
            and (
                self.attestor is None
                or self.attestor in decision.verified
                or any(s.attestor == self.attestor for s in signers)
            )
            and (self.key_id is None or any(s.key == self.key_id for s in signers))
            and (self.reason is None or self.reason in decision.reasons)
            and (self.since is None or decision.time >= self.since)
            and (self.until is None or decision.time < self.until)
        )


@dataclass(frozen=True, slots=True)
class Match:
    replica: str
    seq: int
    decision: Decision

    def to_json(self) -> dict[str, Any]:
        return {"replica": self.replica, "seq": self.seq, "decision": self.decision.to_json()}


@dataclass(frozen=True, slots=True)
class Result:
    """The matches, oldest first; `verification` when keys were given (check its failures
    before trusting the matches), else None and `skipped` counts lines that did not parse."""

    matches: tuple[Match, ...]
    verification: Verification | None
    skipped: int = 0


def query(
    directory: Path,
    where: Filter,
    keys: Iterable[PublicKey] | None = None,
    limit: int | None = None,
) -> Result:
    """The decisions under `directory` that match `where`, merged across replicas by time
    (ties by replica and seq), the first `limit` of them. With `keys`, the log is verified in
    the same pass; the matches of a log that fails verification are not returned."""
    collector = _Collector(where, limit)
    if keys is not None:
        verification = verify_log(directory, keys, collector.add)
        if verification.failures:
            return Result((), verification)
        return Result(collector.result(), verification)
    skipped = 0
    for replica in replicas(directory):
        for line in _lines(directory / replica):
            try:
                parsed = parse_line(line)
            except ValueError:
                skipped += 1
                continue
            if isinstance(parsed, RecordLine):
                collector.add(replica, parsed.seq, parsed.decision)
    return Result(collector.result(), None, skipped)


class _Collector:
    """Keeps the matches; with a limit, no more than about twice that many at a time."""

    def __init__(self, where: Filter, limit: int | None) -> None:
        self._where = where
        self._limit = limit
        self._matches: list[Match] = []

    def add(self, replica: str, seq: int, decision: Decision) -> None:
        if not self._where.matches(decision):
            return
        self._matches.append(Match(replica, seq, decision))
        if self._limit is not None and len(self._matches) > 2 * self._limit + 1024:
            self._trim()

    def result(self) -> tuple[Match, ...]:
        self._trim()
        return tuple(self._matches)

    def _trim(self) -> None:
        self._matches.sort(key=_order)
        if self._limit is not None:
            del self._matches[self._limit :]


def _order(match: Match) -> tuple[float, str, int]:
    return match.decision.time, match.replica, match.seq


def _lines(path: Path) -> Iterable[bytes]:
    """The whole lines of a replica's segments, in order (a torn last line is left out)."""
    segments = sorted((n, p) for p in path.iterdir() if (n := segment_number(p.name)) is not None)
    for _, segment in segments:
        yield from segment.read_bytes().split(b"\n")[:-1]
