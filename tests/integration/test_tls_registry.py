"""A registry on HTTPS with its own CA and basic auth (htpasswd): the trust config's `ca_file`
and `auth.docker_config` are what make it reachable, and nothing else does."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpcore
import pytest

from signet.http.devcerts import write_dev_certs
from signet.model.reference import parse
from signet.model.report import Report
from signet.reasons import Reason, TransientFailure
from signet.service import runtime
from signet.trust.config import load
from tests.support.images import push_image
from tests.support.registry import Registry, ServerTLS, run_registry

from .helpers import check, run_signet

pytestmark = pytest.mark.integration

USER, PASSWORD = "ci", "s3cret"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


@dataclass(frozen=True)
class Secure:
    registry: Registry
    ca: Path
    key_prefix: Path
    docker_config: Path
    digest: str

    @property
    def image(self) -> str:
        return f"{self.registry.host}/tls/app:v1"

    def trust(self, directory: Path, *, ca: bool = True, credentials: bool = True) -> Path:
        lines = [
            "version: 1",
            f"attestors: [{{name: ci, keys: [{{file: {self.key_prefix}.pub}}]}}]",
            "registries:",
            f"  - host: {self.registry.host}",
        ]
        if ca:
            lines.append(f"    ca_file: {self.ca}")
        if credentials:
            lines += ["auth:", f"  docker_config: {self.docker_config}"]
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "trust.yaml").write_text("\n".join(lines) + "\n")
        return directory / "trust.yaml"


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secure]:
    work = tmp_path_factory.mktemp("tls")
    certs = write_dev_certs(work / "certs")
    tls = ServerTLS(certs.server_cert, certs.server_key, {USER: PASSWORD})
    with pytest.MonkeyPatch.context() as env, run_registry(work / "registry", tls=tls) as registry:
        env.setenv("SSL_CERT_FILE", str(certs.ca))  # for the test's own pushes (httpx)
        digest = push_image(
            registry.url, "tls/app", "v1", seed="tls", headers={"Authorization": BASIC}
        )
        docker_config = work / "config.json"
        docker_config.write_text(
            json.dumps({"auths": {registry.host: {"username": USER, "password": PASSWORD}}})
        )
        run_signet("keys", "generate", "--output-key-prefix", str(work / "ci"))
        yield Secure(registry, certs.ca, work / "ci", docker_config, digest)


def test_signed_and_verified_over_https_with_basic_auth(secure: Secure, tmp_path: Path) -> None:
    config = secure.trust(tmp_path)
    # Signet signs through these settings too: HTTPS with the custom CA, basic-auth pushes.
    run_signet("sign", secure.image, "--key", f"{secure.key_prefix}.key", "--config", str(config))

    (report,) = check(config, secure.image)

    assert isinstance(report, Report), report
    assert report.digest == secure.digest
    assert report.verified == ("ci",)


def test_without_the_ca_the_registry_is_not_trusted(secure: Secure, tmp_path: Path) -> None:
    (outcome,) = check(secure.trust(tmp_path, ca=False), secure.image)
    assert isinstance(outcome, TransientFailure)
    assert outcome.reason is Reason.REGISTRY_UNAVAILABLE
    assert "CERTIFICATE_VERIFY_FAILED" in outcome.message


def test_without_credentials_basic_auth_fails(secure: Secure, tmp_path: Path) -> None:
    (outcome,) = check(secure.trust(tmp_path, credentials=False), secure.image)
    assert isinstance(outcome, TransientFailure)
    assert outcome.reason is Reason.REGISTRY_AUTH_FAILED


class _CountingBackend(httpcore.AnyIOBackend):
    """httpcore's own network backend, counting the connections it opens."""

    def __init__(self) -> None:
        self.connections = 0

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connections += 1
        return await super().connect_tcp(host, port, timeout, local_address, socket_options)


def test_one_connection_serves_tag_lookups_and_the_manifests_after_them(
    secure: Secure, tmp_path: Path
) -> None:
    """A HEAD's answer closed unread would make httpcore drop its connection, and every image
    would pay a new TLS handshake for the GET after its tag's HEAD."""
    network = _CountingBackend()
    trust = load(secure.trust(tmp_path))
    ref = parse(secure.image)

    async def run() -> list[str]:
        parts = runtime.build(lambda: trust, network=network)
        try:
            digests = []
            for _ in range(3):
                digests.append(await parts.registry.resolve(ref))
                assert await parts.registry.manifest(ref, digests[-1]) is not None
            return digests
        finally:
            await parts.aclose()

    assert asyncio.run(run()) == [secure.digest] * 3
    assert network.connections == 1
