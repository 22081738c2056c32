"""The yardstick: a bare starlette app on uvicorn answering the same request shape from memory.

Same TLS settings as `signet serve` (TLS 1.3, client certificate required), same response shape,
no verification, no cache lookups beyond one dict: the ratio of Signet's warm throughput to this
one's says what Signet's own work costs.

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


def build(answers: dict[str, Any]) -> Starlette:
    async def validate(request: Request) -> Response:
        keys = json.loads(await request.body())["request"]["keys"]
        items = [{"key": key, "value": answers.get(key)} for key in keys]
        body = {
            "apiVersion": "externaldata.gatekeeper.sh/v1beta1",
            "kind": "ProviderResponse",
            "response": {"idempotent": True, "items": items, "systemError": ""},
        }
        return Response(json.dumps(body, separators=(",", ":")), media_type="application/json")

    return Starlette(routes=[Route("/validate", validate, methods=["POST"])])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", type=Path, required=True)
    parser.add_argument("--key", type=Path, required=True)
    parser.add_argument("--client-ca", type=Path, required=True)
    parser.add_argument("--answers", type=Path, required=True)
    args = parser.parse_args()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_cert_chain(args.cert, args.key)
    context.load_verify_locations(cafile=args.client_ca)
    context.verify_mode = ssl.CERT_REQUIRED
    config = uvicorn.Config(
        build(json.loads(args.answers.read_text())),
        host="127.0.0.1",
        port=args.port,
        ssl_context_factory=lambda _config, _default: context,
        timeout_keep_alive=95,
        log_config=None,
        access_log=False,
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
