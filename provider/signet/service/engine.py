"""resolve → discover → judge → cache, for each key, under a deadline.

The engine is the one place that combines the registry (I/O) with verification (pure). It never
turns an error into an admission: a key either gets a report (deterministic facts, cached) or a
transient failure (never cached), and a key still running at the deadline is a transient failure.

Work is bounded where an attacker could make it grow: calls per registry host (the registry
client's slots), flights in progress (`flights`), signature checks per image (`formats.judge`),
and the CPU-heavy steps run on workers, cheapest first (`workers`), never on the event loop.

With a shared cache (`shared`), a local verdict miss first asks the other replicas' store, and
every verdict reached here is shared; the store can only save work, never admit (see there).

With a last-known-good store (`last_good`), a digest whose registry is down is answered from the
verdict this replica last reached for it under the same trust, marked stale and never cached:
the policy decides whether that admits (see there).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from signet.formats.discover import Discovery, discover
from signet.formats.judge import Evidence, estimated_checks, judge
from signet.formats.verdict import failure_report
from signet.model.reference import InvalidReference, Reference, parse
from signet.model.report import Report, Stale
from signet.observe.metrics import Metrics
from signet.oci.client import RegistryClient
from signet.oci.referrers import Referrers
from signet.reasons import DeterministicFailure, Reason, Refusal, TransientFailure
from signet.service.cache import ExpiringCache
from signet.service.decisions import Answer, Decisions, Outcome
from signet.service.flights import SingleFlight
from signet.service.last_good import OUTAGE_REASONS, LastKnownGood
from signet.service.workers import CpuPool
from signet.trust.lifecycle import rfc3339
from signet.trust.model import TrustConfig

if TYPE_CHECKING:
    from signet.alerts import Alerts
    from signet.audit.writer import DecisionLog
    from signet.service.shared import SharedVerdicts

__all__ = ["EXPRESS_BELOW", "Answer", "Engine", "EngineSettings", "Outcome"]

log = logging.getLogger("signet.engine")

T = TypeVar("T")

# Estimated cost units for the CPU queue (microseconds): one signature check.
_CHECK_COST = 1000
# Work this cheap (an ordinary image: a few checks) has a worker of its own (see workers).
EXPRESS_BELOW = 32 * _CHECK_COST


@dataclass(frozen=True, slots=True)
class EngineSettings:
    # A whole request's budget; keep it below the Provider's timeout (Gatekeeper's webhook: 3 s).
    deadline: float = 2.5
    # A flight (one image's resolution or verification) may outlive the request that began it,
    # so the next request finds the answer cached; this bounds it.
    flight_deadline: float = 10.0
    verified_ttl: float = 600.0
    failed_ttl: float = 30.0
    tag_ttl: float = 15.0
    cache_size: int = 10_000
    # /mutate's budget; keep it below the mutation Provider's timeout (Gatekeeper's chart: 1 s),
    # so that Gatekeeper gets an error in time rather than a late answer.
    mutate_deadline: float = 0.8
    # Flights (resolutions, verifications) in progress at once, across all registries.
    max_flights: int = 4096
    # Blobs (payloads, bundles) of one image fetched at once.
    payload_concurrency: int = 4
    pin_mode: Literal["digest", "tag-digest"] = "digest"


class Engine:
    def __init__(
        self,
        trust: Callable[[], TrustConfig],
        registry: RegistryClient,
        metrics: Metrics,
        settings: EngineSettings | None = None,
        cpu: CpuPool | None = None,
        referrers: Referrers | None = None,
        shared: SharedVerdicts | None = None,
        last_good: LastKnownGood | None = None,
        audit: DecisionLog | None = None,
        alerts: Alerts | None = None,
    ) -> None:
        self._trust = trust
        self._last_good = last_good  # this replica's verdicts, answered stale during an outage
        self._shared = shared  # the verdicts of the other replicas, when they share them
        self._registry = registry
        self._metrics = metrics
        self.settings = settings or EngineSettings()
        self._cpu = cpu or CpuPool()
        self._discovery = Discovery(
            registry,
            referrers or Referrers(registry),
            self._cpu,
            self.settings.payload_concurrency,
        )
        self._digests: ExpiringCache[str, str | Refusal] = ExpiringCache(self.settings.cache_size)
        self._verdicts: ExpiringCache[tuple[str, str, str, str], Report] = ExpiringCache(
            self.settings.cache_size
        )
        self._resolving: SingleFlight[str, str | Refusal] = SingleFlight(self.settings.max_flights)
        self._verifying: SingleFlight[tuple[str, str, str, str], Report] = SingleFlight(
            self.settings.max_flights
        )
        self._answers: ExpiringCache[tuple[str, str], Answer] = ExpiringCache(
            self.settings.cache_size
        )
        self._checks_per_host: dict[str, int] = {}
        # Checks running, by (key, trust fingerprint): what a request for the same key joins.
        self._answering: dict[tuple[str, str], asyncio.Future[Outcome]] = {}
        # Signature checks queued or running, by verdict key (see _check_signatures).
        self._checking: dict[tuple[str, str, str, str], asyncio.Future[Report]] = {}
        cache = metrics.cache
        self._answer_hit, self._answer_miss = (
            cache.labels("answer", "hit"),
            cache.labels("answer", "miss"),
        )
        self._verdict_hit, self._verdict_miss = (
            cache.labels("verdict", "hit"),
            cache.labels("verdict", "miss"),
        )
        self._digest_hit, self._digest_miss = (
            cache.labels("digest", "hit"),
            cache.labels("digest", "miss"),
        )
        self._decisions = Decisions(metrics, audit, alerts)

    # -- validation -------------------------------------------------------------------------

    def flush_log(self) -> None:
        """Write the decision lines not written yet (they go at the end of a loop's turn)."""
        self._decisions.flush()

    async def check_many(self, keys: Sequence[str]) -> list[Outcome]:
        """One outcome per key, in order; whatever is unfinished at the deadline is transient.

        Keys answered recently are served from the answer cache without starting a task: the
        warm path is a dictionary lookup per key and pre-encoded JSON.
        """
        started = time.perf_counter()
        trust = self._trust()  # one config for the whole request, even across a reload
        outcomes: list[Outcome | None] = []
        misses: dict[int, asyncio.Future[Outcome]] = {}
        for index, key in enumerate(keys):
            answer: Outcome | None = self._answers.get((key, trust.fingerprint))
            if answer is None:
                refused = self._refused_at_once(key)
                if refused is not None and self._last_good is not None:
                    misses[index] = asyncio.ensure_future(self._stale_or(key, trust, refused))
                else:
                    answer = refused
            outcomes.append(answer)
            if answer is None and index not in misses:
                misses[index] = self._start_check(key, trust)
        if len(misses) < len(keys):
            self._answer_hit.inc(len(keys) - len(misses))
        if misses:
            self._answer_miss.inc(len(misses))
        if misses:
            # With a last-known-good store, its lookup for a key still running gets the end.
            spare = 0.0 if self._last_good is None else self._last_good.settings.lookup_timeout
            _, pending = await asyncio.wait(
                misses.values(), timeout=max(0.0, self.settings.deadline - spare)
            )
            late: dict[int, asyncio.Future[Outcome]] = {}
            for index, task in misses.items():
                if task in pending:
                    task.cancel()
                    late[index] = asyncio.ensure_future(
                        self._stale_or(
                            keys[index],
                            trust,
                            TransientFailure(
                                Reason.DEADLINE_EXCEEDED,
                                f"no answer within the {self.settings.deadline}s deadline",
                            ),
                        )
                    )
                else:
                    outcomes[index] = task.result()
            for index, outcome in zip(late, await asyncio.gather(*late.values()), strict=True):
                outcomes[index] = outcome
        done = [outcome for outcome in outcomes if outcome is not None]
        elapsed = 1000 * (time.perf_counter() - started)
        self._decisions.record(keys, done, misses.keys(), elapsed, trust.fingerprint)
        return done

    def _refused_at_once(self, key: str) -> TransientFailure | None:
        """A key whose registry has no room for more work is refused without starting any: a
        request naming a thousand images on a slow registry costs little. Room is what the
        registry client lets run and wait per host; checks already started count against it."""
        try:
            host = parse(key).api_host
        except InvalidReference:
            return None
        started = self._checks_per_host.get(host, 0)
        if started < self._registry.capacity:
            return None
        return TransientFailure(
            Reason.REGISTRY_TIMEOUT,
            f"{host} is answering slowly: {started} checks of its images are still running",
        )

    def _start_check(self, key: str, trust: TrustConfig) -> asyncio.Future[Outcome]:
        """The key's check: the one already running for it under this trust, or a new one.

        A burst of requests for one new image then builds one answer, not one per request.
        Each request waits on its own shield, so its deadline ends its wait, not the check:
        the others keep waiting, and the answer still reaches the cache."""
        running = self._answering.get((key, trust.fingerprint))
        if running is None:
            running = asyncio.ensure_future(self._check_one(key, trust))
            self._answering[key, trust.fingerprint] = running
            running.add_done_callback(lambda _: self._answering.pop((key, trust.fingerprint)))
            try:
                host: str | None = parse(key).api_host
            except InvalidReference:
                host = None
            if host is not None:
                self._checks_per_host[host] = self._checks_per_host.get(host, 0) + 1
                running.add_done_callback(lambda _: self._check_done(host))
        return asyncio.shield(running)

    def _check_done(self, host: str) -> None:
        left = self._checks_per_host[host] - 1
        if left:
            self._checks_per_host[host] = left
        else:
            del self._checks_per_host[host]

    async def _check_one(self, key: str, trust: TrustConfig) -> Outcome:
        try:
            report, lifetime = await self._check(key, trust)
        except TransientFailure as failure:
            # A value from here on: no traceback, so nothing it passed through is kept alive.
            transient = TransientFailure(failure.reason, failure.message)
        except Exception as exc:  # a bug must deny (uncached), not crash the request
            log.exception("unexpected error while checking %s", key)
            return TransientFailure(Reason.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")
        else:
            answer = Answer.of(key, report)
            self._answers.put((key, trust.fingerprint), answer, lifetime)
            return answer
        return await self._stale_or(key, trust, transient)

    async def _stale_or(self, key: str, trust: TrustConfig, failure: TransientFailure) -> Outcome:
        """During an outage, the verdict this replica last reached for the digest under the
        same trust, marked stale (see last_good; never cached here); else the failure."""
        if self._last_good is None or failure.reason not in OUTAGE_REASONS:
            return failure
        try:
            ref = parse(key)
        except InvalidReference:
            return failure
        if ref.digest is None:  # a tag is never answered from earlier data: it may have moved
            return failure
        found = await self._last_good.lookup(
            (ref.registry, ref.repository, ref.digest, trust.fingerprint)
        )
        if found is None:
            return failure
        when = rfc3339(datetime.fromtimestamp(found.verified_at, UTC))
        stale = Stale(when, failure.reason, failure.message)
        return Answer.of(key, dataclasses.replace(found.report, image=key, stale=stale))

    async def _check(self, key: str, trust: TrustConfig) -> tuple[Report, float]:
        """The report, and how long an answer built on it may be reused."""
        try:
            ref = parse(key)
        except InvalidReference as exc:
            failure = DeterministicFailure(Reason.INVALID_REFERENCE, str(exc))
            return failure_report(key, None, failure), self.settings.failed_ttl
        try:
            digest = await self.resolve(ref)
        except DeterministicFailure as failure:
            return failure_report(key, None, failure), self.settings.failed_ttl
        verdict_key = (ref.registry, ref.repository, digest, trust.fingerprint)
        report = self._verdicts.get(verdict_key)
        if report is None:
            self._verdict_miss.inc()
            report = await self._verifying.run(
                verdict_key, lambda: self._timed(self._evaluate(key, ref, digest, trust))
            )
        else:
            self._verdict_hit.inc()
        lifetime = self._lifetime(report)
        if ref.digest is None:
            lifetime = min(lifetime, self.settings.tag_ttl)
        return (report if report.image == key else dataclasses.replace(report, image=key)), lifetime

    async def resolve(self, ref: Reference) -> str:
        """Tag → digest, cached briefly; a digest reference is its own answer."""
        if ref.digest is not None:
            return ref.digest
        key = str(ref)
        cached = self._digests.get(key)
        (self._digest_miss if cached is None else self._digest_hit).inc()
        if cached is None:
            cached = await self._resolving.run(key, lambda: self._timed(self._resolve(ref)))
        if isinstance(cached, Refusal):
            raise cached.error()
        return cached

    async def _resolve(self, ref: Reference) -> str | Refusal:
        answer: str | Refusal
        try:
            answer = await self._registry.resolve(ref)
        except DeterministicFailure as failure:
            answer = Refusal.of(failure)
        lifetime = self.settings.tag_ttl if isinstance(answer, str) else self.settings.failed_ttl
        self._digests.put(str(ref), answer, lifetime)
        return answer

    async def _evaluate(self, key: str, ref: Reference, digest: str, trust: TrustConfig) -> Report:
        verdict_key = (ref.registry, ref.repository, digest, trust.fingerprint)
        checking = self._checking.get(verdict_key)
        if checking is None and self._shared is not None:  # another replica's verdict?
            found = await self._shared.lookup(verdict_key)
            if found is not None:
                report, lifetime = found
                # No answer built on it may outlive it (a key window may close meanwhile).
                report = dataclasses.replace(report, valid_until=time.time() + lifetime)
                self._verdicts.put(verdict_key, report, min(lifetime, self._lifetime(report)))
                return report
        if checking is None:  # nothing queued for these signatures yet: fetch them
            self._metrics.verifications.inc()
            try:
                evidence = await discover(self._discovery, ref, digest, trust.evidence)
            except DeterministicFailure as failure:
                report = failure_report(key, digest, failure)
                self._remember(verdict_key, report)
                return report
            checking = self._check_signatures(verdict_key, key, digest, evidence, trust)
        return await asyncio.shield(checking)

    def _check_signatures(
        self,
        verdict_key: tuple[str, str, str, str],
        key: str,
        digest: str,
        evidence: Evidence,
        trust: TrustConfig,
    ) -> asyncio.Future[Report]:
        """Queue the checks once per image. They outlive the flight that fetched the evidence
        (its deadline may pass while they wait for a worker), and their verdict is cached when
        they end, so evidence fetched is never fetched again just because checking it waited:
        a flight that starts meanwhile awaits these checks instead."""
        checking = asyncio.ensure_future(
            self._cpu.run(
                estimated_checks(evidence, trust) * _CHECK_COST,
                judge,
                key,
                digest,
                evidence,
                trust,
            )
        )
        self._checking[verdict_key] = checking

        def landed(done: asyncio.Future[Report]) -> None:
            if self._checking.get(verdict_key) is done:
                del self._checking[verdict_key]
            if not done.cancelled() and done.exception() is None:
                self._remember(verdict_key, done.result())

        checking.add_done_callback(landed)
        return checking

    def _remember(self, verdict_key: tuple[str, str, str, str], report: Report) -> None:
        """A verdict reached here: cached, and shared with the other replicas."""
        lifetime = self._lifetime(report)
        self._verdicts.put(verdict_key, report, lifetime)
        if self._shared is not None:
            self._shared.share(verdict_key, report, lifetime)
        if self._last_good is not None:
            self._last_good.remember(verdict_key, report)
        for failure in report.failures:
            if failure.reason.lifecycle and failure.attestor is not None:
                self._metrics.lifecycle_refusals.labels(failure.attestor, failure.reason).inc()

    def _lifetime(self, report: Report) -> float:
        """How long a verdict may be reused: never past the instant a key's validity window,
        judged at the time of verification, opens or closes (`Report.valid_until`)."""
        lifetime = self.settings.failed_ttl if report.failures else self.settings.verified_ttl
        if report.valid_until is not None:
            lifetime = min(lifetime, report.valid_until - time.time())
        return lifetime

    async def _timed(self, work: Coroutine[Any, Any, T]) -> T:
        try:
            async with asyncio.timeout(self.settings.flight_deadline):
                return await work
        except TimeoutError as exc:
            raise TransientFailure(
                Reason.DEADLINE_EXCEEDED,
                f"gave up after {self.settings.flight_deadline}s",
            ) from exc

    # -- mutation ---------------------------------------------------------------------------

    async def pin(self, key: str) -> str:
        """The digest-pinned form of `key`, as written plus `@sha256:…`; a pinned key is itself."""
        try:
            ref = parse(key)
        except InvalidReference as exc:
            raise DeterministicFailure(Reason.INVALID_REFERENCE, str(exc)) from exc
        if ref.digest is not None:
            return key
        try:
            digest = await asyncio.wait_for(self.resolve(ref), self.settings.mutate_deadline)
        except TimeoutError as exc:
            raise TransientFailure(
                Reason.DEADLINE_EXCEEDED,
                f"no digest for {key} within /mutate's {self.settings.mutate_deadline}s deadline",
            ) from exc
        if ref.tag is not None and self.settings.pin_mode == "digest":
            return f"{key[: -len(ref.tag) - 1]}@{digest}"
        return f"{key}@{digest}"
