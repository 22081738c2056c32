"""An in-memory OCI registry behind httpx.MockTransport: the environment the client is tested in.

Registries are attacker-controlled, so the fake can be told to misbehave per path: answer with a
status, stall, trickle, send too much, lie about digests, compress, redirect, refuse connections,
or demand tokens. Everything it was sent is kept in `seen`, so a test can assert on what the client
did (which headers went where), not on what it says it did.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import httpx

from signet.crypto.keyfile import PrivateKey, generate
from signet.formats.cosign_classic import manifest as cosign
from signet.oci.dns import Resolver
from signet.trust.model import Attestor, RegistrySettings, TrustConfig, TrustedKey

# A fault sees each request whose URL contains its marker; None lets the fake answer normally.
Fault = Callable[[httpx.Request], Awaitable[httpx.Response | None]]
HOST = "registry.test"
# What the injected resolver answers for any name it is not told about: a public address.
PUBLIC_ADDRESS = "93.184.215.14"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def host_of(request: httpx.Request) -> str:
    """The origin the request was meant for (the Host header survives pinning to an address)."""
    host: str = request.headers.get("Host") or request.url.netloc.decode()
    return host


@dataclass
class FakeRegistry:
    host: str = HOST
    manifests: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # "repo:ref" -> raw, type
    blobs: dict[str, bytes] = field(default_factory=dict)
    faults: dict[str, Fault] = field(default_factory=dict)  # URL substring -> fault
    seen: list[httpx.Request] = field(default_factory=list)
    token: str | None = None  # when set, /v2/ paths demand `Bearer <token>`
    realm: str = f"https://{HOST}/token"
    # Other origins (host[:port] -> body): what a blob store or any foreign host answers.
    elsewhere: dict[str, bytes] = field(default_factory=dict)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        answer = await self._answer(request)
        if answer.is_stream_consumed:  # bytes given in full: send them as a network would
            length = answer.headers.get("Content-Length") if request.method == "HEAD" else None
            answer = streamed(answer.status_code, answer.headers, answer.content)
            if length is not None:  # HEAD declares the length of the body it does not send
                answer.headers["Content-Length"] = length
        return answer

    async def _answer(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        for marker, fault in list(self.faults.items()):
            if marker in str(request.url):
                answer = await fault(request)
                if answer is not None:
                    return answer
        return self.serve(request)

    def serve(self, request: httpx.Request) -> httpx.Response:
        """What a well-behaved registry (and token service) would answer."""
        path = request.url.path
        if path.endswith("/token"):
            return httpx.Response(200, json={"token": self.token, "expires_in": 300})
        if host_of(request) != self.host:
            return httpx.Response(200, content=self.elsewhere.get(host_of(request), b"elsewhere"))
        if self.token and request.headers.get("Authorization") != f"Bearer {self.token}":
            return httpx.Response(401, headers={"WWW-Authenticate": self.challenge()})
        parts = path.split("/")
        if len(parts) < 5 or parts[1] != "v2":
            return httpx.Response(404)
        kind, ref = parts[-2], parts[-1]
        repo = "/".join(parts[2:-2])
        if kind == "manifests" and f"{repo}:{ref}" in self.manifests:
            raw, media_type = self.manifests[f"{repo}:{ref}"]
            headers = {"Content-Type": media_type, "Docker-Content-Digest": digest_of(raw)}
            if request.method == "HEAD":
                headers["Content-Length"] = str(len(raw))
                return httpx.Response(200, headers=headers)
            return httpx.Response(200, headers=headers, content=raw)
        if kind == "blobs" and ref in self.blobs:
            return httpx.Response(200, content=self.blobs[ref])
        return httpx.Response(404)

    def challenge(self) -> str:
        return f'Bearer realm="{self.realm}",service="{self.host}"'

    # -- content -----------------------------------------------------------------------------

    def put_manifest(self, repo: str, tag: str | None, raw: bytes, media_type: str) -> str:
        digest = digest_of(raw)
        self.manifests[f"{repo}:{digest}"] = (raw, media_type)
        if tag is not None:
            self.manifests[f"{repo}:{tag}"] = (raw, media_type)
        return digest

    def put_blob(self, data: bytes) -> str:
        self.blobs[digest_of(data)] = data
        return digest_of(data)

    def push_image(self, repo: str, tag: str, seed: str) -> str:
        """An image manifest (distinct per `seed`) under `tag`; returns its digest."""
        config = json.dumps({"seed": seed}).encode()
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": cosign.OCI_MANIFEST,
                "config": {
                    "mediaType": cosign.OCI_CONFIG,
                    "digest": self.put_blob(config),
                    "size": len(config),
                },
                "layers": [],
            }
        ).encode()
        return self.put_manifest(repo, tag, manifest, cosign.OCI_MANIFEST)

    def retag(self, repo: str, tag: str, digest: str) -> None:
        """Point `tag` at the manifest `digest` (what `docker push` over an old tag does)."""
        self.manifests[f"{repo}:{tag}"] = self.manifests[f"{repo}:{digest}"]

    def sign(self, repo: str, digest: str, key: PrivateKey, *, names: str | None = None) -> None:
        """Append a classic signature over `names` (default: `digest`) to `digest`'s .sig tag."""
        payload = cosign.make_payload(f"{self.host}/{repo}", names or digest)
        signature, _ = key.sign(payload)
        layer = cosign.signature_layer_descriptor(self.put_blob(payload), len(payload), signature)
        tag = cosign.signature_tag(digest)
        existing = self.manifests.get(f"{repo}:{tag}")
        layers = cosign.existing_layers(existing[0]) if existing else []
        config = cosign.signature_config([layer["digest"]])
        manifest = cosign.signature_manifest(
            {"mediaType": cosign.OCI_CONFIG, "size": len(config), "digest": self.put_blob(config)},
            [*layers, layer],
        )
        self.put_manifest(repo, tag, manifest, cosign.OCI_MANIFEST)

    def signed_image(self, repo: str, tag: str, key: PrivateKey, seed: str = "") -> str:
        """Push an image under `tag` and sign its digest with `key`; returns the digest."""
        digest = self.push_image(repo, tag, seed or tag)
        self.sign(repo, digest, key)
        return digest

    def signature_manifest_of(self, repo: str, digest: str) -> bytes:
        return self.manifests[f"{repo}:{cosign.signature_tag(digest)}"][0]

    # -- what the client sent --------------------------------------------------------------

    def requests_to(self, marker: str) -> list[httpx.Request]:
        """Requests whose URL contains `marker` or whose origin (Host) is `marker`."""
        return [r for r in self.seen if marker in str(r.url) or marker == host_of(r)]


def streamed(code: int, headers: httpx.Headers | dict[str, str], body: bytes) -> httpx.Response:
    """A response whose body arrives as a stream, with its length declared."""

    async def chunks() -> AsyncIterator[bytes]:
        yield body

    headers = httpx.Headers(headers)
    headers["Content-Length"] = str(len(body))
    return httpx.Response(code, headers=headers, content=chunks())


# -- faults ------------------------------------------------------------------------------------


def status(code: int, headers: dict[str, str] | None = None) -> Fault:
    async def fault(_: httpx.Request) -> httpx.Response:
        return httpx.Response(code, headers=headers or {})

    return fault


def stall(seconds: float) -> Fault:
    """Answer normally, but only after `seconds`."""

    async def fault(_: httpx.Request) -> httpx.Response | None:
        await anyio.sleep(seconds)
        return None

    return fault


def refuse() -> Fault:
    """Nothing listens: the connection is refused."""

    async def fault(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    return fault


@dataclass
class Trickle:
    """A 200 body sent `count` chunks at a time, `every` seconds apart; `sent` counts chunks."""

    chunk: bytes
    every: float
    count: int
    declared_length: int | None = None
    sent: int = 0

    async def __call__(self, _: httpx.Request) -> httpx.Response:
        async def body() -> AsyncIterator[bytes]:
            for _ in range(self.count):
                await anyio.sleep(self.every)
                self.sent += 1
                yield self.chunk

        headers = {"Content-Type": cosign.OCI_MANIFEST}
        if self.declared_length is not None:
            headers["Content-Length"] = str(self.declared_length)
        return httpx.Response(200, content=body(), headers=headers)


def trickle(chunk: bytes, every: float, count: int) -> Trickle:
    """A body that arrives one small chunk at a time, forever in practice (a slowloris)."""
    return Trickle(chunk, every, count)


def oversized(size: int) -> Trickle:
    """A `size`-byte body whose Content-Length says so, streamed in 1 KiB chunks."""
    return Trickle(b"x" * 1024, 0, -(-size // 1024), declared_length=size)


def gzipped(body: bytes = b"{}") -> Fault:
    async def fault(_: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, content=gzip.compress(body), headers={"Content-Encoding": "gzip"}
        )

    return fault


def serving(body: bytes, headers: dict[str, str] | None = None) -> Fault:
    """Answer GETs with `body` whatever was asked for (a registry that lies about content)."""

    async def fault(request: httpx.Request) -> httpx.Response | None:
        if request.method != "GET":
            return None
        return httpx.Response(200, content=body, headers=headers or {})

    return fault


def without_digest_header(fake: FakeRegistry) -> Fault:
    """HEAD answers 200 without Docker-Content-Digest (some registries and proxies do)."""

    async def fault(request: httpx.Request) -> httpx.Response | None:
        if request.method != "HEAD":
            return None
        answer = fake.serve(request)  # the real answer, minus the header
        headers = {k: v for k, v in answer.headers.items() if k != "docker-content-digest"}
        return httpx.Response(answer.status_code, headers=headers)

    return fault


def redirect(location: str, *, code: int = 307, only_from: str = HOST) -> Fault:
    """Send requests addressed to `only_from` to `location` (other origins answer normally)."""

    async def fault(request: httpx.Request) -> httpx.Response | None:
        if host_of(request) != only_from:
            return None
        return httpx.Response(code, headers={"Location": location})

    return fault


def once(fault: Fault) -> Fault:
    """`fault` for the first matching request only."""
    fired = False

    async def wrapped(request: httpx.Request) -> httpx.Response | None:
        nonlocal fired
        if fired:
            return None
        fired = True
        return await fault(request)

    return wrapped


# -- configuration ---------------------------------------------------------------------------------


def resolver_of(names: dict[str, list[str]] | None = None) -> Resolver:
    """A resolver answering from `names`, and with PUBLIC_ADDRESS for any other name."""
    table = names or {}

    async def lookup(name: str) -> list[str]:
        return table.get(name, [PUBLIC_ADDRESS])

    return Resolver(lookup=lookup)


def new_key() -> PrivateKey:
    return generate("p256")


def trust_for(
    *keys: PrivateKey,
    registries: tuple[RegistrySettings, ...] = (),
    docker_config: Path | None = None,
) -> TrustConfig:
    """One attestor per key: `team-0` holds `key-0`, and so on."""
    attestors = tuple(
        Attestor(f"team-{i}", (TrustedKey(f"key-{i}", key.public),)) for i, key in enumerate(keys)
    )
    return TrustConfig(attestors or (Attestor("none", ()),), registries, docker_config)


def write_docker_config(path: Path, credentials: dict[str, tuple[str, str]]) -> Path:
    """A docker config.json with `auths` for each server: (username, password)."""
    auths = {
        server: {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
        for server, (user, password) in credentials.items()
    }
    path.write_text(json.dumps({"auths": auths}))
    return path


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
