"""Per-registry call slots: a slow registry may only slow the images that live on it.

At most `per_host` calls run against one registry host at a time and at most `max_waiting` wait
for a turn; past that a call fails at once instead of queueing behind a registry that answers
slowly. Hosts share nothing, so a registry answering every call in 1.9 s leaves the others as
fast as they are. A waiting call belongs to a flight (see `flights`): one that no request awaits
any more does not queue at all, and is cancelled while it waits.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from signet.reasons import Reason, TransientFailure
from signet.service import flights

__all__ = ["HostSlots"]


@dataclass
class _Host:
    running: int = 0
    waiting: collections.deque[asyncio.Future[None]] = field(default_factory=collections.deque)


class HostSlots:
    def __init__(self, per_host: int = 16, max_waiting: int = 256) -> None:
        self.per_host = per_host
        self.max_waiting = max_waiting
        self._hosts: dict[str, _Host] = {}

    @contextlib.asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[None]:
        await self._acquire(host)
        try:
            yield
        finally:
            self._release(host)

    async def _acquire(self, host: str) -> None:
        state = self._hosts.setdefault(host, _Host())
        if state.running < self.per_host and not state.waiting:
            state.running += 1
            return
        if len(state.waiting) >= self.max_waiting:
            raise self._full(host, state)
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with flights.waiting():
            state.waiting.append(turn)
            try:
                await turn
            except BaseException:
                if turn.done() and not turn.cancelled():
                    self._release(host)  # granted as we were cancelled: pass the turn on
                else:
                    with contextlib.suppress(ValueError):  # unless _release skipped past it
                        state.waiting.remove(turn)
                    self._drop_if_idle(host, state)
                raise

    def _full(self, host: str, state: _Host) -> TransientFailure:
        return TransientFailure(
            Reason.REGISTRY_TIMEOUT,
            f"{host} is answering slowly: {state.running} calls to it are running and "
            f"{len(state.waiting)} are waiting",
        )

    def _release(self, host: str) -> None:
        state = self._hosts[host]
        while state.waiting:
            turn = state.waiting.popleft()
            if not turn.done():
                turn.set_result(None)  # the slot passes to the next waiter as it is
                return
        state.running -= 1
        self._drop_if_idle(host, state)

    def _drop_if_idle(self, host: str, state: _Host) -> None:
        if state.running == 0 and not state.waiting and self._hosts.get(host) is state:
            del self._hosts[host]

    def load(self, host: str) -> tuple[int, int]:
        """(running, waiting) for `host`."""
        state = self._hosts.get(host)
        return (state.running, len(state.waiting)) if state else (0, 0)
