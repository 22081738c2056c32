"""Last known good: verdicts kept on disk and answered stale, and only stale, during an outage."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
from datetime import datetime
from pathlib import Path

import pytest

from signet.model.report import Failure, Report, SignatureFact, Stale
from signet.observe.metrics import Metrics
from signet.oci.client import Limits
from signet.reasons import Reason
from signet.service import runtime
from signet.service.engine import Answer, EngineSettings, Outcome
from signet.service.last_good import LastKnownGood, LastKnownGoodSettings
from signet.trust.model import TrustConfig
from tests.unit.fakes import HOST, FakeRegistry, new_key, stall, status, trust_for

pytestmark = pytest.mark.anyio

IMAGE = f"{HOST}/team/app"
KEY = ("registry.example", "team/app", "sha256:" + "a" * 64, "fingerprint-1")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def verified(digest: str = KEY[2]) -> Report:
    signature = SignatureFact("team", "key-0", "cosign-classic", "ecdsa-p256-sha256")
    return Report(f"x@{digest}", digest, ("team",), (signature,))


async def check(
    trust: TrustConfig,
    fake: FakeRegistry,
    store: Path | None,
    key: str,
    *,
    deadline: float = 0.5,
    flight_deadline: float = 10.0,
) -> Outcome:
    """One check by a freshly started provider (so nothing is cached in memory)."""
    parts = runtime.build(
        lambda: trust,
        settings=EngineSettings(deadline=deadline, flight_deadline=flight_deadline),
        limits=Limits(request_timeout=0.2),
        transport=fake.transport(),
        last_good=None if store is None else LastKnownGoodSettings(store),
    )
    try:
        (outcome,) = await parts.engine.check_many([key])
        return outcome
    finally:
        await parts.aclose()


async def test_a_digest_verified_before_a_restart_is_answered_stale_while_its_registry_is_down(
    tmp_path: Path,
) -> None:
    fake, key = FakeRegistry(), new_key()
    digest = fake.signed_image("team/app", "v1", key)
    trust, store, pinned = trust_for(key), tmp_path / "last-good.db", f"{IMAGE}@{digest}"
    fresh = await check(trust, fake, store, pinned)
    assert isinstance(fresh, Answer) and fresh.report.stale is None

    fake.faults["/v2/"] = status(503)
    before = time.time()
    outcome = await check(trust, fake, store, pinned)

    assert isinstance(outcome, Answer), outcome
    assert outcome.report.verified == ("team-0",)
    stale = outcome.report.stale
    assert stale is not None and stale.reason == Reason.REGISTRY_UNAVAILABLE
    assert "503" in stale.detail
    assert time.time() - 5 < _epoch(stale.verified_at) <= before
    value = json.loads(outcome.item)["value"]
    assert value["stale"] == stale.to_json()
    assert Report.from_json(value).stale == stale
    # Without the store, the same outage is what it always was: a transient failure.
    assert not isinstance(await check(trust, fake, None, pinned), Answer)


async def test_a_stalled_registry_is_answered_stale_within_the_deadline(tmp_path: Path) -> None:
    fake, key = FakeRegistry(), new_key()
    digest = fake.signed_image("team/app", "v1", key)
    trust, store, pinned = trust_for(key), tmp_path / "last-good.db", f"{IMAGE}@{digest}"
    await check(trust, fake, store, pinned)
    fake.faults["/v2/"] = stall(5)

    started = time.monotonic()
    outcome = await check(trust, fake, store, pinned, deadline=0.6, flight_deadline=3)

    assert time.monotonic() - started < 1.0
    assert isinstance(outcome, Answer), outcome
    assert outcome.report.stale is not None
    assert outcome.report.stale.reason in (Reason.DEADLINE_EXCEEDED, Reason.REGISTRY_TIMEOUT)


async def test_a_tag_an_edited_trust_or_an_unverified_digest_is_never_answered_stale(
    tmp_path: Path,
) -> None:
    fake, key = FakeRegistry(), new_key()
    digest = fake.signed_image("team/app", "v1", key)
    unsigned = fake.push_image("team/app", "plain", "plain")
    trust, store = trust_for(key), tmp_path / "last-good.db"
    for reference in (f"{IMAGE}:v1", f"{IMAGE}@{digest}", f"{IMAGE}@{unsigned}"):
        assert isinstance(await check(trust, fake, store, reference), Answer)
    fake.faults["/v2/"] = status(503)

    assert not isinstance(await check(trust, fake, store, f"{IMAGE}:v1"), Answer)
    assert not isinstance(await check(trust, fake, store, f"{IMAGE}@{unsigned}"), Answer)
    edited = trust_for(key, new_key())  # another config: another fingerprint
    assert edited.fingerprint != trust.fingerprint
    assert not isinstance(await check(edited, fake, store, f"{IMAGE}@{digest}"), Answer)
    assert isinstance(await check(trust, fake, store, f"{IMAGE}@{digest}"), Answer)


async def test_an_auth_failure_is_not_an_outage(tmp_path: Path) -> None:
    fake, key = FakeRegistry(), new_key()
    digest = fake.signed_image("team/app", "v1", key)
    trust, store, pinned = trust_for(key), tmp_path / "last-good.db", f"{IMAGE}@{digest}"
    await check(trust, fake, store, pinned)
    fake.faults["/v2/"] = status(401)  # no challenge: credentials the registry refuses
    assert not isinstance(await check(trust, fake, store, pinned), Answer)


# -- the store itself ------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def store_at(
    path: Path,
    clock: Clock,
    *,
    max_age: float = 86_400.0,
    max_entries: int = 100_000,
    lookup_timeout: float = 0.2,
) -> LastKnownGood:
    settings = LastKnownGoodSettings(path, max_age, max_entries, lookup_timeout)
    return LastKnownGood(settings, Metrics(), clock=clock)


async def settled(store: LastKnownGood) -> None:
    store._thread.submit(lambda: None).result()  # the writes queued before have run


async def test_a_verdict_is_usable_up_to_max_age_inclusive(tmp_path: Path) -> None:
    clock = Clock()
    store = store_at(tmp_path / "db", clock, max_age=60)
    store.remember(KEY, verified())
    await settled(store)
    clock.now += 60
    found = await store.lookup(KEY)
    assert found is not None and found.verified_at == clock.now - 60
    clock.now += 0.001
    assert await store.lookup(KEY) is None
    store.close()


async def test_a_verdict_is_not_used_from_its_valid_until_on(tmp_path: Path) -> None:
    clock = Clock()
    store = store_at(tmp_path / "db", clock)
    report = dataclasses.replace(verified(), valid_until=clock.now + 10)
    store.remember(KEY, report)
    await settled(store)
    clock.now += 9.999
    assert await store.lookup(KEY) is not None
    clock.now += 0.001
    assert await store.lookup(KEY) is None
    store.close()


async def test_failures_and_stale_answers_are_not_stored(tmp_path: Path) -> None:
    clock = Clock()
    store = store_at(tmp_path / "db", clock)
    failed = Report("x", KEY[2], failures=(Failure("team", Reason.NO_SIGNATURE, "sign it"),))
    store.remember(KEY, failed)
    stale = Stale("2026-01-01T00:00:00Z", Reason.REGISTRY_UNAVAILABLE, "down")
    store.remember((*KEY[:3], "other"), dataclasses.replace(verified(), stale=stale))
    await settled(store)
    assert await store.lookup(KEY) is None
    assert await store.lookup((*KEY[:3], "other")) is None
    store.close()


async def test_the_store_survives_a_restart_and_keeps_at_most_max_entries(tmp_path: Path) -> None:
    clock, path = Clock(), tmp_path / "db"
    store = store_at(path, clock, max_entries=10)
    keys = [(KEY[0], KEY[1], "sha256:" + f"{n:064x}", KEY[3]) for n in range(300)]
    for key in keys:
        clock.now += 1
        store.remember(key, verified(key[2]))
        await settled(store)
    store.close()

    again = store_at(path, clock, max_entries=10)
    assert await again.lookup(keys[-1]) is not None
    assert await again.lookup(keys[0]) is None  # pruned: the oldest go first
    with sqlite3.connect(path) as db:
        (count,) = db.execute("SELECT count(*) FROM verdicts").fetchone()
    assert 10 <= count <= 10 + 256 and count < len(keys)
    again.close()


async def test_an_unreadable_store_is_moved_aside_and_a_new_one_started(tmp_path: Path) -> None:
    path = tmp_path / "db"
    path.write_bytes(b"not a database, " * 512)
    clock = Clock()
    store = store_at(path, clock)
    store.remember(KEY, verified())
    await settled(store)
    assert await store.lookup(KEY) is not None
    assert (tmp_path / f"db.corrupt-{int(clock.now)}").read_bytes().startswith(b"not a database")
    store.close()


async def test_a_store_that_does_not_answer_in_time_is_a_miss(tmp_path: Path) -> None:
    clock = Clock()
    store = store_at(tmp_path / "db", clock, lookup_timeout=0.05)
    store.remember(KEY, verified())
    await settled(store)
    store._thread.submit(time.sleep, 0.5)  # the store's thread is stuck (a slow disk)
    started = time.monotonic()
    assert await store.lookup(KEY) is None
    assert time.monotonic() - started < 0.3
    store.close()


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()
