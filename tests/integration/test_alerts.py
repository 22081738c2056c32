"""Alerts delivered to a real Alertmanager (v0.35.0, .tools/) and to a webhook on 127.0.0.1.

Alertmanager routes each alert at once to a capturing webhook here, with resolved ones, so the
tests see both its active alerts (GET /api/v2/alerts) and the endsAt it got for resolved ones."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from signet.alerts import Alerts, AlertSettings
from signet.audit.record import Decision, SignerFact
from tests.support.alertmanager import Alertmanager, run_alertmanager
from tests.support.procs import free_port

pytestmark = pytest.mark.integration

DIGEST = "sha256:" + "b" * 64


class Capture:
    """An HTTP server on 127.0.0.1 keeping every JSON body POSTed to it."""

    def __init__(self) -> None:
        self.bodies: list[Any] = []
        bodies = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def capture() -> Iterator[Capture]:
    server = Capture()
    yield server
    server.close()


@pytest.fixture
def alertmanager(tmp_path: Path, capture: Capture) -> Iterator[Alertmanager]:
    with run_alertmanager(tmp_path / "am", notify=capture.url) as running:
        yield running


def fast(**overrides: Any) -> AlertSettings:
    base: dict[str, Any] = {
        "denials": 3,
        "denial_window": 60,
        "registry_down_after": 0.5,
        "hold": 600,
        "backoff": 0.2,
        "max_backoff": 0.5,
        "timeout": 2,
    }
    return AlertSettings(**(base | overrides))


async def until(probe: Callable[[], Any], within: float = 15) -> Any:
    deadline = time.monotonic() + within
    while True:
        found = await asyncio.to_thread(probe)
        if found or time.monotonic() > deadline:
            assert found, "timed out"
            return found
        await asyncio.sleep(0.1)


def named(manager: Alertmanager, name: str) -> list[dict[str, Any]]:
    return [a for a in manager.alerts() if a["labels"]["alertname"] == name]


def notified(capture: Capture, name: str, status: str) -> list[dict[str, Any]]:
    return [
        alert
        for body in capture.bodies
        for alert in body.get("alerts", [])
        if alert["labels"]["alertname"] == name and alert["status"] == status
    ]


def test_each_event_reaches_alertmanager_with_its_labels_and_resolved_ones_end(
    alertmanager: Alertmanager, capture: Capture
) -> None:
    async def scenario() -> None:
        alerts = Alerts(fast(alertmanager_url=alertmanager.url))
        await alerts.start()
        try:
            denied = [
                Decision(
                    1.0, "r", f'evil.example/x{i}:1", "team": "x', DIGEST, reasons=("NO_SIGNATURE",)
                )
                for i in range(4)
            ]
            alerts.observe(denied)
            alerts.observe(
                [Decision(1.0, "r", "registry.example/app:1", DIGEST, reasons=("KEY_REVOKED",))]
            )
            dev = SignerFact("dev-team", "key-1", "sigstore-bundle")
            other = SignerFact("dev-team", "key-9", "sigstore-bundle")
            alerts.observe(
                [Decision(1.0, "r", "registry.example/app:1", DIGEST, ("dev-team",), (dev,))]
            )
            alerts.observe(
                [Decision(1.0, "r", "registry.example/app:2", DIGEST, ("dev-team",), (other,))]
            )
            alerts.registry_state("registry.example", True)
            alerts.trust_reload(False, "trust.yaml: attestors[0]: unknown field")

            (spike,) = await until(lambda: named(alertmanager, "SignetDenialSpike"))
            assert spike["labels"] == {
                "alertname": "SignetDenialSpike",
                "severity": "warning",
                "service": "signet",
            }
            assert "evil.example/x3" in spike["annotations"]["description"]
            (revoked,) = await until(lambda: named(alertmanager, "SignetRevokedOrExpiredKeyUsed"))
            assert revoked["labels"]["reason"] == "KEY_REVOKED"
            assert DIGEST in revoked["annotations"]["description"]
            (source,) = await until(lambda: named(alertmanager, "SignetUnusualSigningSource"))
            assert source["labels"]["repository"] == "registry.example/app"
            assert source["labels"]["attestor"] == "dev-team"
            assert "key-9" in source["annotations"]["description"]
            (down,) = await until(lambda: named(alertmanager, "SignetRegistryDown"))
            assert down["labels"]["host"] == "registry.example"
            (reload,) = await until(lambda: named(alertmanager, "SignetTrustReloadFailed"))
            assert "unknown field" in reload["annotations"]["description"]

            # Resolved: gone from the active alerts, and notified with its endsAt.
            alerts.trust_reload(True, "")
            alerts.registry_state("registry.example", False)
            await until(lambda: not named(alertmanager, "SignetTrustReloadFailed"))
            await until(lambda: not named(alertmanager, "SignetRegistryDown"))
            (ended,) = await until(lambda: notified(capture, "SignetTrustReloadFailed", "resolved"))
            assert not ended["endsAt"].startswith("0001")
            assert ended["endsAt"] >= ended["startsAt"]
            assert alerts.failed == 0 and alerts.dropped == 0 and alerts.sent >= 7
        finally:
            await alerts.aclose()

    asyncio.run(scenario())


def test_a_down_alertmanager_does_not_block_observe_and_delivery_recovers(
    tmp_path: Path, capture: Capture
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"

    async def scenario() -> None:
        alerts = Alerts(fast(alertmanager_url=url))
        await alerts.start()
        try:
            denied = [
                Decision(1.0, "r", f"registry.example/a{i}:1", DIGEST, reasons=("NO_SIGNATURE",))
                for i in range(100)
            ]
            started = time.perf_counter()
            for _ in range(100):
                alerts.observe(denied)
            assert time.perf_counter() - started < 0.5  # 10,000 decisions, no I/O
            await until(lambda: alerts.failed >= 2)
            assert alerts.sent == 0
            with run_alertmanager(tmp_path / "am", notify=capture.url, port=port) as manager:
                (spike,) = await until(lambda: named(manager, "SignetDenialSpike"))
                assert spike["labels"]["service"] == "signet"
                assert alerts.sent >= 1
        finally:
            await alerts.aclose()

    asyncio.run(scenario())


def test_a_webhook_gets_firing_and_resolved_alerts(capture: Capture) -> None:
    async def scenario() -> None:
        alerts = Alerts(fast(webhook_url=capture.url))
        await alerts.start()
        try:
            alerts.trust_reload(False, "bad trust")
            (firing,) = await until(lambda: notified(capture, "SignetTrustReloadFailed", "firing"))
            assert firing["endsAt"] is None
            assert firing["labels"] == {
                "alertname": "SignetTrustReloadFailed",
                "severity": "warning",
                "service": "signet",
            }
            assert firing["annotations"]["description"] == "bad trust"
            alerts.trust_reload(True, "")
            (resolved,) = await until(
                lambda: notified(capture, "SignetTrustReloadFailed", "resolved")
            )
            assert resolved["endsAt"] is not None and resolved["startsAt"] == firing["startsAt"]
            assert capture.bodies[0]["version"] == "1" and capture.bodies[0]["service"] == "signet"
        finally:
            await alerts.aclose()

    asyncio.run(scenario())
