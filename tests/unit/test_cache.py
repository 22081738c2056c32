"""The expiring cache, with an injected clock."""

from __future__ import annotations

import pytest

from signet.service.cache import ExpiringCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def cache_with_clock(maxsize: int = 10) -> tuple[ExpiringCache[str, int], Clock]:
    clock = Clock()
    return ExpiringCache(maxsize=maxsize, clock=clock), clock


# -- ExpiringCache ----------------------------------------------------------------------------


def test_each_entry_expires_after_its_own_lifetime() -> None:
    cache, clock = cache_with_clock()
    cache.put("short", 1, 5)
    cache.put("long", 2, 50)
    clock.now += 4.999
    assert (cache.get("short"), cache.get("long")) == (1, 2)
    clock.now += 0.001  # exactly at the end of its lifetime: gone
    assert cache.get("short") is None
    assert cache.get("long") == 2
    clock.now += 45
    assert cache.get("long") is None


def test_storing_again_replaces_the_value_and_the_lifetime() -> None:
    cache, clock = cache_with_clock()
    cache.put("k", 1, 5)
    cache.put("k", 2, 100)
    clock.now += 50
    assert cache.get("k") == 2


@pytest.mark.parametrize("lifetime", [0, -1])
def test_a_lifetime_of_zero_or_less_is_not_stored(lifetime: float) -> None:
    cache, _ = cache_with_clock()
    cache.put("k", 1, lifetime)
    assert cache.get("k") is None
    assert len(cache) == 0


def test_the_size_is_bounded_and_the_least_recently_used_goes_first() -> None:
    cache, _ = cache_with_clock(maxsize=3)
    for i, key in enumerate("abc"):
        cache.put(key, i, 100)
    assert cache.get("a") == 0  # "a" is now the most recently used
    cache.put("d", 3, 100)
    assert len(cache) == 3
    assert cache.get("b") is None
    assert [cache.get(k) for k in "acd"] == [0, 2, 3]
    for i in range(100):
        cache.put(f"x{i}", i, 100)
    assert len(cache) == 3


def test_expired_entries_are_evicted_before_live_ones() -> None:
    cache, clock = cache_with_clock(maxsize=2)
    cache.put("soon", 1, 1)
    cache.put("later", 2, 100)
    clock.now += 2
    cache.put("new", 3, 100)
    assert (cache.get("later"), cache.get("new")) == (2, 3)


def test_clear() -> None:
    cache, _ = cache_with_clock()
    cache.put("k", 1, 100)
    cache.clear()
    assert cache.get("k") is None
    assert len(cache) == 0


def test_an_entry_stored_again_is_evicted_by_its_new_lifetime_not_its_old_one() -> None:
    cache, clock = cache_with_clock(maxsize=2)
    cache.put("other", 1, 100)
    cache.put("k", 2, 1)
    cache.put("k", 3, 100)
    clock.now += 2  # past k's first lifetime, not its second
    cache.put("new", 4, 100)  # full, nothing expired: the least recently used ("other") goes
    assert (cache.get("k"), cache.get("other"), cache.get("new")) == (3, None, 4)


def test_many_stores_of_the_same_keys_stay_bounded_and_correct() -> None:
    cache, clock = cache_with_clock(maxsize=4)
    for round_ in range(1000):
        for key in "abc":
            cache.put(key, round_, 10)
        clock.now += 0.001
    assert [cache.get(k) for k in "abc"] == [999, 999, 999]
    clock.now += 10
    assert [cache.get(k) for k in "abc"] == [None, None, None]
