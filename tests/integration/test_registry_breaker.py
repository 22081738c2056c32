"""A registry that goes down, through `signet serve`: once its breaker opens, its images are
refused in milliseconds (transient, never cached) while a healthy registry's still verify in the
same request, and after it recovers its images verify again."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.support import cosign
from tests.support.images import push_image
from tests.support.provider import Provider, run_provider
from tests.support.registry import run_registry
from tests.support.stalling import run_stalling_registry

from .helpers import write_trust

pytestmark = pytest.mark.integration

COSIGN = "v3.1.3"


def _validate(provider: Provider, *keys: str) -> tuple[dict[str, Any], float]:
    body = {
        "apiVersion": "externaldata.gatekeeper.sh/v1beta1",
        "kind": "ProviderRequest",
        "request": {"keys": list(keys)},
    }
    with provider.client(timeout=20) as client:
        client.get(f"{provider.url}/readyz")  # the connection is made before the clock starts
        began = time.monotonic()
        answer = client.post(f"{provider.url}/validate", json=body)
        elapsed = time.monotonic() - began
    assert answer.status_code == 200
    response: dict[str, Any] = answer.json()["response"]
    return response, elapsed


def _verified(response: dict[str, Any], key: str) -> list[str]:
    for item in response["items"]:
        if item["key"] == key:
            return list((item["value"] or {}).get("verified", []))
    return []  # a transient failure: in systemError only


def test_a_registry_that_is_down_fails_fast_and_recovers(tmp_path: Path) -> None:
    with (
        run_registry(tmp_path / "upstream") as upstream,
        run_registry(tmp_path / "healthy") as healthy,
        run_stalling_registry(upstream.url) as flaky,
    ):
        keys = cosign.generate_key_pair(COSIGN, tmp_path / "keys")
        digests = {}
        for registry, name in ((upstream, "flaky"), (healthy, "healthy")):
            digests[name] = push_image(registry.url, "app", "v1", seed=f"breaker-{name}")
            cosign.sign(COSIGN, keys.private, f"{registry.host}/app@{digests[name]}")
        down_image = f"{flaky.host}/app:v1"
        healthy_image = f"{healthy.host}/app:v1"
        config = write_trust(tmp_path, {"ci": [keys.public]}, [flaky.host, healthy.host])
        with run_provider(config, tmp_path / "provider", "--registry-breaker-failures", "3") as p:
            flaky.down = True
            for _ in range(3):  # three outages in a row open the breaker
                response, _ = _validate(p, down_image)
                assert "REGISTRY_UNAVAILABLE" in response["systemError"], response
            calls = flaky.calls
            response, elapsed = _validate(p, down_image)
            assert elapsed < 0.1, f"an open breaker answered in {elapsed:.3f} s"
            assert "failing fast" in response["systemError"], response
            assert flaky.host in response["systemError"], response
            response, _ = _validate(p, down_image, healthy_image)
            assert flaky.calls == calls, "the open breaker still called the registry"
            assert "failing fast" in response["systemError"], response
            assert _verified(response, healthy_image) == ["ci"], response

            flaky.down = False
            deadline = time.monotonic() + 15  # the cool-down (5 s), then one probe
            while _verified(_validate(p, down_image)[0], down_image) != ["ci"]:
                assert time.monotonic() < deadline, "the registry's images never verified again"
                time.sleep(0.5)
