"""The serving loop's pulse, read by the probes' listener (which runs in a thread of its own).

The kubelet probes a plain-HTTP port served by another thread, so a probe answered there says
nothing about the loop that answers Gatekeeper unless it asks that loop. The loop beats (a task
of the app's lifespan); the probes read the last beat:

- ready: the HTTPS server has started and its loop beat within `stale_after` seconds;
- live: not started yet (starting is not a failure), or beating — a loop stuck for longer than
  `stale_after` (a blocking call, a deadlock) fails liveness, and the kubelet restarts the Pod.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

__all__ = ["Heartbeat"]


class Heartbeat:
    def __init__(
        self,
        started: Callable[[], bool],
        *,
        interval: float = 0.5,
        stale_after: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._started = started
        self._interval = interval
        self._stale_after = stale_after
        self._clock = clock
        self._last: float | None = None

    def beat(self) -> None:
        self._last = self._clock()

    async def run(self) -> None:
        while True:
            self.beat()
            await asyncio.sleep(self._interval)

    def _fresh(self) -> bool:
        return self._last is not None and self._clock() - self._last < self._stale_after

    def ready(self) -> bool:
        return self._started() and self._fresh()

    def live(self) -> bool:
        return not self._started() or self._fresh()
