"""Judging at a fixed time of verification, and reports compared without their signing times."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import TypeVar

from signet.model.report import AttestationFact, Report, SignatureFact

__all__ = ["NOW", "unstamped"]

F = TypeVar("F", SignatureFact, AttestationFact)

# The time of verification the helpers judge at.
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def unstamped(report: Report) -> Report:
    """The report with its key-based facts' signing times taken out, once checked: each says
    it was judged at the time of verification (`NOW`). (test_lifecycle tests the times.)"""

    def strip(fact: F) -> F:
        if fact.keyless is not None:
            assert fact.time_source in ("transparency-log", "timestamp-authority")
            return fact
        assert (fact.signed_at, fact.time_source) == ("2026-06-01T12:00:00Z", "verification-time")
        return dataclasses.replace(fact, signed_at=None, time_source=None)

    return dataclasses.replace(
        report,
        signatures=tuple(strip(s) for s in report.signatures),
        attestations=tuple(strip(a) for a in report.attestations),
    )
