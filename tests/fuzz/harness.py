"""What attackers write, fed to what parses it: one function per target, shared by the property
tests (Hypothesis) and the coverage-guided fuzzer (atheris).

Every target takes bytes and checks the one property that matters: the input ends in a valid
result or in the documented failure type for that parser — any other exception is a bug, and so
is an image verified on evidence that cannot be genuine. (Hangs are caught by the runners'
deadlines.)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar

import httpx

from signet.formats.cosign_classic import manifest as cosign
from signet.formats.cosign_classic.verify import ClassicEvidence
from signet.formats.judge import Evidence, judge
from signet.http.app import create_app
from signet.http.wire import BadRequest, parse_request
from signet.model.reference import InvalidReference, Reference, parse
from signet.model.report import Report
from signet.oci.client import Limits, RegistryClient
from signet.reasons import DeterministicFailure, TransientFailure
from signet.service import runtime
from signet.service.engine import EngineSettings
from signet.trust.model import TrustConfig
from tests.support import vectors

T = TypeVar("T")

# The digest no genuine signature names: nothing may ever verify for it.
NOBODYS_DIGEST = "sha256:" + "f" * 64
VECTOR = "dir-img-cosign-valid"
TRUST: TrustConfig = vectors.trust()
# One event loop for every input, so what the targets keep (the app, its caches) stays usable.
_LOOP = asyncio.new_event_loop()


def _run(work: Coroutine[Any, Any, T]) -> T:
    return _LOOP.run_until_complete(work)


def reference(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    try:
        ref = parse(text)
    except InvalidReference:
        return
    assert isinstance(ref, Reference)
    assert parse(str(ref)) == ref, f"{text!r} does not round-trip: {ref}"


def provider_request(data: bytes) -> None:
    try:
        keys = parse_request(data, max_keys=1000)
    except BadRequest:
        return
    assert all(isinstance(k, str) for k in keys)
    assert len(set(keys)) == len(keys)


def signature_manifest(data: bytes) -> None:
    try:
        parsed = cosign.parse_signature_manifest(data)
    except DeterministicFailure:
        return
    assert len(parsed.layers) + len(parsed.problems) <= cosign.MAX_SIGNATURES


def payload(data: bytes) -> None:
    try:
        cosign.parse_payload(data)
    except DeterministicFailure:
        return


def _evidence(data: bytes) -> Evidence:
    """A `.sig` manifest from the first part of `data` and every layer's payload from the rest;
    the real vector's payloads stay available, so the fuzzer can reach the signature checks."""
    manifest, _, rest = data.partition(b"\n--\n")
    try:
        parsed = cosign.parse_signature_manifest(manifest)
    except DeterministicFailure:
        return Evidence()
    known = {layer.digest: layer.payload for layer in vectors.layers(VECTOR)}
    payloads: dict[str, bytes | DeterministicFailure] = {
        layer.digest: known.get(layer.digest, rest) for layer in parsed.layers
    }
    return Evidence(classic=ClassicEvidence(parsed, payloads))


def verification(data: bytes) -> None:
    found = _evidence(data)
    report = judge("registry.example/fuzz@" + NOBODYS_DIGEST, NOBODYS_DIGEST, found, TRUST)
    assert isinstance(report, Report)
    assert report.verified == (), f"verified on forged evidence: {report}"
    genuine = vectors.signed_digest(VECTOR)
    report = judge("registry.example/fuzz@" + genuine, genuine, found, TRUST)
    assert set(report.verified) <= {"a"}


def registry_answer(data: bytes) -> None:
    """A registry answering every call with the fuzzed status, headers and body."""
    status = 100 + data[0] % 500 if data else 200
    header_block, _, body = data[1:].partition(b"\n\n")
    headers = []
    for line in header_block.split(b"\n")[:16]:
        name, _, value = line.partition(b":")
        if name.strip():
            headers.append((name.strip(), value.strip()))

    async def stream() -> AsyncIterator[bytes]:
        yield body  # as a network would: a stream, read (or refused) by the client

    def answer(request: httpx.Request) -> httpx.Response:
        try:
            return httpx.Response(status, headers=headers, content=stream(), request=request)
        except (ValueError, TypeError, UnicodeError):  # not a response httpx can even build
            return httpx.Response(502, request=request)

    trust = TrustConfig(())
    client = RegistryClient(
        lambda: trust, limits=Limits(request_timeout=1.0), transport=httpx.MockTransport(answer)
    )
    ref = parse("registry.example/team/app:1")
    calls: list[Callable[[], Any]] = [
        lambda: client.resolve(ref),
        lambda: client.manifest(ref, NOBODYS_DIGEST),
        lambda: client.blob(ref, NOBODYS_DIGEST, max_bytes=64 * 1024),
    ]

    async def run() -> None:
        try:
            for call in calls:
                with contextlib.suppress(DeterministicFailure, TransientFailure):
                    await call()
        finally:
            await client.aclose()

    _run(run())


class _Provider:
    """The whole app, in process, over a fake registry that holds an image with a copied (so
    invalid here) signature: whatever the request, nothing may verify."""

    def __init__(self) -> None:
        from tests.unit.fakes import FakeRegistry

        self.fake = FakeRegistry()
        digest = self.fake.push_image("team/app", "v1", "fuzz")
        layers = [layer.descriptor() for layer in vectors.layers(VECTOR)]
        for layer in vectors.layers(VECTOR):
            self.fake.put_blob(layer.payload)
        self.fake.put_manifest(
            "team/app",
            cosign.signature_tag(digest),
            cosign.signature_manifest({}, layers),
            cosign.OCI_MANIFEST,
        )
        self.parts = runtime.build(
            lambda: TRUST,
            settings=EngineSettings(deadline=1.0),
            limits=Limits(request_timeout=0.5),
            transport=self.fake.transport(),
        )
        self.app = create_app(self.parts.engine, self.parts.metrics)

    async def post(self, body: bytes) -> dict[str, Any]:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="https://signet"
        ) as client:
            answer = await client.post("/validate", content=body)
        assert answer.status_code == 200, answer.text
        document: dict[str, Any] = json.loads(answer.content)
        return document


_PROVIDER: _Provider | None = None


def validate(data: bytes) -> None:
    global _PROVIDER  # noqa: PLW0603 - built once: the fake registry is the slow part
    if _PROVIDER is None:
        _PROVIDER = _Provider()
    document = _run(_PROVIDER.post(data))
    assert document["kind"] == "ProviderResponse"
    response = document["response"]
    assert isinstance(response["systemError"], str)
    for item in response["items"]:
        assert isinstance(item["key"], str)
        value = item.get("value")
        if isinstance(value, dict):
            assert value["verified"] == [], f"verified {item['key']} on a copied signature"


TARGETS: dict[str, Callable[[bytes], None]] = {
    "reference": reference,
    "provider_request": provider_request,
    "signature_manifest": signature_manifest,
    "payload": payload,
    "verification": verification,
    "registry_answer": registry_answer,
    "validate": validate,
}


def seeds(target: str) -> list[bytes]:
    """Inputs to start from, made from the real vectors and what Gatekeeper really sends."""
    layers = vectors.layers(VECTOR)
    manifest = cosign.signature_manifest({}, [layer.descriptor() for layer in layers])
    request = json.dumps(
        {
            "apiVersion": "externaldata.gatekeeper.sh/v1beta1",
            "kind": "ProviderRequest",
            "request": {"keys": ["registry.test/team/app:v1", "nginx", "a/b@" + NOBODYS_DIGEST]},
        }
    ).encode()
    return {
        "reference": [
            b"nginx",
            b"registry.example.com:5000/team/app:1.2@" + NOBODYS_DIGEST.encode(),
            b"[::1]:5000/a/b:c",
            b"docker.io/library/busybox:1.36",
        ],
        "provider_request": [request],
        "signature_manifest": [manifest],
        "payload": [layer.payload for layer in layers],
        "verification": [manifest + b"\n--\n" + layers[0].payload],
        "registry_answer": [
            b"\xc8Docker-Content-Digest: " + NOBODYS_DIGEST.encode() + b"\n\n{}",
            b'\x2dWWW-Authenticate: Bearer realm="https://auth.example/token"\n\n',
            b"\xc8Content-Length: 99999999\n\nxx",
        ],
        "validate": [request],
    }[target]
