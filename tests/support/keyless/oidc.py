"""A local OpenID Connect issuer for Fulcio: discovery documents, JWKS, and RS256 ID tokens.

One HTTP server (a thread, on 127.0.0.1) serves several issuers, each on its own path:
`http://127.0.0.1:PORT/<path>` is the issuer URL, `<issuer>/.well-known/openid-configuration`
its discovery document, `<issuer>/jwks` its key set. Fulcio fetches both over plain HTTP.
Tokens are minted here directly (no authorization flow): `aud` is `sigstore`.
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

AUDIENCE = "sigstore"
TOKEN_LIFETIME = 600

# What a GitHub Actions run of team/app's release workflow on main presents (all 16 claims Fulcio
# v1.8.8 requires of a `github-workflow` issuer).
GITHUB_REPOSITORY = "team/app"
GITHUB_REF = "refs/heads/main"
GITHUB_WORKFLOW_REF = f"{GITHUB_REPOSITORY}/.github/workflows/release.yml@{GITHUB_REF}"
GITHUB_SHA = "0123456789abcdef0123456789abcdef01234567"
GITHUB_IDENTITY = f"https://github.com/{GITHUB_WORKFLOW_REF}"
GITHUB_CLAIMS: dict[str, str] = {
    "job_workflow_ref": GITHUB_WORKFLOW_REF,
    "sha": GITHUB_SHA,
    "event_name": "push",
    "repository": GITHUB_REPOSITORY,
    "workflow": "release",
    "ref": GITHUB_REF,
    "job_workflow_sha": GITHUB_SHA,
    "runner_environment": "github-hosted",
    "repository_id": "100001",
    "repository_owner": "team",
    "repository_owner_id": "200002",
    "repository_visibility": "private",
    "workflow_ref": GITHUB_WORKFLOW_REF,
    "workflow_sha": GITHUB_SHA,
    "run_id": "300003",
    "run_attempt": "1",
}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _uint(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


@dataclass(frozen=True)
class Issuer:
    """One issuer: its URL, Fulcio's type for it, and its signing key."""

    url: str
    path: str
    kind: str  # Fulcio's issuer type: "email" or "github-workflow"
    key: rsa.RSAPrivateKey

    @property
    def key_id(self) -> str:
        return f"{self.path}-1"

    def jwks(self) -> dict[str, object]:
        numbers = self.key.public_key().public_numbers()
        key = {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.key_id}
        return {"keys": [{**key, "n": _uint(numbers.n), "e": _uint(numbers.e)}]}

    def discovery(self) -> dict[str, object]:
        return {
            "issuer": self.url,
            "jwks_uri": f"{self.url}/jwks",
            "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token",
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }

    def token(self, claims: dict[str, object]) -> str:
        """An RS256 JWT from this issuer: `iss`, `aud`, `iat`, `nbf`, `exp` plus `claims`."""
        now = int(time.time())
        body = {"iss": self.url, "aud": AUDIENCE, "iat": now, "nbf": now - 5}
        body |= {"exp": now + TOKEN_LIFETIME, **claims}
        header = {"alg": "RS256", "typ": "JWT", "kid": self.key_id}
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(body).encode())}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{b64url(signature)}"

    def email_token(self, email: str) -> str:
        return self.token({"sub": email, "email": email, "email_verified": True})

    def github_token(self) -> str:
        subject = f"repo:{GITHUB_REPOSITORY}:ref:{GITHUB_REF}"
        return self.token({"sub": subject, **GITHUB_CLAIMS})


@dataclass(frozen=True)
class IssuerServer:
    url: str  # http://127.0.0.1:PORT
    issuers: dict[str, Issuer]  # by path

    def __getitem__(self, path: str) -> Issuer:
        return self.issuers[path]


@contextlib.contextmanager
def run_issuers(kinds: dict[str, str], port: int = 0) -> Iterator[IssuerServer]:
    """Serve one issuer per `kinds` entry (path → Fulcio issuer type) on 127.0.0.1:`port`."""
    documents: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = documents.get(self.path.split("?")[0])
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    issuers = {
        path: Issuer(
            f"{base}/{path}",
            path,
            kind,
            rsa.generate_private_key(public_exponent=65537, key_size=2048),
        )
        for path, kind in kinds.items()
    }
    for issuer in issuers.values():
        documents[f"/{issuer.path}/.well-known/openid-configuration"] = json.dumps(
            issuer.discovery()
        ).encode()
        documents[f"/{issuer.path}/jwks"] = json.dumps(issuer.jwks()).encode()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield IssuerServer(base, issuers)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
