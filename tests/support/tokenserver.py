"""A real token server for distribution's token auth (docs/spec/auth/token.md), on 127.0.0.1.

It checks HTTP Basic credentials, grants the requested actions on the requested repository, and
signs an ES256 JWT with a key whose certificate is the registry's `rootcertbundle`. The JWT header
names the key by its libtrust key id (`kid`), which is how distribution 2.8 finds trusted keys.
It records every request, so tests can assert who was sent credentials.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .procs import free_port, wait_for_http
from .registry import TokenAuth

SERVICE = "signet-test-registry"
ISSUER = "signet-test-token-server"


@dataclass
class Seen:
    query: dict[str, str]
    authorization: bool
    user: str | None


@dataclass
class TokenServer:
    auth: TokenAuth
    url: str
    seen: list[Seen] = field(default_factory=list)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def libtrust_key_id(public_der: bytes) -> str:
    encoded = base64.b32encode(hashlib.sha256(public_der).digest()[:30]).decode().rstrip("=")
    return ":".join(encoded[i : i + 4] for i in range(0, len(encoded), 4))


@contextlib.contextmanager
def run_token_server(
    directory: Path, users: dict[str, str], *, allow_anonymous_pull: bool = False
) -> Iterator[TokenServer]:
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    bundle = directory / "token-ca.pem"
    bundle.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    public_der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"typ": "JWT", "alg": "ES256", "kid": libtrust_key_id(public_der)}
    port = free_port()
    server = TokenServer(
        TokenAuth(f"http://127.0.0.1:{port}/token", SERVICE, ISSUER, bundle),
        f"http://127.0.0.1:{port}",
    )

    def sign(claims: dict[str, object]) -> str:
        signing_input = (
            f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        )
        r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    async def token(request: Request) -> Response:
        user = None
        authorization = request.headers.get("authorization", "")
        if authorization.lower().startswith("basic "):
            name_, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
            if users.get(name_) != password:
                server.seen.append(Seen(dict(request.query_params), True, None))
                return Response(status_code=401)
            user = name_
        server.seen.append(Seen(dict(request.query_params), bool(authorization), user))
        access = []
        scope = request.query_params.get("scope", "")
        if scope.startswith("repository:"):
            _, repository, actions = scope.split(":", 2)
            granted = [
                a for a in actions.split(",") if user or (allow_anonymous_pull and a == "pull")
            ]
            access.append({"type": "repository", "name": repository, "actions": granted})
        issued = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": user or "",
            "aud": request.query_params.get("service", ""),
            "exp": issued + 300,
            "nbf": issued - 10,
            "iat": issued,
            "jti": _b64url(hashlib.sha256(f"{issued}{len(server.seen)}".encode()).digest()),
            "access": access,
        }
        value = sign(claims)
        return JSONResponse({"token": value, "access_token": value, "expires_in": 300})

    app = Starlette(routes=[Route("/token", token, methods=["GET"])])
    uv = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="off"
        )
    )
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    try:
        wait_for_http(f"{server.url}/token?service={SERVICE}", ok=(200,))
        server.seen.clear()
        yield server
    finally:
        uv.should_exit = True
        thread.join(timeout=10)
