"""The shared verdicts (service.shared) against a real redis-server: sharing, the cross-replica
single flight, forged values, and a store that is dead, hung or full."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from signet.model.report import Failure, Report, SignatureFact
from signet.observe.metrics import Metrics
from signet.reasons import Reason
from signet.service.shared import SharedCacheSettings, SharedVerdicts
from signet.service.shared.envelope import Secret, VerdictKey, names, seal
from signet.service.shared.store import RedisStore
from tests.support.procs import free_port
from tests.support.redis import RedisServer, run_redis

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

SECRET = Secret(b"the replicas' shared secret, 32+ bytes")
PASSWORD = "store-password"
_serial = itertools.count()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with run_redis(tmp_path_factory.mktemp("redis"), password=PASSWORD) as running:
        yield running


def new_key() -> VerdictKey:
    return ("127.0.0.1:5000", "team/app", f"sha256:{next(_serial):064x}", "fingerprint")


def verified(key: VerdictKey) -> Report:
    return Report(
        f"{key[0]}/{key[1]}@{key[2]}",
        key[2],
        ("dev-team",),
        (SignatureFact("dev-team", "dev-1", "cosign-classic", "ecdsa-p256-sha256"),),
    )


def denied(key: VerdictKey) -> Report:
    failure = Failure("dev-team", Reason.NO_SIGNATURE, "sign it")
    return Report(f"{key[0]}/{key[1]}@{key[2]}", key[2], failures=(failure,))


class Replica:
    """One replica's shared verdicts, with its own metrics."""

    def __init__(self, settings: SharedCacheSettings) -> None:
        self.metrics = Metrics()
        self.shared = SharedVerdicts(RedisStore(settings), settings, self.metrics)

    def lookups(self, result: str) -> float:
        labels = {"cache": "shared", "result": result}
        return self.metrics.registry.get_sample_value("signet_cache_lookups_total", labels) or 0.0

    def errors(self, operation: str) -> float:
        labels = {"operation": operation}
        value = self.metrics.registry.get_sample_value("signet_shared_cache_errors_total", labels)
        return value or 0.0


@contextlib.asynccontextmanager
async def replicas(url: str, count: int = 2, **settings: float) -> AsyncIterator[list[Replica]]:
    # A second per call unless a test is about timeouts: the default 0.1 s is a production
    # choice (a slow store costs a verification, not an admission), and a busy CI machine has
    # taken longer than that to connect, authenticate and ping.
    settings.setdefault("timeout", 1.0)
    config = SharedCacheSettings(url, SECRET, PASSWORD, **settings)  # type: ignore[arg-type]
    started = [Replica(config) for _ in range(count)]
    try:
        for replica in started:
            await replica.shared.start()
        yield started
    finally:
        for replica in started:
            await replica.shared.aclose()


async def test_a_verdict_one_replica_shares_is_found_by_another(server: RedisServer) -> None:
    key = new_key()
    async with replicas(server.url) as (a, b):
        assert await a.shared.lookup(key) is None
        a.shared.share(key, verified(key), 60)
        await a.shared.aclose()  # the write is done
        found = await b.shared.lookup(key)
    assert found is not None
    report, lifetime = found
    assert report == verified(key)
    assert 59 < lifetime <= 60
    assert (a.lookups("miss"), b.lookups("hit")) == (1, 1)
    assert 59_000 < server.client().pttl(names(SECRET, key)[0]) <= 60_000  # the same lifetime


async def test_a_replica_waits_for_the_one_verifying_the_image(server: RedisServer) -> None:
    key = new_key()
    async with replicas(server.url) as (a, b):
        assert await a.shared.lookup(key) is None  # a claims the image, and verifies it
        started = time.monotonic()
        waiting = asyncio.ensure_future(b.shared.lookup(key))
        await asyncio.sleep(0.15)
        assert not waiting.done()
        a.shared.share(key, denied(key), 30)
        found = await waiting
        waited = time.monotonic() - started
    assert found is not None and found[0] == denied(key)
    assert 0.15 <= waited < 0.3  # polled: found within a poll of the write
    assert b.lookups("hit") == 1


async def test_a_claim_is_waited_for_at_most_the_wait(server: RedisServer) -> None:
    key = new_key()
    async with replicas(server.url) as (a, b):
        assert await a.shared.lookup(key) is None  # claimed, and never answered
        started = time.monotonic()
        assert await b.shared.lookup(key) is None
        waited = time.monotonic() - started
    assert 0.5 <= waited < 0.65
    assert b.lookups("miss") == 1


async def test_a_claim_that_expires_ends_the_wait(server: RedisServer) -> None:
    key = new_key()
    async with replicas(server.url, claim_ttl=0.5, wait=0.45) as (a, b):
        assert await a.shared.lookup(key) is None  # claimed for 0.5 s, and never answered
        await asyncio.sleep(0.3)
        started = time.monotonic()
        assert await b.shared.lookup(key) is None
        waited = time.monotonic() - started
    assert waited < 0.35  # the claim went after 0.2 s: no use waiting for all of the 0.45 s


def forged(kind: str, key: VerdictKey, genuine_elsewhere: bytes) -> bytes:
    report = verified(key)  # the lie: "verified", as valid JSON
    payload = json.dumps(
        {"key": list(key), "expires": int((time.time() + 60) * 1000), "report": report.to_json()}
    ).encode()
    if kind == "a bare report":
        return json.dumps(report.to_json()).encode()
    if kind == "no mac":
        return b"signet-verdict-v1." + payload
    if kind == "a zero mac":
        return b"signet-verdict-v1." + b"0" * 64 + b"." + payload
    if kind == "another secret's mac":
        return seal(Secret(b"another installation's secret!!!"), key, report, time.time() + 60)
    if kind == "another image's genuine verdict":
        return genuine_elsewhere
    if kind == "an expired genuine verdict":
        return seal(SECRET, key, report, time.time() - 1)
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind",
    [
        "a bare report",
        "no mac",
        "a zero mac",
        "another secret's mac",
        "another image's genuine verdict",
        "an expired genuine verdict",
    ],
)
async def test_a_forged_verdict_is_ignored(server: RedisServer, kind: str) -> None:
    key, elsewhere = new_key(), new_key()
    genuine = seal(SECRET, elsewhere, verified(elsewhere), time.time() + 60)
    server.client().set(names(SECRET, key)[0], forged(kind, key, genuine), px=60_000)
    async with replicas(server.url, count=1) as (replica,):
        assert await replica.shared.lookup(key) is None  # so the replica verifies it itself
    assert (replica.lookups("invalid"), replica.lookups("hit")) == (1, 0)


async def test_a_dead_store_costs_one_quick_failure_per_backoff(tmp_path: Path) -> None:
    key = new_key()
    async with replicas(f"redis://127.0.0.1:{free_port()}/0", count=1) as (replica,):
        assert replica.errors("ping") == 1  # start-up went on regardless
        # within the backoff, the store is not asked at all
        for _ in range(3):
            started = time.monotonic()
            assert await replica.shared.lookup(key) is None
            assert time.monotonic() - started < 0.01
        replica.shared.share(key, verified(key), 60)  # not attempted either
    assert replica.lookups("error") == 3
    assert (replica.errors("get"), replica.errors("claim"), replica.errors("put")) == (0, 0, 0)


async def test_a_hung_store_costs_at_most_the_timeout_then_is_left_alone(
    server: RedisServer,
) -> None:
    key = new_key()
    async with replicas(server.url, count=1, backoff=0.5, timeout=0.1) as (replica,):
        server.pause()
        try:
            started = time.monotonic()
            assert await replica.shared.lookup(key) is None
            first = time.monotonic() - started
            started = time.monotonic()
            assert await replica.shared.lookup(key) is None
            second = time.monotonic() - started
        finally:
            server.resume()
        assert 0.1 <= first < 0.2  # the timeout, once
        assert second < 0.01  # then not asked
        assert (replica.lookups("error"), replica.errors("get")) == (2, 1)
        await asyncio.sleep(0.5)  # the backoff passes: asked again, and it answers
        assert await replica.shared.lookup(key) is None
        assert replica.lookups("miss") == 1


async def test_a_full_store_is_a_failure_like_any_other(server: RedisServer) -> None:
    key = new_key()
    admin = server.client()
    async with replicas(server.url, count=1, backoff=0.2) as (replica,):
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", "1")  # every write is refused: OOM
        try:
            assert await replica.shared.lookup(key) is None  # the claim fails
            assert replica.errors("claim") == 1
        finally:
            admin.config_set("maxmemory", "0")
        await asyncio.sleep(0.2)
        assert await replica.shared.lookup(key) is None  # answers again: a miss, claimed
    assert (replica.lookups("error"), replica.lookups("miss")) == (1, 1)
