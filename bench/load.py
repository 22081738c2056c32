"""A small closed-loop HTTPS load generator with client certificates (wrk has no mTLS).

N connections, each sending the same pre-serialised POST back to back over keep-alive, for a fixed
time after a warm-up. Kept minimal (raw asyncio streams, no HTTP library) so that the client costs
as little CPU as possible; it costs the same for both servers measured, so their ratio is fair.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    latencies_ms: list[float]
    errors: int

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def client_context(ca: Path, cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca))
    context.load_cert_chain(cert, key)
    return context


def http_post(path: str, host: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return status, await reader.readexactly(length)


async def run_load(
    host: str,
    port: int,
    context: ssl.SSLContext,
    request: bytes,
    *,
    connections: int,
    seconds: float,
    warmup: float,
    rate: float | None = None,
) -> LoadResult:
    """Closed loop (as fast as answers come) or, with `rate`, paced at `rate` requests/s in all.

    Paced latencies are measured from when each request was *due*, so a slow answer that delays
    the next request is counted against the server (no coordinated omission).
    """
    latencies: list[float] = []
    errors = 0
    start_measure = time.perf_counter() + warmup
    stop = start_measure + seconds
    interval = connections / rate if rate else 0.0

    async def worker(offset: float) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, port, ssl=context)
        due = time.perf_counter() + offset
        try:
            while True:
                now = time.perf_counter()
                if rate:
                    if due > now:
                        await asyncio.sleep(due - now)
                    began = due
                    due += interval
                else:
                    began = now
                if began >= stop:
                    return
                writer.write(request)
                status, _ = await read_response(reader)
                ended = time.perf_counter()
                if began >= start_measure:
                    latencies.append(1000 * (ended - began))
                    if status != 200:
                        errors += 1
        finally:
            writer.close()

    offsets = [i * interval / connections for i in range(connections)]
    await asyncio.gather(*(worker(offset) for offset in offsets))
    return LoadResult(len(latencies), seconds, latencies, errors)
