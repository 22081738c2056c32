"""The provider as Gatekeeper meets it: `signet serve` over mTLS, a real registry, real cosign."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from signet.crypto.keyfile import generate, public_pem
from signet.http.devcerts import renew_server_cert
from tests.support import cosign
from tests.support.images import push_image
from tests.support.procs import free_port
from tests.support.provider import Provider, run_provider
from tests.support.registry import Registry

from .helpers import write_trust

pytestmark = pytest.mark.integration


# The builder and source of the attested image's SLSA provenance (see the contract fixture).
BUILDER = "https://ci.example/builders/release@v1"
SOURCE = "https://git.example/team/app"


class Stack:
    def __init__(
        self,
        provider: Provider,
        signed: str,
        unsigned: str,
        digest: str,
        unsigned_digest: str,
        attested_digest: str,
        two_teams_digest: str,
    ) -> None:
        self.provider, self.signed, self.unsigned, self.digest = provider, signed, unsigned, digest
        self.unsigned_digest = unsigned_digest
        self.attested_digest = attested_digest
        self.two_teams_digest = two_teams_digest

    def post(self, path: str, body: bytes) -> dict[str, Any]:
        with self.provider.client() as client:
            answer = client.post(
                f"{self.provider.url}{path}",
                content=body,
                headers={"Content-Type": "application/json"},
            )
        assert answer.status_code == 200
        document: dict[str, Any] = answer.json()
        return document


def provider_request(*keys: object) -> bytes:
    return json.dumps(
        {
            "apiVersion": "externaldata.gatekeeper.sh/v1beta1",
            "kind": "ProviderRequest",
            "request": {"keys": list(keys)},
        }
    ).encode()


@pytest.fixture(scope="module")
def stack(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("serve")
    digest = push_image(registry.url, "serve/app", "signed", seed="serve-signed")
    unsigned_digest = push_image(registry.url, "serve/app", "unsigned", seed="serve-unsigned")
    attested_digest = push_image(registry.url, "serve/app", "attested", seed="serve-attested")
    keys = cosign.generate_key_pair("v3.1.3", work / "keys")
    cosign.sign("v3.1.3", keys.private, f"{registry.host}/serve/app@{digest}")
    # cosign v3's defaults: a Sigstore bundle referrer, and SLSA v1 provenance as a bundle.
    attested = f"{registry.host}/serve/app@{attested_digest}"
    cosign.sign_bundle("v3.1.3", keys.private, attested)
    predicate = cosign.slsa_predicate("1", BUILDER, SOURCE, "refs/heads/main", "c" * 40)
    predicate_file = cosign.write_predicate(work, "provenance.json", predicate)
    cosign.attest("v3.1.3", keys.private, attested, predicate_file, "slsaprovenance1", bundle=True)
    # Signed by two teams, for the m-of-n sample's allowed example.
    two_teams_digest = push_image(registry.url, "serve/app", "two-teams", seed="serve-two-teams")
    security = cosign.generate_key_pair("v3.1.3", work / "security-keys")
    for signer in (keys, security):
        cosign.sign("v3.1.3", signer.private, f"{registry.host}/serve/app@{two_teams_digest}")
    # 127.0.0.1:9 is a configured registry that is down (nothing listens on the discard port).
    config = write_trust(
        work,
        {"dev-team": [keys.public], "security-team": [security.public]},
        [registry.host, "127.0.0.1:9"],
    )
    with run_provider(config, work) as provider:
        yield Stack(
            provider,
            f"{registry.host}/serve/app:signed",
            f"{registry.host}/serve/app:unsigned",
            digest,
            unsigned_digest,
            attested_digest,
            two_teams_digest,
        )


def test_validate_answers_each_key_with_a_report(stack: Stack) -> None:
    answer = stack.post("/validate", provider_request(stack.signed, stack.unsigned))
    response = answer["response"]
    assert answer["kind"] == "ProviderResponse"
    assert response["systemError"] == ""
    values = {item["key"]: item["value"] for item in response["items"]}
    assert values[stack.signed]["verified"] == ["dev-team"]
    assert values[stack.signed]["digest"] == stack.digest
    assert values[stack.unsigned]["verified"] == []
    assert values[stack.unsigned]["failures"][0]["reason"] == "NO_SIGNATURE"


def test_transient_failure_goes_to_system_error_not_items(stack: Stack) -> None:
    down = "127.0.0.1:9/nothing/here:v1"
    response = stack.post("/validate", provider_request(stack.signed, down))["response"]
    assert [item["key"] for item in response["items"]] == [stack.signed]
    assert down in response["systemError"]
    assert "REGISTRY_UNAVAILABLE" in response["systemError"]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"this is not json", "not JSON"),
        (
            json.dumps(
                {"apiVersion": "externaldata.gatekeeper.sh/v1beta1", "kind": "Pod"}
            ).encode(),
            "kind",
        ),
        (provider_request("nginx", 7), "keys[1]"),
        (provider_request(*(f"registry.example/app:{i}" for i in range(10_000))), "limit"),
    ],
    ids=["not-json", "wrong-kind", "non-string-key", "10000-keys"],
)
def test_bad_requests_get_a_clear_system_error(stack: Stack, body: bytes, problem: str) -> None:
    response = stack.post("/validate", body)["response"]
    assert response["items"] == []
    assert problem in response["systemError"]


def test_mutate_pins_the_digest(stack: Stack) -> None:
    pinned = f"{stack.signed.rsplit(':', 1)[0]}@{stack.digest}"
    response = stack.post("/mutate", provider_request(stack.signed, pinned))["response"]
    values = {item["key"]: item["value"] for item in response["items"]}
    assert values == {stack.signed: pinned, pinned: pinned}


def test_no_client_certificate_gets_no_answer(stack: Stack) -> None:
    context = ssl.create_default_context(cafile=str(stack.provider.certs.ca))
    with pytest.raises(httpx.HTTPError), httpx.Client(verify=context, timeout=5) as client:
        client.post(f"{stack.provider.url}/validate", content=provider_request(stack.signed))


def test_tls_1_2_is_refused(stack: Stack) -> None:
    context = stack.provider.client_context()
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with (
        socket.create_connection(("127.0.0.1", stack.provider.port), timeout=5) as raw,
        pytest.raises(ssl.SSLError),
    ):
        context.wrap_socket(raw, server_hostname="127.0.0.1")


def test_metrics_count_decisions(stack: Stack) -> None:
    # Verified by every attestor configured, so nothing is left for a reason.
    host = stack.signed.split("/")[0]
    stack.post("/validate", provider_request(f"{host}/serve/app@{stack.two_teams_digest}"))
    with stack.provider.client() as client:
        text = client.get(f"{stack.provider.url}/metrics").text
    assert 'signet_decisions_total{reason="OK"}' in text
    assert 'signet_requests_total{endpoint="validate",outcome="ok"}' in text


def test_one_json_log_line_per_decision(stack: Stack) -> None:
    stack.post("/validate", provider_request(stack.unsigned))
    decisions = [
        json.loads(line)
        for line in Path(stack.provider.log).read_text().splitlines()
        if '"event":"decision"' in line
    ]
    mine = [d for d in decisions if d["key"] == stack.unsigned]
    assert mine and mine[-1]["reasons"] == ["NO_SIGNATURE"]
    assert {"digest", "verified", "duration_ms", "cached"} <= set(mine[-1])


def test_an_idle_connection_outlives_uvicorns_default_keep_alive(stack: Stack) -> None:
    """Gatekeeper keeps idle connections 90 s; uvicorn's default (5 s) would close them first."""
    body = provider_request(stack.signed)
    request = (
        f"POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    context = stack.provider.client_context()
    with (
        socket.create_connection(("127.0.0.1", stack.provider.port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        for _ in range(2):
            tls.sendall(request)
            received = b""
            while b"\r\n\r\n" not in received:
                chunk = tls.recv(65536)
                assert chunk, "the server closed the connection"
                received += chunk
            head, _, body_part = received.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            while len(body_part) < length:
                body_part += tls.recv(65536)
            assert json.loads(body_part)["response"]["items"][0]["key"] == stack.signed
            time.sleep(6)


def _served_certificate(provider: Provider) -> bytes:
    context = provider.client_context()
    with (
        socket.create_connection(("127.0.0.1", provider.port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        return der


def test_a_rotated_serving_certificate_is_picked_up(registry: Registry, tmp_path: Path) -> None:
    config = write_trust(tmp_path, {"dev-team": [tmp_path / "k.pub"]}, [registry.host])
    (tmp_path / "k.pub").write_bytes(public_pem(generate("p256")))
    with run_provider(config, tmp_path / "provider") as provider:
        before = _served_certificate(provider)
        renew_server_cert(provider.certs)
        deadline = time.monotonic() + 15
        while _served_certificate(provider) == before:
            assert time.monotonic() < deadline, "the new certificate was never served"
            time.sleep(0.25)
        with provider.client() as client:
            assert client.get(f"{provider.url}/readyz").status_code == 200


CONTRACT = Path(__file__).resolve().parents[2] / "rego/signatures/testdata/contract/data.json"


def test_the_rego_contract_fixture_is_what_the_provider_answers(stack: Stack) -> None:
    """The Rego tests read this fixture; a change on either side breaks a test, not admission.

    Regenerate with SIGNET_UPDATE_CONTRACT=1 after an intended change of the answer.
    """
    down = "127.0.0.1:9/nothing/here:v1"
    host = stack.signed.split("/")[0]
    # As validation sees them once the mutator pinned them, and one tag as written.
    keys = (
        f"{host}/serve/app@{stack.digest}",
        f"{host}/serve/app@{stack.unsigned_digest}",
        down,
        stack.signed,
        f"{host}/serve/app@{stack.attested_digest}",
        f"{host}/serve/app@{stack.two_teams_digest}",
    )
    answer = stack.post("/validate", provider_request(*keys))
    text = json.dumps(answer, indent=2, sort_keys=True).replace(host, "registry.test:5000")
    text = re.sub(r'"key": "[0-9a-f]{16}"', '"key": "<key id>"', text)
    # A key-based signature is judged at the time of verification, which differs every run.
    text = re.sub(
        r'"signedAt": "[^"]+",(\s+)"timeSource": "verification-time"',
        r'"signedAt": "<time of verification>",\1"timeSource": "verification-time"',
        text,
    )
    recorded = {
        "request_keys": [k.replace(host, "registry.test:5000") for k in keys],
        "answer": json.loads(text),
    }
    rendered = json.dumps(recorded, indent=2, sort_keys=True) + "\n"
    if os.environ.get("SIGNET_UPDATE_CONTRACT"):
        CONTRACT.parent.mkdir(parents=True, exist_ok=True)
        CONTRACT.write_text(rendered)
    assert CONTRACT.exists(), "run with SIGNET_UPDATE_CONTRACT=1 to record the contract fixture"
    assert CONTRACT.read_text() == rendered, "the provider's answer changed: update the fixture"


def test_the_health_port_serves_probes_and_metrics_only(registry: Registry, tmp_path: Path) -> None:
    (tmp_path / "k.pub").write_bytes(public_pem(generate("p256")))
    config = write_trust(tmp_path, {"dev-team": [tmp_path / "k.pub"]}, [registry.host])
    health_port = free_port()
    with run_provider(config, tmp_path / "provider", "--health-port", str(health_port)):
        base = f"http://127.0.0.1:{health_port}"
        deadline = time.monotonic() + 10
        while True:
            try:
                assert httpx.get(f"{base}/healthz", timeout=2).status_code == 200
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the health port never answered"
                time.sleep(0.1)
        assert httpx.get(f"{base}/readyz", timeout=2).status_code == 200
        assert "signet_requests_total" in httpx.get(f"{base}/metrics", timeout=2).text
        validate = httpx.post(f"{base}/validate", content=provider_request("x"), timeout=2)
        assert validate.status_code in (404, 405), "Gatekeeper's endpoints need mTLS"


def test_stopping_the_server_stops_its_worker_processes(registry: Registry, tmp_path: Path) -> None:
    """SIGTERM (a Pod's stop) ends the signature-checking workers too, not only the server."""
    (tmp_path / "k.pub").write_bytes(public_pem(generate("p256")))
    config = write_trust(tmp_path, {"dev-team": [tmp_path / "k.pub"]}, [registry.host])
    with run_provider(config, tmp_path / "provider") as provider:
        assert provider.process is not None
        children = subprocess.run(
            ["pgrep", "-P", str(provider.process.pid)], capture_output=True, text=True, check=False
        ).stdout.split()
        assert children, "signet serve started no worker processes"
    deadline = time.monotonic() + 10
    while (alive := [pid for pid in children if _running(pid)]) and (time.monotonic() < deadline):
        time.sleep(0.1)
    for pid in alive:
        os.kill(int(pid), signal.SIGKILL)
    assert alive == [], "worker processes outlived signet serve"


def _running(pid: str) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"
