"""A registry that can be taken down: a proxy on 127.0.0.1 in front of a real registry, which
answers 503 to every call while `down` is set (an outage, as a load balancer reports one)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .procs import free_port, wait_for_http

_PASSED_ON = ("content-type", "docker-content-digest", "content-length", "www-authenticate")


@dataclass
class FlakyRegistry:
    host: str
    down: threading.Event = field(default_factory=threading.Event)
    calls: int = 0


@contextlib.contextmanager
def run_flaky_registry(upstream: str) -> Iterator[FlakyRegistry]:
    """`upstream` is the real registry's base URL (http://host:port)."""
    port = free_port()
    flaky = FlakyRegistry(f"127.0.0.1:{port}")
    client = httpx.AsyncClient(base_url=upstream, timeout=10)

    async def forward(request: Request) -> Response:
        flaky.calls += 1
        if flaky.down.is_set():
            return Response(status_code=503)
        answer = await client.request(
            request.method,
            request.url.path,
            params=request.query_params,
            headers={"Accept": request.headers.get("accept", "*/*")},
        )
        headers = {k: v for k, v in answer.headers.items() if k.lower() in _PASSED_ON}
        body = b"" if request.method == "HEAD" else answer.content
        return Response(body, status_code=answer.status_code, headers=headers)

    app = Starlette(routes=[Route("/{path:path}", forward, methods=["GET", "HEAD"])])
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for_http(f"http://{flaky.host}/v2/", ok=(200,))
        yield flaky
    finally:
        server.should_exit = True
        thread.join(timeout=10)
