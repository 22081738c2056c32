"""The HTTP surface Gatekeeper calls: /validate, /mutate, and /healthz, /readyz, /metrics.

Both Gatekeeper endpoints always answer 200 with a ProviderResponse. A request that cannot be
answered (bad body, too many keys) gets a `systemError` and no items, which the policy denies.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from signet.http.wire import BadRequest, Item, parse_request, response
from signet.observe.metrics import Metrics
from signet.reasons import DeterministicFailure, Reason, TransientFailure
from signet.service.engine import Answer, Engine

__all__ = ["AppSettings", "ProviderApp", "create_app", "health_routes"]

log = logging.getLogger("signet.app")


@dataclass(frozen=True, slots=True)
class AppSettings:
    max_body_bytes: int = 1024 * 1024
    max_keys: int = 1000


# An endpoint's work: the request's keys in, the encoded items and the systemError out.
Endpoint = Callable[[list[str]], Awaitable[tuple[list[bytes], str]]]

_JSON = (b"content-type", b"application/json")


class ProviderApp:
    """The ASGI app. Gatekeeper's two endpoints (POST /validate, /mutate) are answered here
    directly — Gatekeeper calls them for every admission and every audited object, so they skip
    routing and request/response objects — everything else by Starlette (health, metrics,
    lifespan, wrong methods).

    Every POST to an endpoint is answered 200 with a ProviderResponse: a body over the limit, one
    that is not a ProviderRequest, and a bug all get a `systemError`, which the policy denies.
    """

    def __init__(
        self,
        endpoints: dict[str, Endpoint],
        metrics: Metrics,
        settings: AppSettings,
        others: Starlette,
    ) -> None:
        self._endpoints = endpoints
        self._settings = settings
        self._others = others
        self._metrics = metrics
        # Each labelled series looked up at its first use rather than on every request.
        self._counted: dict[tuple[str, str], Any] = {}
        self._timed: dict[str, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            endpoint = self._endpoints.get(scope["path"])
            if endpoint is not None:
                await self._answer(scope["path"][1:], endpoint, scope, receive, send)
                return
        await self._others(scope, receive, send)

    async def _answer(
        self, name: str, endpoint: Endpoint, scope: Scope, receive: Receive, send: Send
    ) -> None:
        started = time.perf_counter()
        keys = await self._keys(scope, receive)
        if keys is None:
            return  # the client went away before sending its body
        if isinstance(keys, str):
            items: list[bytes] = []
            system_error = keys
        else:
            try:
                items, system_error = await endpoint(keys)
            except Exception as exc:  # a bug must deny, not crash the request
                log.error("unexpected error answering /%s", name, exc_info=exc)
                items = []
                system_error = f"{Reason.INTERNAL_ERROR}: {type(exc).__name__}"
        self._count(name, started, system_error)
        body = response(items, system_error)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [_JSON, (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _count(self, name: str, started: float, system_error: str) -> None:
        result = "error" if system_error else "ok"
        counter = self._counted.get((name, result))
        if counter is None:
            counter = self._counted[name, result] = self._metrics.requests.labels(name, result)
        counter.inc()
        timer = self._timed.get(name)
        if timer is None:
            timer = self._timed[name] = self._metrics.request_seconds.labels(name)
        timer.observe(time.perf_counter() - started)

    async def _keys(self, scope: Scope, receive: Receive) -> list[str] | str | None:
        """The request's keys, the systemError to answer with, or None if the client left."""
        limit = self._settings.max_body_bytes
        too_large = f"the request body is larger than {limit} bytes"
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                return too_large
        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk: bytes = message.get("body", b"")
            total += len(chunk)
            if total > limit:
                return too_large
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        try:
            return parse_request(b"".join(chunks), max_keys=self._settings.max_keys)
        except BadRequest as exc:
            return f"bad ProviderRequest: {exc}"
        except Exception as exc:  # a body the parser did not foresee is refused, never a 500
            log.warning("unparseable ProviderRequest", exc_info=exc)
            return f"bad ProviderRequest: {type(exc).__name__}: {exc}"


def create_app(
    engine: Engine,
    metrics: Metrics,
    *,
    ready: Callable[[], bool] = lambda: True,
    settings: AppSettings | None = None,
    lifespan: Callable[[Starlette], AbstractAsyncContextManager[None]] | None = None,
) -> ProviderApp:
    async def validate(keys: list[str]) -> tuple[list[bytes], str]:
        outcomes = await engine.check_many(keys)
        items: list[bytes] = []
        transient: list[str] = []
        for key, outcome in zip(keys, outcomes, strict=True):
            if isinstance(outcome, Answer):
                items.append(outcome.item)
            else:
                transient.append(f"{key}: {outcome}")
        return items, "; ".join(transient)

    async def mutate(keys: list[str]) -> tuple[list[bytes], str]:
        pinned = await asyncio.gather(*(engine.pin(key) for key in keys), return_exceptions=True)
        items: list[Item] = []
        transient: list[str] = []
        for key, result in zip(keys, pinned, strict=True):
            if isinstance(result, str):
                items.append(Item(key, result))
            elif isinstance(result, DeterministicFailure):
                items.append(Item(key, error=str(result)))
            elif isinstance(result, TransientFailure):
                transient.append(f"{key}: {result}")
            elif isinstance(result, TimeoutError):
                transient.append(f"{key}: {Reason.DEADLINE_EXCEEDED}: no answer in time")
            else:  # a bug must deny, not crash the request
                log.error("unexpected error while pinning %s", key, exc_info=result)
                transient.append(f"{key}: {Reason.INTERNAL_ERROR}: {type(result).__name__}")
        return [item.encode() for item in items], "; ".join(transient)

    async def wrong_method(_: Request) -> Response:  # never called: ProviderApp answers POST
        raise AssertionError("POST to an endpoint reached the router")

    others = Starlette(
        routes=[
            # POSTs are answered by ProviderApp; these routes give other methods their 405.
            Route("/validate", wrong_method, methods=["POST"]),
            Route("/mutate", wrong_method, methods=["POST"]),
            *health_routes(metrics, ready),
        ],
        lifespan=lifespan,
    )
    endpoints: dict[str, Endpoint] = {"/validate": validate, "/mutate": mutate}
    return ProviderApp(endpoints, metrics, settings or AppSettings(), others)


def health_routes(
    metrics: Metrics, ready: Callable[[], bool], live: Callable[[], bool] = lambda: True
) -> list[Route]:
    """/healthz, /readyz and /metrics: on the mTLS port, and on the plain health port for
    kubelet probes and Prometheus, which hold no Gatekeeper client certificate."""

    async def healthz(_: Request) -> Response:
        if live():
            return PlainTextResponse("ok\n")
        return PlainTextResponse("the serving loop has stopped answering\n", status_code=503)

    async def readyz(_: Request) -> Response:
        if ready():
            return PlainTextResponse("ready\n")
        return PlainTextResponse(
            "not serving: the HTTPS loop has not started or is not answering\n", status_code=503
        )

    async def metrics_endpoint(_: Request) -> Response:
        return Response(metrics.exposition(), media_type="text/plain; version=0.0.4")

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]
