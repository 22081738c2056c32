"""The HTTP surface Gatekeeper calls: /validate, /mutate, and /healthz, /readyz, /metrics.

Both Gatekeeper endpoints always answer 200 with a ProviderResponse. A request that cannot be
answered (bad body, too many keys) gets a `systemError` and no items, which the policy denies.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from signet.http.wire import BadRequest, Item, parse_request, response
from signet.observe.metrics import Metrics
from signet.reasons import DeterministicFailure, Reason, TransientFailure
from signet.service.engine import Answer, Engine

__all__ = ["AppSettings", "create_app", "health_routes"]

log = logging.getLogger("signet.app")


@dataclass(frozen=True, slots=True)
class AppSettings:
    max_body_bytes: int = 1024 * 1024
    max_keys: int = 1000


class _TooLarge(Exception):
    pass


def create_app(
    engine: Engine,
    metrics: Metrics,
    *,
    ready: Callable[[], bool] = lambda: True,
    settings: AppSettings | None = None,
    lifespan: Callable[[Starlette], AbstractAsyncContextManager[None]] | None = None,
) -> Starlette:
    settings = settings or AppSettings()

    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > settings.max_body_bytes:
            raise _TooLarge
        chunks: list[bytes] = []
        total = 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > settings.max_body_bytes:
                raise _TooLarge
            chunks.append(chunk)
        return b"".join(chunks)

    async def keys_of(request: Request) -> list[str] | str:
        """The request's keys, or the systemError to answer with."""
        try:
            return parse_request(await read_body(request), max_keys=settings.max_keys)
        except _TooLarge:
            return f"the request body is larger than {settings.max_body_bytes} bytes"
        except BadRequest as exc:
            return f"bad ProviderRequest: {exc}"
        except Exception as exc:  # a body the parser did not foresee is refused, never a 500
            log.warning("unparseable ProviderRequest", exc_info=exc)
            return f"bad ProviderRequest: {type(exc).__name__}: {exc}"

    def answer(endpoint: str, started: float, items: list[Item], system_error: str) -> Response:
        return answer_encoded(endpoint, started, [item.encode() for item in items], system_error)

    # Each labelled series looked up at its first use rather than on every request.
    counted: dict[tuple[str, str], Any] = {}
    timed: dict[str, Any] = {}

    def answer_encoded(
        endpoint: str, started: float, items: list[bytes], system_error: str
    ) -> Response:
        result = "error" if system_error else "ok"
        counter = counted.get((endpoint, result))
        if counter is None:
            counter = counted[endpoint, result] = metrics.requests.labels(endpoint, result)
        counter.inc()
        timer = timed.get(endpoint)
        if timer is None:
            timer = timed[endpoint] = metrics.request_seconds.labels(endpoint)
        timer.observe(time.perf_counter() - started)
        return Response(response(items, system_error), media_type="application/json")

    async def validate(request: Request) -> Response:
        started = time.perf_counter()
        keys = await keys_of(request)
        if isinstance(keys, str):
            return answer("validate", started, [], keys)
        outcomes = await engine.check_many(keys)
        items: list[bytes] = []
        transient: list[str] = []
        for key, outcome in zip(keys, outcomes, strict=True):
            if isinstance(outcome, Answer):
                items.append(outcome.item)
            else:
                transient.append(f"{key}: {outcome}")
        return answer_encoded("validate", started, items, "; ".join(transient))

    async def mutate(request: Request) -> Response:
        started = time.perf_counter()
        keys = await keys_of(request)
        if isinstance(keys, str):
            return answer("mutate", started, [], keys)
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
        return answer("mutate", started, items, "; ".join(transient))

    return Starlette(
        routes=[
            Route("/validate", validate, methods=["POST"]),
            Route("/mutate", mutate, methods=["POST"]),
            *health_routes(metrics, ready),
        ],
        lifespan=lifespan,
    )


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
