"""Verdicts shared by the replicas, so N replicas verify a new image about once, not N times.

The engine asks `lookup` on a local verdict miss, before verifying, and hands every verdict it
reached itself to `share`. Neither can admit anything on its own, and neither can make a request
wait long:

- A stored verdict counts only when it unseals (`envelope`: MAC, key, expiry, strict report);
  anything else is counted as `invalid`, logged now and then, and the replica verifies.
- Cross-replica single flight, where it is cheap: a replica that misses claims the image
  (`SET … NX PX claim_ttl`). One that finds it claimed polls for the verdict for at most `wait`,
  and stops early when the claim goes; then it verifies the image itself.
- Every call to the store is bounded by `timeout`; a call that fails or times out opens the
  breaker, and for `backoff` seconds the store is not asked at all, so a dead or hung store costs
  one timeout per `backoff`, not one per image. Store down, slow or full: verify locally.

Metrics: `signet_cache_lookups_total{cache="shared",result=hit|miss|invalid|error}` (`error`:
the store did not answer, or is being left alone after a failure), and
`signet_shared_cache_errors_total{operation}` for each failed call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from signet.model.report import Report
from signet.observe.metrics import Metrics
from signet.service.shared.config import SharedCacheSettings
from signet.service.shared.envelope import InvalidVerdict, VerdictKey, names, seal, unseal

if TYPE_CHECKING:
    from signet.service.shared.store import Store

__all__ = ["SharedVerdicts"]

log = logging.getLogger("signet.shared")

T = TypeVar("T")

# Verdicts being written at once; past this, a verdict is simply not shared.
_MAX_WRITES = 1024
# The same complaint is logged at most once per this many seconds.
_LOG_EVERY = 60.0


class SharedVerdicts:
    def __init__(
        self,
        store: Store,
        settings: SharedCacheSettings,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self.settings = settings
        self._clock, self._wall = clock, wall
        self._token = os.urandom(8).hex().encode()  # who holds a claim (for a person reading)
        self._closed_until = 0.0  # the breaker: no call to the store before this
        self._down = False
        self._stopped = False
        self._writes: set[asyncio.Task[None]] = set()
        self._logged: dict[str, tuple[float, int]] = {}
        self._results = {
            result: metrics.cache.labels("shared", result)
            for result in ("hit", "miss", "invalid", "error")
        }
        self._errors = {
            operation: metrics.shared_errors.labels(operation)
            for operation in ("get", "claim", "put", "ping")
        }

    # -- the engine's two calls ----------------------------------------------------------------

    async def lookup(self, key: VerdictKey) -> tuple[Report, float] | None:
        """Another replica's verdict and how long it stays good (seconds), or None: verify here.

        None comes at once when the store has no usable verdict and this replica now claims the
        image; after at most `wait` when another replica had claimed it and did not answer in
        time; and within `timeout` when the store fails."""
        if not self._available():
            self._results["error"].inc()
            return None
        name, claim = names(self.settings.secret, key)
        invalid: list[InvalidVerdict] = []
        try:
            (value,) = await self._call("get", self._store.get(name))
            found = self._unseal(key, value, invalid)
            if found is None:
                claiming = self._store.put(
                    claim, self._token, self.settings.claim_ttl, only_if_absent=True
                )
                claimed = await self._call("claim", claiming)
                if not claimed:
                    found = await self._await_claimant(key, name, claim, invalid)
        except _StoreFailed:
            self._results["error"].inc()
            return None
        if found is not None:
            self._results["hit"].inc()
        elif invalid:
            self._results["invalid"].inc()
            self._now_and_then("invalid", "ignored a shared verdict for %s: %s", key, invalid[-1])
        else:
            self._results["miss"].inc()
        return found

    def share(self, key: VerdictKey, report: Report, lifetime: float) -> None:
        """Store a verdict reached here, for `lifetime` seconds, in the background."""
        if lifetime <= 0 or not self._available() or len(self._writes) >= _MAX_WRITES:
            return
        value = seal(self.settings.secret, key, report, self._wall() + lifetime)
        name, _ = names(self.settings.secret, key)
        task = asyncio.get_running_loop().create_task(self._write(name, value, lifetime))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    # -- the lifespan --------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, so the first lookup finds a connection; never fails: a store that is down
        at start-up only means verifying locally until it answers."""
        try:
            await self._call("ping", self._store.ping())
        except _StoreFailed:
            return
        log.info("shared verdict cache: %s", self.settings.where)

    async def aclose(self) -> None:
        """Let the writes in flight finish (each is bounded by the timeout), then disconnect."""
        self._stopped = True  # verdicts landing from now on are not shared
        if self._writes:
            await asyncio.wait(set(self._writes), timeout=2 * self.settings.timeout)
        for task in set(self._writes):
            task.cancel()
        await self._store.aclose()

    # -- inside --------------------------------------------------------------------------------

    async def _await_claimant(
        self, key: VerdictKey, name: str, claim: str, invalid: list[InvalidVerdict]
    ) -> tuple[Report, float] | None:
        """Poll for the verdict of the replica that claimed the image, while its claim holds,
        for at most `wait` seconds."""
        give_up = self._clock() + self.settings.wait
        while (left := give_up - self._clock()) > 0:
            await asyncio.sleep(min(self.settings.poll, left))
            value, held = await self._call("get", self._store.get(name, claim))
            found = self._unseal(key, value, invalid)
            if found is not None or held is None:
                return found
        return None

    def _unseal(
        self, key: VerdictKey, value: bytes | None, invalid: list[InvalidVerdict]
    ) -> tuple[Report, float] | None:
        if value is None:
            return None
        now = self._wall()
        try:
            report, expires = unseal(self.settings.secret, key, value, now)
        except InvalidVerdict as problem:
            invalid.append(problem)
            return None
        return report, expires - now

    async def _write(self, name: str, value: bytes, lifetime: float) -> None:
        with contextlib.suppress(_StoreFailed):  # counted and logged; the verdict is not shared
            await self._call("put", self._store.put(name, value, lifetime))

    def _available(self) -> bool:
        return not self._stopped and self._clock() >= self._closed_until

    async def _call(self, operation: str, call: Awaitable[T]) -> T:
        """One bounded call to the store; any failure opens the breaker (raises _StoreFailed)."""
        try:
            async with asyncio.timeout(self.settings.timeout):
                result = await call
        except Exception as exc:  # the store's errors, timeouts, and anything unforeseen alike
            self._errors[operation].inc()
            self._closed_until = self._clock() + self.settings.backoff
            self._down = True
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            self._now_and_then(
                "error",
                "shared verdict cache %s: %s failed (%s); verifying locally, and not asking "
                "it again for %ss",
                self.settings.where,
                operation,
                reason,
                self.settings.backoff,
            )
            raise _StoreFailed from None
        if self._down:
            self._down = False
            log.info("shared verdict cache %s answers again", self.settings.where)
        return result

    def _now_and_then(self, kind: str, message: str, *args: object) -> None:
        """A warning at most once per _LOG_EVERY seconds per kind, saying how many were not
        logged in between (a flood of forged values or failures is one line a minute)."""
        now = self._clock()
        last, skipped = self._logged.get(kind, (float("-inf"), 0))
        if now - last < _LOG_EVERY:
            self._logged[kind] = (last, skipped + 1)
            return
        self._logged[kind] = (now, 0)
        if skipped:
            message += f" ({skipped} more since the last such message)"
        log.warning(message, *args)


class _StoreFailed(Exception):
    """A call to the store failed; already counted and logged."""
