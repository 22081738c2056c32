"""The trust ConfigMap's mirror: each version from the API written as the kubelet writes a
volume, every odd answer survived, and nothing but the ConfigMap's own keys written."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from signet.crypto.keyfile import generate, public_pem
from signet.trust.kube import ConfigMapMirror, KubeSource
from signet.trust.store import TrustStore

pytestmark = pytest.mark.anyio

PATH = "/api/v1/namespaces/gatekeeper-system/configmaps"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def configmap(
    version: str, data: dict[str, str], binary: dict[str, bytes] | None = None
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "metadata": {"name": "signet-trust", "resourceVersion": version},
        "data": data,
    }
    if binary:
        item["binaryData"] = {k: base64.b64encode(v).decode() for k, v in binary.items()}
    return item


class FakeApi:
    """Answers a list with `listed`, then each watch with the events queued for it."""

    def __init__(self, listed: list[dict[str, Any]], version: str = "10") -> None:
        self.listed, self.version = listed, version
        self.watches: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
        self.requests: list[httpx.Request] = []

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        assert request.url.path == PATH
        assert request.url.params["fieldSelector"] == "metadata.name=signet-trust"
        assert request.headers["Authorization"] == "Bearer token-1"
        if request.url.params.get("watch") != "true":
            body = {"metadata": {"resourceVersion": self.version}, "items": self.listed}
            return httpx.Response(200, json=body)
        events = await self.watches.get()

        async def stream() -> AsyncIterator[bytes]:
            for event in events:
                yield json.dumps(event).encode() + b"\n"

        return httpx.Response(200, content=stream())


def source(tmp_path: Path) -> KubeSource:
    account = tmp_path / "account"
    account.mkdir(exist_ok=True)
    (account / "token").write_text("token-1\n")
    (account / "ca.crt").write_text("")  # not read: the transport is the fake's
    return KubeSource("gatekeeper-system", "signet-trust", "https://127.0.0.1:6443", account)


async def until(condition: Callable[[], bool], seconds: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "not in time"
        await asyncio.sleep(0.01)


def read(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(folder.iterdir()) if not p.name.startswith("..")}


async def test_the_listed_version_then_each_watched_one_is_mirrored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ssl.create_default_context", lambda **_: None)
    api = FakeApi([configmap("7", {"trust.yaml": "one", "old.pub": "x"})])
    mirror = ConfigMapMirror(
        source(tmp_path), tmp_path / "mirror", transport=httpx.MockTransport(api.handle)
    )
    task = asyncio.create_task(mirror.run())
    try:
        await until(lambda: mirror.version == "7")
        assert read(tmp_path / "mirror") == {"old.pub": "x", "trust.yaml": "one"}
        api.watches.put_nowait(
            [
                {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "8"}}},
                {
                    "type": "MODIFIED",
                    "object": configmap("9", {"trust.yaml": "two"}, {"key.der": b"\0\1"}),
                },
            ]
        )
        await until(lambda: mirror.version == "9")
        assert read(tmp_path / "mirror") == {
            "key.der": "\0\1",
            "trust.yaml": "two",
        }  # old.pub is gone
        generations = [
            p
            for p in (tmp_path / "mirror").iterdir()
            if p.name.startswith("..") and p.is_dir() and not p.is_symlink()
        ]
        assert len(generations) == 1  # the previous one was removed
        watch = api.requests[1]
        assert (
            watch.url.params["resourceVersion"] == "10"
            and watch.url.params["allowWatchBookmarks"] == "true"
        )
    finally:
        task.cancel()


async def test_a_gone_version_relists_and_a_deleted_configmap_keeps_the_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ssl.create_default_context", lambda **_: None)
    api = FakeApi([configmap("7", {"trust.yaml": "one"})])
    mirror = ConfigMapMirror(
        source(tmp_path),
        tmp_path / "mirror",
        transport=httpx.MockTransport(api.handle),
        first_backoff=0.01,
    )
    task = asyncio.create_task(mirror.run())
    try:
        await until(lambda: mirror.version == "7")
        api.watches.put_nowait([{"type": "DELETED", "object": configmap("8", {})}])
        api.watches.put_nowait([{"type": "ERROR", "object": {"code": 410, "message": "too old"}}])
        api.listed = [configmap("11", {"trust.yaml": "three"})]
        await until(lambda: mirror.version == "11")
        assert read(tmp_path / "mirror") == {"trust.yaml": "three"}
    finally:
        task.cancel()


async def test_a_key_that_is_not_a_file_name_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ssl.create_default_context", lambda **_: None)
    mirror = ConfigMapMirror(source(tmp_path), tmp_path / "mirror")
    for key in ("../escape", "..data", "a/b"):
        with pytest.raises(ValueError, match="not a file name"):
            mirror._apply(configmap("3", {key: "x"}))
    assert not (tmp_path / "escape").exists()
    assert mirror.version == ""


async def test_the_store_loads_each_mirrored_version_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ssl.create_default_context", lambda **_: None)
    keys = tmp_path / "keys"
    keys.mkdir()
    configs = []
    for name in ("a", "b"):
        (keys / f"{name}.pub").write_bytes(public_pem(generate("p256")))
        configs.append(
            f"version: 1\nattestors:\n  - name: team\n    keys:\n      - file: {keys / name}.pub\n"
        )
    mounted = tmp_path / "mounted"
    mounted.mkdir()
    (mounted / "trust.yaml").write_text(configs[0])
    api = FakeApi([configmap("7", {"trust.yaml": configs[0]})])
    mirror = ConfigMapMirror(
        source(tmp_path), tmp_path / "mirror", transport=httpx.MockTransport(api.handle)
    )
    mirror.seed(mounted)
    store = TrustStore(tmp_path / "mirror")
    first = store.current().fingerprint
    tasks = [asyncio.create_task(mirror.run()), asyncio.create_task(store.watch(30.0))]
    try:
        await until(lambda: mirror.version == "7")
        api.watches.put_nowait(
            [{"type": "MODIFIED", "object": configmap("8", {"trust.yaml": configs[1]})}]
        )
        await until(lambda: store.current().fingerprint != first, 1.0)
    finally:
        for task in tasks:
            task.cancel()


def test_outside_a_pod_the_flag_says_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(ValueError, match="KUBERNETES_SERVICE_HOST is not set"):
        KubeSource.in_cluster("ns/name", tmp_path)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    with pytest.raises(ValueError, match="no service account token"):
        KubeSource.in_cluster("ns/name", tmp_path)
    with pytest.raises(ValueError, match="expected NAMESPACE/NAME"):
        KubeSource.in_cluster("name", tmp_path)
    (tmp_path / "token").write_text("t")
    (tmp_path / "ca.crt").write_text("")
    assert KubeSource.in_cluster("ns/name", tmp_path).server == "https://10.0.0.1:443"
