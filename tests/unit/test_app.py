"""The HTTP surface, in process: every request gets a ProviderResponse, never a 500."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from signet.app import AppSettings, create_app
from signet.engine import Engine, EngineSettings
from signet.metrics import Metrics
from signet.registry import Limits, RegistryClient
from tests.unit.fakes import HOST, FakeRegistry, new_key, status, trust_for

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def request(*keys: object) -> dict[str, Any]:
    return {
        "apiVersion": "externaldata.gatekeeper.sh/v1beta1",
        "kind": "ProviderRequest",
        "request": {"keys": list(keys)},
    }


class App:
    def __init__(self, ready: bool = True) -> None:
        self.fake = FakeRegistry()
        key = new_key()
        self.digest = self.fake.push_image("team/app", "v1", "a")
        self.fake.sign("team/app", self.digest, key)
        trust = trust_for(key)
        metrics = Metrics()
        registry = RegistryClient(
            lambda: trust, limits=Limits(request_timeout=0.5), transport=self.fake.transport()
        )
        engine = Engine(lambda: trust, registry, metrics, EngineSettings(deadline=1))
        self.app = create_app(
            engine,
            metrics,
            ready=lambda: ready,
            settings=AppSettings(max_body_bytes=4096, max_keys=8),
        )

    async def post(self, path: str, body: bytes | dict[str, Any]) -> dict[str, Any]:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://signet"
        ) as client:
            answer = await client.post(path, content=content)
        assert answer.status_code == 200
        document: dict[str, Any] = answer.json()
        assert document["kind"] == "ProviderResponse"
        response: dict[str, Any] = document["response"]
        assert response["idempotent"] is True
        return response

    async def get(self, path: str) -> httpx.Response:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://signet"
        ) as client:
            return await client.get(path)


async def test_validate_answers_each_key() -> None:
    app = App()
    response = await app.post("/validate", request(f"{HOST}/team/app:v1", "Bad Ref"))
    assert response["systemError"] == ""
    values = {item["key"]: item["value"] for item in response["items"]}
    assert values[f"{HOST}/team/app:v1"]["verified"] == ["team-0"]
    assert values["Bad Ref"]["failures"][0]["reason"] == "INVALID_REFERENCE"


async def test_a_transient_key_is_left_out_and_named() -> None:
    app = App()
    app.fake.faults["/down/"] = status(502)
    response = await app.post("/validate", request(f"{HOST}/team/app:v1", f"{HOST}/down/x:1"))
    assert [item["key"] for item in response["items"]] == [f"{HOST}/team/app:v1"]
    assert f"{HOST}/down/x:1: REGISTRY_UNAVAILABLE" in response["systemError"]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"", "not JSON"),
        (b"{", "not JSON"),
        (b"[" * 4000, "not JSON"),
        (b'"a string"', "not a JSON object"),
        (json.dumps({**request(), "kind": "AdmissionReview"}).encode(), "kind"),
        (json.dumps({**request(), "apiVersion": "v9"}).encode(), "apiVersion"),
        (json.dumps(request("a", None)).encode(), "keys[1]"),
        (json.dumps({**request(), "request": {"keys": "nginx"}}).encode(), "not a list"),
        (json.dumps(request(*(f"r/a:{i}" for i in range(9)))).encode(), "limit is 8"),
        (b" " * 5000, "larger than 4096"),
    ],
)
async def test_bad_requests_get_a_system_error_and_no_items(body: bytes, problem: str) -> None:
    for path in ("/validate", "/mutate"):
        response = await App().post(path, body)
        assert response["items"] == []
        assert problem in response["systemError"]


async def test_mutate_returns_pinned_strings_and_errors() -> None:
    app = App()
    response = await app.post("/mutate", request(f"{HOST}/team/app:v1", f"{HOST}/team/app:gone"))
    values = {item["key"]: item.get("value") or item.get("error") for item in response["items"]}
    assert values[f"{HOST}/team/app:v1"] == f"{HOST}/team/app@{app.digest}"
    assert "IMAGE_NOT_FOUND" in values[f"{HOST}/team/app:gone"]


async def test_mutate_puts_transient_failures_in_system_error() -> None:
    app = App()
    app.fake.faults["/manifests/"] = status(503)
    response = await app.post("/mutate", request(f"{HOST}/team/app:v1"))
    assert response["items"] == []
    assert "REGISTRY_UNAVAILABLE" in response["systemError"]


async def test_health_readiness_and_metrics() -> None:
    app = App()
    await app.post("/validate", request(f"{HOST}/team/app:v1"))
    assert (await app.get("/healthz")).status_code == 200
    assert (await app.get("/readyz")).status_code == 200
    assert (await App(ready=False).get("/readyz")).status_code == 503
    metrics = (await app.get("/metrics")).text
    for name in (
        "signet_requests_total",
        "signet_cache_total",
        "signet_registry_calls_total",
        "signet_decisions_total",
        "signet_request_seconds_bucket",
    ):
        assert name in metrics
