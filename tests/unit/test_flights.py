"""Single-flight, per-host slots and the CPU workers: sharing work, bounding it, and dropping
the work no request awaits any more (real asyncio tasks and threads, no sleeps to race)."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

import pytest

from signet.formats.cosign_classic import manifest as cosign
from signet.oci.slots import HostSlots
from signet.reasons import DeterministicFailure, Reason, TransientFailure
from signet.service import flights as flights_module
from signet.service.flights import SingleFlight
from signet.service.workers import CpuPool

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


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


async def test_after_a_flight_lands_the_next_call_runs_again() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    work = Work()
    work.release.set()
    assert await flights.run("k", work) == 42
    assert await flights.run("k", work) == 42
    assert work.runs == 2  # single-flight, not a cache


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


async def test_a_transient_failure_reaches_each_waiter_as_a_fresh_exception() -> None:
    """Re-raising one shared exception grows its traceback with every waiter and keeps every
    frame it passed through alive; each waiter gets its own."""
    flights: SingleFlight[str, int] = SingleFlight()
    work = Work(error=TransientFailure(Reason.REGISTRY_UNAVAILABLE, "down"))
    callers = [asyncio.ensure_future(flights.run("k", work)) for _ in range(1000)]
    await settle()
    work.release.set()
    outcomes = await asyncio.gather(*callers, return_exceptions=True)
    assert all(isinstance(o, TransientFailure) and o.message == "down" for o in outcomes)
    assert len({id(o) for o in outcomes}) == 1000
    depth = max(len(traceback.extract_tb(o.__traceback__)) for o in outcomes)  # type: ignore[union-attr]
    assert depth < 10


async def test_past_the_limit_a_new_flight_is_refused_at_once() -> None:
    flights: SingleFlight[str, int] = SingleFlight(limit=2)
    work = Work()
    running = [asyncio.ensure_future(flights.run(k, work)) for k in ("a", "b")]
    await settle()
    with pytest.raises(TransientFailure) as refused:
        await flights.run("c", work)
    assert refused.value.reason is Reason.DEADLINE_EXCEEDED
    assert "2 lookups are already in flight" in refused.value.message
    joined = asyncio.ensure_future(flights.run("a", work))  # joining a flight is always fine
    work.release.set()
    assert await asyncio.gather(*running, joined) == [42, 42, 42]


# -- orphaned flights: no request awaits them any more -------------------------------------------


async def test_a_flight_waiting_for_a_slot_is_cancelled_when_its_last_caller_leaves() -> None:
    slots = HostSlots(per_host=1, max_waiting=10)
    flights: SingleFlight[str, int] = SingleFlight()
    hold = asyncio.Event()
    got_slot: list[str] = []

    async def call(name: str) -> int:
        async with slots.slot("slow.example"):
            got_slot.append(name)
            await hold.wait()
        return 1

    first = asyncio.ensure_future(flights.run("first", lambda: call("first")))
    await settle()
    queued = asyncio.ensure_future(flights.run("queued", lambda: call("queued")))
    await settle()
    assert slots.load("slow.example") == (1, 1)
    queued.cancel()  # its request's deadline passed
    await settle()
    assert slots.load("slow.example") == (1, 0), "the queued flight left the queue"
    assert len(flights) == 1
    hold.set()
    assert await first == 1
    assert got_slot == ["first"], "the abandoned flight never ran"
    assert slots.load("slow.example") == (0, 0)


async def test_a_flight_that_is_already_working_finishes_for_the_cache() -> None:
    slots = HostSlots(per_host=1, max_waiting=10)
    flights: SingleFlight[str, int] = SingleFlight()
    hold = asyncio.Event()
    done: list[int] = []

    async def call() -> int:
        async with slots.slot("registry.example"):
            await hold.wait()
        done.append(1)
        return 1

    caller = asyncio.ensure_future(flights.run("k", call))
    await settle()
    caller.cancel()
    await settle()
    assert len(flights) == 1, "orphaned, but working: it goes on"
    hold.set()
    await settle()
    assert done == [1]


async def test_an_orphaned_flight_does_not_queue_for_a_busy_host() -> None:
    slots = HostSlots(per_host=1, max_waiting=10)
    flights: SingleFlight[str, int] = SingleFlight()
    busy, step = asyncio.Event(), asyncio.Event()
    outcome: list[BaseException | int] = []

    async def occupy() -> None:
        async with slots.slot("slow.example"):
            await busy.wait()

    async def two_calls() -> int:
        await step.wait()  # the first part of its work, done while it is still awaited
        try:
            async with slots.slot("slow.example"):
                outcome.append(2)
        except TransientFailure as failure:
            outcome.append(failure)
            raise
        return 2

    holder = asyncio.ensure_future(occupy())
    caller = asyncio.ensure_future(flights.run("k", two_calls))
    await settle()
    caller.cancel()  # orphaned while working on its first part
    await settle()
    step.set()
    await settle()
    assert len(outcome) == 1 and isinstance(outcome[0], TransientFailure)
    assert "no request awaits" in outcome[0].message
    assert slots.load("slow.example") == (1, 0)
    busy.set()
    await holder


# -- per-host slots ----------------------------------------------------------------------------


async def test_a_slow_host_takes_no_slot_from_another() -> None:
    slots = HostSlots(per_host=2, max_waiting=3)
    hold = asyncio.Event()

    async def slow() -> None:
        async with slots.slot("slow.example"):
            await hold.wait()

    stuck = [asyncio.ensure_future(slow()) for _ in range(5)]
    await settle()
    assert slots.load("slow.example") == (2, 3)
    with pytest.raises(TransientFailure) as refused:
        async with slots.slot("slow.example"):
            pass
    assert refused.value.reason is Reason.REGISTRY_TIMEOUT
    assert "slow.example is answering slowly: 2 calls to it are running and 3 are waiting" in (
        refused.value.message
    )
    async with slots.slot("healthy.example"):  # at once, whatever the slow host does
        assert slots.load("healthy.example") == (1, 0)
    hold.set()
    await asyncio.gather(*stuck)
    assert slots.load("slow.example") == (0, 0)


async def test_a_turn_granted_to_a_caller_that_just_gave_up_passes_on() -> None:
    slots = HostSlots(per_host=1, max_waiting=10)
    release = asyncio.Event()
    order: list[str] = []

    async def use(name: str) -> None:
        async with slots.slot("h"):
            order.append(name)
            if name == "first":
                await release.wait()

    first = asyncio.ensure_future(use("first"))
    await settle()
    second = asyncio.ensure_future(use("second"))
    third = asyncio.ensure_future(use("third"))
    await settle()
    release.set()
    second.cancel()  # the turn is handed to it, and it is cancelled before it runs
    await asyncio.gather(first, second, third, return_exceptions=True)
    assert order == ["first", "third"]
    assert slots.load("h") == (0, 0)


# -- the CPU workers -----------------------------------------------------------------------------


async def test_work_runs_off_the_event_loop_thread() -> None:
    pool = CpuPool()
    try:
        ran_on = await pool.run(1, threading.get_ident)
        assert ran_on != threading.get_ident()
    finally:
        pool.close()


async def test_cheap_work_overtakes_costly_work_in_the_queue() -> None:
    pool = CpuPool(workers=1)
    gate = threading.Event()
    order: list[str] = []

    def job(name: str) -> str:
        if name == "blocker":
            gate.wait(5)
        order.append(name)
        return name

    try:
        blocker = asyncio.ensure_future(pool.run(0, lambda: job("blocker")))
        await asyncio.sleep(0.05)  # the worker has taken it
        costly = [
            asyncio.ensure_future(pool.run(250_000, functools.partial(job, f"costly-{i}")))
            for i in range(3)
        ]
        await settle()
        cheap = asyncio.ensure_future(pool.run(1_000, lambda: job("cheap")))
        await settle()
        gate.set()
        await asyncio.gather(blocker, cheap, *costly)
        assert order[:2] == ["blocker", "cheap"]
    finally:
        pool.close()


async def test_a_full_queue_refuses_the_costliest_job() -> None:
    pool = CpuPool(workers=1, max_queued=2)
    gate = threading.Event()
    try:
        blocker = asyncio.ensure_future(pool.run(0, lambda: gate.wait(5)))
        await asyncio.sleep(0.05)
        costly = asyncio.ensure_future(pool.run(500, lambda: "costly"))
        middling = asyncio.ensure_future(pool.run(100, lambda: "middling"))
        await settle()
        cheap = asyncio.ensure_future(pool.run(10, lambda: "cheap"))  # evicts `costly`
        await settle()
        with pytest.raises(TransientFailure) as refused:
            await pool.run(1000, lambda: "costliest")  # costlier than all queued: refused
        assert "queue is full" in refused.value.message
        gate.set()
        results = await asyncio.gather(blocker, costly, middling, cheap, return_exceptions=True)
        assert isinstance(results[1], TransientFailure)
        assert list(results[2:]) == ["middling", "cheap"]
    finally:
        pool.close()


async def test_an_exception_in_the_work_reaches_the_caller() -> None:
    pool = CpuPool()

    def broken() -> int:
        raise ValueError("bad input")

    try:
        with pytest.raises(ValueError, match="bad input"):
            await pool.run(1, broken)
        assert await pool.run(1, lambda: 7) == 7, "the worker survives"
    finally:
        pool.close()


async def test_queued_work_of_an_orphaned_flight_still_runs_for_the_cache() -> None:
    """Its I/O is done: dropping it would only make the next request fetch it all again."""
    pool = CpuPool(workers=1)
    flights: SingleFlight[str, str] = SingleFlight()
    gate = threading.Event()
    ran: list[str] = []

    def queued() -> str:
        ran.append("queued")
        return "x"

    try:
        blocker = asyncio.ensure_future(pool.run(0, gate.wait, 5))
        await asyncio.sleep(0.05)
        caller = asyncio.ensure_future(flights.run("k", lambda: pool.run(1, queued)))
        await settle()
        assert len(pool) == 1
        caller.cancel()  # its request gave up
        await settle()
        assert len(flights) == 1, "orphaned, not dropped"
        gate.set()
        await blocker
        for _ in range(100):
            if not len(flights):
                break
            await asyncio.sleep(0.01)
        assert ran == ["queued"]
    finally:
        pool.close()


async def test_queued_work_of_a_cancelled_flight_never_runs() -> None:
    pool = CpuPool(workers=1)
    gate = threading.Event()
    ran: list[str] = []
    try:
        blocker = asyncio.ensure_future(pool.run(0, gate.wait, 5))
        await asyncio.sleep(0.05)
        doomed = asyncio.ensure_future(pool.run(1, ran.append, "queued"))
        await settle()
        doomed.cancel()  # the flight's own deadline
        await settle()
        gate.set()
        await blocker
        await asyncio.sleep(0.05)
        assert ran == []
        assert flights_module.current() is None
    finally:
        pool.close()


# -- worker processes (what `signet serve` uses) -------------------------------------------------


async def test_work_runs_in_a_worker_process_and_survives_its_death() -> None:
    pool = CpuPool(processes=True)
    try:
        pid = await pool.run(1, os.getpid)
        assert pid != os.getpid()
        assert await pool.run(1, divmod, 7, 2) == (3, 1)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(TransientFailure) as died:
            await pool.run(1, time.sleep, 0.1)
        assert died.value.reason is Reason.INTERNAL_ERROR
        assert await pool.run(1, os.getpid) not in (pid, os.getpid()), "a new worker took over"
    finally:
        pool.close()


def test_the_workers_do_not_import_the_servers_main_module(tmp_path: Path) -> None:
    """Spawn re-imports the parent's `__main__` in each child; `signet serve`'s is the whole CLI
    (HTTP server and client, ...: ~20 MiB per worker), of which the workers run nothing."""
    main = tmp_path / "serve.py"  # a script as `__main__`, as the console script `signet` is
    main.write_text(
        "import asyncio, json\n"
        "import signet.cli  # what the server's __main__ imports\n"
        "from signet.service.workers import CpuPool\n"
        "if __name__ == '__main__':\n"
        "    pool = CpuPool(processes=True, express_below=10)\n"
        "    pool.start()\n"
        "    modules = \"sorted(__import__('sys').modules)\"\n"
        "    async def ask():\n"
        "        return [await pool.run(cost, eval, modules) for cost in (1, 100)]\n"
        "    print(json.dumps(asyncio.run(ask())))\n"
        "    pool.close()\n"
    )
    done = subprocess.run(
        [sys.executable, str(main)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    for loaded in json.loads(done.stdout):  # what a cheap and a costly job's worker had loaded
        assert "signet.formats.judge" in loaded  # what checks signatures, loaded at start
        assert not {"signet.cli", "httpx", "starlette"} & set(loaded)


async def test_a_real_verification_crosses_the_process_boundary() -> None:
    """Keys, evidence, failures and the report all travel to and from the worker."""
    from signet.formats.cosign_classic.verify import ClassicEvidence
    from signet.formats.judge import Evidence, judge
    from tests.support import vectors
    from tests.unit.stamps import NOW

    layers = vectors.layers("dir-img-cosign-valid")
    manifest = cosign.parse_signature_manifest(
        cosign.signature_manifest({}, [layer.descriptor() for layer in layers])
    )
    broken = DeterministicFailure(Reason.SIGNATURE_INVALID, "blob missing")
    evidence = Evidence(
        classic=ClassicEvidence(manifest, {layers[0].digest: layers[0].payload, "x": broken})
    )
    digest = vectors.signed_digest("dir-img-cosign-valid")
    trust = vectors.trust()
    pool = CpuPool(processes=True)
    try:
        report = await pool.run(1, functools.partial(judge, now=NOW), "i", digest, evidence, trust)
    finally:
        pool.close()
    assert report == judge("i", digest, evidence, trust, now=NOW)
    assert report.verified == ("a",)
