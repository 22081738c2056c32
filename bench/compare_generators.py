"""Which load generator is less of a bottleneck on this machine: vegeta or bench/load.py?

Both drive the bare server (bench/baseline.py, the fastest server measured, so the one where a
slow client shows most) with the warm shape, 16 keys per request on 16 keep-alive connections,
closed loop, alternating, the order reversed each round. The one that gets more answers per
second out of the same server costs the server less of the 2 cores, and is the one to use.

It depends on the machine's state (2026-12-02, 10 s passes): with the machine otherwise idle,
bench/load.py got 9,220 req/s out of the bare server and vegeta 5,516 (0.60x; with GOMAXPROCS=1
vegeta 6,300-6,600), as one event loop costs less CPU per request than Go's client, its
goroutines and its result encoding; with other builds loading it (load average 6-8), vegeta got
3,553-3,582 and bench/load.py 2,028-2,268 (1.58-1.75x), as the scheduler gives vegeta's threads
more of the contended cores. So bench/run.py measures this at the start of each run.

    python bench/compare_generators.py [--seconds 10] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.load import http_post, run_load  # noqa: E402
from bench.targets import Target, provider_request, run_bare  # noqa: E402
from bench.vegeta import attack  # noqa: E402
from signet.http.devcerts import write_dev_certs  # noqa: E402

KEYS = 16
CONNECTIONS = 16


def _answer(key: str) -> dict[str, Any]:
    """About the size and shape of Signet's answer for a verified image."""
    digest = "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    return {"verified": ["ci"], "digest": digest, "image": f"{key}@{digest}", "attestations": []}


def measure(target: Target, keys: list[str], generator: str, seconds: float) -> dict[str, Any]:
    body = provider_request(keys)
    if generator == "vegeta":
        attack(target.url, body, target.certs, workers=CONNECTIONS, seconds=1.0)  # warm-up
        report = attack(target.url, body, target.certs, workers=CONNECTIONS, seconds=seconds)
        return {"rps": report.throughput, "p99_ms": report.p99_ms, "errors": report.errors}
    result = asyncio.run(
        run_load(
            "127.0.0.1",
            target.port,
            target.context(),
            http_post(target.path, "127.0.0.1", body),
            connections=CONNECTIONS,
            seconds=seconds,
            warmup=1.0,
        )
    )
    return {"rps": result.throughput, "p99_ms": result.percentile(99), "errors": result.errors}


def compare(target: Target, keys: list[str], seconds: float, rounds: int) -> dict[str, Any]:
    passes: dict[str, list[dict[str, Any]]] = {"vegeta": [], "python": []}
    for number in range(rounds):
        order = ["vegeta", "python"] if number % 2 == 0 else ["python", "vegeta"]
        for generator in order:
            passes[generator].append(measure(target, keys, generator, seconds))
    summary: dict[str, Any] = {}
    for generator, results in passes.items():
        summary[generator] = {
            "rps": round(statistics.mean(r["rps"] for r in results), 1),
            "rps_passes": [round(r["rps"], 1) for r in results],
            "p99_ms": round(statistics.mean(r["p99_ms"] for r in results), 2),
            "errors": sum(r["errors"] for r in results),
        }
    faster = max(summary, key=lambda g: summary[g]["rps"])
    summary["winner"] = faster
    summary["ratio_vegeta_over_python"] = round(
        summary["vegeta"]["rps"] / summary["python"]["rps"], 3
    )
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="signet-generators-") as tmp:
        work = Path(tmp)
        certs = write_dev_certs(work / "certs")
        keys = [f"127.0.0.1:5000/bench/app:{i}" for i in range(KEYS)]
        with run_bare(work, certs, {key: _answer(key) for key in keys}) as bare:
            summary = compare(bare, keys, args.seconds, args.rounds)
    for generator in ("vegeta", "python"):
        s = summary[generator]
        print(
            f"{generator:7s} against the bare server: {s['rps']:8.1f} req/s "
            f"(passes {s['rps_passes']}), p99 {s['p99_ms']} ms, errors {s['errors']}"
        )
    print(f"vegeta / python: {summary['ratio_vegeta_over_python']:.2f}x -> use {summary['winner']}")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
