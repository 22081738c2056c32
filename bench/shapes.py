"""The request shapes, each measured against one target at a time: warm throughput (keep-alive or
a new TLS handshake per request), a cold sequence of new images on one connection, and a burst of
concurrent requests for one new image. Each returns a dict of figures for one pass; bench/run.py
alternates the targets and merges the rounds (bench/report.py).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Sequence
from typing import Any

from bench.fixtures import RequestCounter
from bench.load import http_post, read_response, run_load
from bench.targets import Target
from bench.vegeta import attack

CONNECTIONS = 16
BURST = 100


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def check_answers(target: Target, keys: Sequence[str]) -> None:
    """Every key answered as verified: a pass measures correct answers or none."""
    items = target.ask(keys)
    wrong = [key for key in keys if not target.item_verified(items.get(key))]
    if wrong:
        raise RuntimeError(f"{target.name} did not verify {wrong[:3]}: {items.get(wrong[0])}")


def throughput(
    target: Target,
    keys: Sequence[str],
    *,
    generator: str,
    seconds: float,
    warmup: float,
    keepalive: bool = True,
) -> dict[str, Any]:
    """Closed loop at CONNECTIONS workers, every request for the same `keys` (all cached)."""
    check_answers(target, keys)
    body = target.body(keys)
    if generator == "vegeta":
        if warmup > 0:
            attack(target.url, body, target.certs, workers=CONNECTIONS, seconds=warmup)
        report = attack(
            target.url,
            body,
            target.certs,
            workers=CONNECTIONS,
            seconds=seconds,
            keepalive=keepalive,
        )
        rps, p50, p99, errors = report.throughput, report.p50_ms, report.p99_ms, report.errors
        requests = report.requests
    else:
        result = asyncio.run(
            run_load(
                "127.0.0.1",
                target.port,
                target.context(),
                http_post(target.path, "127.0.0.1", body),
                connections=CONNECTIONS,
                seconds=seconds,
                warmup=warmup,
                keepalive=keepalive,
            )
        )
        rps, p50, p99 = result.throughput, result.percentile(50), result.percentile(99)
        errors, requests = result.errors, result.requests
    check_answers(target, keys)  # still right at the end (Ratify's cache expires within a pass)
    return {
        "rps": round(rps, 1),
        "keys_per_s": round(rps * len(keys), 1),
        "p50_ms": round(p50, 2),
        "p99_ms": round(p99, 2),
        "requests": requests,
        "errors": errors,
    }


async def _open(target: Target) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", target.port, ssl=target.context())


def _items(raw: bytes) -> list[Any]:
    items: list[Any] = json.loads(raw)["response"]["items"]
    return items


def cold_sequence(target: Target, keys: Sequence[str], registry: RequestCounter) -> dict[str, Any]:
    """Each key a new signed image, one request after the other on one connection (opened
    first, so no request pays the handshake); registry requests per image from the registry."""

    unverified: list[str] = []

    async def run() -> tuple[list[float], list[int], int]:
        reader, writer = await _open(target)
        latencies, calls, verified = [], [], 0
        try:
            for key in keys:
                before = registry.settled()
                began = time.perf_counter()
                writer.write(http_post(target.path, "127.0.0.1", target.body([key])))
                _, raw = await read_response(reader)
                latencies.append(1000 * (time.perf_counter() - began))
                calls.append(registry.settled() - before)
                answered = sum(target.item_verified(item) for item in _items(raw))
                verified += answered
                if not answered and not unverified:
                    unverified.append(raw[:400].decode(errors="replace"))
        finally:
            writer.close()
        return latencies, calls, verified

    latencies, calls, verified = asyncio.run(run())
    return {
        "images": len(keys),
        "latencies_ms": [round(x, 2) for x in latencies],
        "first_ms": round(latencies[0], 2),
        "p50_ms": round(statistics.median(latencies), 2),
        "max_ms": round(max(latencies), 2),
        "registry_requests_per_image": calls,
        "verified": verified,
        "first_unverified_answer": unverified[0] if unverified else None,
    }


def burst(target: Target, key: str, registry: RequestCounter) -> dict[str, Any]:
    """BURST requests for one new image, released at once on BURST connections opened first;
    each request's time from the release to its answer."""
    request = http_post(target.path, "127.0.0.1", target.body([key]))
    verifications_before = target.metric("signet_verifications_total")

    async def run() -> tuple[list[float], int]:
        connections = await asyncio.gather(*(_open(target) for _ in range(BURST)))
        await asyncio.sleep(0.2)  # the server done with the handshakes too
        released = time.perf_counter()

        async def one(reader: asyncio.StreamReader) -> tuple[float, bool]:
            _, raw = await read_response(reader)
            elapsed = 1000 * (time.perf_counter() - released)
            return elapsed, all(target.item_verified(item) for item in _items(raw))

        for _, writer in connections:
            writer.write(request)
        answers = await asyncio.gather(*(one(reader) for reader, _ in connections))
        for _, writer in connections:
            writer.close()
        return [elapsed for elapsed, _ in answers], sum(ok for _, ok in answers)

    calls_before = registry.settled()
    latencies, verified = asyncio.run(run())
    calls = registry.settled() - calls_before
    verifications_after = target.metric("signet_verifications_total")
    verifications = (
        None
        if verifications_before is None or verifications_after is None
        else verifications_after - verifications_before
    )
    return {
        "requests": BURST,
        "latencies_ms": [round(x, 2) for x in latencies],
        "p50_ms": round(statistics.median(latencies), 2),
        "max_ms": round(max(latencies), 2),
        "verified_answers": verified,
        "registry_requests": calls,
        "verifications": verifications,
    }
