"""Last known good through `signet serve`: a digest the real cosign signed and the provider verified
is answered stale, after a restart, while its registry is down; a tag is not; and once the
registry is back the answer is fresh again."""

from __future__ import annotations

import sqlite3
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


def _validate(provider: Provider, *keys: str) -> dict[str, Any]:
    body = {
        "apiVersion": "externaldata.gatekeeper.sh/v1beta1",
        "kind": "ProviderRequest",
        "request": {"keys": list(keys)},
    }
    with provider.client(timeout=20) as client:
        answer = client.post(f"{provider.url}/validate", json=body)
    assert answer.status_code == 200
    response: dict[str, Any] = answer.json()["response"]
    return response


def _value(response: dict[str, Any], key: str) -> dict[str, Any] | None:
    for item in response["items"]:
        if item["key"] == key:
            value: dict[str, Any] = item["value"]
            return value
    return None


def test_a_verified_digest_is_answered_stale_across_a_restart_while_its_registry_is_down(
    tmp_path: Path,
) -> None:
    store = tmp_path / "last-good.db"
    with (
        run_registry(tmp_path / "upstream") as upstream,
        run_stalling_registry(upstream.url) as flaky,
    ):
        keys = cosign.generate_key_pair(COSIGN, tmp_path / "keys")
        digest = push_image(upstream.url, "app", "v1", seed="last-known-good")
        cosign.sign(COSIGN, keys.private, f"{upstream.host}/app@{digest}")
        pinned, tagged = f"{flaky.host}/app@{digest}", f"{flaky.host}/app:v1"
        config = write_trust(tmp_path, {"ci": [keys.public]}, [flaky.host])
        flags = ("--last-known-good", str(store))

        with run_provider(config, tmp_path / "first", *flags) as provider:
            fresh = _value(_validate(provider, pinned), pinned)
            assert fresh is not None and fresh["verified"] == ["ci"] and "stale" not in fresh
        with sqlite3.connect(store) as db:
            assert db.execute("SELECT digest FROM verdicts").fetchall() == [(digest,)]

        flaky.down = True
        with run_provider(config, tmp_path / "second", *flags) as provider:
            response = _validate(provider, pinned, tagged)
            stale = _value(response, pinned)
            assert stale is not None, response
            assert stale["verified"] == ["ci"]
            assert stale["digest"] == digest
            assert stale["stale"]["reason"] == "REGISTRY_UNAVAILABLE", stale
            assert stale["stale"]["verifiedAt"].endswith("Z")
            assert _value(response, tagged) is None  # a tag is never answered from earlier data
            assert tagged in response["systemError"]
            assert pinned not in response["systemError"]

            flaky.down = False
            again = _value(_validate(provider, pinned), pinned)
            assert again is not None and again["verified"] == ["ci"]
            assert "stale" not in again  # a stale answer was never cached

        with run_provider(config, tmp_path / "third") as provider:  # the store is off
            flaky.down = True
            response = _validate(provider, pinned)
            assert _value(response, pinned) is None
            assert "REGISTRY_UNAVAILABLE" in response["systemError"]
