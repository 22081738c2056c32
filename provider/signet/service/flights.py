"""Single-flight: one computation per key at a time, shared by every request that needs it.

A flight runs as its own task, shielded from any one caller's cancellation, so a caller whose
deadline passes does not waste the work for the callers still waiting, and a flight that is
already doing I/O finishes and fills the cache for the next request. But a flight that *no*
request awaits any more never starts new waits: once its last waiter leaves it is orphaned, and
if it is waiting for a registry slot or a CPU worker at that moment it is cancelled; code that
hands out slots asks `current()` whether the flight it would wait for is orphaned.

Only values travel between flights and their waiters: each waiter gets a fresh exception, so no
traceback grows with the number of waiters and no frame outlives the flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Awaitable, Callable, Hashable, Iterator
from typing import Any, Generic, TypeVar

from signet.reasons import Reason, TransientFailure

__all__ = ["Flight", "SingleFlight", "current", "waiting"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_CURRENT: contextvars.ContextVar[Flight | None] = contextvars.ContextVar("flight", default=None)


class Flight:
    """The bookkeeping of one running flight."""

    __slots__ = ("orphaned", "task", "waiters", "waits")

    def __init__(self) -> None:
        self.waiters = 0
        self.waits = 0  # > 0 while the flight waits for a slot or a worker
        self.orphaned = False
        self.task: asyncio.Future[Any] | None = None


def current() -> Flight | None:
    """The flight whose task is running now, if any."""
    return _CURRENT.get()


@contextlib.contextmanager
def waiting() -> Iterator[Flight | None]:
    """Mark the current flight as waiting for a slot; refuse to wait for an orphaned one."""
    flight = _CURRENT.get()
    if flight is not None and flight.orphaned:
        raise TransientFailure(
            Reason.DEADLINE_EXCEEDED, "no request awaits this lookup any more; not queueing it"
        )
    if flight is not None:
        flight.waits += 1
    try:
        yield flight
    finally:
        if flight is not None:
            flight.waits -= 1


class SingleFlight(Generic[K, V]):
    """Concurrent callers for one key share one flight; at most `limit` flights at once."""

    def __init__(self, limit: int = 10_000) -> None:
        self._flights: dict[K, Flight] = {}
        self._limit = limit

    async def run(self, key: K, work: Callable[[], Awaitable[V]]) -> V:
        flight = self._flights.get(key)
        if flight is None:
            if len(self._flights) >= self._limit:
                raise TransientFailure(
                    Reason.DEADLINE_EXCEEDED,
                    f"{self._limit} lookups are already in flight; try again shortly",
                )
            flight = self._start(key, work)
        flight.orphaned = False  # awaited again
        task = flight.task
        assert task is not None
        flight.waiters += 1
        try:
            result: V = await asyncio.shield(task)
        except TransientFailure as failure:
            raise TransientFailure(failure.reason, failure.message) from None
        except asyncio.CancelledError:
            if task.cancelled() and not _being_cancelled():
                raise TransientFailure(
                    Reason.DEADLINE_EXCEEDED, "the lookup was abandoned; try again"
                ) from None
            raise
        finally:
            flight.waiters -= 1
            if flight.waiters == 0 and not task.done():
                self._orphan(key, flight, task)
        return result

    def _orphan(self, key: K, flight: Flight, task: asyncio.Future[Any]) -> None:
        flight.orphaned = True
        if flight.waits:  # queued, not working: drop it, and let the next caller start afresh
            task.cancel()
            if self._flights.get(key) is flight:
                del self._flights[key]

    def _start(self, key: K, work: Callable[[], Awaitable[V]]) -> Flight:
        flight = Flight()

        async def fly() -> V:
            _CURRENT.set(flight)
            return await work()

        task: asyncio.Future[Any] = asyncio.ensure_future(fly())
        flight.task = task
        self._flights[key] = flight
        task.add_done_callback(lambda done: self._forget(key, flight, done))
        return flight

    def _forget(self, key: K, flight: Flight, task: asyncio.Future[Any]) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        flight.task = None  # no cycle between the flight and its task
        if not task.cancelled():
            # Retrieved here, so an unawaited failure is never logged as lost; waiters get fresh
            # exceptions, so this one's frames need not be kept (and would form cycles).
            failure = task.exception()
            if failure is not None:
                failure.__traceback__ = None

    def __len__(self) -> int:
        return len(self._flights)


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
