"""A real Alertmanager on 127.0.0.1 (built by scripts/install-tools.sh), clustering off.

With a `notify` URL it routes every alert to that webhook at once (group_wait 0s, group_interval
1s) and sends resolved notifications too, so a test sees what Alertmanager itself makes of the
alerts it was given, including their endsAt once resolved (GET /api/v2/alerts leaves resolved
alerts out).
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from .procs import free_port, stop

VERSION = "v0.35.0"
BINARY = Path(__file__).resolve().parents[2] / ".tools" / f"alertmanager-{VERSION}" / "alertmanager"


@dataclass(frozen=True)
class Alertmanager:
    url: str
    log: Path
    process: subprocess.Popen[bytes]

    def alerts(self) -> list[dict[str, Any]]:
        """The active alerts, as GET /api/v2/alerts lists them."""
        response = httpx.get(f"{self.url}/api/v2/alerts", timeout=5)
        response.raise_for_status()
        found: list[dict[str, Any]] = response.json()
        return found


def _config(notify: str | None) -> dict[str, Any]:
    route: dict[str, Any] = {
        "receiver": "capture" if notify else "none",
        "group_by": ["..."],  # every alert a group of its own
        "group_wait": "0s",
        "group_interval": "1s",
        "repeat_interval": "1h",
    }
    receiver: dict[str, Any] = {"name": route["receiver"]}
    if notify:
        receiver["webhook_configs"] = [{"url": notify, "send_resolved": True}]
    return {"route": route, "receivers": [receiver]}


@contextlib.contextmanager
def run_alertmanager(
    directory: Path, *, notify: str | None = None, port: int | None = None
) -> Iterator[Alertmanager]:
    if not BINARY.exists():
        raise RuntimeError(f"{BINARY} is missing: run `make tools`")
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "alertmanager.yml"
    config.write_text(yaml.safe_dump(_config(notify)))
    port = port or free_port()
    args = [
        str(BINARY),
        f"--config.file={config}",
        f"--storage.path={directory / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]
    log = directory / "alertmanager.log"
    with log.open("ab") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        running = Alertmanager(f"http://127.0.0.1:{port}", log, process)
        try:
            _wait_ready(running)
            yield running
        except BaseException:
            print(log.read_text())
            raise
        finally:
            stop(process)


def _wait_ready(manager: Alertmanager, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if manager.process.poll() is not None:
            raise RuntimeError(f"alertmanager exited with {manager.process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{manager.url}/-/ready", timeout=1).status_code == 200:
                return
        time.sleep(0.05)
    raise RuntimeError(f"alertmanager at {manager.url} was not ready within {timeout}s")
