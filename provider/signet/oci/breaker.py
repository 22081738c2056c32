"""A circuit breaker per registry host: while a registry is down, its images fail at once.

A registry that refuses connections, times out, answers 5xx or rate-limits (429) is an outage;
`failures` of those in a row, or one 429 with a `Retry-After`, open the host's breaker. While it
is open every call to that host fails at once with a transient failure (never cached) naming the
host, why it opened and when it will be probed, so a down or rate-limiting registry costs an
admission milliseconds, not a registry timeout. After the cool-down (the registry's `Retry-After`
if it sent one, capped) the breaker is half-open: one call, the probe, goes through; success
closes the breaker, an outage reopens it for twice as long (up to the cap). Other answers (404,
401, 403, ...) mean the registry is up: they never open it.

Hosts come from the images requests name, so the state is kept for at most `max_hosts` of them
(least recently used first out); a host with nothing to remember is not kept at all.
"""

from __future__ import annotations

import collections
import email.utils
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import IntEnum

import httpx

from signet.reasons import Reason, TransientFailure

__all__ = [
    "BreakerSettings",
    "Breakers",
    "Outage",
    "State",
    "outage_of_failure",
    "outage_of_status",
    "retry_after",
]


class State(IntEnum):
    """As the `signet_registry_breaker_state` gauge shows it."""

    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    failures: int = 5  # outages in a row that open the breaker; 0 turns it off
    cool_down: float = 5.0  # seconds open before the first probe
    max_cool_down: float = 60.0  # the cap, for back-off and for `Retry-After` alike
    max_hosts: int = 1024


@dataclass(frozen=True, slots=True)
class Outage:
    """A call that says the registry is down: why, and the `Retry-After` it sent (seconds)."""

    why: str
    reason: Reason = Reason.REGISTRY_UNAVAILABLE
    retry_after: float | None = None


@dataclass
class _Host:
    failures: int = 0
    state: State = State.CLOSED
    until: float = 0.0  # while open: when the probe may go
    cool_down: float = 0.0  # how long it was last opened for
    probing: bool = False  # half-open with the probe in flight
    why: str = ""
    reason: Reason = Reason.REGISTRY_UNAVAILABLE


class Breakers:
    def __init__(
        self,
        settings: BreakerSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_state: Callable[[str, State], None] | None = None,
        on_reject: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings or BreakerSettings()
        self._clock = clock
        self._on_state = on_state
        self._on_reject = on_reject
        self._hosts: collections.OrderedDict[str, _Host] = collections.OrderedDict()

    def state(self, host: str) -> State:
        entry = self._hosts.get(host)
        return entry.state if entry else State.CLOSED

    def admit(self, host: str) -> bool:
        """Whether this call is the probe; raises a TransientFailure if the host is refused."""
        entry = self._hosts.get(host)
        if entry is None or entry.state is State.CLOSED:
            return False
        self._hosts.move_to_end(host)
        now = self._clock()
        if entry.state is State.OPEN and now >= entry.until:
            self._set(host, entry, State.HALF_OPEN)
        if entry.state is State.HALF_OPEN and not entry.probing:
            entry.probing = True
            return True
        if self._on_reject is not None:
            self._on_reject(host)
        when = (
            "a probe is in flight"
            if entry.state is State.HALF_OPEN
            else f"it will be probed again in {entry.until - now:.1f}s"
        )
        raise TransientFailure(
            entry.reason, f"{host} is failing fast: the breaker opened after {entry.why}; {when}"
        )

    def succeeded(self, host: str, probe: bool) -> None:
        """The registry answered (any answer that is not an outage)."""
        entry = self._hosts.get(host)
        if entry is None:
            return
        if entry.state is State.CLOSED or probe:
            # Nothing left to remember: the host closes and leaves.
            self._set(host, entry, State.CLOSED)
            del self._hosts[host]
        # A call started before the breaker opened says nothing the probe will not.

    def failed(self, host: str, probe: bool, outage: Outage) -> None:
        if self.settings.failures <= 0:
            return
        entry = self._hosts.get(host)
        if entry is None:
            entry = self._hosts[host] = _Host()
            if len(self._hosts) > self.settings.max_hosts:
                evicted, old = self._hosts.popitem(last=False)
                self._set(evicted, old, State.CLOSED)
        self._hosts.move_to_end(host)
        capped = None
        if outage.retry_after is not None:
            capped = min(self.settings.max_cool_down, max(0.0, outage.retry_after))
        if probe:
            doubled = min(
                self.settings.max_cool_down, max(self.settings.cool_down, 2 * entry.cool_down)
            )
            cool_down = max(doubled, capped or 0.0)
            self._open(host, entry, outage, f"its probe failed ({outage.why})", cool_down)
        elif entry.state is State.CLOSED:
            entry.failures += 1
            if capped is not None and outage.reason is Reason.REGISTRY_RATE_LIMITED:
                self._open(host, entry, outage, outage.why, capped)
            elif entry.failures >= self.settings.failures:
                why = f"{entry.failures} failures in a row (the last: {outage.why})"
                self._open(host, entry, outage, why, self.settings.cool_down)

    def abandoned(self, host: str, probe: bool) -> None:
        """The call ended without saying anything about the registry (cancelled, refused here):
        a probe's turn passes to the next call."""
        entry = self._hosts.get(host)
        if probe and entry is not None:
            entry.probing = False

    def _open(self, host: str, entry: _Host, outage: Outage, why: str, cool_down: float) -> None:
        entry.cool_down = cool_down
        entry.until = self._clock() + cool_down
        entry.probing = False
        entry.why = why
        entry.reason = outage.reason
        self._set(host, entry, State.OPEN)

    def _set(self, host: str, entry: _Host, state: State) -> None:
        changed = entry.state is not state
        entry.state = state
        if changed and self._on_state is not None:
            self._on_state(host, state)


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from `now` (Unix time) that a `Retry-After` header asks for: delay-seconds or an
    HTTP-date (RFC 9110 §10.2.3); None when absent or unreadable. A past date is 0."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # an HTTP-date is GMT
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def outage_of_status(status: int, headers: Mapping[str, str], why: str) -> Outage | None:
    """5xx and 429 are outages; every other answer is an answer."""
    if status == 429:
        return Outage(why, Reason.REGISTRY_RATE_LIMITED, retry_after(headers.get("Retry-After")))
    if status >= 500:
        return Outage(why)
    return None


def outage_of_failure(failure: TransientFailure) -> Outage | None:
    """A failure to connect or to get an answer in time is an outage; a failure raised here
    (an address refused, a slot not free) says nothing about the registry."""
    if isinstance(failure.__cause__, httpx.TransportError | TimeoutError):
        return Outage(failure.message, failure.reason)
    return None
