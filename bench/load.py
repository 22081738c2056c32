"""A small closed-loop HTTPS load generator with client certificates, and the raw HTTP/1.1
helpers the bench's Python-driven shapes (cold, burst, audit) use.

N connections, each sending the same pre-serialised POST back to back over keep-alive (or, with
`keepalive=False`, each request on a new connection), for a fixed time after a warm-up. Kept
minimal (raw asyncio streams, no HTTP library) so that the client costs as little CPU as
possible. It shares the machine's cores with the server it measures, as vegeta does: bench/run.py
drives the throughput shapes with whichever of the two gets more out of the bare server at the
start of the run (bench/compare_generators.py); bench/hostile.py uses this one.
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
    """One HTTP/1.1 answer: its status and body (Content-Length or chunked, as Go's net/http
    sends a body it did not know the length of)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    chunked = False
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if not chunked:
        return status, await reader.readexactly(length)
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")  # no trailers are sent: the final CRLF
            return status, b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


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
    keepalive: bool = True,
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
        connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
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
                if connection is None:  # without keep-alive the handshake is part of the time
                    connection = await asyncio.open_connection(host, port, ssl=context)
                reader, writer = connection
                writer.write(request)
                status, _ = await read_response(reader)
                if not keepalive:
                    writer.close()
                    connection = None
                ended = time.perf_counter()
                if began >= start_measure:
                    latencies.append(1000 * (ended - began))
                    if status != 200:
                        errors += 1
        finally:
            if connection is not None:
                connection[1].close()

    offsets = [i * interval / connections for i in range(connections)]
    await asyncio.gather(*(worker(offset) for offset in offsets))
    return LoadResult(len(latencies), seconds, latencies, errors)
