"""The engine: verdicts, deadlines, single-flight and caching, against the fake registry."""

from __future__ import annotations

import asyncio

import pytest

from signet.engine import Answer, Engine, EngineSettings, Outcome
from signet.metrics import Metrics
from signet.reasons import DeterministicFailure, Reason, TransientFailure
from signet.registry import Limits, RegistryClient
from signet.report import Report
from signet.trust import TrustConfig
from tests.unit.fakes import HOST, FakeRegistry, new_key, stall, status, trust_for

pytestmark = pytest.mark.anyio

IMAGE = f"{HOST}/team/app"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Setup:
    def __init__(self, trust: TrustConfig, fake: FakeRegistry, **settings: object) -> None:
        self.trust = trust
        self.fake = fake
        self.metrics = Metrics()
        registry = RegistryClient(
            lambda: self.trust, limits=Limits(request_timeout=0.5), transport=fake.transport()
        )
        self.engine = Engine(
            lambda: self.trust,
            registry,
            self.metrics,
            EngineSettings(**{"deadline": 0.5, **settings}),  # type: ignore[arg-type]
        )

    async def report(self, key: str) -> Report:
        (outcome,) = await self.engine.check_many([key])
        assert isinstance(outcome, Answer), outcome
        return outcome.report

    def verifications(self) -> float:
        value = self.metrics.registry.get_sample_value("signet_verifications_total")
        return value or 0.0


async def test_signed_unsigned_and_copied() -> None:
    fake, key = FakeRegistry(), new_key()
    signed = fake.push_image("team/app", "signed", "a")
    fake.push_image("team/app", "unsigned", "b")
    copied = fake.push_image("team/app", "copied", "c")
    fake.sign("team/app", signed, key)
    fake.sign("team/app", copied, key, names=signed)  # a valid signature over another digest
    setup = Setup(trust_for(key), fake)

    assert (await setup.report(f"{IMAGE}:signed")).verified == ("team-0",)
    assert (await setup.report(f"{IMAGE}:unsigned")).reasons == (Reason.NO_SIGNATURE,)
    assert (await setup.report(f"{IMAGE}:copied")).reasons == (Reason.DIGEST_MISMATCH,)


async def test_the_deadline_turns_only_the_slow_key_transient() -> None:
    fake, key = FakeRegistry(), new_key()
    fast = fake.push_image("team/app", "fast", "a")
    fake.sign("team/app", fast, key)
    fake.faults["/slow/"] = stall(3)
    setup = Setup(trust_for(key), fake, deadline=0.3)

    slow_outcome, fast_outcome = await setup.engine.check_many(
        [f"{HOST}/slow/app:1", f"{IMAGE}:fast"]
    )

    assert isinstance(slow_outcome, TransientFailure)
    assert slow_outcome.reason is Reason.DEADLINE_EXCEEDED
    assert isinstance(fast_outcome, Answer) and fast_outcome.report.verified == ("team-0",)


async def test_one_verification_for_a_hundred_concurrent_requests() -> None:
    fake, key = FakeRegistry(), new_key()
    digest = fake.push_image("team/app", "new", "a")
    fake.sign("team/app", digest, key)
    setup = Setup(trust_for(key), fake, deadline=5)

    outcomes: list[list[Outcome]] = await asyncio.gather(
        *(setup.engine.check_many([f"{IMAGE}:new"]) for _ in range(100))
    )

    assert all(isinstance(o[0], Answer) and o[0].report.verified for o in outcomes)
    assert setup.verifications() == 1
    assert len(fake.requests_to(".sig")) == 1
    assert len(fake.requests_to("/manifests/new")) == 1


async def test_a_second_request_is_answered_from_the_cache() -> None:
    fake, key = FakeRegistry(), new_key()
    fake.sign("team/app", fake.push_image("team/app", "v1", "a"), key)
    setup = Setup(trust_for(key), fake)
    await setup.report(f"{IMAGE}:v1")
    calls = len(fake.seen)
    await setup.report(f"{IMAGE}:v1")
    assert len(fake.seen) == calls


async def test_a_changed_key_is_never_answered_from_the_old_verdict() -> None:
    fake, old, new = FakeRegistry(), new_key(), new_key()
    fake.sign("team/app", fake.push_image("team/app", "v1", "a"), old)
    setup = Setup(trust_for(old), fake)
    assert (await setup.report(f"{IMAGE}:v1")).verified == ("team-0",)

    setup.trust = trust_for(new)  # same attestor name, another key

    assert (await setup.report(f"{IMAGE}:v1")).verified == ()


async def test_transient_failures_are_not_cached() -> None:
    fake, key = FakeRegistry(), new_key()
    fake.sign("team/app", fake.push_image("team/app", "v1", "a"), key)
    fake.faults[".sig"] = status(503)
    setup = Setup(trust_for(key), fake)
    (first,) = await setup.engine.check_many([f"{IMAGE}:v1"])
    assert isinstance(first, TransientFailure)
    assert first.reason is Reason.REGISTRY_UNAVAILABLE

    del fake.faults[".sig"]

    assert (await setup.report(f"{IMAGE}:v1")).verified == ("team-0",)


async def test_an_unexpected_error_denies_without_caching() -> None:
    fake, key = FakeRegistry(), new_key()
    fake.sign("team/app", fake.push_image("team/app", "v1", "a"), key)
    setup = Setup(trust_for(key), fake)

    async def broken(*_: object) -> None:
        raise RuntimeError("bug")

    setup.engine._discover = broken  # type: ignore[method-assign,assignment]
    (outcome,) = await setup.engine.check_many([f"{IMAGE}:v1"])
    assert isinstance(outcome, TransientFailure)
    assert outcome.reason is Reason.INTERNAL_ERROR


@pytest.mark.parametrize(
    ("mode", "key", "expected"),
    [
        ("digest", f"{IMAGE}:v1", f"{IMAGE}@{{digest}}"),
        ("tag-digest", f"{IMAGE}:v1", f"{IMAGE}:v1@{{digest}}"),
        ("digest", f"{IMAGE}@{{digest}}", f"{IMAGE}@{{digest}}"),
        ("digest", f"{IMAGE}:v1@{{digest}}", f"{IMAGE}:v1@{{digest}}"),
    ],
)
async def test_pin(mode: str, key: str, expected: str) -> None:
    fake = FakeRegistry()
    digest = fake.push_image("team/app", "v1", "a")
    setup = Setup(trust_for(new_key()), fake, pin_mode=mode)
    pinned = await setup.engine.pin(key.format(digest=digest))
    assert pinned == expected.format(digest=digest)


async def test_pin_refuses_an_invalid_reference() -> None:
    setup = Setup(trust_for(new_key()), FakeRegistry())
    with pytest.raises(DeterministicFailure) as caught:
        await setup.engine.pin("UPPER/Case")
    assert caught.value.reason is Reason.INVALID_REFERENCE
