"""An in-memory OCI registry behind httpx.MockTransport: the environment the client is tested in.

Registries are attacker-controlled, so the fake can be told to misbehave per path: answer with a
status, stall, trickle, redirect, lie about digests, or demand tokens.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import httpx

from signet import cosign
from signet.keyfile import PrivateKey, generate
from signet.trust import Attestor, RegistrySettings, TrustConfig, TrustedKey

Fault = Callable[[httpx.Request], Awaitable[httpx.Response | None]]
HOST = "registry.test"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class FakeRegistry:
    host: str = HOST
    manifests: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # "repo:ref" -> raw, type
    blobs: dict[str, bytes] = field(default_factory=dict)
    faults: dict[str, Fault] = field(default_factory=dict)  # path substring -> fault
    seen: list[httpx.Request] = field(default_factory=list)
    token: str | None = None  # when set, /v2/ paths demand `Bearer <token>`
    realm: str = f"https://{HOST}/token"

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        answer = await self._answer(request)
        if answer.is_stream_consumed:  # bytes given in full: send them as a network would
            answer = streamed(answer.status_code, answer.headers, answer.content)
        return answer

    async def _answer(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        for marker, fault in self.faults.items():
            if marker in str(request.url):
                answer = await fault(request)
                if answer is not None:
                    return answer
        path = request.url.path
        if path == "/token":
            return httpx.Response(200, json={"token": self.token, "expires_in": 300})
        if request.headers.get("Host", request.url.host) != self.host:
            return httpx.Response(200, content=b"elsewhere")  # some other origin answered
        if self.token and request.headers.get("Authorization") != f"Bearer {self.token}":
            challenge = f'Bearer realm="{self.realm}",service="{self.host}"'
            return httpx.Response(401, headers={"WWW-Authenticate": challenge})
        parts = path.split("/")
        if len(parts) < 5 or parts[1] != "v2":
            return httpx.Response(404)
        kind, ref = parts[-2], parts[-1]
        repo = "/".join(parts[2:-2])
        if kind == "manifests" and f"{repo}:{ref}" in self.manifests:
            raw, media_type = self.manifests[f"{repo}:{ref}"]
            headers = {"Content-Type": media_type, "Docker-Content-Digest": digest_of(raw)}
            body = b"" if request.method == "HEAD" else raw
            return httpx.Response(200, headers=headers, content=body)
        if kind == "blobs" and ref in self.blobs:
            return httpx.Response(200, content=self.blobs[ref])
        return httpx.Response(404)

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
        config = self.put_blob(json.dumps({"seed": seed}).encode())
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": cosign.OCI_MANIFEST,
                "config": {"mediaType": cosign.OCI_CONFIG, "digest": config, "size": 10},
                "layers": [],
            }
        ).encode()
        return self.put_manifest(repo, tag, manifest, cosign.OCI_MANIFEST)

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

    def requests_to(self, marker: str) -> list[httpx.Request]:
        return [r for r in self.seen if marker in str(r.url) or marker in r.headers.get("Host", "")]


def streamed(code: int, headers: httpx.Headers | dict[str, str], body: bytes) -> httpx.Response:
    async def chunks() -> AsyncIterator[bytes]:
        yield body

    headers = httpx.Headers(headers)
    headers["Content-Length"] = str(len(body))
    return httpx.Response(code, headers=headers, content=chunks())


def status(code: int, headers: dict[str, str] | None = None) -> Fault:
    async def fault(_: httpx.Request) -> httpx.Response:
        return httpx.Response(code, headers=headers or {})

    return fault


def stall(seconds: float) -> Fault:
    async def fault(_: httpx.Request) -> httpx.Response | None:
        await asyncio.sleep(seconds)
        return None

    return fault


def trickle(chunk: bytes, every: float, count: int) -> Fault:
    """A body that arrives one small chunk at a time, forever in practice (a slowloris)."""

    async def body() -> AsyncIterator[bytes]:
        for _ in range(count):
            await asyncio.sleep(every)
            yield chunk

    async def fault(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body(), headers={"Content-Type": cosign.OCI_MANIFEST})

    return fault


def redirect(location: str) -> Fault:
    async def fault(request: httpx.Request) -> httpx.Response | None:
        if request.url.host != HOST:
            return None
        return httpx.Response(307, headers={"Location": location})

    return fault


def trust_for(*keys: PrivateKey, registries: tuple[RegistrySettings, ...] = ()) -> TrustConfig:
    attestors = tuple(
        Attestor(f"team-{i}", (TrustedKey(f"key-{i}", key.public),)) for i, key in enumerate(keys)
    )
    return TrustConfig(attestors or (Attestor("none", ()),), registries)


def new_key() -> PrivateKey:
    return generate("p256")
