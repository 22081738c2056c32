"""vegeta (github.com/tsenart/vegeta), driven from Python: the bench's load generator for the
keep-alive and handshake-per-request shapes.

It is what the issue's figures were taken with and it speaks mutual TLS. Whether it or
bench/load.py (the raw-asyncio client) is less of a bottleneck depends on the machine: both share
its 2 cores with the server they measure. bench/compare_generators.py measures it, and
bench/run.py does so at the start of each run (`--generator auto`).

Run as Gatekeeper's client runs: HTTP/1.1 only (frameworks' externaldata client builds an
http.Transport with a TLSClientConfig and no ForceAttemptHTTP2, so Go never negotiates h2),
TLS 1.3 with a client certificate, no TLS session resumption (no ClientSessionCache).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.install_go_tool import go_tool
from signet.http.devcerts import DevCerts

INSTALL_SCRIPT = Path(__file__).resolve().parent / "install-load.sh"


def vegeta_binary() -> Path:
    """The vegeta binary, built by bench/install-load.sh first if it is not there yet."""
    return go_tool(INSTALL_SCRIPT)


@dataclass(frozen=True)
class VegetaReport:
    requests: int
    throughput: float  # successful answers per second
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int  # answers that were not HTTP 200, and requests that got no answer
    first_errors: list[str]


def attack(
    url: str,
    body: bytes,
    certs: DevCerts,
    *,
    workers: int,
    seconds: float,
    keepalive: bool = True,
) -> VegetaReport:
    """`workers` closed-loop workers (rate 0: each sends its next request when its answer is in)
    POSTing `body` to `url` for `seconds`."""
    binary = vegeta_binary()
    with tempfile.TemporaryDirectory(prefix="signet-vegeta-") as tmp:
        body_file = Path(tmp) / "body.json"
        body_file.write_bytes(body)
        attack_args = [
            str(binary),
            "attack",
            f"-body={body_file}",
            "-header=Content-Type: application/json",
            "-rate=0",
            f"-workers={workers}",
            f"-max-workers={workers}",
            f"-duration={seconds}s",
            f"-cert={certs.client_cert}",
            f"-key={certs.client_key}",
            f"-root-certs={certs.ca}",
            f"-keepalive={'true' if keepalive else 'false'}",
            "-http2=false",
            "-max-body=0",  # answers are read to the end, not kept (checked apart, see shapes)
            "-timeout=30s",
        ]
        results = Path(tmp) / "results.bin"
        with results.open("wb") as out:
            subprocess.run(
                attack_args,
                input=f"POST {url}\n".encode(),
                stdout=out,
                stderr=subprocess.PIPE,
                check=True,
            )
        report = subprocess.run(
            [str(binary), "report", "-type=json", str(results)],
            capture_output=True,
            check=True,
        )
    parsed = json.loads(report.stdout)
    latencies = parsed["latencies"]
    codes = parsed.get("status_codes") or {}
    requests = int(parsed["requests"])
    return VegetaReport(
        requests=requests,
        throughput=float(parsed["throughput"]),
        p50_ms=latencies["50th"] / 1e6,
        p99_ms=latencies["99th"] / 1e6,
        max_ms=latencies["max"] / 1e6,
        errors=requests - int(codes.get("200", 0)),
        first_errors=list(parsed.get("errors") or [])[:3],
    )
