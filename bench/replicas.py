"""Past one replica: three `signet serve` replicas, with and without the shared verdict cache.

`make bench` runs it after the others (or: `python bench/replicas.py`). On 127.0.0.1: the
bench's counting docker-registry with classic-signed images, a real `redis-server`, and three
replicas of `signet serve` — each of Gatekeeper's webhook and audit Pods asks whichever replica
the Service picks, so a new image reaches all of them. Each new image is asked of the three at
once (their requests leave together), then the next; once with `--shared-cache` and once
without. Then the warm path of one replica, shared cache on and off: it must not change, since
local hits never reach the store.

Printed and written to bench/results/replicas.json: verifications and registry requests per new
image across the three, answer latency p50 / max, and the warm requests/s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.fixtures import BenchImage, CountedRegistry, publish, run_counted_registry  # noqa: E402
from bench.shapes import percentile  # noqa: E402
from bench.targets import provider_request  # noqa: E402
from signet.crypto.keyfile import generate, public_pem  # noqa: E402
from tests.support.provider import Provider, run_provider  # noqa: E402
from tests.support.redis import run_redis  # noqa: E402

REPLICAS = 3
WARM_KEYS = 2  # a typical Pod
MODES = ("shared cache", "no shared cache")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--images", type=int, default=20, help="new images per mode")
    parser.add_argument("--seconds", type=float, default=5.0, help="warm seconds per mode")
    parser.add_argument("--concurrency", type=int, default=8, help="warm requests at a time")
    args = parser.parse_args()
    results: dict[str, Any] = {"setup": vars(args)}
    with tempfile.TemporaryDirectory(prefix="signet-replicas-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        registry = stack.enter_context(run_counted_registry(work / "registry"))
        redis = stack.enter_context(run_redis(work / "redis", password="bench"))
        key = generate("p256")
        images = {
            mode: [BenchImage("replicas/app", f"{index}-{i}") for i in range(args.images)]
            for index, mode in enumerate(MODES)
        }
        warm = [BenchImage("replicas/warm", str(i)) for i in range(WARM_KEYS)]
        everything = [*warm, *(image for batch in images.values() for image in batch)]
        publish(registry, everything, key, generate("p256"))
        (work / "ci.pub").write_bytes(public_pem(key))
        config = work / "trust.yaml"
        config.write_text(
            f"version: 1\nattestors:\n  - name: ci\n    keys:\n      - file: {work / 'ci.pub'}\n"
            f"registries:\n  - host: {registry.host}\n    insecure: true\n"
            "evidence:\n  formats: [cosign-classic]\n  attestations: false\n"
        )
        (work / "secret").write_bytes(os.urandom(48))
        (work / "password").write_text("bench\n")
        shared = {
            "shared_cache": redis.url,
            "shared_cache_secret": work / "secret",
            "shared_cache_password_file": work / "password",
        }
        for mode in MODES:
            flags = shared if mode == "shared cache" else {}
            with _replicas(config, work / mode.replace(" ", "-"), flags) as providers:
                print(f"replicas: {mode}, measuring", flush=True)
                keys = [image.key(registry.host) for image in images[mode]]
                figures = _cold(providers, keys, registry)
                warm_keys = [image.key(registry.host) for image in warm]
                figures["warm"] = asyncio.run(_warm(providers[0], warm_keys, args))
                results[mode] = figures
    _print(results)
    results_dir = ROOT / "bench" / "results"
    results_dir.mkdir(exist_ok=True)
    (results_dir / "replicas.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


@contextlib.contextmanager
def _replicas(config: Path, work: Path, flags: dict[str, Any]) -> Iterator[list[Provider]]:
    with ExitStack() as stack:
        yield [
            stack.enter_context(run_provider(config, work / f"replica-{index}", **flags))
            for index in range(REPLICAS)
        ]


def _cold(providers: list[Provider], keys: list[str], registry: CountedRegistry) -> dict[str, Any]:
    """Each key asked of every replica at once, one key after another."""
    before_verifications = _verifications(providers)
    before_requests = registry.requests.settled()
    latencies: list[float] = []
    unverified = 0
    clients = [provider.client() for provider in providers]
    try:
        for client, provider in zip(clients, providers, strict=True):
            client.get(f"{provider.url}/readyz")  # connected: the requests leave together
        for key in keys:
            barrier = threading.Barrier(len(providers))

            def ask(index: int, key: str = key, barrier: threading.Barrier = barrier) -> Any:
                barrier.wait()
                started = time.monotonic()
                body = provider_request([key])
                answer = clients[index].post(f"{providers[index].url}/validate", content=body)
                return time.monotonic() - started, answer.json()["response"]

            with ThreadPoolExecutor(len(providers)) as pool:
                for elapsed, response in pool.map(ask, range(len(providers))):
                    latencies.append(elapsed)
                    items = response["items"]
                    if response["systemError"] or items[0]["value"]["verified"] != ["ci"]:
                        unverified += 1
    finally:
        for client in clients:
            client.close()
    verifications = _verifications(providers) - before_verifications
    requests = registry.requests.settled() - before_requests
    return {
        "images": len(keys),
        "verifications_per_image": round(verifications / len(keys), 2),
        "registry_requests_per_image": round(requests / len(keys), 2),
        "p50_ms": round(1000 * percentile(latencies, 50), 1),
        "max_ms": round(1000 * max(latencies), 1),
        "unverified_answers": unverified,
    }


def _verifications(providers: list[Provider]) -> float:
    total = 0.0
    for provider in providers:
        with provider.client() as client:
            text = client.get(f"{provider.url}/metrics").text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "signet_verifications_total":
                    total += sample.value
    return total


async def _warm(provider: Provider, keys: list[str], args: argparse.Namespace) -> dict[str, Any]:
    body = provider_request(keys)
    latencies: list[float] = []
    async with httpx.AsyncClient(verify=provider.client_context(), timeout=30) as client:
        assert (await client.post(f"{provider.url}/validate", content=body)).status_code == 200
        stop_at = time.monotonic() + args.seconds

        async def worker() -> None:
            while time.monotonic() < stop_at:
                started = time.monotonic()
                answer = await client.post(f"{provider.url}/validate", content=body)
                latencies.append(time.monotonic() - started)
                assert answer.json()["response"]["systemError"] == ""

        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    return {
        "requests_per_s": round(len(latencies) / args.seconds, 1),
        "p99_ms": round(1000 * percentile(latencies, 99), 2),
    }


def _print(results: dict[str, Any]) -> None:
    for mode in MODES:
        r = results[mode]
        print(
            f"{REPLICAS} replicas, {mode:15}: {r['verifications_per_image']:.2f} verifications "
            f"and {r['registry_requests_per_image']:.1f} registry requests per new image, "
            f"p50 {r['p50_ms']} ms, max {r['max_ms']} ms, unverified {r['unverified_answers']}; "
            f"warm {r['warm']['requests_per_s']:,.0f} req/s (p99 {r['warm']['p99_ms']} ms)"
        )
    on, off = results["shared cache"], results["no shared cache"]
    goal = "met" if on["verifications_per_image"] <= 1.2 else "NOT met"
    print(f"replicas: goal <= 1.2 verifications per new image with the shared cache: {goal}")
    if off["warm"]["requests_per_s"]:
        ratio = on["warm"]["requests_per_s"] / off["warm"]["requests_per_s"]
        print(f"replicas: warm path with / without the shared cache {ratio:.2f}x")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
