"""Three `signet serve` replicas sharing verdicts through a real redis-server.

Each new image, sent to all three at once or one after the other, is verified about once across
them (and three times without the shared cache); an unsigned image is denied on all three; a
"verified" an attacker writes into the store is ignored; and with the store hung or gone each
replica answers correctly on its own, within the deadline.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from signet.model.reference import parse
from signet.model.report import Report, SignatureFact
from signet.service.shared.envelope import Secret, VerdictKey, names, seal, unseal
from signet.trust.config import load
from tests.support import cosign
from tests.support.cosign import KeyPair
from tests.support.images import push_image
from tests.support.provider import Provider, run_provider
from tests.support.redis import RedisServer, run_redis
from tests.support.registry import Registry

from .helpers import write_trust

pytestmark = pytest.mark.integration

SECRET = b"a secret the three replicas share, from a Secret\n"
PASSWORD = "the store's password"
DEADLINE = 2.5  # signet serve's default
REPO = "shared/app"
_serial = itertools.count()


@dataclass
class Replicas:
    providers: list[Provider]
    registry: Registry
    keys: KeyPair
    config: Path

    def push(self, *, signed: bool) -> str:
        return self.push_digest(signed=signed)[0]

    def push_digest(self, *, signed: bool) -> tuple[str, str]:
        """A new image (by tag, as a Pod names it) and its digest."""
        tag = f"image-{next(_serial)}"
        digest = push_image(self.registry.url, REPO, tag, seed=f"shared-{tag}")
        if signed:
            cosign.sign("v3.1.3", self.keys.private, f"{self.registry.host}/{REPO}@{digest}")
        return f"{self.registry.host}/{REPO}:{tag}", digest

    def ask(self, index: int, image: str) -> tuple[dict[str, Any], float]:
        """The report one replica gives for `image`, and how long it took to answer."""
        provider = self.providers[index]
        with provider.client() as client:
            return answer(client.post(f"{provider.url}/validate", content=request(image)))

    def ask_all_at_once(self, image: str) -> list[tuple[dict[str, Any], float]]:
        barrier = threading.Barrier(len(self.providers))

        def ask(provider: Provider) -> tuple[dict[str, Any], float]:
            with provider.client() as client:
                client.get(f"{provider.url}/readyz")  # connected: the requests leave together
                barrier.wait()
                return answer(client.post(f"{provider.url}/validate", content=request(image)))

        with ThreadPoolExecutor(len(self.providers)) as pool:
            return list(pool.map(ask, self.providers))

    def ask_one_after_another(self, image: str) -> list[tuple[dict[str, Any], float]]:
        return [self.ask(index, image) for index in range(len(self.providers))]

    def metric(self, name: str, **labels: str) -> float:
        """`name` summed over the three replicas."""
        total = 0.0
        for provider in self.providers:
            with provider.client() as client:
                text = client.get(f"{provider.url}/metrics").text
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    if sample.name == name and labels.items() <= sample.labels.items():
                        total += sample.value
        return total

    def verifications(self) -> float:
        return self.metric("signet_verifications_total")

    def verdict_key(self, image: str, digest: str) -> VerdictKey:
        ref = parse(image)
        return (ref.registry, ref.repository, digest, load(self.config).fingerprint)


def request(image: str) -> bytes:
    return json.dumps(
        {
            "apiVersion": "externaldata.gatekeeper.sh/v1beta1",
            "kind": "ProviderRequest",
            "request": {"keys": [image]},
        }
    ).encode()


def answer(response: Any) -> tuple[dict[str, Any], float]:
    assert response.status_code == 200
    body = response.json()["response"]
    assert body["systemError"] == "", body["systemError"]
    (item,) = body["items"]
    value: dict[str, Any] = item["value"]
    return value, response.elapsed.total_seconds()


def assert_verified(answers: list[tuple[dict[str, Any], float]]) -> None:
    for value, elapsed in answers:
        assert value["verified"] == ["dev-team"], value
        assert elapsed < DEADLINE


def assert_denied(answers: list[tuple[dict[str, Any], float]]) -> None:
    for value, elapsed in answers:
        assert value["verified"] == [], value
        assert [f["reason"] for f in value["failures"]] == ["NO_SIGNATURE"]
        assert elapsed < DEADLINE


@contextlib.contextmanager
def three_replicas(registry: Registry, work: Path, redis: RedisServer | None) -> Iterator[Replicas]:
    keys = cosign.generate_key_pair("v3.1.3", work / "keys")
    config = write_trust(work, {"dev-team": [keys.public]}, [registry.host])
    flags: dict[str, Any] = {}
    if redis is not None:
        secret, password = work / "secret", work / "password"
        secret.write_bytes(SECRET)
        password.write_text(PASSWORD + "\n")
        flags = {
            "shared_cache": redis.url,
            "shared_cache_secret": secret,
            "shared_cache_password_file": password,
        }
    with contextlib.ExitStack() as stack:
        providers = [
            stack.enter_context(run_provider(config, work / f"replica-{index}", **flags))
            for index in range(3)
        ]
        yield Replicas(providers, registry, keys, config)


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with run_redis(tmp_path_factory.mktemp("redis"), password=PASSWORD) as running:
        yield running


@pytest.fixture(scope="module")
def shared(
    registry: Registry, redis: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Replicas]:
    with three_replicas(registry, tmp_path_factory.mktemp("shared"), redis) as replicas:
        yield replicas


def test_each_new_image_is_verified_about_once_across_three_replicas(shared: Replicas) -> None:
    at_once = [shared.push(signed=True) for _ in range(4)]
    in_turn = [shared.push(signed=True) for _ in range(4)]

    before = shared.verifications()
    for image in at_once:
        assert_verified(shared.ask_all_at_once(image))
    middle = shared.verifications()
    for image in in_turn:
        assert_verified(shared.ask_one_after_another(image))
    after = shared.verifications()

    per_image = {
        "at once": (middle - before) / len(at_once),
        "in turn": (after - middle) / len(in_turn),
    }
    print(f"verifications per image across three replicas sharing verdicts: {per_image}")
    assert (after - before) / (len(at_once) + len(in_turn)) <= 1.2, per_image
    assert max(per_image.values()) <= 1.2, per_image
    assert shared.metric("signet_cache_lookups_total", cache="shared", result="hit") > 0


def test_an_unsigned_image_is_denied_on_all_three(shared: Replicas) -> None:
    images = [shared.push(signed=False) for _ in range(2)]
    before = shared.verifications()
    assert_denied(shared.ask_all_at_once(images[0]))
    assert_denied(shared.ask_one_after_another(images[1]))
    assert (shared.verifications() - before) / len(images) <= 1.2  # denials are shared too


def test_without_the_shared_cache_each_replica_verifies_each_image(
    registry: Registry, tmp_path: Path
) -> None:
    with three_replicas(registry, tmp_path, redis=None) as alone:
        images = [alone.push(signed=True) for _ in range(2)]
        before = alone.verifications()
        assert_verified(alone.ask_all_at_once(images[0]))
        assert_verified(alone.ask_one_after_another(images[1]))
        per_image = (alone.verifications() - before) / len(images)
    print(f"verifications per image across three replicas caching alone: {per_image}")
    assert per_image == 3


def forged(kind: str, key: VerdictKey, genuine_elsewhere: bytes) -> bytes:
    """What an attacker who can write to the store writes: a valid report saying "verified"."""
    image = f"{key[0]}/{key[1]}@{key[2]}"
    report = Report(
        image,
        key[2],
        ("dev-team",),
        (SignatureFact("dev-team", "dev-1", "cosign-classic", "ecdsa-p256-sha256"),),
    )
    expires = int((time.time() + 600) * 1000)
    payload = json.dumps({"key": list(key), "expires": expires, "report": report.to_json()})
    if kind == "a bare report, no mac":
        return json.dumps(report.to_json()).encode()
    if kind == "a wrong mac":
        return b"signet-verdict-v1." + b"0" * 64 + b"." + payload.encode()
    if kind == "another secret's mac":
        return seal(Secret(b"the attacker's own secret, 32+ bytes"), key, report, expires / 1000)
    if kind == "another image's genuine verdict":
        return genuine_elsewhere
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind",
    [
        "a bare report, no mac",
        "a wrong mac",
        "another secret's mac",
        "another image's genuine verdict",
    ],
)
def test_a_verdict_an_attacker_writes_into_the_store_is_ignored(
    shared: Replicas, redis: RedisServer, kind: str
) -> None:
    store, secret = redis.client(), Secret(SECRET.strip())
    # The names computed here are the replicas': a genuine verdict is where we look for it.
    signed, signed_digest = shared.push_digest(signed=True)
    assert_verified([shared.ask(0, signed)])
    signed_key = shared.verdict_key(signed, signed_digest)
    genuine = store.get(names(secret, signed_key)[0])
    assert isinstance(genuine, bytes)
    assert unseal(secret, signed_key, genuine, time.time())[0].verified == ("dev-team",)

    unsigned, digest = shared.push_digest(signed=False)
    key = shared.verdict_key(unsigned, digest)
    name = names(secret, key)[0]
    invalid = shared.metric("signet_cache_lookups_total", cache="shared", result="invalid")
    for index in range(3):
        store.set(name, forged(kind, key, genuine), px=600_000)  # before each replica asks
        assert_denied([shared.ask(index, unsigned)])
    seen = shared.metric("signet_cache_lookups_total", cache="shared", result="invalid") - invalid
    assert seen == 3  # each replica found the forgery, refused it, and verified for itself


def test_with_the_store_hung_or_gone_each_replica_answers_alone(
    shared: Replicas, redis: RedisServer
) -> None:
    known_signed, known_unsigned = shared.push(signed=True), shared.push(signed=False)
    assert_verified(shared.ask_one_after_another(known_signed))
    assert_denied(shared.ask_one_after_another(known_unsigned))

    for state in ("hung", "gone"):
        signed, unsigned = shared.push(signed=True), shared.push(signed=False)
        before = (
            shared.verifications(),
            shared.metric("signet_shared_cache_errors_total"),
            shared.metric("signet_cache_lookups_total", cache="shared", result="error"),
        )
        if state == "hung":
            redis.pause()  # connections are accepted, nothing is answered
        else:
            redis.stop()
        try:
            answers = shared.ask_all_at_once(signed) + shared.ask_one_after_another(unsigned)
        finally:
            if state == "hung":
                redis.resume()
        assert_verified(answers[:3])
        assert_denied(answers[3:])
        slowest = max(elapsed for _, elapsed in answers)
        print(f"store {state}: the slowest of six answers took {slowest:.3f}s")
        assert shared.verifications() - before[0] == 6  # each replica verified each image
        assert shared.metric("signet_shared_cache_errors_total") - before[1] == 3  # once each
        errors = shared.metric("signet_cache_lookups_total", cache="shared", result="error")
        assert errors - before[2] == 6  # and then left the store alone
        if state == "hung":
            time.sleep(5.2)  # the replicas' backoff passes: the store is asked again

    assert_verified(shared.ask_one_after_another(known_signed))  # what was known stays known
    assert_denied(shared.ask_one_after_another(known_unsigned))
