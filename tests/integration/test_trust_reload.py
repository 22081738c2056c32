"""The trust config is reloaded on change, a bad edit keeps the last good config, and a changed
key is never answered from a verdict cached under the old one."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from tests.support import cosign
from tests.support.images import push_image
from tests.support.provider import Provider, run_provider
from tests.support.registry import Registry

from .helpers import report_of, write_trust

pytestmark = pytest.mark.integration


def verified(provider: Provider, image: str) -> list[str]:
    result: list[str] = report_of(provider, image)["verified"]
    return result


def eventually(condition: str, probe: object, expected: object, timeout: float = 15.0) -> None:
    assert callable(probe)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe() == expected:
            return
        time.sleep(0.2)
    raise AssertionError(f"{condition}: still {probe()!r}")


def trust_gauges(provider: Provider) -> tuple[list[str], float]:
    with provider.client() as client:
        text = client.get(f"{provider.url}/metrics").text
    fingerprints = re.findall(
        r'^signet_trust_config_info\{fingerprint="([0-9a-f]+)"\} 1\.0$', text, re.M
    )
    loaded = re.search(r"^signet_trust_last_load_success_timestamp_seconds (\S+)$", text, re.M)
    assert loaded, text
    return fingerprints, float(loaded.group(1))


def test_reload_applies_new_keys_and_survives_a_bad_edit(
    registry: Registry, tmp_path: Path
) -> None:
    digest = push_image(registry.url, "reload/app", "v1", seed="reload")
    image = f"{registry.host}/reload/app:v1"
    signer = cosign.generate_key_pair("v3.1.3", tmp_path / "signer")
    other = cosign.generate_key_pair("v3.1.3", tmp_path / "other")
    cosign.sign("v3.1.3", signer.private, f"{registry.host}/reload/app@{digest}")
    config = write_trust(tmp_path / "trust", {"team": [other.public]}, [registry.host])

    with run_provider(config, tmp_path / "provider") as provider:
        assert verified(provider, image) == []  # and that "no" is now cached
        first = trust_gauges(provider)

        write_trust(tmp_path / "trust", {"team": [signer.public]}, [registry.host])
        eventually("the new key takes effect", lambda: verified(provider, image), ["team"])
        # The fingerprint in use changed (one series, the new one), and when it was loaded.
        second = trust_gauges(provider)
        assert len(first[0]) == len(second[0]) == 1 and first[0] != second[0]
        assert second[1] >= first[1] > 0

        config.write_text("version: 1\nattestors: [{name: team, keys: [], surprise: 1}]\n")
        time.sleep(3)  # more than one reload interval
        assert verified(provider, image) == ["team"]
        with provider.client() as client:
            metrics = client.get(f"{provider.url}/metrics").text
            ready = client.get(f"{provider.url}/readyz").status_code
        assert 'signet_trust_reloads_total{result="error"} 1.0' in metrics
        assert ready == 200
        errors = [
            json.loads(line)
            for line in provider.log.read_text().splitlines()
            if '"signet.trust"' in line and '"error"' in line
        ]
        assert errors and "surprise" in errors[-1]["message"]


def project(volume: Path, files: dict[str, bytes], generation: int) -> None:
    """What the kubelet does to a mounted Secret or ConfigMap: the files live in a timestamped
    folder, `..data` links to it, each name links through `..data`, and an update swaps the
    `..data` link atomically."""
    folder = volume / f"..{generation}"
    folder.mkdir(parents=True)
    for name, content in files.items():
        (folder / name).write_bytes(content)
    link = volume / "..data_tmp"
    link.symlink_to(folder.name)
    link.rename(volume / "..data")
    for name in files:
        if not (volume / name).is_symlink():
            (volume / name).symlink_to(f"..data/{name}")


def test_a_key_in_a_mounted_secret_is_reloaded_when_kubernetes_updates_it(
    registry: Registry, tmp_path: Path
) -> None:
    """The chart's trustMounts: the config names /etc/signet/mounts/<name>/<key> and stays the
    same; the Secret behind it changes (the kubelet's symlink swap), and the new key counts."""
    digest = push_image(registry.url, "reload/mounted", "v1", seed="reload-mounted")
    image = f"{registry.host}/reload/mounted:v1"
    signer = cosign.generate_key_pair("v3.1.3", tmp_path / "signer")
    other = cosign.generate_key_pair("v3.1.3", tmp_path / "other")
    cosign.sign("v3.1.3", signer.private, f"{registry.host}/reload/mounted@{digest}")
    mount = tmp_path / "mounts" / "keys"
    project(mount, {"team.pub": other.public.read_bytes()}, 1)
    config = write_trust(tmp_path / "trust", {"team": [mount / "team.pub"]}, [registry.host])
    before = config.read_bytes()

    with run_provider(config, tmp_path / "provider") as provider:
        assert verified(provider, image) == []
        project(mount, {"team.pub": signer.public.read_bytes()}, 2)
        eventually("the mounted key takes effect", lambda: verified(provider, image), ["team"])
    assert config.read_bytes() == before  # only the Secret changed
