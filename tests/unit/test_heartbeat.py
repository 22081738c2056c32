"""The probes on the plain health port ask the loop that serves Gatekeeper (http/heartbeat.py)."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette

from signet.http.app import health_routes
from signet.http.heartbeat import Heartbeat
from signet.observe.metrics import Metrics

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def probe(heartbeat: Heartbeat) -> tuple[int, int]:
    app = Starlette(routes=health_routes(Metrics(), heartbeat.ready, heartbeat.live))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
        ready = await client.get("/readyz")
        live = await client.get("/healthz")
    return ready.status_code, live.status_code


async def test_not_ready_until_the_server_started_and_beats_but_alive_while_starting() -> None:
    started = False
    clock = Clock()
    heartbeat = Heartbeat(lambda: started, clock=clock)
    assert await probe(heartbeat) == (503, 200)
    heartbeat.beat()
    assert await probe(heartbeat) == (503, 200)  # beating, but not listening yet
    started = True
    assert await probe(heartbeat) == (200, 200)


async def test_a_loop_that_stopped_beating_is_neither_ready_nor_alive() -> None:
    clock = Clock()
    heartbeat = Heartbeat(lambda: True, clock=clock, stale_after=5.0)
    heartbeat.beat()
    clock.now += 4.9
    assert await probe(heartbeat) == (200, 200)
    clock.now += 0.2
    assert await probe(heartbeat) == (503, 503)
    heartbeat.beat()
    assert await probe(heartbeat) == (200, 200)
