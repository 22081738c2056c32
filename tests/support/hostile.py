"""A hostile registry on 127.0.0.1: real sockets, answers chosen by the test.

Paths under /v2/<behaviour>/... pick the misbehaviour, so one server covers every case:
  status-<code>   answer every call with that status
  slow            wait 30 s before answering
  trickle         send headers, then one byte per 0.2 s, forever
  huge            a 64 MiB manifest body with no Content-Length
  metadata        redirect every call to the cloud metadata address
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Iterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from .procs import free_port, wait_for_http

MANIFEST = "application/vnd.oci.image.manifest.v1+json"


async def _misbehave(request: Request) -> Response:
    behaviour = request.path_params["behaviour"]
    if behaviour.startswith("status-"):
        return Response(status_code=int(behaviour[7:]), headers={"Retry-After": "30"})
    if behaviour == "slow":
        await asyncio.sleep(30)
        return Response(status_code=404)
    if behaviour == "trickle":

        async def drip() -> AsyncIterator[bytes]:
            for _ in range(10_000):
                await asyncio.sleep(0.2)
                yield b" "

        return StreamingResponse(drip(), media_type=MANIFEST)
    if behaviour == "huge":

        async def flood() -> AsyncIterator[bytes]:
            chunk = b"x" * (64 * 1024)  # large chunks: the test server's CPU is not the point
            for _ in range(1024):
                yield chunk

        return StreamingResponse(flood(), media_type=MANIFEST)
    if behaviour == "metadata":
        return Response(status_code=307, headers={"Location": "http://169.254.169.254/latest/"})
    return Response(status_code=404)


@contextlib.contextmanager
def run_hostile_registry() -> Iterator[str]:
    """Yield the host:port of the hostile registry (plain HTTP)."""
    port = free_port()

    async def ping(_: Request) -> Response:
        return Response("{}", media_type="application/json")

    app = Starlette(
        routes=[
            Route("/v2/", ping),
            Route("/v2/{behaviour}/{rest:path}", _misbehave, methods=["GET", "HEAD"]),
        ]
    )
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for_http(f"http://127.0.0.1:{port}/v2/", ok=(200,))
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
