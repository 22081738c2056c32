"""CPU-heavy work — parsing signature manifests, checking signatures — off the event loop.

The event loop answers Gatekeeper, so it must never be the thread that checks an attacker's hundred
bogus signatures. Work runs on worker threads (OpenSSL releases the GIL while it verifies), taken
**cheapest first** by the caller's cost estimate: an ordinary image, a few checks, never waits
behind images that carry a hundred bogus signatures each. The queue is bounded; when it is full,
the most expensive job — queued or new — is the one refused (a transient failure).

A job waiting in the queue belongs to a flight (see `flights`): when no request awaits that flight
any more it is cancelled and its job dropped before it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from . import flights
from .reasons import Reason, TransientFailure

__all__ = ["CpuPool"]

T = TypeVar("T")


@dataclass(order=True)
class _Job(Generic[T]):
    cost: int
    sequence: int
    work: Callable[[], T] = field(compare=False)
    loop: asyncio.AbstractEventLoop = field(compare=False)
    started: asyncio.Future[None] = field(compare=False)
    done: asyncio.Future[T] = field(compare=False)
    abandoned: bool = field(default=False, compare=False)


class CpuPool:
    def __init__(self, workers: int = 1, max_queued: int = 1024) -> None:
        self._workers = workers
        self._max_queued = max_queued
        self._queue: list[_Job[Any]] = []
        self._sequence = itertools.count()
        self._ready = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._busy = 0
        self._closed = False

    async def run(self, cost: int, work: Callable[[], T]) -> T:
        """Run `work` on a worker; `cost` orders the queue (cheapest first)."""
        loop = asyncio.get_running_loop()
        job: _Job[T] = _Job(
            max(0, cost),
            next(self._sequence),
            work,
            loop,
            loop.create_future(),
            loop.create_future(),
        )
        must_wait = self._submit(job)
        try:
            if must_wait:
                with flights.waiting():
                    await asyncio.shield(job.started)
            return await asyncio.shield(job.done)
        finally:
            job.abandoned = True  # a no-op once finished; otherwise the worker skips or drops it

    def _submit(self, job: _Job[Any]) -> bool:
        """Queue `job`; True when it must wait behind other work for a worker."""
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
                _settle(costliest, costliest.started, exception=_queue_full(costliest.cost))
            must_wait = bool(self._queue) or self._busy >= self._workers
            heapq.heappush(self._queue, job)
            if len(self._threads) < self._workers:
                thread = threading.Thread(target=self._work, name="signet-cpu", daemon=True)
                self._threads.append(thread)
                thread.start()
            self._ready.notify()
            return must_wait

    def _work(self) -> None:
        while True:
            with self._ready:
                while not self._queue and not self._closed:
                    self._ready.wait()
                if self._closed:
                    return
                job = heapq.heappop(self._queue)
                if job.abandoned:
                    continue
                self._busy += 1
            _settle(job, job.started, result=None)
            try:
                result = job.work()
            except BaseException as exc:  # handed to the awaiting coroutine, never lost
                _settle(job, job.done, exception=exc)
            else:
                _settle(job, job.done, result=result)
            finally:
                with self._ready:
                    self._busy -= 1

    def close(self) -> None:
        with self._ready:
            self._closed = True
            for job in self._queue:
                _settle(
                    job,
                    job.started,
                    exception=TransientFailure(
                        Reason.INTERNAL_ERROR, "the verification workers stopped"
                    ),
                )
            self._queue.clear()
            self._ready.notify_all()

    def __len__(self) -> int:
        return len(self._queue)


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
