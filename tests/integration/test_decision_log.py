"""The decision log as `signet serve` writes it: every decision of a real run (verified, denied,
transient) is in the chain, `signet audit verify` accepts it and names a tampered byte, and
`signet audit query` answers which key admitted a digest and who denied another."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from signet.crypto.keyfile import encrypt_cosign_key, generate, public_pem
from tests.support import cosign
from tests.support.images import push_image
from tests.support.provider import Provider, run_provider
from tests.support.registry import run_registry

from .helpers import signet_cli, write_trust

pytestmark = pytest.mark.integration

COSIGN = "v3.1.3"


def _validate(provider: Provider, *keys: str) -> None:
    body = {
        "apiVersion": "externaldata.gatekeeper.sh/v1beta1",
        "kind": "ProviderRequest",
        "request": {"keys": list(keys)},
    }
    with provider.client(timeout=20) as client:
        assert client.post(f"{provider.url}/validate", json=body).status_code == 200


def test_the_provider_writes_a_log_that_verifies_and_answers_who_admitted_what(
    tmp_path: Path,
) -> None:
    log_key = generate("p256")
    (tmp_path / "log.key").write_bytes(encrypt_cosign_key(log_key, b"s3cret"))
    (tmp_path / "log.password").write_text("s3cret\n")
    (tmp_path / "log.pub").write_bytes(public_pem(log_key))
    with run_registry(tmp_path / "registry") as registry:
        keys = cosign.generate_key_pair(COSIGN, tmp_path / "keys")
        signed = push_image(registry.url, "app", "signed", seed="log-signed")
        unsigned = push_image(registry.url, "app", "unsigned", seed="log-unsigned")
        cosign.sign(COSIGN, keys.private, f"{registry.host}/app@{signed}")
        config = write_trust(tmp_path, {"ci": [keys.public]}, [registry.host, "127.0.0.1:9"])
        flags = (
            *("--decision-log", str(tmp_path / "decisions")),
            *("--decision-log-key", str(tmp_path / "log.key")),
            *("--decision-log-key-password-file", str(tmp_path / "log.password")),
            *("--decision-log-replica", "signet-0"),
        )
        with run_provider(config, tmp_path / "provider", *flags) as provider:
            _validate(provider, f"{registry.host}/app@{signed}", f"{registry.host}/app:unsigned")
            _validate(provider, f"{registry.host}/app@{signed}")  # answered from the cache
            _validate(provider, "127.0.0.1:9/app:down")  # nothing listens there: transient
    # Stopped cleanly: the log ends with a checkpoint.

    code, out, err = signet_cli(
        "audit", "verify", str(tmp_path / "decisions"), "--key", str(tmp_path / "log.pub")
    )
    assert code == 0, out + err

    def query(*filters: str) -> list[dict[str, object]]:
        code, out, err = signet_cli(
            *("audit", "query", str(tmp_path / "decisions")),
            *("--key", str(tmp_path / "log.pub"), "--json", *filters),
        )
        assert code == 0, err
        return [json.loads(line)["decision"] for line in out.splitlines()]

    admitted = query("--digest", signed)
    assert [d["cached"] for d in admitted] == [False, True]
    key_id = admitted[0]["signers"][0]["key"]  # type: ignore[index]
    assert admitted[0]["verified"] == ["ci"] and admitted[0]["reasons"] == []
    assert [d["key"] for d in query("--key-id", str(key_id))] == [
        f"{registry.host}/app@{signed}"
    ] * 2
    (denied,) = query("--reason", "NO_SIGNATURE")
    assert denied["key"] == f"{registry.host}/app:unsigned" and denied["digest"] == unsigned
    (down,) = query("--reason", "REGISTRY_UNAVAILABLE")
    assert down["digest"] is None and "127.0.0.1:9" in str(down["error"])
    assert len({d["request"] for d in [*admitted, denied]}) == 2  # one id per request
    assert len({d["trust"] for d in [*admitted, denied, down]}) == 1

    # One byte changed anywhere is found, and named.
    (segment,) = sorted((tmp_path / "decisions" / "signet-0").glob("segment-*.jsonl"))
    data = bytearray(segment.read_bytes())
    at = data.index(b"NO_SIGNATURE")
    data[at] = ord("X")
    segment.write_bytes(bytes(data))
    code, out, _ = signet_cli(
        "audit", "verify", str(tmp_path / "decisions"), "--key", str(tmp_path / "log.pub")
    )
    assert code == 1, out
    assert "signet-0" in out and segment.name in out
