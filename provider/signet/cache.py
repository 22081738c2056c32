"""Bounded caches with per-entry lifetimes, and single-flight: one computation per key at a time.

Only deterministic answers are ever stored; a transient failure propagates to every waiter of that
flight and is not remembered.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from cachetools import TLRUCache

__all__ = ["ExpiringCache", "SingleFlight"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ExpiringCache(Generic[K, V]):
    """A size-bounded map whose entries each expire after the lifetime given when stored."""

    def __init__(self, maxsize: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._cache: TLRUCache[K, tuple[float, V]] = TLRUCache(
            maxsize=maxsize, ttu=_expiry, timer=clock
        )
        self._clock = clock

    def get(self, key: K) -> V | None:
        entry = self._cache.get(key)
        return None if entry is None else entry[1]

    def put(self, key: K, value: V, lifetime: float) -> None:
        if lifetime > 0:
            self._cache[key] = (self._clock() + lifetime, value)

    def clear(self) -> None:
        self._cache.clear()

    def __len__(self) -> int:
        return len(self._cache)


def _expiry(_key: object, value: tuple[float, object], _now: float) -> float:
    return value[0]


class SingleFlight(Generic[K, V]):
    """Concurrent callers for one key share one running computation and its result or error.

    The computation runs as its own task, shielded from any one caller's cancellation, so a
    caller whose deadline passes does not waste the work for the callers still waiting (and the
    result still reaches the cache). `work` must bound its own running time.
    """

    def __init__(self) -> None:
        self._flights: dict[K, asyncio.Future[V]] = {}

    async def run(self, key: K, work: Callable[[], Awaitable[V]]) -> V:
        task = self._flights.get(key)
        if task is None:
            task = asyncio.ensure_future(work())
            self._flights[key] = task
            task.add_done_callback(functools.partial(self._forget, key))
        return await asyncio.shield(task)

    def _forget(self, key: K, task: asyncio.Future[V]) -> None:
        if self._flights.get(key) is task:
            del self._flights[key]
        if not task.cancelled():
            task.exception()  # retrieved here, so an unawaited failure is never logged as lost

    def __len__(self) -> int:
        return len(self._flights)
