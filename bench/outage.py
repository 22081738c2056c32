"""The outage benchmark: admissions while one registry has gone dark, breaker closed vs open.

`make bench` runs it after the others (or: `python bench/outage.py`). On 127.0.0.1: a healthy
`docker-registry` with signed images, and a second registry behind a proxy that holds every call
(a blackholed registry: no refusal, no answer). `signet serve` is run twice, with its circuit
breaker on (the default: 5 outages in a row open it) and off (`--registry-breaker-failures 0`).
Each request names four cached images of the healthy registry and one image of the dark one, as
a Pod of a team whose registry is down would; `--concurrency` requests at a time for `--seconds`.

Printed and written to bench/results/outage.json: requests/s, p50 and p99, and whether every
healthy image was still verified in every answer (it must be: a dark registry slows only its
own images).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.run import sign_all  # noqa: E402
from bench.shapes import percentile  # noqa: E402
from bench.targets import provider_request  # noqa: E402
from signet.crypto.keyfile import generate, public_pem  # noqa: E402
from tests.support.images import push_image  # noqa: E402
from tests.support.procs import free_port, stop, wait_for_http  # noqa: E402
from tests.support.provider import Provider, run_provider  # noqa: E402
from tests.support.registry import run_registry  # noqa: E402

HEALTHY_KEYS = 4


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=15.0, help="measured seconds per mode")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    results: dict[str, Any] = {"setup": vars(args)}
    with tempfile.TemporaryDirectory(prefix="signet-outage-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        healthy = stack.enter_context(run_registry(work / "healthy"))
        upstream = stack.enter_context(run_registry(work / "dark-upstream"))
        ci = generate("p256")
        images = [f"{healthy.host}/team/app:{i}" for i in range(HEALTHY_KEYS)]
        for i, image in enumerate(images):
            push_image(healthy.url, "team/app", image.rsplit(":", 1)[1], seed=f"outage-{i}")
        asyncio.run(sign_all(healthy.host, images, ci))
        digest = push_image(upstream.url, "dark/app", "v1", seed="outage-dark")
        # The proxy holds every call but `/v2/` for an hour: longer than anyone waits.
        dark_host = f"127.0.0.1:{free_port()}"
        port = dark_host.rsplit(":", 1)[1]
        dark = subprocess.Popen(
            [sys.executable, "-m", "tests.support.stalling", upstream.url, port, "3600"], cwd=ROOT
        )
        stack.callback(stop, dark)
        wait_for_http(f"http://{dark_host}/v2/", ok=(200,))
        (work / "ci.pub").write_bytes(public_pem(ci))
        config = work / "trust.yaml"
        config.write_text(
            f"version: 1\nattestors:\n  - name: ci\n    keys:\n      - file: {work / 'ci.pub'}\n"
            "registries:\n"
            + "".join(f"  - host: {h}\n    insecure: true\n" for h in (healthy.host, dark_host))
        )
        keys = [*images, f"{dark_host}/dark/app@{digest}"]
        for mode, failures in (("breaker on", "5"), ("breaker off", "0")):
            flags = ("--registry-breaker-failures", failures)
            with run_provider(config, work / mode.replace(" ", "-"), *flags) as provider:
                print(f"outage: {mode}, measuring", flush=True)
                results[mode] = asyncio.run(_measure(provider, keys, args))
    _print(results)
    results_dir = ROOT / "bench" / "results"
    results_dir.mkdir(exist_ok=True)
    (results_dir / "outage.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


async def _measure(provider: Provider, keys: list[str], args: argparse.Namespace) -> dict[str, Any]:
    body = provider_request(keys)
    latencies: list[float] = []
    healthy_unverified = 0
    async with httpx.AsyncClient(verify=provider.client_context(), timeout=30) as client:
        warm = await client.post(f"{provider.url}/validate", content=body)  # caches the healthy
        assert warm.status_code == 200
        stop_at = time.monotonic() + args.seconds

        async def worker() -> None:
            nonlocal healthy_unverified
            while time.monotonic() < stop_at:
                started = time.monotonic()
                answer = await client.post(f"{provider.url}/validate", content=body)
                latencies.append(time.monotonic() - started)
                items = {i["key"]: i["value"] for i in answer.json()["response"]["items"]}
                healthy_unverified += sum(
                    1
                    for key in keys[:HEALTHY_KEYS]
                    if (items.get(key) or {}).get("verified") != ["ci"]
                )

        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    return {
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / args.seconds, 1),
        "p50_ms": round(1000 * percentile(latencies, 50), 1),
        "p99_ms": round(1000 * percentile(latencies, 99), 1),
        "healthy_unverified": healthy_unverified,
    }


def _print(results: dict[str, Any]) -> None:
    for mode in ("breaker on", "breaker off"):
        r = results[mode]
        print(
            f"outage, {mode:11}: {r['requests_per_s']:7.1f} req/s  p50 {r['p50_ms']:7.1f} ms  "
            f"p99 {r['p99_ms']:7.1f} ms  healthy images unverified: {r['healthy_unverified']}"
        )
    on, off = results["breaker on"], results["breaker off"]
    if off["requests_per_s"]:
        ratio = on["requests_per_s"] / off["requests_per_s"]
        print(f"outage: breaker on / off throughput {ratio:.1f}x")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
