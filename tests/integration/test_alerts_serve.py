"""Alerts as `signet serve --alertmanager` sends them: a revoked key used and a failing trust
reload, seen by a real Alertmanager; and the provider's answer never waits for it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from signet.crypto.keys import load_public_key_pem
from tests.support import cosign
from tests.support.alertmanager import Alertmanager, run_alertmanager
from tests.support.images import push_image
from tests.support.provider import run_provider
from tests.support.registry import run_registry

from .helpers import report_of, write_trust

pytestmark = pytest.mark.integration


def firing(manager: Alertmanager, name: str, within: float = 20.0) -> dict[str, object]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        found = [a for a in manager.alerts() if a["labels"]["alertname"] == name]
        if found:
            return found[0]
        time.sleep(0.2)
    raise AssertionError(f"{name} never reached Alertmanager: {manager.alerts()}")


def test_a_revoked_key_used_and_a_failing_reload_reach_alertmanager(tmp_path: Path) -> None:
    with (
        run_registry(tmp_path / "registry") as registry,
        run_alertmanager(tmp_path / "alertmanager") as manager,
    ):
        keys = cosign.generate_key_pair("v3.1.3", tmp_path / "keys")
        digest = push_image(registry.url, "app", "v1", seed="alerts-serve")
        image = f"{registry.host}/app@{digest}"
        cosign.sign("v3.1.3", keys.private, image)
        config = write_trust(tmp_path / "trust", {"ci": [keys.public]}, [registry.host])
        trust = yaml.safe_load(config.read_text())
        trust["revoked"] = [
            {
                "key": load_public_key_pem(keys.public.read_bytes()).fingerprint,
                "reason": "leaked",
                "time": "2026-12-01T00:00:00Z",
            }
        ]
        config.write_text(yaml.safe_dump(trust))
        with run_provider(config, tmp_path / "provider", "--alertmanager", manager.url) as provider:
            started = time.monotonic()
            report = report_of(provider, image)
            assert time.monotonic() - started < 2.0
            assert report["failures"][0]["reason"] == "KEY_REVOKED"
            alert = firing(manager, "SignetRevokedOrExpiredKeyUsed")
            assert alert["labels"]["service"] == "signet"  # type: ignore[index]

            config.write_text("version: 1\nattestors: [{name: ci, keys: [], surprise: 1}]\n")
            reload = firing(manager, "SignetTrustReloadFailed")
            assert "surprise" in str(reload["annotations"])
