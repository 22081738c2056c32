"""Where alerts go and when events become alerts (`signet serve --alertmanager/--alert-webhook`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

__all__ = ["AlertSettings"]


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """Thresholds are strict: a spike is *more than* `denials` within `denial_window` seconds, an
    outage *longer than* `registry_down_after` seconds."""

    alertmanager_url: str | None = None  # its base URL: alerts go to {url}/api/v2/alerts
    webhook_url: str | None = None  # the whole URL a JSON body is POSTed to
    denials: int = 50
    denial_window: float = 300.0
    registry_down_after: float = 300.0
    # How long a one-off event (a revoked key used, a new signer) stays firing after last seen.
    hold: float = 900.0
    max_repositories: int = 10_000
    max_signers: int = 16
    signers_file: Path | None = None  # the learnt signers, kept across restarts (JSON)
    resend_interval: float = 60.0  # firing alerts are sent again this often
    timeout: float = 5.0  # per POST
    max_pending: int = 1000  # alert states waiting to be sent, per receiver
    backoff: float = 1.0  # after a failed POST; doubled each time, up to max_backoff
    max_backoff: float = 30.0

    def __post_init__(self) -> None:
        for name in ("alertmanager_url", "webhook_url"):
            url = getattr(self, name)
            if url is not None:
                parts = urlsplit(url)
                if parts.scheme not in ("http", "https") or not parts.netloc:
                    raise ValueError(f"{name}: expected an http(s) URL, not {url!r}")
        if self.denials < 1 or self.denial_window <= 0:
            raise ValueError("denials must be at least 1 and denial_window positive")
        if self.registry_down_after < 0 or self.hold <= 0:
            raise ValueError("registry_down_after must be >= 0 and hold positive")
        if self.max_repositories < 1 or self.max_signers < 1 or self.max_pending < 1:
            raise ValueError("max_repositories, max_signers and max_pending must be at least 1")
        if self.resend_interval <= 0 or self.timeout <= 0 or self.backoff <= 0:
            raise ValueError("resend_interval, timeout and backoff must be positive")
        if self.max_backoff < self.backoff:
            raise ValueError("max_backoff must be at least backoff")
