"""A request budget per registry host: a token bucket, so Signet never floods a registry.

Each host may be called `rate` times a second on average, with bursts of up to `burst`. A call
that finds the bucket empty waits for its token at most `max_wait` seconds; past that it fails
at once (`REGISTRY_RATE_LIMITED`, transient, never cached) rather than holding an admission, and
the registry never sees the call — a registry that rate-limits by its own measure (429,
`Retry-After`) is the breaker's business (see `breaker`). Hosts come from the images requests
name, so at most `max_hosts` buckets are kept (least recently used first out; a forgotten host
starts again with a full bucket).
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable
from dataclasses import dataclass

from signet.reasons import Reason, TransientFailure

__all__ = ["BudgetSettings", "Budgets"]


@dataclass(frozen=True, slots=True)
class BudgetSettings:
    rate: float = 0.0  # calls per second per host, on average; 0 (the default): no budget
    burst: int = 100
    max_wait: float = 0.25
    max_hosts: int = 1024

    def __post_init__(self) -> None:
        if self.rate < 0 or self.burst < 1 or self.max_wait < 0 or self.max_hosts < 1:
            raise ValueError("a registry budget needs rate >= 0, burst >= 1, max_wait >= 0")


@dataclass
class _Bucket:
    tokens: float
    updated: float


class Budgets:
    def __init__(
        self,
        settings: BudgetSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_wait: Callable[[str, str], None] | None = None,
    ) -> None:
        self.settings = settings or BudgetSettings()
        self._clock = clock
        self._on_wait = on_wait  # (host, "waited" | "refused"), for the metrics
        self._buckets: collections.OrderedDict[str, _Bucket] = collections.OrderedDict()

    async def take(self, host: str) -> None:
        """A token for one call to `host`, waiting at most `max_wait`; else TransientFailure."""
        wait = self._reserve(host)
        if wait <= 0:
            return
        if wait > self.settings.max_wait:
            self._unreserve(host)
            self._report(host, "refused")
            raise TransientFailure(
                Reason.REGISTRY_RATE_LIMITED,
                f"{host}: Signet's own budget for this registry ({self.settings.rate:g} calls/s, "
                f"bursts of {self.settings.burst}) is spent; retry shortly",
            )
        self._report(host, "waited")
        await asyncio.sleep(wait)

    def _reserve(self, host: str) -> float:
        """Take a token now (the balance may go negative: the seconds until it is ours)."""
        if self.settings.rate <= 0:
            return 0.0
        now = self._clock()
        bucket = self._buckets.get(host)
        if bucket is None:
            bucket = self._buckets[host] = _Bucket(float(self.settings.burst), now)
            if len(self._buckets) > self.settings.max_hosts:
                self._buckets.popitem(last=False)
        self._buckets.move_to_end(host)
        bucket.tokens = min(
            float(self.settings.burst), bucket.tokens + (now - bucket.updated) * self.settings.rate
        )
        bucket.updated = now
        bucket.tokens -= 1
        return 0.0 if bucket.tokens >= 0 else -bucket.tokens / self.settings.rate

    def _unreserve(self, host: str) -> None:
        bucket = self._buckets.get(host)
        if bucket is not None:
            bucket.tokens += 1

    def _report(self, host: str, result: str) -> None:
        if self._on_wait is not None:
            self._on_wait(host, result)
