"""The expiring cache (an injected clock) and single-flight (real asyncio tasks, no sleeps to race)."""

from __future__ import annotations

import asyncio

import pytest

from signet.cache import ExpiringCache, SingleFlight


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


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


# -- SingleFlight -----------------------------------------------------------------------------


class Work:
    """Work that runs until released, counting its runs."""

    def __init__(self, result: int = 42, error: Exception | None = None) -> None:
        self.runs = 0
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.finished = asyncio.Event()
        self.result = result
        self.error = error

    async def __call__(self) -> int:
        self.runs += 1
        self.started.set()
        await self.release.wait()
        self.finished.set()
        if self.error is not None:
            raise self.error
        return self.result


async def settle() -> None:
    """Let every ready task run until it blocks."""
    for _ in range(5):
        await asyncio.sleep(0)


@pytest.mark.anyio
async def test_concurrent_callers_share_one_run() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    work = Work()
    callers = [asyncio.ensure_future(flights.run("k", work)) for _ in range(100)]
    await settle()
    assert work.runs == 1
    assert len(flights) == 1
    work.release.set()
    assert await asyncio.gather(*callers) == [42] * 100
    assert work.runs == 1
    assert len(flights) == 0


@pytest.mark.anyio
async def test_after_a_flight_lands_the_next_call_runs_again() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    work = Work()
    work.release.set()
    assert await flights.run("k", work) == 42
    assert await flights.run("k", work) == 42
    assert work.runs == 2  # single-flight, not a cache


@pytest.mark.anyio
async def test_different_keys_fly_separately() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    a, b = Work(1), Work(2)
    first = asyncio.ensure_future(flights.run("a", a))
    second = asyncio.ensure_future(flights.run("b", b))
    await settle()
    assert (a.runs, b.runs, len(flights)) == (1, 1, 2)
    a.release.set()
    b.release.set()
    assert list(await asyncio.gather(first, second)) == [1, 2]


@pytest.mark.anyio
async def test_an_error_reaches_every_waiter_and_is_not_remembered() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    failure = RuntimeError("registry down")
    work = Work(error=failure)
    callers = [asyncio.ensure_future(flights.run("k", work)) for _ in range(5)]
    await settle()
    work.release.set()
    outcomes = await asyncio.gather(*callers, return_exceptions=True)
    assert outcomes == [failure] * 5
    assert work.runs == 1
    assert len(flights) == 0
    # The failure is not remembered: the next call runs the work again, and can succeed.
    again = Work(result=7)
    again.release.set()
    assert await flights.run("k", again) == 7
    assert again.runs == 1


@pytest.mark.anyio
async def test_a_cancelled_caller_does_not_cancel_the_shared_work() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    work = Work()
    impatient = asyncio.ensure_future(flights.run("k", work))
    patient = asyncio.ensure_future(flights.run("k", work))
    await work.started.wait()
    impatient.cancel()
    await settle()
    assert impatient.cancelled()
    assert not patient.done()
    work.release.set()
    assert await patient == 42
    assert work.finished.is_set()
    assert work.runs == 1


@pytest.mark.anyio
async def test_the_work_finishes_even_when_its_only_caller_gives_up() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    work = Work()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(flights.run("k", work), timeout=0.01)
    assert len(flights) == 1  # still flying: a caller arriving now joins it
    joined = asyncio.ensure_future(flights.run("k", work))
    await settle()
    work.release.set()
    assert await joined == 42
    assert work.runs == 1
    assert work.finished.is_set()
    assert len(flights) == 0
