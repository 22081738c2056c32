"""A bounded cache with per-entry lifetimes. Only deterministic answers are ever stored in it.

The warm path looks up every key of every request here, so a hit is one dictionary lookup, one
clock read and one move to the recently-used end, all in C (an `OrderedDict`); cachetools'
`TLRUCache` spent ~40 % of a warm 16-key request in its Python-level bookkeeping (BENCHMARKS).
"""

from __future__ import annotations

import heapq
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["ExpiringCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ExpiringCache(Generic[K, V]):
    """A size-bounded map whose entries each expire after the lifetime given when stored.

    When full, expired entries go first, then the least recently used. An entry is gone at the
    moment its lifetime ends (`expiry <= now`)."""

    def __init__(self, maxsize: int, clock: Callable[[], float] = time.monotonic) -> None:
        if maxsize < 1:
            raise ValueError(f"a cache holds at least one entry, not {maxsize}")
        self._maxsize = maxsize
        self._clock = clock
        # key -> (expiry, sequence of the put, value), least recently used first.
        self._entries: OrderedDict[K, tuple[float, int, V]] = OrderedDict()
        # (expiry, sequence, key) of every put, some superseded since: what expires first.
        self._expiries: list[tuple[float, int, K]] = []
        self._sequence = 0

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry[2]

    def put(self, key: K, value: V, lifetime: float) -> None:
        if lifetime <= 0:
            return
        now = self._clock()
        expiry = now + lifetime
        self._sequence += 1
        self._entries[key] = (expiry, self._sequence, value)
        self._entries.move_to_end(key)
        heapq.heappush(self._expiries, (expiry, self._sequence, key))
        if len(self._entries) > self._maxsize:
            self._evict(now)
        if len(self._expiries) > 2 * self._maxsize:
            self._compact()

    def _evict(self, now: float) -> None:
        while self._expiries and self._expiries[0][0] <= now:
            _, sequence, key = heapq.heappop(self._expiries)
            entry = self._entries.get(key)
            if entry is not None and entry[1] == sequence:  # not a put superseded since
                del self._entries[key]
        while len(self._entries) > self._maxsize:
            self._entries.popitem(last=False)

    def _compact(self) -> None:
        """Drop the heap's superseded and evicted puts (it holds at most 2 × maxsize)."""
        self._expiries = [
            item
            for item in self._expiries
            if (entry := self._entries.get(item[2])) is not None and entry[1] == item[1]
        ]
        heapq.heapify(self._expiries)

    def clear(self) -> None:
        self._entries.clear()
        self._expiries.clear()

    def __len__(self) -> int:
        return len(self._entries)
