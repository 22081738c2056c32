"""Answers and decisions: each key's outcome, encoded once, and the record of every decision.

An `Answer` carries its ProviderResponse item and its log fields already encoded, so the warm
path writes bytes it has. `Decisions.record` writes one JSON line per decision (the log pipelines'
record) and counts each by reason (`signet_decisions_total`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from signet.alerts import Alerts
from signet.audit.record import Decision, SignerFact
from signet.audit.writer import DecisionLog
from signet.model.report import Report
from signet.observe.metrics import Metrics
from signet.reasons import TransientFailure

__all__ = ["Answer", "Decisions", "Outcome"]

decision_log = logging.getLogger("signet.decision")


@dataclass(frozen=True, slots=True)
class Answer:
    """A report, with its ProviderResponse item and its log fields already encoded."""

    report: Report
    item: bytes
    log_fields: str
    reason: str
    signers: tuple[SignerFact, ...]  # for the decision log

    @classmethod
    def of(cls, key: str, report: Report) -> Answer:
        item = json.dumps({"key": key, "value": report.to_json()}, separators=(",", ":"))
        reasons = [str(r) for r in report.reasons]
        entry: dict[str, object] = {
            "key": key,
            "digest": report.digest,
            "verified": list(report.verified),
            "reasons": reasons,
        }
        if report.stale is not None:
            entry["stale"] = report.stale.to_json()
        fields = json.dumps(entry, separators=(",", ":"))[1:-1]
        signers = tuple(
            SignerFact(
                fact.attestor,
                fact.key,
                fact.format,
                fact.keyless.subject if fact.keyless else None,
                fact.keyless.issuer if fact.keyless else None,
            )
            for fact in report.signatures
        )
        return cls(report, item.encode(), fields, reasons[0] if reasons else "OK", signers)


Outcome = Answer | TransientFailure


class Decisions:
    def __init__(
        self, metrics: Metrics, audit: DecisionLog | None = None, alerts: Alerts | None = None
    ) -> None:
        self._metrics = metrics
        self._audit = audit  # the tamper-evident decision log, when there is one
        self._alerts = alerts  # the anomaly alerts, when they are on
        self._by_reason: dict[str, Any] = {}
        self._pending: list[str] = []

    def record(
        self,
        keys: Sequence[str],
        outcomes: Sequence[Outcome],
        computed: Iterable[int],
        duration_ms: float,
        trust: str,
    ) -> None:
        """One JSON line per decision, written in one call per request (the log is the hot path),
        and with a decision log, one record each (queued: written off the request's path)."""
        fresh = set(computed)
        moment = time.time()
        if self._audit is not None or self._alerts is not None:
            records = _records(keys, outcomes, fresh, trust, moment)
            if self._audit is not None:
                self._audit.submit(records)
            if self._alerts is not None:
                self._alerts.observe(records)
        head = (
            f'{{"time":{moment:.3f},"level":"info","logger":"signet.decision",'
            '"message":"decision","event":"decision",'
        )
        tail = f',"duration_ms":{duration_ms:.2f},"cached":'
        cached_tail, fresh_tail = tail + "true}", tail + "false}"
        lines = []
        reasons: dict[str, int] = {}
        for index, (key, outcome) in enumerate(zip(keys, outcomes, strict=True)):
            if isinstance(outcome, Answer):
                fields = outcome.log_fields
                reason = outcome.reason
            else:
                fields = json.dumps(
                    {
                        "key": key,
                        "digest": None,
                        "verified": [],
                        "reasons": [str(outcome.reason)],
                        "error": outcome.message,
                    },
                    separators=(",", ":"),
                )[1:-1]
                reason = outcome.reason
            reasons[reason] = reasons.get(reason, 0) + 1
            lines.append(head + fields + (fresh_tail if index in fresh else cached_tail))
        for reason, count in reasons.items():
            counter = self._by_reason.get(reason)
            if counter is None:
                counter = self._by_reason[reason] = self._metrics.decisions.labels(reason)
            counter.inc(count)
        if lines and decision_log.isEnabledFor(logging.INFO):
            self._write(lines)

    def _write(self, lines: list[str]) -> None:
        """The lines of every request answered in one turn of the event loop, logged in one
        call at its end (under load, one write for many requests); at once off the loop."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            decision_log.info("\n".join(lines))
            return
        if not self._pending:
            loop.call_soon(self.flush)
        self._pending.extend(lines)

    def flush(self) -> None:
        """Log the lines still waiting for the end of the loop's turn (at shutdown)."""
        lines, self._pending = self._pending, []
        if lines:
            decision_log.info("\n".join(lines))


def _records(
    keys: Sequence[str], outcomes: Sequence[Outcome], fresh: set[int], trust: str, now: float
) -> list[Decision]:
    request = os.urandom(8).hex()  # ties together the decisions of one request
    records = []
    for index, (key, outcome) in enumerate(zip(keys, outcomes, strict=True)):
        if isinstance(outcome, Answer):
            report = outcome.report
            records.append(
                Decision(
                    now,
                    request,
                    key,
                    report.digest,
                    report.verified,
                    outcome.signers,
                    tuple(str(reason) for reason in report.reasons),
                    None,
                    trust,
                    index not in fresh,
                    stale=report.stale is not None,
                )
            )
        else:
            records.append(
                Decision(
                    now,
                    request,
                    key,
                    None,
                    reasons=(str(outcome.reason),),
                    error=outcome.message,
                    trust=trust,
                    cached=False,
                )
            )
    return records
