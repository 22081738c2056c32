"""The servers the bench measures, each one entry: Signet (`signet serve`), Ratify (bench/ratify.py)
and the bare server (bench/baseline.py), with what it takes to send them a request, judge their
answers and read their memory.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.load import client_context
from signet.http.devcerts import DevCerts
from tests.support.procs import free_port, stop
from tests.support.provider import run_provider

ROOT = Path(__file__).resolve().parents[1]
SIGNET, RATIFY, BARE = "signet", "ratify", "bare"
# Provider.spec.timeout in each project's chart: Signet's validate Provider (values.yaml
# providers.validate.timeout) and Ratify's (provider.timeout.validationTimeoutSeconds).
SIGNET_PROVIDER_TIMEOUT = 3.0
RATIFY_PROVIDER_TIMEOUT = 5.0


def provider_request(keys: Sequence[str]) -> bytes:
    return json.dumps(
        {
            "apiVersion": "externaldata.gatekeeper.sh/v1beta1",
            "kind": "ProviderRequest",
            "request": {"keys": list(keys)},
        }
    ).encode()


def signet_verified(value: Any) -> bool:
    return isinstance(value, dict) and value.get("verified") == ["ci"]


@dataclass(frozen=True)
class Target:
    name: str
    port: int
    path: str
    pid: int
    certs: DevCerts  # the CA that signs its certificate, and the client certificate it accepts
    body: Callable[[Sequence[str]], bytes]
    value_verified: Callable[[Any], bool]  # one answer item's value: verified with the key?
    provider_timeout: float
    has_metrics: bool = False  # Signet's /metrics, on the same mTLS port
    log: Path | None = None

    def log_tail(self, lines: int = 30) -> str:
        if self.log is None or not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}{self.path}"

    def context(self) -> ssl.SSLContext:
        return client_context(self.certs.ca, self.certs.client_cert, self.certs.client_key)

    def item_verified(self, item: Any) -> bool:
        return (
            isinstance(item, dict)
            and not item.get("error")
            and self.value_verified(item.get("value"))
        )

    def ask(self, keys: Sequence[str]) -> dict[str, Any]:
        """One request for `keys`; the answer items by key."""
        with httpx.Client(verify=self.context(), timeout=30) as client:
            answer = client.post(self.url, content=self.body(keys)).json()
        return {item["key"]: item for item in answer["response"]["items"]}

    def metric(self, name: str) -> float | None:
        """A counter's value from Signet's /metrics (summed over its labels), or None."""
        if not self.has_metrics:
            return None
        with httpx.Client(verify=self.context(), timeout=30) as client:
            text = client.get(f"https://127.0.0.1:{self.port}/metrics").text
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name) and line[len(name) : len(name) + 1] in (" ", "{"):
                total += float(line.rsplit(" ", 1)[1])
        return total


@contextmanager
def run_signet(config: Path, work: Path) -> Iterator[Target]:
    with run_provider(config, work) as provider:
        assert provider.process is not None
        yield Target(
            SIGNET,
            provider.port,
            "/validate",
            provider.process.pid,
            provider.certs,
            provider_request,
            signet_verified,
            SIGNET_PROVIDER_TIMEOUT,
            has_metrics=True,
            log=provider.log,
        )


@contextmanager
def run_bare(work: Path, certs: DevCerts, answers: dict[str, Any]) -> Iterator[Target]:
    """bench/baseline.py answering `answers` (key -> value) from memory."""
    (work / "answers.json").write_text(json.dumps(answers))
    port = free_port()
    args = [
        sys.executable,
        str(ROOT / "bench" / "baseline.py"),
        *("--port", str(port), "--cert", str(certs.server_cert), "--key", str(certs.server_key)),
        *("--client-ca", str(certs.ca), "--answers", str(work / "answers.json")),
    ]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    target = Target(
        BARE, port, "/validate", process.pid, certs, provider_request, signet_verified, 0.0
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                target.ask([])
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the bare server did not start") from None
                time.sleep(0.1)
        yield target
    finally:
        stop(process)


def ratify_unavailable() -> str | None:
    """Why Ratify cannot be measured (bench/ratify.py missing or broken), or None."""
    try:
        import bench.ratify  # noqa: F401
    except Exception as error:  # any failure to import means: no Ratify
        return f"bench/ratify.py: {type(error).__name__}: {error}"
    return None


@contextmanager
def run_ratify_target(
    work: Path, registries: Sequence[str], public_key: Path, certs: DevCerts
) -> Iterator[Target]:
    from bench.ratify import ratify_verified, run_ratify

    with run_ratify(work, registries=registries, public_key=public_key, certs=certs) as server:
        yield Target(
            RATIFY,
            server.port,
            server.path,
            server.pid,
            certs,
            provider_request,
            ratify_verified,
            RATIFY_PROVIDER_TIMEOUT,
            log=getattr(server, "log", None),
        )


# --- memory ----------------------------------------------------------------------------------


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _kib(path: Path, field: str) -> int:
    try:
        for line in path.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cpu_seconds(pids: Sequence[int]) -> float:
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def wait_idle(pid: int, *, limit: float = 20.0, interval: float = 0.25) -> float:
    """Until the process and its descendants (say, verification workers still importing) use
    under 5 % of a core over `interval`; the seconds waited."""
    began = time.monotonic()
    tree = [pid, *_descendants(pid)]
    used = _cpu_seconds(tree)
    while time.monotonic() - began < limit:
        time.sleep(interval)
        tree = [pid, *_descendants(pid)]
        now = _cpu_seconds(tree)
        if now - used < 0.05 * interval:
            break
        used = now
    return time.monotonic() - began


def memory(pid: int) -> dict[str, Any]:
    """VmRSS of the process and all its descendants (Signet's verification workers), in MiB,
    and their PSS (shared pages divided among the processes sharing them)."""
    tree = [pid, *_descendants(pid)]
    rss = sum(_kib(Path(f"/proc/{p}/status"), "VmRSS") for p in tree)
    pss = sum(_kib(Path(f"/proc/{p}/smaps_rollup"), "Pss") for p in tree)
    return {
        "rss_mib": round(rss / 1024, 1),
        "pss_mib": round(pss / 1024, 1),
        "processes": len(tree),
    }
