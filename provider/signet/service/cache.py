"""A bounded cache with per-entry lifetimes. Only deterministic answers are ever stored in it."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from cachetools import TLRUCache

__all__ = ["ExpiringCache"]

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
