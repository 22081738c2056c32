"""The trust config in force, and its reload when the files change.

A reload that fails keeps the last good config (and says so in the log and the metrics): an
edit with a typo must not take admission down, and it must never fall back to trusting nothing.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

from signet.observe.metrics import Metrics
from signet.trust.config import load
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
    ) -> None:
        """Load `path` now; raises TrustConfigError if it is invalid. `on_reload(ok, message)`
        hears every reload (the alerts)."""
        self.path = path
        self._metrics = metrics
        self.on_reload = on_reload
        self._config = load(path)
        self._stamp = self._fingerprint_files()
        self.last_error = ""
        if metrics is not None:
            metrics.trust_in_use(self._config.fingerprint)

    def current(self) -> TrustConfig:
        return self._config

    def reload_if_changed(self) -> bool:
        """Reload when any source file changed; True when a new config took effect."""
        stamp = self._fingerprint_files()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            config = load(self.path)
        except TrustConfigError as exc:
            self.last_error = str(exc)
            log.error("trust config reload failed; keeping the previous one: %s", exc)
            self._count("error")
            if self.on_reload is not None:
                self.on_reload(False, str(exc))
            return False
        self.last_error = ""
        changed = config.fingerprint != self._config.fingerprint
        self._config = config
        log.info("trust config reloaded (fingerprint %s)", config.fingerprint[:16])
        self._count("ok")
        if self.on_reload is not None:
            self.on_reload(True, "")
        if self._metrics is not None:
            self._metrics.trust_in_use(self._config.fingerprint)
        return changed

    async def watch(self, interval: float = 2.0) -> None:
        """Reload when a file changes: at once where the folders can be watched (`notify`),
        and in any case at least every `interval` seconds."""
        with FolderWatch() as folders:
            while True:
                folders.watch(self._folders())
                await folders.wait(interval)
                self.reload_if_changed()

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
