"""CPU-heavy work — parsing signature manifests, checking signatures — off the event loop.

The event loop answers Gatekeeper, so it must never be the thread that checks an attacker's hundred
bogus signatures. Work is taken **cheapest first** by the caller's cost estimate: an ordinary
image, a few checks, never waits behind images that carry a hundred bogus signatures each. The
queue is bounded; when it is full, the most expensive job — queued or new — is the one refused (a
transient failure).

Where the work runs: in worker *processes* for `signet serve` (`processes=True`), since a thread
would share the interpreter lock with the event loop, and under a flood of checks every wake-up
of the loop would wait for it (measured in bench/hostile.py: legitimate p99 past 2 s); or on a
worker thread, for one-shot commands and tests, which would only pay for starting a process.
Work and its arguments must then be picklable: module-level functions and frozen values.

One more worker takes only cheap jobs (`express_below`): a job that checks a hundred signatures
runs for most of a second, and an ordinary image must not wait for it to finish.

A job waiting here belongs to a flight that has done its I/O: it stays queued when no request
awaits it any more, so its result still reaches the cache and the next request for that image
finds it, rather than fetching everything again (the queue is bounded, so this costs nothing
unbounded). A job whose flight is cancelled (its deadline) is dropped before it runs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import concurrent.futures.process
import contextlib
import heapq
import itertools
import multiprocessing
import os
import sys
import threading
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from signet.reasons import Reason, TransientFailure

__all__ = ["CpuPool"]

T = TypeVar("T")

# How much lower than the server the general worker processes run (see `_pool`).
_BACKGROUND_NICENESS = 10


def _load_verifiers() -> int:
    """A fresh worker's first job (and the server's own, at start): import what checks
    signatures, so the first image a server verifies does not also pay for that (the first
    request must not be several times the rest)."""
    from cryptography.hazmat.primitives import hashes  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415

    import signet.formats.judge  # noqa: F401, PLC0415

    ec.ECDSA(hashes.SHA256())  # its first use loads OpenSSL's backend (~3 ms)
    return os.getpid()


@dataclass(order=True)
class _Job(Generic[T]):
    cost: int
    sequence: int
    work: Callable[..., T] = field(compare=False)
    args: tuple[Any, ...] = field(compare=False)
    loop: asyncio.AbstractEventLoop = field(compare=False)
    done: asyncio.Future[T] = field(compare=False)
    abandoned: bool = field(default=False, compare=False)


class CpuPool:
    def __init__(
        self,
        workers: int = 1,
        max_queued: int = 1024,
        *,
        processes: bool = False,
        express_below: int | None = None,
    ) -> None:
        """`workers` take any job; with `express_below`, one more takes only jobs cheaper."""
        self._express_below = express_below
        self._workers = workers + (1 if express_below is not None else 0)
        self._max_queued = max_queued
        self._processes = processes
        self._executors: dict[bool, concurrent.futures.ProcessPoolExecutor] = {}
        self._executor_lock = threading.Lock()
        self._queue: list[_Job[Any]] = []
        self._sequence = itertools.count()
        self._ready = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._closed = False

    def start(self) -> None:
        """Start the worker processes now rather than on the first job, and load here what
        checks run here too (a cheap job may)."""
        _load_verifiers()
        if self._processes:
            for express in {False, self._express_below is not None}:
                self._pool(express)  # made with its processes started

    async def run(self, cost: int, work: Callable[..., T], *args: Any) -> T:
        """`work(*args)` on a worker; `cost` orders the queue (cheapest first)."""
        loop = asyncio.get_running_loop()
        job: _Job[T] = _Job(
            max(0, cost),
            next(self._sequence),
            work,
            args,
            loop,
            loop.create_future(),
        )
        self._submit(job)
        try:
            return await asyncio.shield(job.done)
        finally:
            job.abandoned = True  # a no-op once finished; otherwise the worker skips or drops it

    def _submit(self, job: _Job[Any]) -> None:
        with self._ready:
            if self._closed:
                raise TransientFailure(Reason.INTERNAL_ERROR, "the verification workers stopped")
            live = [j for j in self._queue if not j.abandoned]
            if len(live) != len(self._queue):
                self._queue = live
                heapq.heapify(self._queue)
            if len(self._queue) >= self._max_queued:
                costliest = max(self._queue)
                if costliest.cost <= job.cost:
                    raise _queue_full(job.cost)
                self._queue.remove(costliest)
                heapq.heapify(self._queue)
                costliest.abandoned = True
                _settle(costliest, costliest.done, exception=_queue_full(costliest.cost))
            heapq.heappush(self._queue, job)
            while len(self._threads) < self._workers:
                express = self._express_below is not None and not self._threads
                thread = threading.Thread(
                    target=self._work, args=(express,), name="signet-cpu", daemon=True
                )
                self._threads.append(thread)
                thread.start()
            self._ready.notify_all()

    def _work(self, express: bool) -> None:
        limit = self._express_below if express else None
        while True:
            with self._ready:
                while not self._closed and not (
                    self._queue and (limit is None or self._queue[0].cost < limit)
                ):
                    self._ready.wait()
                if self._closed:
                    return
                job = heapq.heappop(self._queue)
                if job.abandoned:
                    continue
            try:
                result = self._execute(job, express)
            except BaseException as exc:  # handed to the awaiting coroutine, never lost
                _settle(job, job.done, exception=exc)
            else:
                _settle(job, job.done, result=result)

    def _execute(self, job: _Job[T], express: bool) -> T:
        if not self._processes:
            return job.work(*job.args)
        try:
            return self._pool(express).submit(job.work, *job.args).result()
        except concurrent.futures.process.BrokenProcessPool as exc:
            with self._executor_lock:  # a worker died (killed, out of memory): start afresh
                broken = self._executors.pop(express, None)
            if broken is not None:
                broken.shutdown(wait=False, cancel_futures=True)
            raise TransientFailure(
                Reason.INTERNAL_ERROR, "a verification worker process died; try again"
            ) from exc

    def _pool(self, express: bool) -> concurrent.futures.ProcessPoolExecutor:
        """The worker process(es) of the express worker, or of the others. The others run at a
        lower priority: answering Gatekeeper (the event loop) and ordinary images come first;
        an attacker's costly signatures get what CPU is left."""
        with self._executor_lock:
            executor = self._executors.get(express)
            if executor is None:
                workers = 1 if express else self._workers - (self._express_below is not None)
                executor = self._executors[express] = concurrent.futures.ProcessPoolExecutor(
                    max_workers=workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=None if express else _run_in_the_background,
                )
                with _main_left_behind():
                    for _ in range(workers):  # each submit starts a process while none is idle
                        executor.submit(_load_verifiers)
            return executor

    def close(self) -> None:
        with self._executor_lock:
            executors, self._executors = list(self._executors.values()), {}
        for executor in executors:
            # Stopped here, not left to exit handlers: uvicorn, once drained, re-raises SIGTERM
            # and the process dies without running them, which orphaned the workers. A job cut
            # short no longer matters; waiting for a worker still starting took seconds.
            workers = list((getattr(executor, "_processes", None) or {}).values())
            executor.shutdown(wait=False, cancel_futures=True)
            for worker in workers:
                worker.terminate()
            for worker in workers:
                worker.join(timeout=5)
        with self._ready:
            self._closed = True
            for job in self._queue:
                _settle(
                    job,
                    job.done,
                    exception=TransientFailure(
                        Reason.INTERNAL_ERROR, "the verification workers stopped"
                    ),
                )
            self._queue.clear()
            self._ready.notify_all()

    def __len__(self) -> int:
        return len(self._queue)


_MAIN_SWAP = threading.Lock()


@contextlib.contextmanager
def _main_left_behind() -> Iterator[None]:
    """Workers started here do not import the server's `__main__`. Spawn re-imports it in each
    child (so that functions defined there unpickle), and for `signet serve` that is the whole
    CLI — HTTP server and client, Prometheus, YAML — ~20 MiB in each worker, which runs none of
    it: its jobs are functions of signet's own modules. So processes are started while an empty
    module stands in for `__main__` (only while the processes start, which is synchronous)."""
    with _MAIN_SWAP:
        main = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            sys.modules["__main__"] = main


def _run_in_the_background() -> None:
    os.nice(_BACKGROUND_NICENESS)


def _queue_full(cost: int) -> TransientFailure:
    return TransientFailure(
        Reason.DEADLINE_EXCEEDED,
        f"the verification queue is full of costlier work than this (estimated cost {cost})",
    )


def _settle(
    job: _Job[Any],
    future: asyncio.Future[Any],
    *,
    result: Any = None,
    exception: BaseException | None = None,
) -> None:
    """Complete `future` from any thread, unless it is already done (cancelled, say)."""

    def complete() -> None:
        if future.done():
            return
        if exception is not None:
            future.set_exception(exception)
        else:
            future.set_result(result)

    with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
        job.loop.call_soon_threadsafe(complete)
