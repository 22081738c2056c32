"""An edit of the trust config is loaded when it happens (inotify), not at the next poll."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from signet.crypto.keyfile import generate, public_pem
from signet.trust.notify import FolderWatch
from signet.trust.store import TrustStore
from tests.integration.test_trust_reload import project

pytestmark = pytest.mark.anyio

POLL = 30.0  # far longer than any test waits: only a notification can explain a reload


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def config_naming(key_file: Path) -> str:
    return f"version: 1\nattestors:\n  - name: team\n    keys:\n      - file: {key_file}\n"


def new_key_file(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(public_pem(generate("p256")))
    return path


async def reloaded_within(store: TrustStore, seconds: float) -> float:
    """How long the store took to hold a config other than the one it holds now."""
    before, started = store.current().fingerprint, time.monotonic()
    while store.current().fingerprint == before:
        assert time.monotonic() - started < seconds, "the edit was not loaded"
        await asyncio.sleep(0.01)
    return time.monotonic() - started


async def test_an_edited_config_file_is_loaded_at_once(tmp_path: Path) -> None:
    config = tmp_path / "trust" / "config.yaml"
    config.parent.mkdir()
    config.write_text(config_naming(new_key_file(tmp_path / "keys" / "a.pub")))
    store = TrustStore(config)
    watching = asyncio.create_task(store.watch(POLL))
    try:
        await asyncio.sleep(0.1)  # the watch is in place
        config.write_text(config_naming(new_key_file(tmp_path / "keys" / "b.pub")))
        await reloaded_within(store, 1.0)
        # The key file, in another folder, is watched too.
        new_key_file(tmp_path / "keys" / "b.pub")
        await reloaded_within(store, 1.0)
    finally:
        watching.cancel()


async def test_a_kubelet_volume_swap_is_loaded_at_once(tmp_path: Path) -> None:
    """A ConfigMap volume as the kubelet updates it: the `..data` link swapped atomically."""
    volume = tmp_path / "volume"
    keys = tmp_path / "keys"
    project(volume, {"config.yaml": config_naming(new_key_file(keys / "a.pub")).encode()}, 1)
    store = TrustStore(volume)
    watching = asyncio.create_task(store.watch(POLL))
    try:
        await asyncio.sleep(0.1)
        project(volume, {"config.yaml": config_naming(new_key_file(keys / "b.pub")).encode()}, 2)
        await reloaded_within(store, 1.0)
    finally:
        watching.cancel()


async def test_without_an_event_the_wait_ends_at_the_poll_interval(tmp_path: Path) -> None:
    with FolderWatch() as folders:
        folders.watch([tmp_path])
        assert folders.active
        started = time.monotonic()
        assert await folders.wait(0.2) is False
        assert 0.15 < time.monotonic() - started < 1.0
        (tmp_path / "x").write_text("x")
        assert await folders.wait(5) is True


async def test_a_folder_that_cannot_be_watched_is_left_to_the_poll(tmp_path: Path) -> None:
    with FolderWatch() as folders:
        folders.watch([tmp_path / "missing"])
        assert not folders.active
        assert await folders.wait(0.05) is False
