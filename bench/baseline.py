"""The yardstick: a bare starlette app answering the same request shape from memory, as fast as a
Python server can: uvicorn on uvloop (libuv's event loop) with httptools (the C HTTP/1.1 parser),
no logging, every answer item JSON-encoded once at start, so a request costs one json.loads of
the body, a dict lookup per key and a byte join.

Same TLS settings as `signet serve` (TLS 1.3, client certificate required), same response shape,
no verification: the ratio of Signet's warm throughput to this one's says what Signet's own work
costs over the fastest Python stack.

    python bench/baseline.py --port P --cert C --key K --client-ca CA --answers answers.json
"""

from __future__ import annotations

import argparse
import json
import ssl
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

HEAD = b'{"apiVersion":"externaldata.gatekeeper.sh/v1beta1","kind":"ProviderResponse",'
HEAD += b'"response":{"idempotent":true,"items":['
TAIL = b'],"systemError":""}}'


def build(answers: dict[str, Any], path: str = "/validate") -> Starlette:
    encoded = {
        key: json.dumps({"key": key, "value": value}, separators=(",", ":")).encode()
        for key, value in answers.items()
    }

    async def validate(request: Request) -> Response:
        keys = json.loads(await request.body())["request"]["keys"]
        items = b",".join(
            encoded.get(key)
            or json.dumps({"key": key, "error": "unknown"}, separators=(",", ":")).encode()
            for key in keys
        )
        return Response(HEAD + items + TAIL, media_type="application/json")

    return Starlette(routes=[Route(path, validate, methods=["POST"])])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", type=Path, required=True)
    parser.add_argument("--key", type=Path, required=True)
    parser.add_argument("--client-ca", type=Path, required=True)
    parser.add_argument("--answers", type=Path, required=True)
    parser.add_argument("--path", default="/validate")
    args = parser.parse_args()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_cert_chain(args.cert, args.key)
    context.load_verify_locations(cafile=args.client_ca)
    context.verify_mode = ssl.CERT_REQUIRED
    config = uvicorn.Config(
        build(json.loads(args.answers.read_text()), args.path),
        host="127.0.0.1",
        port=args.port,
        ssl_context_factory=lambda _config, _default: context,
        loop="uvloop",
        http="httptools",
        timeout_keep_alive=95,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,  # as `signet serve`
        lifespan="off",
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
