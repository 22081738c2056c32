"""Per-host registry budgets: bursts, a short wait for a token, then a fast transient refusal
that the registry never sees."""

from __future__ import annotations

import time

import pytest

from signet.oci.budget import Budgets, BudgetSettings
from signet.oci.client import Limits
from signet.reasons import Reason, TransientFailure
from signet.service import runtime
from signet.service.decisions import Answer
from signet.service.engine import EngineSettings
from tests.unit.fakes import HOST, FakeRegistry, new_key, trust_for

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_a_burst_then_a_short_wait_then_a_refusal() -> None:
    clock, seen = Clock(), []
    budgets = Budgets(
        BudgetSettings(rate=10, burst=3, max_wait=0.15),
        clock=clock,
        on_wait=lambda host, result: seen.append((host, result)),
    )
    for _ in range(3):
        await budgets.take("r.example")  # the burst: no wait
    assert seen == []
    started = time.monotonic()
    await budgets.take("r.example")  # one token in 0.1 s: waited for
    assert 0.08 < time.monotonic() - started < 0.5
    assert seen == [("r.example", "waited")]
    with pytest.raises(TransientFailure) as refused:
        await budgets.take("r.example")  # 0.2 s away: more than max_wait
    assert refused.value.reason is Reason.REGISTRY_RATE_LIMITED
    assert "10 calls/s, bursts of 3" in refused.value.message
    await budgets.take("other.example")  # each host has its own bucket
    clock.now += 1.0  # refilled (the refusal took no token)
    for _ in range(3):
        await budgets.take("r.example")
    assert seen[-1] == ("r.example", "refused")


async def test_off_by_default() -> None:
    budgets = Budgets(clock=Clock())
    for _ in range(10_000):
        await budgets.take("r.example")


@pytest.mark.parametrize(
    ("rate", "burst", "max_wait"), [(-1.0, 1, 0.0), (1.0, 0, 0.0), (1.0, 1, -0.1)]
)
def test_nonsense_is_refused(rate: float, burst: int, max_wait: float) -> None:
    with pytest.raises(ValueError, match="budget"):
        BudgetSettings(rate=rate, burst=burst, max_wait=max_wait)


async def test_past_the_budget_the_engine_fails_fast_and_the_registry_never_hears() -> None:
    fake, key = FakeRegistry(), new_key()
    digests = [fake.signed_image("team/app", f"v{n}", key) for n in range(3)]
    parts = runtime.build(
        lambda: trust_for(key),
        settings=EngineSettings(deadline=1.0),
        limits=Limits(budget=BudgetSettings(rate=0.5, burst=6, max_wait=0.05)),
        transport=fake.transport(),
    )
    try:
        (first,) = await parts.engine.check_many([f"{HOST}/team/app@{digests[0]}"])
        assert isinstance(first, Answer) and first.report.verified == ("team-0",)
        calls = len(fake.seen)
        started = time.monotonic()
        outcomes = await parts.engine.check_many([f"{HOST}/team/app@{d}" for d in digests[1:]])
        assert time.monotonic() - started < 0.5
        refused = [o for o in outcomes if isinstance(o, TransientFailure)]
        assert refused and all(o.reason is Reason.REGISTRY_RATE_LIMITED for o in refused)
        assert len(fake.seen) - calls <= 1  # one image takes 5 calls: 1 token was left
        budget = parts.metrics.registry.get_sample_value(
            "signet_registry_budget_total", {"host": HOST, "result": "refused"}
        )
        assert budget and budget >= 1
    finally:
        await parts.aclose()
