"""What the console reads from the decision log: recent decisions, and each signer's use.

The log is scanned, not indexed (see signet.audit.query), over a time window, and without keys:
what is shown is not verified (`signet audit verify` checks the chain), and the page says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from signet.audit.query import Filter, Match, query
from signet.audit.record import Decision

__all__ = ["Recent", "Usage", "recent", "searched", "usage"]


@dataclass(frozen=True, slots=True)
class Recent:
    matches: tuple[Match, ...]  # newest first
    total: int  # how many matched in the window (more than shown when over the limit)
    skipped: int  # lines that did not parse


@dataclass(frozen=True, slots=True)
class Usage:
    last_used: float
    images: int  # distinct digests


def searched(decision: Decision, search: str) -> bool:
    """The search box: a substring of the image, digest, an attestor, a reason or the error."""
    if not search:
        return True
    fields: Sequence[str | None] = (
        decision.key,
        decision.digest,
        decision.error,
        *decision.verified,
        *decision.reasons,
        *(s.attestor for s in decision.signers),
        *(s.identity for s in decision.signers),
    )
    folded = search.casefold()
    return any(field is not None and folded in field.casefold() for field in fields)


def recent(
    directory: Path, where: Filter, search: str, limit: int, exact_image: str = ""
) -> Recent:
    result = query(directory, where)
    kept = [
        m
        for m in result.matches
        if searched(m.decision, search) and (not exact_image or m.decision.key == exact_image)
    ]
    return Recent(tuple(reversed(kept[-limit:])), len(kept), result.skipped)


def usage(directory: Path, since: float) -> dict[tuple[str, str], Usage]:
    """(attestor, key id or "keyless") → when it last signed an admitted digest, and how many."""
    last: dict[tuple[str, str], float] = {}
    digests: dict[tuple[str, str], set[str]] = {}
    for match in query(directory, Filter(since=since)).matches:
        decision = match.decision
        for signer in decision.signers:
            key = (signer.attestor, signer.key)
            last[key] = max(last.get(key, 0.0), decision.time)
            if decision.digest is not None:
                digests.setdefault(key, set()).add(decision.digest)
    return {key: Usage(when, len(digests.get(key, ()))) for key, when in last.items()}
