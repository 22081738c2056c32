"""Detectors of anomalous events: pure state machines fed decisions and events, and the time.

Each returns the alerts whose state changed (firing, or resolved) and never does I/O; `tick`
lets time alone change a state (a window emptying, an outage lasting, an event growing old).

- `DenialSpike`: more than `limit` deterministic denials (reasons, no transient error) within
  `window` seconds fires; back to `limit` or fewer resolves. Memory: the last `limit + 1` times.
- `KeyLifecycle`: a decision refused for KEY_REVOKED, KEY_EXPIRED or KEY_NOT_YET_VALID fires an
  alert per reason; it resolves `hold` seconds after the last such decision.
- `RegistryOutage`: a host continuously down for more than `after` seconds fires; up resolves.
- `TrustReload`: a failed reload fires; the next successful one resolves.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from dataclasses import dataclass

from signet.alerts.event import Alert, printable
from signet.audit.record import Decision
from signet.reasons import Reason

__all__ = ["DenialSpike", "KeyLifecycle", "RegistryOutage", "TrustReload"]

_EXAMPLES = 3  # images named in a denial spike's description
_LIFECYCLE = {
    str(Reason.KEY_REVOKED): "revoked",
    str(Reason.KEY_EXPIRED): "expired",
    str(Reason.KEY_NOT_YET_VALID): "not yet valid",
}


def _denied(decision: Decision) -> bool:
    return bool(decision.reasons) and decision.error is None


class DenialSpike:
    NAME = "SignetDenialSpike"

    def __init__(self, limit: int, window: float) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("a denial spike needs a limit >= 1 and a window > 0")
        self.limit, self.window = limit, window
        # The newest limit + 1 denial times are enough to tell whether more than `limit` fell
        # within the window: any older one is older than all of them.
        self._times: collections.deque[float] = collections.deque(maxlen=limit + 1)
        self._examples: collections.deque[str] = collections.deque(maxlen=_EXAMPLES)
        self._alert: Alert | None = None

    def observe(self, decisions: Sequence[Decision], now: float) -> list[Alert]:
        for decision in decisions:
            if _denied(decision):
                self._times.append(now)
                self._examples.append(printable(decision.key))
        return self.tick(now)

    def tick(self, now: float) -> list[Alert]:
        spiking = len(self._times) > self.limit and self._times[0] > now - self.window
        if spiking and self._alert is None:
            examples = ", ".join(self._examples)
            self._alert = Alert(
                self.NAME,
                "warning",
                (),
                f"More than {self.limit} images were denied within {self.window:g} seconds.",
                f"Recently denied, for example: {examples}.",
                now,
            )
            return [self._alert]
        if not spiking and self._alert is not None:
            resolved, self._alert = self._alert.resolved(now), None
            return [resolved]
        return []


class KeyLifecycle:
    NAME = "SignetRevokedOrExpiredKeyUsed"

    def __init__(self, hold: float) -> None:
        self.hold = hold
        self._firing: dict[str, tuple[Alert, float]] = {}  # reason -> (alert, last seen)

    def observe(self, decisions: Sequence[Decision], now: float) -> list[Alert]:
        changed = []
        for decision in decisions:
            for reason in decision.reasons:
                if reason not in _LIFECYCLE:
                    continue
                held = self._firing.get(reason)
                if held is not None:
                    self._firing[reason] = (held[0], now)
                    continue
                alert = Alert(
                    self.NAME,
                    "warning",
                    (("reason", reason),),
                    f"An image was signed only with a key the trust config holds as "
                    f"{_LIFECYCLE[reason]} ({reason}).",
                    f"Image {printable(decision.key)}, digest {decision.digest or 'unknown'}; "
                    "see signet_lifecycle_refusals_total for the attestor.",
                    now,
                )
                self._firing[reason] = (alert, now)
                changed.append(alert)
        return changed

    def tick(self, now: float) -> list[Alert]:
        old = [reason for reason, (_, seen) in self._firing.items() if now - seen > self.hold]
        return [self._firing.pop(reason)[0].resolved(now) for reason in old]


@dataclass
class _Down:
    since: float
    alert: Alert | None = None


class RegistryOutage:
    NAME = "SignetRegistryDown"

    def __init__(self, after: float, max_hosts: int = 1024) -> None:
        self.after, self.max_hosts = after, max_hosts
        self._down: dict[str, _Down] = {}

    def state(self, host: str, down: bool, now: float) -> list[Alert]:
        entry = self._down.get(host)
        if not down:
            if entry is None:
                return []
            del self._down[host]
            return [entry.alert.resolved(now)] if entry.alert is not None else []
        if entry is None and len(self._down) < self.max_hosts:
            self._down[host] = _Down(now)
        return self.tick(now)

    def tick(self, now: float) -> list[Alert]:
        changed = []
        for host, entry in self._down.items():
            if entry.alert is None and now - entry.since > self.after:
                entry.alert = Alert(
                    self.NAME,
                    "warning",
                    (("host", printable(host)),),
                    f"Registry {printable(host)} has been unavailable for more than "
                    f"{self.after / 60:g} minutes; its images are denied.",
                    f"Its circuit breaker has been open since {entry.since:.0f} (Unix time).",
                    now,
                )
                changed.append(entry.alert)
        return changed


class TrustReload:
    NAME = "SignetTrustReloadFailed"

    def __init__(self) -> None:
        self._alert: Alert | None = None

    def reloaded(self, ok: bool, message: str, now: float) -> list[Alert]:
        if ok:
            if self._alert is None:
                return []
            resolved, self._alert = self._alert.resolved(now), None
            return [resolved]
        if self._alert is not None:
            return []
        self._alert = Alert(
            self.NAME,
            "warning",
            (),
            "The trust config could not be reloaded; Signet keeps serving the previous one.",
            printable(message),
            now,
        )
        return [self._alert]
