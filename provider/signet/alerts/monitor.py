"""The alerts of one provider: its decisions and events go in, alert states go out to receivers.

`observe`, `registry_state` and `trust_reload` are called on the admission path and the event
loop's thread: they run the detectors (memory only, O(decisions)) and hand any change to the
delivery queue, and never raise. The task `start` begins ticks the detectors each second (time
alone resolves a spike or fires an outage), sends what is due, and saves the learnt signers
(when `signers_file` is set and they changed) at most once a minute, off the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence

import httpx

from signet.alerts import signers
from signet.alerts.deliver import Delivery
from signet.alerts.detect import DenialSpike, KeyLifecycle, RegistryOutage, TrustReload
from signet.alerts.event import Alert
from signet.alerts.settings import AlertSettings
from signet.audit.record import Decision

__all__ = ["Alerts"]

log = logging.getLogger("signet.alerts")

_TICK = 1.0
_SAVE_EVERY = 60.0
_FLUSH_WITHIN = 2.0  # what `aclose` gives the last alert states


class Alerts:
    def __init__(
        self,
        settings: AlertSettings,
        *,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Reads `settings.signers_file` if there is one: raises ValueError if it is unreadable."""
        self.settings = settings
        self._clock = clock
        self._delivery = Delivery(settings, client=client)
        self._spike = DenialSpike(settings.denials, settings.denial_window)
        self._lifecycle = KeyLifecycle(settings.hold)
        self._signers = signers.NewSigners(
            settings.hold, settings.max_repositories, settings.max_signers
        )
        self._outage = RegistryOutage(settings.registry_down_after)
        self._reload = TrustReload()
        if settings.signers_file is not None:
            signers.load(self._signers, settings.signers_file)
        self._task: asyncio.Task[None] | None = None
        self._saved = time.monotonic()

    # -- counters, for the caller to export ---------------------------------------------------

    @property
    def sent(self) -> int:
        return self._delivery.sent

    @property
    def failed(self) -> int:
        return self._delivery.failed

    @property
    def dropped(self) -> int:
        return self._delivery.dropped

    @property
    def firing(self) -> tuple[Alert, ...]:
        return self._delivery.firing

    # -- what the provider tells -------------------------------------------------------------

    def observe(self, decisions: Sequence[Decision]) -> None:
        try:
            now = self._clock()
            changed = self._spike.observe(decisions, now)
            changed += self._lifecycle.observe(decisions, now)
            changed += self._signers.observe(decisions, now)
            self._delivery.push(changed)
        except Exception:  # alerts must never fail an admission
            log.exception("alerts: observing decisions failed")

    def registry_state(self, host: str, down: bool) -> None:
        try:
            self._delivery.push(self._outage.state(host, down, self._clock()))
        except Exception:
            log.exception("alerts: a registry state change failed")

    def trust_reload(self, ok: bool, message: str) -> None:
        try:
            self._delivery.push(self._reload.reloaded(ok, message, self._clock()))
        except Exception:
            log.exception("alerts: a trust reload event failed")

    # -- the background task -------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="signet-alerts")

    async def aclose(self) -> None:
        """Stop the task, send what is waiting (for at most 2 s) and save the learnt signers."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tick()
        await self._delivery.flush(_FLUSH_WITHIN)
        await self._save(force=True)
        await self._delivery.aclose()

    def _tick(self) -> None:
        now = self._clock()
        changed = self._spike.tick(now)
        changed += self._lifecycle.tick(now)
        changed += self._signers.tick(now)
        changed += self._outage.tick(now)
        self._delivery.push(changed)

    async def _run(self) -> None:
        while True:
            try:
                self._tick()
                await self._delivery.send_due()
                await self._save()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("alerts: a delivery round failed")
            await self._delivery.wait(_TICK)

    async def _save(self, *, force: bool = False) -> None:
        path = self.settings.signers_file
        if path is None or not self._signers.changed:
            return
        if not force and time.monotonic() - self._saved < _SAVE_EVERY:
            return
        self._saved = time.monotonic()
        document = self._signers.to_json()  # taken on the loop: the detector is not thread-safe
        try:
            await asyncio.to_thread(signers.write, path, document)
        except OSError as exc:
            self._signers.changed = True
            log.warning("alerts: could not save the learnt signers to %s: %s", path, exc)
