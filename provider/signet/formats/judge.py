"""All evidence for one digest, judged by every format under one budget and merged into a report.

This is the one function verification workers run (`judge`): a module-level function over frozen
values, so it can be sent to a worker process. Each format contributes a field to `Evidence`
(filled by its `discover`), a `verify` returning a `Verdict`, and an `estimated_checks`; adding a
format adds one of each here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from signet.formats.cosign_classic import verify as classic
from signet.formats.sigstore_bundle import verify as bundles
from signet.formats.verdict import Budget, merge
from signet.model.report import Report
from signet.trust.model import TrustConfig

__all__ = ["MAX_SIGNATURE_CHECKS", "Evidence", "estimated_checks", "judge"]

# Verifications per image: 5 attestors x 2 keys x 25 signatures with room to spare. At ~1.8 ms
# for the costliest check (P-521) an image costs at most ~0.5 s of one core.
MAX_SIGNATURE_CHECKS: Final = 256


@dataclass(frozen=True, slots=True)
class Evidence:
    classic: classic.ClassicEvidence | None = None
    bundles: bundles.BundleEvidence | None = None


def estimated_checks(
    evidence: Evidence, trust: TrustConfig, limit: int = MAX_SIGNATURE_CHECKS
) -> int:
    """The most verifications `judge` can spend on this evidence (to order the work queue)."""
    total = classic.estimated_checks(evidence.classic, trust, limit)
    return min(limit, total + bundles.estimated_checks(evidence.bundles, trust, limit))


def judge(
    image: str,
    digest: str,
    evidence: Evidence,
    trust: TrustConfig,
    *,
    max_checks: int = MAX_SIGNATURE_CHECKS,
    now: datetime | None = None,
) -> Report:
    """The report for `digest` (the exact digest being admitted) from all its evidence, judged
    at `now` (the time of verification; default: the clock's). Key validity windows are judged
    at that time, so the report is good only until the next window boundary of the trust
    config (`Report.valid_until`)."""
    now = now or datetime.now(UTC)
    budget = Budget(max_checks)
    verdicts = (
        classic.verify(image, digest, evidence.classic, trust, budget, now),
        bundles.verify(image, digest, evidence.bundles, trust, budget, now),
    )
    report = merge(image, digest, trust, verdicts)
    if not trust.evidence.attestations:  # not looked for: an unannounced one is not reported
        report = dataclasses.replace(report, attestations=())
    boundary = trust.next_boundary(now)
    if boundary is None:
        return report
    return dataclasses.replace(report, valid_until=boundary.timestamp())
