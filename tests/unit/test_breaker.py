"""The per-host circuit breaker: its state machine on a fake clock, and through the client."""

from __future__ import annotations

import asyncio
import email.utils
import time

import httpx
import pytest

from signet.model.reference import parse
from signet.observe.metrics import Metrics
from signet.oci.breaker import Breakers, BreakerSettings, Outage, State, retry_after
from signet.oci.client import Limits, RegistryClient
from signet.reasons import Reason, TransientFailure
from signet.trust.model import TrustConfig
from tests.unit.fakes import streamed

HOST = "registry.test"
DOWN = Outage("503 to GET /v2/")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def breakers() -> tuple[Breakers, Clock]:
    clock = Clock()
    return Breakers(BreakerSettings(failures=3, cool_down=5, max_cool_down=60), clock=clock), clock


def test_it_opens_after_n_outages_in_a_row_and_then_fails_fast() -> None:
    b, _ = breakers()
    for _ in range(2):
        assert b.admit(HOST) is False
        b.failed(HOST, False, DOWN)
    assert b.state(HOST) is State.CLOSED
    b.failed(HOST, False, DOWN)
    assert b.state(HOST) is State.OPEN
    with pytest.raises(TransientFailure) as caught:
        b.admit(HOST)
    assert caught.value.reason is Reason.REGISTRY_UNAVAILABLE
    assert HOST in caught.value.message
    assert "3 failures in a row" in caught.value.message
    assert "probed again in 5.0s" in caught.value.message


def test_a_success_resets_the_count() -> None:
    b, _ = breakers()
    b.failed(HOST, False, DOWN)
    b.failed(HOST, False, DOWN)
    b.succeeded(HOST, False)
    b.failed(HOST, False, DOWN)
    assert b.state(HOST) is State.CLOSED


def test_half_open_lets_one_probe_through_and_success_closes() -> None:
    b, clock = breakers()
    for _ in range(3):
        b.failed(HOST, False, DOWN)
    clock.now += 5
    assert b.admit(HOST) is True
    assert b.state(HOST) is State.HALF_OPEN
    with pytest.raises(TransientFailure, match="probe is in flight"):
        b.admit(HOST)
    b.succeeded(HOST, True)
    assert b.state(HOST) is State.CLOSED
    assert b.admit(HOST) is False


def test_a_failed_probe_reopens_with_doubled_back_off_up_to_the_cap() -> None:
    b, clock = breakers()
    for _ in range(3):
        b.failed(HOST, False, DOWN)
    cool = 5.0
    for expected in (10.0, 20.0, 40.0, 60.0, 60.0):
        clock.now += cool
        assert b.admit(HOST) is True
        b.failed(HOST, True, DOWN)
        clock.now += expected - 0.1
        with pytest.raises(TransientFailure):
            b.admit(HOST)
        clock.now -= expected - 0.1
        cool = expected


def test_an_abandoned_probe_passes_its_turn_on() -> None:
    b, clock = breakers()
    for _ in range(3):
        b.failed(HOST, False, DOWN)
    clock.now += 5
    assert b.admit(HOST) is True
    b.abandoned(HOST, True)
    assert b.admit(HOST) is True


def test_a_429_with_retry_after_opens_at_once_for_that_long_capped() -> None:
    b, clock = breakers()
    b.failed(HOST, False, Outage("429", Reason.REGISTRY_RATE_LIMITED, 30))
    with pytest.raises(TransientFailure) as caught:
        b.admit(HOST)
    assert caught.value.reason is Reason.REGISTRY_RATE_LIMITED
    clock.now += 29.9
    with pytest.raises(TransientFailure):
        b.admit(HOST)
    clock.now += 0.1
    assert b.admit(HOST) is True
    b2, clock2 = breakers()
    b2.failed(HOST, False, Outage("429", Reason.REGISTRY_RATE_LIMITED, 3600))
    clock2.now += 60
    assert b2.admit(HOST) is True


def test_retry_after_as_seconds_or_http_date() -> None:
    assert retry_after("7") == 7.0
    now = 1_800_000_000.0
    assert retry_after(email.utils.formatdate(now + 12, usegmt=True), now) == 12.0
    assert retry_after(email.utils.formatdate(now - 12, usegmt=True), now) == 0.0
    assert retry_after("soon") is None
    assert retry_after(None) is None


def test_hosts_are_bounded() -> None:
    b = Breakers(BreakerSettings(failures=1, max_hosts=4))
    for n in range(10):
        b.failed(f"h{n}", False, DOWN)
    assert [b.state(f"h{n}") for n in range(10)].count(State.OPEN) == 4


def test_the_breaker_can_be_turned_off() -> None:
    b = Breakers(BreakerSettings(failures=0))
    for _ in range(10):
        b.failed(HOST, False, Outage("429", Reason.REGISTRY_RATE_LIMITED, 30))
    assert b.admit(HOST) is False


# -- through the client: 404 and 401/403 are answers; a 429 opens it, recovery closes it ---------


def client(answer: list[httpx.Response], metrics: Metrics | None = None) -> RegistryClient:
    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return streamed(answer[0].status_code, answer[0].headers, b"")  # as a network sends it

    calls.clear()
    return RegistryClient(
        lambda: TrustConfig(()),
        limits=Limits(breaker=BreakerSettings(failures=3, cool_down=0.2)),
        metrics=metrics,
        transport=httpx.MockTransport(handle),
    )


calls: list[httpx.Request] = []


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


IMAGE = parse(f"{HOST}/team/app:v1")


@pytest.mark.anyio
@pytest.mark.parametrize("code", [404, 401, 403])
async def test_answers_never_open_it(code: int) -> None:
    registry = client([httpx.Response(code)])
    for _ in range(6):
        with pytest.raises(Exception):  # noqa: B017 - whichever failure; not fail-fast
            await registry.resolve(IMAGE)
    assert len(calls) >= 6


@pytest.mark.anyio
async def test_a_429_with_retry_after_fails_fast_then_recovers() -> None:
    answer = [httpx.Response(429, headers={"Retry-After": "1"})]
    metrics = Metrics()
    registry = client(answer, metrics)
    with pytest.raises(TransientFailure):
        await registry.resolve(IMAGE)
    assert len(calls) == 1
    started = time.monotonic()
    for _ in range(20):
        with pytest.raises(TransientFailure) as caught:
            await registry.resolve(IMAGE)
        assert caught.value.reason is Reason.REGISTRY_RATE_LIMITED
        assert "failing fast" in caught.value.message
    assert time.monotonic() - started < 0.1
    assert len(calls) == 1, "no call reached the registry while open"
    assert metrics.registry_breaker_state.labels(HOST)._value.get() == 1
    assert metrics.registry_breaker_rejections.labels(HOST)._value.get() == 20
    answer[0] = httpx.Response(200, headers={"Docker-Content-Digest": "sha256:" + "a" * 64})
    await asyncio.sleep(1.0)
    assert await registry.resolve(IMAGE) == "sha256:" + "a" * 64
    assert metrics.registry_breaker_state.labels(HOST)._value.get() == 0
