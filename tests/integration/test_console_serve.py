"""The console as `signet serve --console-port` runs it: its own HTTPS port, the token login,
a check that goes through the serving engine, and the decisions the provider logged."""

from __future__ import annotations

import re
import ssl
from pathlib import Path

import httpx
import pytest

from signet.crypto.keyfile import encrypt_cosign_key, generate
from tests.support import cosign
from tests.support.images import push_image
from tests.support.procs import free_port
from tests.support.provider import run_provider
from tests.support.registry import run_registry

from .helpers import report_of, write_trust

pytestmark = pytest.mark.integration

TOKEN = "a console token of some length"


def csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def test_the_console_logs_in_checks_an_image_and_shows_the_logged_decisions(
    tmp_path: Path,
) -> None:
    (tmp_path / "token").write_text(TOKEN + "\n")
    (tmp_path / "log.key").write_bytes(encrypt_cosign_key(generate("p256"), b""))
    port = free_port()
    with run_registry(tmp_path / "registry") as registry:
        keys = cosign.generate_key_pair("v3.1.3", tmp_path / "keys")
        digest = push_image(registry.url, "app", "v1", seed="console-serve")
        cosign.sign("v3.1.3", keys.private, f"{registry.host}/app@{digest}")
        config = write_trust(tmp_path / "trust", {"ci": [keys.public]}, [registry.host])
        flags = (
            *("--console-port", str(port), "--console-token-file", str(tmp_path / "token")),
            "--console-allow-checks",
            *(
                "--decision-log",
                str(tmp_path / "log"),
                "--decision-log-key",
                str(tmp_path / "log.key"),
            ),
        )
        with run_provider(config, tmp_path / "provider", *flags) as provider:
            unsigned = f"{registry.host}/app:unsigned-never-pushed"
            report_of(provider, unsigned)  # a decision for the log
            origin = f"https://127.0.0.1:{port}"
            context = ssl.create_default_context(cafile=str(provider.certs.ca))  # no client cert
            with httpx.Client(base_url=origin, verify=context, timeout=20) as console:
                assert console.get("/", headers={"Accept": "text/html"}).status_code == 303
                login = console.get("/login")
                answer = console.post(
                    "/login",
                    data={"token": TOKEN, "csrf": csrf(login.text)},
                    headers={"Origin": origin},
                )
                assert answer.status_code in (200, 303), answer.text
                recent = console.get("/")
                assert recent.status_code == 200
                assert "unsigned-never-pushed" in recent.text and "IMAGE_NOT_FOUND" in recent.text
                checked = console.post(
                    "/check",
                    data={"image": f"{registry.host}/app@{digest}", "csrf": csrf(recent.text)},
                    headers={"Origin": origin},
                )
                assert checked.status_code == 200, checked.text
                assert "Verified by: ci</p>" in checked.text, checked.text
            # The Gatekeeper port still wants its client certificate; the console's does not.
            with pytest.raises(httpx.HTTPError), httpx.Client(verify=context, timeout=5) as bare:
                bare.post(f"{provider.url}/validate", json={})
