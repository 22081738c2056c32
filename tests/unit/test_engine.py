"""The engine: verdicts, deadlines, single-flight and caching, against the fake registry."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import traceback
from typing import Any

import anyio
import httpx
import pytest

from signet.crypto.keyfile import generate
from signet.formats.cosign_classic import manifest as cosign
from signet.model.reference import parse
from signet.model.report import Report
from signet.oci.client import Limits
from signet.reasons import DeterministicFailure, Reason, TransientFailure
from signet.service import runtime
from signet.service.engine import Answer, EngineSettings, Outcome
from signet.trust.model import EvidenceSettings, TrustConfig
from tests.unit.fakes import (
    HOST,
    FakeRegistry,
    host_of,
    new_key,
    once,
    oversized,
    serving,
    stall,
    status,
    trust_for,
)

pytestmark = pytest.mark.anyio

REPO = "team/app"
IMAGE = f"{HOST}/{REPO}"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Setup:
    """An engine over the fake registry, with a trust config a test may swap."""

    def __init__(
        self,
        trust: TrustConfig,
        fake: FakeRegistry,
        *,
        request_timeout: float = 0.3,
        others: tuple[FakeRegistry, ...] = (),
        per_host: int = 16,
        max_waiting_per_host: int = 256,
        **settings: Any,
    ) -> None:
        self.trust = trust
        self.fake = fake
        by_host = {f.host: f for f in (fake, *others)}

        async def route(request: httpx.Request) -> httpx.Response:
            return await by_host.get(host_of(request), fake).handle(request)

        self.runtime = runtime.build(
            lambda: self.trust,
            settings=EngineSettings(**{"deadline": 0.5, **settings}),
            limits=Limits(
                request_timeout=request_timeout,
                max_manifest_bytes=64 * 1024,
                per_host=per_host,
                max_waiting_per_host=max_waiting_per_host,
            ),
            transport=httpx.MockTransport(route) if others else fake.transport(),
        )
        self.metrics = self.runtime.metrics
        self.engine = self.runtime.engine

    async def outcome(self, key: str) -> Outcome:
        (outcome,) = await self.engine.check_many([key])
        return outcome

    async def report(self, key: str) -> Report:
        outcome = await self.outcome(key)
        assert isinstance(outcome, Answer), outcome
        return outcome.report

    async def transient(self, key: str) -> TransientFailure:
        outcome = await self.outcome(key)
        assert isinstance(outcome, TransientFailure), outcome
        return outcome

    def verifications(self) -> float:
        value = self.metrics.registry.get_sample_value("signet_verifications_total")
        return value or 0.0

    def signature_fetches(self) -> list[httpx.Request]:
        return [r for r in self.fake.requests_to(".sig") if r.method == "GET"]


# -- verdicts -----------------------------------------------------------------------------------


async def test_a_signed_image_is_verified() -> None:
    fake, key = FakeRegistry(), new_key()
    digest = fake.signed_image(REPO, "v1", key)
    setup = Setup(trust_for(key, new_key()), fake)

    report = await setup.report(f"{IMAGE}:v1")

    assert report.digest == digest
    assert report.image == f"{IMAGE}:v1"
    assert report.verified == ("team-0",)
    assert [(s.attestor, s.key) for s in report.signatures] == [("team-0", "key-0")]
    assert [(f.attestor, f.reason) for f in report.failures] == [
        ("team-1", Reason.NOT_SIGNED_BY_ATTESTOR)
    ]


async def test_an_unsigned_image_has_no_signature() -> None:
    fake = FakeRegistry()
    digest = fake.push_image(REPO, "v1", "a")
    setup = Setup(trust_for(new_key(), new_key()), fake)

    report = await setup.report(f"{IMAGE}:v1")

    assert report.digest == digest
    assert report.verified == ()
    assert [(f.attestor, f.reason) for f in report.failures] == [
        ("team-0", Reason.NO_SIGNATURE),
        ("team-1", Reason.NO_SIGNATURE),
    ]


async def test_a_signature_by_an_untrusted_key_does_not_count() -> None:
    fake = FakeRegistry()
    fake.signed_image(REPO, "v1", new_key())
    report = await Setup(trust_for(new_key()), fake).report(f"{IMAGE}:v1")
    assert report.verified == ()
    assert report.reasons == (Reason.NOT_SIGNED_BY_ATTESTOR,)


async def test_a_tag_moved_after_signing_is_judged_by_its_new_digest() -> None:
    fake, key = FakeRegistry(), new_key()
    signed = fake.signed_image(REPO, "v1", key, seed="old")
    moved = fake.push_image(REPO, "new", "new")
    fake.retag(REPO, "v1", moved)  # someone pushes an unsigned image over the signed tag
    setup = Setup(trust_for(key), fake)

    report = await setup.report(f"{IMAGE}:v1")

    assert report.digest == moved != signed
    assert report.verified == ()
    assert report.reasons == (Reason.NO_SIGNATURE,)
    assert (await setup.report(f"{IMAGE}@{signed}")).verified == ("team-0",)


async def test_a_tag_moved_between_checks_is_resolved_again() -> None:
    fake, key = FakeRegistry(), new_key()
    fake.signed_image(REPO, "v1", key, seed="old")
    setup = Setup(trust_for(key), fake, tag_ttl=0)  # tags are never reused from the cache
    assert (await setup.report(f"{IMAGE}:v1")).verified == ("team-0",)

    moved = fake.push_image(REPO, "new", "new")
    fake.retag(REPO, "v1", moved)

    report = await setup.report(f"{IMAGE}:v1")
    assert report.digest == moved
    assert report.verified == ()


async def test_a_signature_copied_from_another_image_is_a_digest_mismatch() -> None:
    fake, key = FakeRegistry(), new_key()
    signed = fake.signed_image(REPO, "signed", key)
    target = fake.push_image(REPO, "target", "target")
    # The attacker copies the signed image's .sig manifest (and so its payloads) verbatim.
    copied = fake.signature_manifest_of(REPO, signed)
    fake.put_manifest(REPO, cosign.signature_tag(target), copied, cosign.OCI_MANIFEST)
    setup = Setup(trust_for(key), fake)

    report = await setup.report(f"{IMAGE}:target")

    assert report.digest == target
    assert report.verified == ()
    assert report.reasons == (Reason.DIGEST_MISMATCH,)
    assert signed in report.failures[0].detail


async def test_a_signature_naming_another_digest_is_a_digest_mismatch() -> None:
    fake, key = FakeRegistry(), new_key()
    signed = fake.push_image(REPO, "signed", "a")
    other = fake.push_image(REPO, "other", "b")
    fake.sign(REPO, other, key, names=signed)  # a valid signature, over another digest
    report = await Setup(trust_for(key), fake).report(f"{IMAGE}:other")
    assert report.reasons == (Reason.DIGEST_MISMATCH,)


async def test_a_payload_that_is_not_what_its_digest_names_is_invalid() -> None:
    fake, key = FakeRegistry(), new_key()
    fake.signed_image(REPO, "v1", key)
    fake.faults["/blobs/"] = serving(b'{"critical":{}}')
    report = await Setup(trust_for(key), fake).report(f"{IMAGE}:v1")
    assert report.verified == ()
    assert Reason.SIGNATURE_INVALID in report.reasons


async def test_an_oversized_signature_manifest_is_a_limit_not_a_crash() -> None:
    fake, key = FakeRegistry(), new_key()
    fake.signed_image(REPO, "v1", key)
    fake.faults[".sig"] = oversized(10 * 1024 * 1024)
    report = await Setup(trust_for(key), fake).report(f"{IMAGE}:v1")
    assert report.verified == ()
    assert report.reasons == (Reason.LIMIT_EXCEEDED,)


async def test_a_missing_image_and_a_bad_reference_are_reports() -> None:
    setup = Setup(trust_for(new_key()), FakeRegistry())
    assert (await setup.report(f"{IMAGE}:gone")).reasons == (Reason.IMAGE_NOT_FOUND,)
    calls = len(setup.fake.seen)
    assert (await setup.report("Not A Reference")).reasons == (Reason.INVALID_REFERENCE,)
    assert len(setup.fake.seen) == calls, "an invalid reference is never sent anywhere"


async def test_an_unexpected_error_denies_without_caching() -> None:
    fake, key = FakeRegistry(), new_key()
    fake.signed_image(REPO, "v1", key)

    async def broken(_: httpx.Request) -> httpx.Response:
        raise RuntimeError("a bug somewhere below")

    fake.faults[".sig"] = broken
    setup = Setup(trust_for(key), fake)
    assert (await setup.transient(f"{IMAGE}:v1")).reason is Reason.INTERNAL_ERROR

    del fake.faults[".sig"]
    assert (await setup.report(f"{IMAGE}:v1")).verified == ("team-0",)


# -- deadlines and single-flight -----------------------------------------------------------------


async def test_the_deadline_turns_only_the_slow_key_transient() -> None:
    fake, key = FakeRegistry(), new_key()
    fake.signed_image(REPO, "fast", key)
    fake.signed_image("slow/app", "1", key)
    fake.faults["/slow/"] = stall(3)
    # The registry would wait longer than the deadline: the deadline is what must cut it off.
    setup = Setup(trust_for(key), fake, request_timeout=2, deadline=0.2)

    started = time.monotonic()
    slow, fast = await setup.engine.check_many([f"{HOST}/slow/app:1", f"{IMAGE}:fast"])

    assert time.monotonic() - started < 0.2 + 0.3
    assert isinstance(slow, TransientFailure)
    assert slow.reason is Reason.DEADLINE_EXCEEDED
    assert isinstance(fast, Answer)
    assert fast.report.verified == ("team-0",)


async def test_work_cut_off_by_the_deadline_still_reaches_the_cache() -> None:
    fake, key = FakeRegistry(), new_key()
    fake.signed_image(REPO, "v1", key)
    fake.faults[".sig"] = stall(0.2)  # slower than the deadline, faster than the flight bound
    setup = Setup(trust_for(key), fake, deadline=0.1)

    assert (await setup.transient(f"{IMAGE}:v1")).reason is Reason.DEADLINE_EXCEEDED
    await anyio.sleep(0.3)
    calls = len(fake.seen)

    assert (await setup.report(f"{IMAGE}:v1")).verified == ("team-0",)
    assert len(fake.seen) == calls
    assert setup.verifications() == 1


async def test_one_verification_for_a_hundred_concurrent_checks() -> None:
    fake, key = FakeRegistry(), new_key()
    fake.signed_image(REPO, "new", key)
    fake.faults["/v2/"] = stall(0.01)  # so that the checks really overlap
    setup = Setup(trust_for(key), fake, deadline=5)

    outcomes: list[list[Outcome]] = await asyncio.gather(
        *(setup.engine.check_many([f"{IMAGE}:new"]) for _ in range(100))
    )

    assert all(isinstance(o[0], Answer) and o[0].report.verified for o in outcomes)
    assert setup.verifications() == 1
    assert len(setup.signature_fetches()) == 1
    assert len(fake.requests_to("/manifests/new")) == 1


async def test_a_hundred_concurrent_requests_for_one_key_share_one_answer() -> None:
    fake, key = FakeRegistry(), new_key()
    fake.signed_image(REPO, "new", key)
    fake.faults["/v2/"] = stall(0.01)
    setup = Setup(trust_for(key), fake, deadline=5)

    outcomes: list[list[Outcome]] = await asyncio.gather(
        *(setup.engine.check_many([f"{IMAGE}:new"]) for _ in range(100))
    )

    first = outcomes[0][0]
    assert isinstance(first, Answer) and first.report.verified == ("team-0",)
    assert all(o[0] is first for o in outcomes), "one answer built, not one per request"


async def test_a_request_past_its_deadline_does_not_end_a_shared_check_for_the_others() -> None:
    fake, key = FakeRegistry(), new_key()
    fake.signed_image(REPO, "v1", key)
    fake.faults[".sig"] = stall(0.5)  # the check takes ~0.5 s; each request waits 0.4 s
    setup = Setup(trust_for(key), fake, deadline=0.4, request_timeout=1.0)

    async def later() -> Outcome:
        await asyncio.sleep(0.2)  # joins the first request's check, and waits until ~0.6 s
        return await setup.outcome(f"{IMAGE}:v1")

    first, second = await asyncio.gather(setup.outcome(f"{IMAGE}:v1"), later())
    assert isinstance(first, TransientFailure), first
    assert first.reason is Reason.DEADLINE_EXCEEDED
    assert isinstance(second, Answer), second
    assert second.report.verified == ("team-0",)
    assert setup.verifications() == 1


# -- caching ------------------------------------------------------------------------------------


async def test_a_second_check_makes_no_registry_call() -> None:
    fake, key = FakeRegistry(), new_key()
    digest = fake.signed_image(REPO, "v1", key)
    setup = Setup(trust_for(key), fake)
    await setup.report(f"{IMAGE}:v1")
    calls = len(fake.seen)

    assert (await setup.report(f"{IMAGE}:v1")).verified == ("team-0",)
    assert len(fake.seen) == calls
    # The same digest under another name reuses the verdict: no second verification.
    assert (await setup.report(f"{IMAGE}@{digest}")).verified == ("team-0",)
    assert len(fake.seen) == calls
    assert setup.verifications() == 1


async def test_a_verdict_is_never_reused_for_another_repository() -> None:
    fake, key = FakeRegistry(), new_key()
    digest = fake.signed_image(REPO, "v1", key)
    fake.put_manifest("team/copy", "v1", *fake.manifests[f"{REPO}:{digest}"])  # same bytes
    setup = Setup(trust_for(key), fake)
    assert (await setup.report(f"{IMAGE}@{digest}")).verified == ("team-0",)

    report = await setup.report(f"{HOST}/team/copy@{digest}")

    assert report.verified == ()
    assert report.reasons == (Reason.NO_SIGNATURE,)
    assert setup.verifications() == 2


async def test_a_deterministic_failure_is_cached_too() -> None:
    setup = Setup(trust_for(new_key()), FakeRegistry())
    await setup.report(f"{IMAGE}:gone")
    calls = len(setup.fake.seen)
    assert (await setup.report(f"{IMAGE}:gone")).reasons == (Reason.IMAGE_NOT_FOUND,)
    assert len(setup.fake.seen) == calls


async def test_a_changed_key_is_never_answered_from_the_old_verdict() -> None:
    fake, old, new = FakeRegistry(), new_key(), new_key()
    digest = fake.signed_image(REPO, "v1", old)
    setup = Setup(trust_for(old), fake)
    assert (await setup.report(f"{IMAGE}:v1")).verified == ("team-0",)
    assert (await setup.report(f"{IMAGE}@{digest}")).verified == ("team-0",)

    setup.trust = trust_for(new)  # same attestor name, another key

    assert (await setup.report(f"{IMAGE}:v1")).verified == ()
    assert (await setup.report(f"{IMAGE}@{digest}")).verified == ()
    assert setup.verifications() == 2

    setup.trust = trust_for(old)
    assert (await setup.report(f"{IMAGE}:v1")).verified == ("team-0",)


async def test_a_transient_verification_failure_is_not_cached() -> None:
    fake, key = FakeRegistry(), new_key()
    fake.signed_image(REPO, "v1", key)
    fake.faults[".sig"] = once(status(503))
    setup = Setup(trust_for(key), fake)

    assert (await setup.transient(f"{IMAGE}:v1")).reason is Reason.REGISTRY_UNAVAILABLE
    assert (await setup.report(f"{IMAGE}:v1")).verified == ("team-0",)


async def test_a_transient_resolution_failure_is_not_cached() -> None:
    fake, key = FakeRegistry(), new_key()
    fake.signed_image(REPO, "v1", key)
    # No Retry-After: one 429 alone does not open the host's circuit breaker.
    fake.faults["/manifests/v1"] = once(status(429))
    setup = Setup(trust_for(key), fake)

    assert (await setup.transient(f"{IMAGE}:v1")).reason is Reason.REGISTRY_RATE_LIMITED
    assert (await setup.report(f"{IMAGE}:v1")).verified == ("team-0",)


# -- pinning --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "key", "expected"),
    [
        ("digest", f"{IMAGE}:v1", f"{IMAGE}@{{digest}}"),
        ("tag-digest", f"{IMAGE}:v1", f"{IMAGE}:v1@{{digest}}"),
        ("digest", f"{IMAGE}", f"{IMAGE}@{{latest}}"),
        ("digest", f"{IMAGE}@{{digest}}", f"{IMAGE}@{{digest}}"),
        ("digest", f"{IMAGE}:v1@{{digest}}", f"{IMAGE}:v1@{{digest}}"),
        ("tag-digest", f"{IMAGE}@{{digest}}", f"{IMAGE}@{{digest}}"),
    ],
)
async def test_pin(mode: str, key: str, expected: str) -> None:
    fake = FakeRegistry()
    digest = fake.push_image(REPO, "v1", "a")
    latest = fake.push_image(REPO, "latest", "b")
    setup = Setup(trust_for(new_key()), fake, pin_mode=mode)
    pinned = await setup.engine.pin(key.format(digest=digest, latest=latest))
    assert pinned == expected.format(digest=digest, latest=latest)


async def test_a_pinned_key_is_itself_without_asking_the_registry() -> None:
    fake = FakeRegistry()
    setup = Setup(trust_for(new_key()), fake)
    key = f"{IMAGE}@sha256:{'0' * 64}"
    assert await setup.engine.pin(key) == key
    assert fake.seen == []


async def test_pin_refuses_an_invalid_reference() -> None:
    setup = Setup(trust_for(new_key()), FakeRegistry())
    with pytest.raises(DeterministicFailure) as caught:
        await setup.engine.pin("UPPER/Case")
    assert caught.value.reason is Reason.INVALID_REFERENCE


async def test_pin_of_a_missing_image_is_not_found_and_a_down_registry_is_transient() -> None:
    fake = FakeRegistry()
    setup = Setup(trust_for(new_key()), fake)
    with pytest.raises(DeterministicFailure) as missing:
        await setup.engine.pin(f"{IMAGE}:gone")
    assert missing.value.reason is Reason.IMAGE_NOT_FOUND

    fake.faults["/manifests/"] = status(503)
    with pytest.raises(TransientFailure) as down:
        await setup.engine.pin(f"{IMAGE}:v2")
    assert down.value.reason is Reason.REGISTRY_UNAVAILABLE


async def test_pin_answers_within_its_own_deadline_when_the_registry_stalls() -> None:
    """Gatekeeper's mutation Provider waits 1 s and its webhook fails open by default: a late
    answer leaves the Pod unpinned, so /mutate gives up first, with an error."""
    fake = FakeRegistry()
    fake.push_image(REPO, "v1", "a")
    fake.faults["/manifests/v1"] = stall(1.0)
    setup = Setup(trust_for(new_key()), fake, request_timeout=3, deadline=2.5, mutate_deadline=0.2)

    started = time.monotonic()
    with pytest.raises(TransientFailure) as late:
        await setup.engine.pin(f"{IMAGE}:v1")
    assert time.monotonic() - started < 0.5
    assert late.value.reason is Reason.DEADLINE_EXCEEDED
    assert "/mutate's 0.2s deadline" in late.value.message


# -- bounded work under a slow or hostile registry -------------------------------------------------


async def test_a_slow_registry_slows_only_its_own_images() -> None:
    key = new_key()
    healthy, slow = FakeRegistry(), FakeRegistry(host="slow.test")
    healthy.signed_image(REPO, "v1", key)
    for i in range(200):
        slow.push_image(REPO, f"v{i}", str(i))
    slow.faults["/v2/"] = stall(1.0)  # every call to it takes a second
    setup = Setup(
        trust_for(key),
        healthy,
        others=(slow,),
        request_timeout=2,
        deadline=0.4,
        per_host=4,
        max_waiting_per_host=16,
    )

    flood = asyncio.ensure_future(
        setup.engine.check_many([f"slow.test/{REPO}:v{i}" for i in range(200)])
    )
    await asyncio.sleep(0.05)
    started = time.monotonic()
    assert (await setup.report(f"{IMAGE}:v1")).verified == ("team-0",)
    assert time.monotonic() - started < 0.3

    outcomes = await flood
    reasons = {o.reason for o in outcomes if isinstance(o, TransientFailure)}
    assert len(reasons) == 2 and len(outcomes) == 200
    assert reasons == {Reason.REGISTRY_TIMEOUT, Reason.DEADLINE_EXCEEDED}
    refused = [
        o
        for o in outcomes
        if isinstance(o, TransientFailure) and o.reason is Reason.REGISTRY_TIMEOUT
    ]
    assert len(refused) == 200 - 4 - 16, "past 4 running and 16 waiting, calls fail at once"
    await asyncio.sleep(0.05)
    assert len(slow.seen) == 4, "the queued flights were dropped when their request gave up"


async def test_a_cached_refusal_is_raised_as_a_fresh_exception_every_time() -> None:
    """A cached exception re-raised grows its traceback on every hit (2,002 frames after 1,000)
    and keeps every frame alive for the entry's life."""
    setup = Setup(trust_for(new_key()), FakeRegistry())
    ref = parse(f"{IMAGE}:gone")
    depths = []
    for _ in range(1000):
        with pytest.raises(DeterministicFailure) as caught:
            await setup.engine.resolve(ref)
        depths.append(len(traceback.extract_tb(caught.value.__traceback__)))
    assert caught.value.reason is Reason.IMAGE_NOT_FOUND
    assert max(depths) == min(depths) < 10
    assert len(setup.fake.seen) == 1, "answered from the cache"


async def test_checking_a_hundred_bogus_signatures_leaves_the_event_loop_free() -> None:
    """The checks run on a worker: the loop keeps answering while they run."""
    fake = FakeRegistry()
    digest = fake.push_image(REPO, "v1", "a")
    bogus = [generate("p521") for _ in range(2)]
    for i in range(100):  # shape-valid P-521 signatures, by keys nobody trusts
        fake.sign(REPO, digest, bogus[i % 2], names=digest)
    trusted = [generate("p521") for _ in range(2)]
    setup = Setup(trust_for(*trusted), fake, deadline=10, request_timeout=2)

    gaps: list[float] = []
    checking = asyncio.ensure_future(setup.report(f"{IMAGE}:v1"))
    last = time.monotonic()
    while not checking.done():
        await asyncio.sleep(0.005)
        now = time.monotonic()
        gaps.append(now - last)
        last = now
    report = checking.result()
    # 2 keys x 100 signatures x 2 schemes (P-521 with SHA-512, then SHA-256) is past the budget.
    assert [(f.attestor, f.reason) for f in report.failures] == [
        ("team-0", Reason.NOT_SIGNED_BY_ATTESTOR),
        ("team-1", Reason.LIMIT_EXCEEDED),
    ]
    # Relative to how long the checks took (machines differ): had they run on the loop, one gap
    # would be nearly all of it.
    took = sum(gaps)
    assert took > 0.05, "the checks took a while"
    assert max(gaps) < min(0.1, took / 2), (
        f"the loop was blocked for {max(gaps):.3f}s of {took:.3f}s"
    )


# The registry has no referrers API: asked once per host (then remembered), then the index tag.
REFERRERS = ["referrers-api", "bundle-index"]


@pytest.mark.parametrize(
    ("evidence", "requests"),
    [
        (EvidenceSettings(), ["tag", "sig-manifest", "sig-blob", "att-manifest", *REFERRERS]),
        (EvidenceSettings(attestations=False), ["tag", "sig-manifest", "sig-blob", *REFERRERS]),
        (
            EvidenceSettings(bundles=False, attestations=False),
            ["tag", "sig-manifest", "sig-blob"],
        ),
        (EvidenceSettings(classic=False), ["tag", *REFERRERS]),
    ],
)
async def test_only_the_evidence_looked_for_is_fetched(
    evidence: EvidenceSettings, requests: list[str]
) -> None:
    fake, key = FakeRegistry(), new_key()
    digest = fake.signed_image(REPO, "v1", key)
    trust = dataclasses.replace(trust_for(key), evidence=evidence)
    setup = Setup(trust, fake)
    before = len(fake.seen)

    report = await setup.report(f"{IMAGE}:v1")

    paths = [request.url.path for request in fake.seen[before:] if request.url.path != "/v2/"]
    hex_digest = digest.removeprefix("sha256:")
    names = {
        f"/v2/{REPO}/manifests/v1": "tag",
        f"/v2/{REPO}/manifests/sha256-{hex_digest}.sig": "sig-manifest",
        f"/v2/{REPO}/manifests/sha256-{hex_digest}.att": "att-manifest",
        f"/v2/{REPO}/manifests/sha256-{hex_digest}": "bundle-index",
    }
    names[f"/v2/{REPO}/referrers/{digest}"] = "referrers-api"
    seen = sorted(names.get(p, "sig-blob" if "/blobs/" in p else p) for p in paths)
    assert seen == sorted(requests), paths
    assert report.verified == (() if not evidence.classic else ("team-0",))
    assert trust.fingerprint != trust_for(key).fingerprint or evidence == EvidenceSettings()
