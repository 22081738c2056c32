"""Real token auth: credentials go where they are configured to go, and nowhere else."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from signet.crypto.keyfile import encrypt_cosign_key, generate, public_pem
from signet.model.report import Report
from signet.reasons import Reason, TransientFailure
from tests.support.images import push_image
from tests.support.registry import Registry, run_registry
from tests.support.tokenserver import TokenServer, run_token_server

from .helpers import check

pytestmark = pytest.mark.integration

USER, PASSWORD = "ci", "secret"


@dataclass(frozen=True)
class Secured:
    registry: Registry
    tokens: TokenServer
    image: str
    public_key: Path
    docker_config: Path

    @property
    def realm_host(self) -> str:
        return self.tokens.url.removeprefix("http://")

    def trust(
        self, directory: Path, *, credentials: bool, realms: bool, realm_listed: bool = True
    ) -> Path:
        lines = [
            "version: 1",
            "attestors:",
            "  - name: ci",
            "    keys:",
            f"      - file: {self.public_key}",
            "registries:",
            f"  - host: {self.registry.host}",
            "    insecure: true",
        ]
        if realms:
            lines.append(f"    realms: [{self.realm_host}]")
        # The token service itself may be contacted (it is on loopback, over plain HTTP) ...
        if realm_listed:
            lines += [f"  - host: {self.realm_host}", "    insecure: true"]
        if credentials:
            lines += ["auth:", f"  docker_config: {self.docker_config}"]
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "trust.yaml"
        path.write_text("\n".join(lines) + "\n")
        return path


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    work = tmp_path_factory.mktemp("token")
    with (
        run_token_server(work / "tokens", {USER: PASSWORD}) as tokens,
        run_registry(work / "registry", token=tokens.auth) as registry,
    ):
        scope = "repository:auth/app:pull,push"
        token = httpx.get(
            tokens.auth.realm,
            params={"service": tokens.auth.service, "scope": scope},
            auth=(USER, PASSWORD),
        ).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        push_image(registry.url, "auth/app", "v1", seed="auth", headers=headers)
        docker_config = work / "config.json"
        encoded = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        docker_config.write_text(json.dumps({"auths": {registry.host: {"auth": encoded}}}))
        # Signet signs through the token flow itself, with the configured credentials.
        key = generate("p256")
        public_key = work / "ci.pub"
        public_key.write_bytes(public_pem(key))
        (work / "ci.key").write_bytes(encrypt_cosign_key(key, b""))
        secured = Secured(
            registry, tokens, f"{registry.host}/auth/app:v1", public_key, docker_config
        )
        _sign_with_signet(secured, work)
        tokens.seen.clear()
        yield secured


def _sign_with_signet(secured: Secured, work: Path) -> None:
    config = secured.trust(work / "signing", credentials=True, realms=True)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "signet.cli",
            "sign",
            secured.image,
            "--key",
            str(work / "ci.key"),
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "COSIGN_PASSWORD": ""},
    )
    assert result.returncode == 0, result.stderr


def test_configured_credentials_reach_the_configured_realm(
    secured: Secured, tmp_path: Path
) -> None:
    config = secured.trust(tmp_path, credentials=True, realms=True)
    (report,) = check(config, secured.image)
    assert isinstance(report, Report), report
    assert report.verified == ("ci",)
    assert secured.tokens.seen and all(s.user == USER for s in secured.tokens.seen)
    scopes = {s.query.get("scope") for s in secured.tokens.seen}
    assert scopes == {"repository:auth/app:pull"}
    assert {s.query.get("service") for s in secured.tokens.seen} == {secured.tokens.auth.service}


def test_credentials_never_go_to_a_realm_the_registry_does_not_name(
    secured: Secured, tmp_path: Path
) -> None:
    secured.tokens.seen.clear()
    config = secured.trust(tmp_path, credentials=True, realms=False)
    (outcome,) = check(config, secured.image)
    assert isinstance(outcome, TransientFailure)
    assert outcome.reason is Reason.REGISTRY_AUTH_FAILED
    assert secured.tokens.seen, "the token service was asked anonymously"
    assert not any(s.authorization for s in secured.tokens.seen)


def test_without_credentials_auth_fails_transiently(secured: Secured, tmp_path: Path) -> None:
    config = secured.trust(tmp_path, credentials=False, realms=True)
    (outcome,) = check(config, secured.image)
    assert isinstance(outcome, TransientFailure)
    assert outcome.reason is Reason.REGISTRY_AUTH_FAILED


def test_an_unlisted_loopback_realm_is_never_contacted(secured: Secured, tmp_path: Path) -> None:
    secured.tokens.seen.clear()
    config = secured.trust(tmp_path, credentials=True, realms=False, realm_listed=False)
    (outcome,) = check(config, secured.image)
    assert isinstance(outcome, TransientFailure)
    assert outcome.reason is Reason.REGISTRY_AUTH_FAILED
    assert "plain HTTP" in outcome.message or "refusing" in outcome.message
    assert secured.tokens.seen == []
