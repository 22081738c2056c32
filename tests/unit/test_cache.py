"""Expiring cache and single-flight."""

from __future__ import annotations

import asyncio

import pytest

from signet.cache import ExpiringCache, SingleFlight

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_entries_expire_after_their_own_lifetime_and_size_is_bounded() -> None:
    now = [0.0]
    cache: ExpiringCache[str, int] = ExpiringCache(maxsize=2, clock=lambda: now[0])
    cache.put("short", 1, 5)
    cache.put("long", 2, 50)
    now[0] = 10
    assert cache.get("short") is None
    assert cache.get("long") == 2
    cache.put("a", 3, 50)
    cache.put("b", 4, 50)
    assert len(cache) == 2
    cache.put("never", 5, 0)
    assert cache.get("never") is None


async def test_concurrent_callers_share_one_run() -> None:
    runs = 0
    flights: SingleFlight[str, int] = SingleFlight()

    async def work() -> int:
        nonlocal runs
        runs += 1
        await asyncio.sleep(0.05)
        return 42

    results = await asyncio.gather(*(flights.run("k", work) for _ in range(100)))
    assert results == [42] * 100
    assert runs == 1
    assert len(flights) == 0


async def test_an_error_reaches_every_waiter_and_is_not_remembered() -> None:
    calls = 0
    flights: SingleFlight[str, int] = SingleFlight()

    async def failing() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        raise RuntimeError("down")

    outcomes = await asyncio.gather(
        *(flights.run("k", failing) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(o, RuntimeError) for o in outcomes)
    with pytest.raises(RuntimeError):
        await flights.run("k", failing)
    assert calls == 2


async def test_a_cancelled_caller_does_not_cancel_the_shared_work() -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    finished = asyncio.Event()

    async def work() -> str:
        await asyncio.sleep(0.05)
        finished.set()
        return "done"

    impatient = asyncio.ensure_future(flights.run("k", work))
    await asyncio.sleep(0.01)
    impatient.cancel()
    assert await flights.run("k", work) == "done"
    assert finished.is_set()
