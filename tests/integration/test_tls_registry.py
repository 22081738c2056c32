"""A registry on HTTPS with its own CA and basic auth (htpasswd): the trust config's `ca_file`
and `auth.docker_config` are what make it reachable, and nothing else does."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from signet.http.devcerts import write_dev_certs
from signet.model.report import Report
from signet.reasons import Reason, TransientFailure
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
