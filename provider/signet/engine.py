"""resolve → discover → verify → cache, for each key, under a deadline.

The engine is the one place that combines the registry (I/O) with verification (pure). It never
turns an error into an admission: a key either gets a report (deterministic facts, cached) or a
transient failure (never cached), and a key still running at the deadline is a transient failure.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from .cache import ExpiringCache, SingleFlight
from .cosign import MAX_PAYLOAD_SIZE, SignatureManifest, parse_signature_manifest, signature_tag
from .metrics import Metrics
from .reasons import DeterministicFailure, Reason, TransientFailure
from .reference import InvalidReference, Reference, parse
from .registry import RegistryClient
from .report import Report
from .trust import TrustConfig
from .verify import ClassicEvidence, failure_report, verify

__all__ = ["Engine", "EngineSettings", "Outcome"]

decision_log = logging.getLogger("signet.decision")
log = logging.getLogger("signet.engine")

Outcome = Report | TransientFailure
T = TypeVar("T")


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
    max_concurrency: int = 32
    pin_mode: Literal["digest", "tag-digest"] = "digest"


class Engine:
    def __init__(
        self,
        trust: Callable[[], TrustConfig],
        registry: RegistryClient,
        metrics: Metrics,
        settings: EngineSettings | None = None,
    ) -> None:
        self._trust = trust
        self._registry = registry
        self._metrics = metrics
        self.settings = settings or EngineSettings()
        self._digests: ExpiringCache[str, str | DeterministicFailure] = ExpiringCache(
            self.settings.cache_size
        )
        self._verdicts: ExpiringCache[tuple[str, str, str, str], Report] = ExpiringCache(
            self.settings.cache_size
        )
        self._resolving: SingleFlight[str, str | DeterministicFailure] = SingleFlight()
        self._verifying: SingleFlight[tuple[str, str, str, str], Report] = SingleFlight()
        self._limit = asyncio.Semaphore(self.settings.max_concurrency)

    # -- validation -------------------------------------------------------------------------

    async def check_many(self, keys: Sequence[str]) -> list[Outcome]:
        """One outcome per key, in order; whatever is unfinished at the deadline is transient."""
        tasks = [asyncio.ensure_future(self.check(key)) for key in keys]
        if not tasks:
            return []
        _, pending = await asyncio.wait(tasks, timeout=self.settings.deadline)
        for task in pending:
            task.cancel()
        outcomes: list[Outcome] = []
        for key, task in zip(keys, tasks, strict=True):
            if task in pending:
                failure = TransientFailure(
                    Reason.DEADLINE_EXCEEDED,
                    f"{key}: no answer within {self.settings.deadline}s",
                )
                self._log(key, failure, 1000 * self.settings.deadline, cached=False)
                outcomes.append(failure)
            else:
                outcomes.append(task.result())
        return outcomes

    async def check(self, key: str) -> Outcome:
        """The report for one image reference, or the transient failure that prevented it."""
        started = time.perf_counter()
        outcome: Outcome
        cached = False
        try:
            outcome, cached = await self._check(key)
        except TransientFailure as failure:
            outcome = failure
        except DeterministicFailure as failure:
            outcome = failure_report(key, None, failure)
        except Exception as exc:  # a bug must deny (uncached), not crash the request
            log.exception("unexpected error while checking %s", key)
            outcome = TransientFailure(Reason.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")
        self._log(key, outcome, 1000 * (time.perf_counter() - started), cached)
        return outcome

    async def _check(self, key: str) -> tuple[Report, bool]:
        """The report, and whether it came from the verdict cache."""
        try:
            ref = parse(key)
        except InvalidReference as exc:
            failure = DeterministicFailure(Reason.INVALID_REFERENCE, str(exc))
            return failure_report(key, None, failure), False
        digest = await self.resolve(ref)
        trust = self._trust()
        verdict_key = (ref.registry, ref.repository, digest, trust.fingerprint)
        cached = self._verdicts.get(verdict_key)
        self._metrics.cache.labels("verdict", "hit" if cached else "miss").inc()
        if cached is None:
            cached = await self._verifying.run(
                verdict_key, lambda: self._bounded(self._evaluate(key, ref, digest, trust))
            )
            hit = False
        else:
            hit = True
        return (cached if cached.image == key else dataclasses.replace(cached, image=key)), hit

    async def resolve(self, ref: Reference) -> str:
        """Tag → digest, cached briefly; a digest reference is its own answer."""
        if ref.digest is not None:
            return ref.digest
        key = str(ref)
        cached = self._digests.get(key)
        self._metrics.cache.labels("digest", "hit" if cached else "miss").inc()
        if cached is None:
            cached = await self._resolving.run(key, lambda: self._bounded(self._resolve(ref)))
        if isinstance(cached, DeterministicFailure):
            raise cached
        return cached

    async def _resolve(self, ref: Reference) -> str | DeterministicFailure:
        answer: str | DeterministicFailure
        try:
            answer = await self._registry.resolve(ref)
        except DeterministicFailure as failure:
            answer = failure
        lifetime = self.settings.tag_ttl if isinstance(answer, str) else self.settings.failed_ttl
        self._digests.put(str(ref), answer, lifetime)
        return answer

    async def _evaluate(self, key: str, ref: Reference, digest: str, trust: TrustConfig) -> Report:
        self._metrics.verifications.inc()
        try:
            evidence = await self._discover(ref, digest)
        except DeterministicFailure as failure:
            report = failure_report(key, digest, failure)
        else:
            report = verify(key, digest, evidence, trust)
        lifetime = self.settings.failed_ttl if report.failures else self.settings.verified_ttl
        self._verdicts.put(
            (ref.registry, ref.repository, digest, trust.fingerprint), report, lifetime
        )
        return report

    async def _discover(self, ref: Reference, digest: str) -> ClassicEvidence | None:
        """Fetch the `.sig` manifest for `digest` and each distinct payload it lists."""
        manifest = await self._registry.manifest(ref, signature_tag(digest))
        if manifest is None:
            return None
        parsed: SignatureManifest = parse_signature_manifest(manifest.raw)

        async def fetch(layer_digest: str) -> bytes | DeterministicFailure:
            try:
                return await self._registry.blob(ref, layer_digest, max_bytes=MAX_PAYLOAD_SIZE)
            except DeterministicFailure as failure:
                return failure

        distinct = list(dict.fromkeys(layer.digest for layer in parsed.layers))
        payloads = await asyncio.gather(*(fetch(d) for d in distinct))
        return ClassicEvidence(parsed, dict(zip(distinct, payloads, strict=True)))

    async def _bounded(self, work: Coroutine[Any, Any, T]) -> T:
        async with self._limit:
            try:
                return await asyncio.wait_for(work, self.settings.flight_deadline)
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
        digest = await asyncio.wait_for(self.resolve(ref), self.settings.deadline)
        if ref.tag is not None and self.settings.pin_mode == "digest":
            return f"{key[: -len(ref.tag) - 1]}@{digest}"
        return f"{key}@{digest}"

    # -- observability ------------------------------------------------------------------------

    def _log(self, key: str, outcome: Outcome, duration_ms: float, cached: bool) -> None:
        if isinstance(outcome, Report):
            reasons = [str(r) for r in outcome.reasons]
            self._metrics.decisions.labels(reasons[0] if reasons else "OK").inc()
            record: dict[str, object] = {
                "key": key,
                "digest": outcome.digest,
                "verified": list(outcome.verified),
                "reasons": reasons,
            }
        else:
            self._metrics.decisions.labels(str(outcome.reason)).inc()
            record = {
                "key": key,
                "digest": None,
                "verified": [],
                "reasons": [str(outcome.reason)],
                "error": outcome.message,
            }
        record |= {"duration_ms": round(duration_ms, 2), "cached": cached}
        decision_log.info(json.dumps(record, separators=(",", ":")))
