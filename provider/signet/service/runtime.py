"""The composition root: the one place that wires trust, registry client, workers and engine.

`signet serve`, `signet verify`, `signet record` and the tests all build the engine here, so
there is one wiring to get right, and one place to add to when a new part arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpcore
import httpx

from signet.alerts import Alerts
from signet.audit.writer import DecisionLog
from signet.observe.metrics import Metrics
from signet.oci.client import Limits, RegistryClient
from signet.oci.dns import Resolver
from signet.service.engine import EXPRESS_BELOW, Engine, EngineSettings
from signet.service.last_good import LastKnownGood, LastKnownGoodSettings
from signet.service.shared import SharedCacheSettings, SharedVerdicts
from signet.service.workers import CpuPool
from signet.trust.model import TrustConfig

__all__ = ["Runtime", "build", "running"]


@dataclass(frozen=True, slots=True)
class Runtime:
    engine: Engine
    registry: RegistryClient
    cpu: CpuPool
    metrics: Metrics
    shared: SharedVerdicts | None = None  # started and closed by whoever serves (see serve)
    last_good: LastKnownGood | None = None
    audit: DecisionLog | None = None
    alerts: Alerts | None = None  # started by whoever serves, closed here

    async def aclose(self) -> None:
        self.engine.flush_log()
        if self.alerts is not None:
            await self.alerts.aclose()
        if self.shared is not None:
            await self.shared.aclose()
        if self.last_good is not None:
            self.last_good.close()
        await self.registry.aclose()
        self.cpu.close()
        if self.audit is not None:
            await asyncio.to_thread(self.audit.close)  # what is queued, sealed


def build(
    trust: Callable[[], TrustConfig],
    *,
    settings: EngineSettings | None = None,
    limits: Limits | None = None,
    metrics: Metrics | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    resolver: Resolver | None = None,
    network: httpcore.AsyncNetworkBackend | None = None,
    cpu_workers: int = 1,
    cpu_processes: bool = False,
    shared_cache: SharedCacheSettings | None = None,
    last_good: LastKnownGoodSettings | None = None,
    audit: DecisionLog | None = None,
    alerts: Alerts | None = None,
) -> Runtime:
    """Everything an answer needs; `transport`, `network` and `resolver` replace the network
    in tests (see RegistryClient). `cpu_processes` puts the checks in worker processes, which
    a long-running server wants (see workers). `shared_cache`: verdicts shared with the other
    replicas through Redis (see service.shared). `last_good`: this replica's verdicts on disk,
    answered stale during a registry outage (see service.last_good). `audit`: the decision log
    every decision is appended to (see signet.audit); closed with the runtime. `alerts`: what
    watches decisions and breakers for anomalies (see signet.alerts)."""
    metrics = metrics or Metrics()
    registry = RegistryClient(
        trust,
        limits=limits,
        metrics=metrics,
        transport=transport,
        resolver=resolver,
        network=network,
        on_breaker=None if alerts is None else alerts.registry_state,
    )
    cpu = CpuPool(workers=cpu_workers, processes=cpu_processes, express_below=EXPRESS_BELOW)
    shared = None
    if shared_cache is not None:
        # Imported only here: the one-shot commands never load the Redis client.
        from signet.service.shared.store import RedisStore  # noqa: PLC0415

        shared = SharedVerdicts(RedisStore(shared_cache), shared_cache, metrics)
    kept = None if last_good is None else LastKnownGood(last_good, metrics)
    engine = Engine(
        trust,
        registry,
        metrics,
        settings,
        cpu,
        shared=shared,
        last_good=kept,
        audit=audit,
        alerts=alerts,
    )
    if audit is not None:
        metrics.watch_decision_log(lambda: audit.stats)
    if alerts is not None:
        metrics.watch_alerts(alerts)
    return Runtime(engine, registry, cpu, metrics, shared, kept, audit, alerts)


@contextlib.asynccontextmanager
async def running(
    trust: Callable[[], TrustConfig],
    *,
    settings: EngineSettings | None = None,
    limits: Limits | None = None,
) -> AsyncIterator[Runtime]:
    """`build`, closed again on the way out (the CLI's one-shot commands)."""
    runtime = build(trust, settings=settings, limits=limits)
    try:
        yield runtime
    finally:
        await runtime.aclose()
