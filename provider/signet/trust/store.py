"""The trust config in force, and its reload when the files change.

A reload that fails keeps the last good config (and says so in the log and the metrics): an
edit with a typo must not take admission down, and it must never fall back to trusting nothing.
A reload that could read a KMS-held key only from before (the KMS was down) takes effect and is
reported as failed (an `error` in the metrics) until a refresh reads the KMS again.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from pathlib import Path

from signet.observe.metrics import Metrics
from signet.trust.config import RemoteKeys, load
from signet.trust.model import TrustConfig, TrustConfigError
from signet.trust.notify import FolderWatch

__all__ = ["TrustStore"]

log = logging.getLogger("signet.trust")


class TrustStore:
    def __init__(
        self,
        path: Path,
        metrics: Metrics | None = None,
        on_reload: Callable[[bool, str], None] | None = None,
        kms_refresh: float = 300.0,
    ) -> None:
        """Load `path` now; raises TrustConfigError if it is invalid. `on_reload(ok, message)`
        hears every reload (the alerts). KMS-held keys are read again every `kms_refresh`
        seconds, as a reload."""
        self.path = path
        self._metrics = metrics
        self.on_reload = on_reload
        self.kms_refresh = kms_refresh
        self._remote = RemoteKeys()
        self._config = load(path, self._remote)
        self._loaded_at = time.monotonic()
        self._stamp = self._fingerprint_files()
        self.last_error = ""
        for warning in self._config.warnings:
            log.warning("trust config: %s", warning)
        if metrics is not None:
            metrics.trust_in_use(self._config.fingerprint)

    def current(self) -> TrustConfig:
        return self._config

    def reload_if_changed(self, refresh: bool = False) -> bool:
        """Reload when any source file changed (or `refresh`: to read KMS-held keys again);
        True when a new config took effect."""
        if not self._due(refresh):
            return False
        return self._apply(self._load())

    async def watch(self, interval: float = 2.0) -> None:
        """Reload when a file changes: at once where the folders can be watched (`notify`),
        and in any case at least every `interval` seconds. Loading (which may read keys from a
        KMS or a token) runs on a worker thread; its outcome is applied here, on the loop."""
        with FolderWatch() as folders:
            while True:
                folders.watch(self._folders())
                await folders.wait(min(interval, self.kms_refresh))
                if self._due(self._refresh_due()):
                    self._apply(await asyncio.to_thread(self._load))

    def _refresh_due(self) -> bool:
        age = time.monotonic() - self._loaded_at
        return bool(self._config.remote_keys) and age >= self.kms_refresh

    def _due(self, refresh: bool) -> bool:
        stamp = self._fingerprint_files()
        if stamp == self._stamp and not refresh:
            return False
        self._stamp = stamp
        self._loaded_at = time.monotonic()
        return True

    def _load(self) -> TrustConfig | TrustConfigError:
        try:
            return load(self.path, self._remote)
        except TrustConfigError as exc:
            return exc

    def _apply(self, outcome: TrustConfig | TrustConfigError) -> bool:
        if isinstance(outcome, TrustConfigError):
            self.last_error = str(outcome)
            log.error("trust config reload failed; keeping the previous one: %s", outcome)
            self._count("error")
            if self.on_reload is not None:
                self.on_reload(False, str(outcome))
            return False
        config = outcome
        changed = config.fingerprint != self._config.fingerprint
        self._config = config
        log.info("trust config reloaded (fingerprint %s)", config.fingerprint[:16])
        for warning in config.warnings:
            log.warning("trust config: %s", warning)
        self.last_error = "; ".join(config.warnings)
        self._count("error" if config.warnings else "ok")
        if self.on_reload is not None:
            self.on_reload(not config.warnings, self.last_error)
        if self._metrics is not None:
            self._metrics.trust_in_use(self._config.fingerprint)
        return changed

    def _folders(self) -> set[Path]:
        folders = {path.parent for path in [self.path, *self._config_files()]}
        return folders | {self.path} if self.path.is_dir() else folders

    def _fingerprint_files(self) -> str:
        digest = hashlib.sha256()
        paths = [self.path]
        if self.path.is_dir():
            paths = sorted(self.path.iterdir())
        paths += [p for p in self._config_files() if p not in paths]
        for path in paths:
            digest.update(str(path).encode())
            try:
                digest.update(path.read_bytes() if path.is_file() else b"<dir>")
            except OSError:
                digest.update(b"<missing>")
        return digest.hexdigest()

    def _config_files(self) -> list[Path]:
        return [*self._config.sources, *self._config.key_files]

    def _count(self, result: str) -> None:
        if self._metrics is not None:
            self._metrics.trust_reloads.labels(result).inc()
