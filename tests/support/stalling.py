"""A registry that stalls tag lookups on demand: a reverse proxy in front of a real registry.

Everything is passed through to the registry behind it, unchanged; while `stall_tags` is set, a
manifest request by tag (not by digest) waits that many seconds first, and while `stall_all` is
set every request does, as an overloaded registry or one an attacker controls can; while `down`
is set every request is answered 503, as a load balancer reports an outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from .procs import free_port, wait_for_http

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-encoding", "host"}


@dataclass
class StallingRegistry:
    host: str  # 127.0.0.1:PORT
    stall_tags: float = 0.0
    stall_all: float = 0.0
    down: bool = False
    tag_lookups: int = 0
    calls: int = 0


@contextlib.contextmanager
def run_stalling_registry(upstream: str, port: int | None = None) -> Iterator[StallingRegistry]:
    """A proxy to `upstream` (http://host:port) on a port of its own."""
    port = port or free_port()
    state = StallingRegistry(f"127.0.0.1:{port}")
    client = httpx.AsyncClient(base_url=upstream, timeout=30)

    async def forward(request: Request) -> Response:
        path = request.url.path
        state.calls += 1
        if state.down:
            return Response(status_code=503)
        if state.stall_all and path != "/v2/":
            await asyncio.sleep(state.stall_all)
        reference = path.rsplit("/", 1)[-1]
        if "/manifests/" in path and not reference.startswith("sha256:"):
            state.tag_lookups += 1
            if state.stall_tags:
                await asyncio.sleep(state.stall_tags)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        try:
            body = await request.body()
        except ClientDisconnect:  # the caller gave up while we stalled
            return Response(status_code=499)
        answer = await client.request(
            request.method, path, params=request.query_params, headers=headers, content=body
        )
        kept = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP}
        return Response(answer.content, status_code=answer.status_code, headers=kept)

    app = Starlette(
        routes=[Route("/{path:path}", forward, methods=["GET", "HEAD", "POST", "PUT", "PATCH"])]
    )
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for_http(f"http://{state.host}/v2/", ok=(200,))
        yield state
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def main() -> None:
    """Run one as a process of its own: `python -m tests.support.stalling UPSTREAM PORT DELAY`
    (every call waits DELAY seconds), so that its work does not share a process with the
    measurements."""
    import sys
    import time

    upstream, port, delay = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    with run_stalling_registry(upstream, port=port) as state:
        state.stall_all = delay
        print(f"ready {state.host}", flush=True)
        while True:
            time.sleep(3600)


if __name__ == "__main__":
    main()
