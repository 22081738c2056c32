"""A registry that misbehaves on purpose, over real sockets, through `signet serve` itself:
each misbehaviour is a clear transient answer in systemError (or a cached limit), never an allow,
and the provider keeps answering."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from signet.crypto.keyfile import generate, public_pem
from tests.support.hostile import run_hostile_registry
from tests.support.provider import Provider, run_provider

from .helpers import write_trust

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Provider, str]]:
    work = tmp_path_factory.mktemp("hostile")
    key = work / "k.pub"
    key.write_bytes(public_pem(generate("p256")))
    with run_hostile_registry() as host:
        config = write_trust(work, {"ci": [key]}, [host])
        with run_provider(
            config,
            work / "provider",
            "--deadline",
            "1.5",
            "--registry-timeout",
            "1",
            # each case is its own misbehaviour of one host: no breaker between them
            "--registry-breaker-failures",
            "0",
        ) as provider:
            yield provider, host


def validate(provider: Provider, key: str) -> tuple[dict[str, Any], float]:
    body = {
        "apiVersion": "externaldata.gatekeeper.sh/v1beta1",
        "kind": "ProviderRequest",
        "request": {"keys": [key]},
    }
    began = time.monotonic()
    with provider.client(timeout=20) as client:
        answer = client.post(f"{provider.url}/validate", json=body)
    assert answer.status_code == 200
    response: dict[str, Any] = answer.json()["response"]
    return response, time.monotonic() - began


@pytest.mark.parametrize(
    ("behaviour", "reason"),
    [
        ("status-500", "REGISTRY_UNAVAILABLE"),
        ("status-503", "REGISTRY_UNAVAILABLE"),
        ("status-429", "REGISTRY_RATE_LIMITED"),
        ("slow", "REGISTRY_TIMEOUT"),
        ("metadata", "REGISTRY_UNAVAILABLE"),
    ],
)
def test_transient_misbehaviour(hostile: tuple[Provider, str], behaviour: str, reason: str) -> None:
    provider, host = hostile
    key = f"{host}/{behaviour}/app:v1"
    response, took = validate(provider, key)
    assert response["items"] == []
    assert f"{key}: {reason}" in response["systemError"]
    assert took < 3, "answered within the request deadline"
    if behaviour == "metadata":
        assert "169.254.169.254" in response["systemError"]


def test_a_trickling_signature_manifest_hits_the_deadline(hostile: tuple[Provider, str]) -> None:
    provider, host = hostile
    key = f"{host}/trickle/app@sha256:{'a' * 64}"
    response, took = validate(provider, key)
    assert response["items"] == []
    assert (
        "REGISTRY_TIMEOUT" in response["systemError"]
        or "DEADLINE_EXCEEDED" in response["systemError"]
    )
    assert took < 3


def test_an_endless_manifest_is_cut_off_at_the_cap(hostile: tuple[Provider, str]) -> None:
    provider, host = hostile
    key = f"{host}/huge/app@sha256:{'b' * 64}"
    response, took = validate(provider, key)
    assert response["items"], response
    (item,) = response["items"]
    assert item["value"]["failures"][0]["reason"] == "LIMIT_EXCEEDED"
    assert item["value"]["verified"] == []
    assert took < 3
    # and the provider is still healthy afterwards
    with provider.client() as client:
        assert client.get(f"{provider.url}/healthz").status_code == 200
    assert json.loads(json.dumps(item))  # the item is plain JSON


@pytest.mark.parametrize(
    ("spelling", "address", "problem"),
    [
        ("2852039166", "169.254.169.254", "link-local"),
        ("0xa9fea9fe", "169.254.169.254", "link-local"),
        ("0xa9.0xfe.0xa9.0xfe", "169.254.169.254", "link-local"),
        ("0x7f000001", "127.0.0.1", "loopback"),
    ],
)
def test_a_registry_spelled_as_a_number_is_judged_by_its_address(
    hostile: tuple[Provider, str], spelling: str, address: str, problem: str
) -> None:
    """The OS would connect `2852039166` to 169.254.169.254 (cloud metadata); Signet checks the
    address it would dial, not the spelling. (127.0.0.1:<port> is configured here, under that
    name; spelled as a number it is not, and loopback is never contacted unconfigured.)"""
    provider, host = hostile
    port = host.rsplit(":", 1)[1]
    key = f"{spelling}:{port}/status-500/app:v1"
    response, took = validate(provider, key)
    assert response["items"] == []
    assert (
        f"{key}: REGISTRY_UNAVAILABLE: refusing to contact {spelling} ({address}): {problem} "
        "address" in response["systemError"]
    )
    assert took < 3
