"""Run `signet serve` as a real process over mTLS, the way Gatekeeper reaches it."""

from __future__ import annotations

import contextlib
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from signet.http.devcerts import DevCerts, write_dev_certs

from .procs import free_port, stop, stop_all


@dataclass(frozen=True)
class Provider:
    url: str
    port: int
    certs: DevCerts
    log: Path
    # The client certificate to present (default: the dev client certificate).
    client_identity: tuple[Path, Path] | None = None
    # The running process, last: `restart` replaces it.
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    argv: tuple[str, ...] = ()

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self.processes[-1] if self.processes else None

    def stop(self) -> None:
        """Stop the provider now (tests of what happens when it is gone)."""
        if self.process is not None:
            stop(self.process)

    def restart(self) -> None:
        """Stop it and start it again, same arguments and port: nothing cached in memory."""
        self.stop()
        with self.log.open("a") as log:
            process = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT)
        self.processes.append(process)
        _wait_ready(self, process)

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.certs.ca))
        cert, key = self.client_identity or (self.certs.client_cert, self.certs.client_key)
        context.load_cert_chain(cert, key)
        return context

    def client(self, timeout: float = 10.0) -> httpx.Client:
        return httpx.Client(verify=self.client_context(), timeout=timeout)


@contextlib.contextmanager
def run_provider(
    config: Path,
    work: Path,
    *extra: str,
    client_ca: Path | None = None,
    client_identity: tuple[Path, Path] | None = None,
    shared_cache: str | None = None,
    shared_cache_secret: Path | None = None,
    shared_cache_password_file: Path | None = None,
) -> Iterator[Provider]:
    """`signet serve` over mTLS; by default it trusts the dev CA's clients, or `client_ca`'s
    (e.g. Gatekeeper's), with `client_identity` (cert, key) as the test's own client.
    `shared_cache` (a redis:// URL) with its secret and password files: verdicts shared with
    the other providers given the same."""
    certs = write_dev_certs(work / "certs")
    for flag, value in (
        ("--shared-cache", shared_cache),
        ("--shared-cache-secret", shared_cache_secret),
        ("--shared-cache-password-file", shared_cache_password_file),
    ):
        if value is not None:
            extra = (*extra, flag, str(value))
    port = free_port()
    log_path = work / "signet.log"
    with log_path.open("w") as log:
        argv = (
            sys.executable,
            "-m",
            "signet.cli",
            "serve",
            "--config",
            str(config),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--cert",
            str(certs.server_cert),
            "--key",
            str(certs.server_key),
            "--client-ca",
            str(client_ca or certs.ca),
            *extra,
        )
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        provider = Provider(
            f"https://127.0.0.1:{port}", port, certs, log_path, client_identity, [process], argv
        )
        try:
            _wait_ready(provider, process)
            yield provider
        finally:
            stop_all(provider.processes)


def _wait_ready(provider: Provider, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    with provider.client(timeout=2) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(
                    f"signet serve exited with {process.returncode}:\n{provider.log.read_text()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if client.get(f"{provider.url}/readyz").status_code == 200:
                    return
            time.sleep(0.1)
    raise RuntimeError(f"signet serve was not ready in 30 s:\n{provider.log.read_text()}")
