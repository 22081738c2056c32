"""An alert as the detectors raise and resolve it, and the text it may carry.

Labels identify an alert (Alertmanager groups, routes and deduplicates by them), so they only ever
hold values the provider chose or its trust config named: never an image name a pod spec could
spell. Image names go into annotations, made printable and cut to `MAX_TEXT` characters.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Final

__all__ = ["MAX_TEXT", "SERVICE", "Alert", "printable"]

SERVICE: Final = "signet"
MAX_TEXT: Final = 200


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert's state: firing while `ends_at` is None, resolved at `ends_at` (Unix seconds).

    `labels` are the alert's own, beyond alertname, severity and service."""

    name: str
    severity: str
    labels: tuple[tuple[str, str], ...]
    summary: str
    description: str
    starts_at: float
    ends_at: float | None = None

    @property
    def key(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        """What makes two states the same alert."""
        return self.name, self.labels

    @property
    def firing(self) -> bool:
        return self.ends_at is None

    def resolved(self, at: float) -> Alert:
        return dataclasses.replace(self, ends_at=at)

    def all_labels(self) -> dict[str, str]:
        return {"alertname": self.name, "severity": self.severity, "service": SERVICE} | dict(
            self.labels
        )


def printable(text: str, limit: int = MAX_TEXT) -> str:
    """`text` with everything outside printable ASCII escaped, cut to `limit` characters."""
    escaped = text.encode("ascii", "backslashreplace").decode("ascii")
    escaped = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in escaped)
    return escaped if len(escaped) <= limit else escaped[: limit - 3] + "..."
