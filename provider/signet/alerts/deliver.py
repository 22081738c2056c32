"""Delivery of alert states to Alertmanager (API v2) and a generic webhook, off the caller's path.

`push` only records: each receiver keeps the latest state of each alert waiting to be sent (at
most `max_pending`; a state that finds no room is dropped and counted). `send_due`, run by the
`Alerts` task, POSTs what is waiting, one bounded POST per receiver, and adds every alert still
firing again each `resend_interval`, as Prometheus does: Alertmanager resolves an alert it has
not heard of for its `resolve_timeout` (default 5 minutes). A resolved alert is sent with its
`endsAt`. A failed POST keeps the states and waits `backoff`, doubled per failure up to
`max_backoff`; a 4xx other than 408 and 429 will not get better, so its states are dropped.

Alertmanager gets its `postableAlerts`: a JSON list of
`{"labels": {...}, "annotations": {...}, "startsAt": RFC 3339, "endsAt": RFC 3339}` (`endsAt`
only once resolved). The webhook gets one JSON object:
`{"version": "1", "service": "signet", "alerts": [{"status": "firing"|"resolved", "labels",
"annotations", "startsAt", "endsAt": RFC 3339 or null}]}`.

Counters, for the caller to export: `sent` (alert states delivered, per receiver), `failed`
(POSTs that failed), `dropped` (alert states given up on).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from signet.alerts.event import Alert
from signet.alerts.settings import AlertSettings

__all__ = ["Delivery"]

log = logging.getLogger("signet.alerts")

_BATCH = 256  # alert states per POST
_PERMANENT = frozenset(range(400, 500)) - {408, 429}

_Key = tuple[str, tuple[tuple[str, str], ...]]


def _timestamp(seconds: float) -> str:
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _postable(alert: Alert) -> dict[str, Any]:
    body: dict[str, Any] = {
        "labels": alert.all_labels(),
        "annotations": {"summary": alert.summary, "description": alert.description},
        "startsAt": _timestamp(alert.starts_at),
    }
    if alert.ends_at is not None:
        body["endsAt"] = _timestamp(alert.ends_at)
    return body


def _webhook_alert(alert: Alert) -> dict[str, Any]:
    return _postable(alert) | {
        "status": "firing" if alert.firing else "resolved",
        "endsAt": None if alert.ends_at is None else _timestamp(alert.ends_at),
    }


@dataclass
class _Receiver:
    url: str
    body: Callable[[list[Alert]], object]
    pending: collections.OrderedDict[_Key, Alert] = field(default_factory=collections.OrderedDict)
    not_before: float = 0.0  # monotonic: no POST before this (backing off)
    delay: float = 0.0  # the last back-off


class Delivery:
    def __init__(
        self,
        settings: AlertSettings,
        *,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._client = client
        self._own_client = client is None
        self._receivers: list[_Receiver] = []
        if settings.alertmanager_url is not None:
            url = settings.alertmanager_url.rstrip("/") + "/api/v2/alerts"
            self._receivers.append(_Receiver(url, lambda alerts: [_postable(a) for a in alerts]))
        if settings.webhook_url is not None:
            self._receivers.append(_Receiver(settings.webhook_url, _webhook_body))
        self._firing: dict[_Key, Alert] = {}
        self._resent = clock()
        self._wake = asyncio.Event()
        self.sent = 0
        self.failed = 0
        self.dropped = 0

    @property
    def firing(self) -> tuple[Alert, ...]:
        return tuple(self._firing.values())

    @property
    def pending(self) -> int:
        return sum(len(receiver.pending) for receiver in self._receivers)

    def push(self, alerts: Iterable[Alert]) -> None:
        """Record new alert states to send; never blocks, never raises (call on the loop)."""
        pushed = False
        for alert in alerts:
            pushed = True
            if alert.firing:
                self._firing[alert.key] = alert
            else:
                self._firing.pop(alert.key, None)
            for receiver in self._receivers:
                self._queue(receiver, alert)
        if pushed:
            self._wake.set()

    async def wait(self, seconds: float) -> None:
        """Until something is pushed, or `seconds`."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()
        self._wake.clear()

    async def send_due(self) -> None:
        now = self._clock()
        if now - self._resent >= self.settings.resend_interval:
            self._resent = now
            for receiver in self._receivers:
                for alert in self._firing.values():
                    self._queue(receiver, alert)
        due = [r for r in self._receivers if r.pending and r.not_before <= now]
        if due:
            await asyncio.gather(*(self._send(receiver) for receiver in due))

    async def flush(self, within: float) -> None:
        """Send what is waiting, for at most `within` seconds, ignoring back-offs."""
        deadline = self._clock() + within
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                while self.pending and self._clock() < deadline:
                    for receiver in self._receivers:
                        receiver.not_before = 0.0
                    await self.send_due()
                    if self.pending:
                        await asyncio.sleep(min(0.1, max(0.0, deadline - self._clock())))

    async def aclose(self) -> None:
        if self._own_client and self._client is not None:
            await self._client.aclose()
        self._client = None

    def _queue(self, receiver: _Receiver, alert: Alert) -> None:
        if alert.key in receiver.pending or len(receiver.pending) < self.settings.max_pending:
            receiver.pending[alert.key] = alert
        else:
            self.dropped += 1

    async def _send(self, receiver: _Receiver) -> None:
        batch = list(receiver.pending.values())[:_BATCH]
        try:
            response = await self._http().post(
                receiver.url, json=receiver.body(batch), timeout=self.settings.timeout
            )
        except (httpx.HTTPError, OSError) as exc:
            self._failed(receiver, f"{type(exc).__name__}: {exc}")
            return
        if response.is_success or response.status_code in _PERMANENT:
            for alert in batch:
                # A newer state pushed while this one was in flight stays to be sent.
                if receiver.pending.get(alert.key) is alert:
                    del receiver.pending[alert.key]
            receiver.delay = 0.0
        if response.is_success:
            self.sent += len(batch)
        else:
            if response.status_code in _PERMANENT:
                self.dropped += len(batch)
            self._failed(receiver, f"HTTP {response.status_code}: {response.text[:200]!r}")

    def _failed(self, receiver: _Receiver, why: str) -> None:
        self.failed += 1
        settings = self.settings
        receiver.delay = min(settings.max_backoff, max(settings.backoff, 2 * receiver.delay))
        receiver.not_before = self._clock() + receiver.delay
        log.warning(
            "alerts to %s failed (%s); next try in %.1fs", receiver.url, why, receiver.delay
        )

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.settings.timeout)
            self._own_client = True
        return self._client


def _webhook_body(alerts: list[Alert]) -> dict[str, Any]:
    return {"version": "1", "service": "signet", "alerts": [_webhook_alert(a) for a in alerts]}
