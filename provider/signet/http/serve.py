"""Serving over HTTPS with uvicorn: TLS 1.3 only, client certificates required by default.

Gatekeeper (>= 3.11) speaks TLS 1.3 and always presents its webhook certificate; it keeps idle
connections for 90 s, so our keep-alive is longer than that, and a connection it reuses is never
closed under it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from cryptography import x509
from starlette.applications import Starlette

from signet.alerts import Alerts, AlertSettings
from signet.audit.writer import DecisionLog
from signet.crypto.keyfile import Signer
from signet.http.app import AppSettings, ProviderApp, create_app, health_routes
from signet.http.console_server import ConsoleOptions, ConsoleServer
from signet.http.heartbeat import Heartbeat
from signet.observe.metrics import Metrics
from signet.oci.client import Limits
from signet.service import runtime
from signet.service.engine import Engine, EngineSettings
from signet.service.last_good import LastKnownGoodSettings
from signet.service.shared import SharedCacheSettings
from signet.trust.kube import ConfigMapMirror, KubeSource
from signet.trust.store import TrustStore

__all__ = ["CertificateReloader", "ServeOptions", "build", "serve", "server_ssl_context"]

log = logging.getLogger("signet.serve")

KEEP_ALIVE_SECONDS = 95
MAX_CONNECTIONS = 1024


@dataclass(frozen=True, slots=True)
class ServeOptions:
    config: Path
    host: str = "0.0.0.0"  # noqa: S104 - a service in a pod listens on all interfaces
    port: int = 8443
    cert: Path | None = None
    key: Path | None = None
    client_ca: Path | None = None
    require_client_cert: bool = True
    engine: EngineSettings = field(default_factory=EngineSettings)
    app: AppSettings | None = None
    limits: Limits = field(default_factory=Limits)
    reload_interval: float = 2.0
    # How often public keys held in a KMS (hashivault://) are read again.
    kms_refresh: float = 300.0
    # Plain-HTTP port for /healthz, /readyz and /metrics only (kubelet probes, Prometheus).
    health_port: int | None = None
    # Signature checks in a worker process, off the event loop's interpreter lock.
    cpu_processes: bool = True
    # Verdicts shared with the other replicas through Redis/Valkey (off: each caches alone).
    shared_cache: SharedCacheSettings | None = None
    # This replica's verdicts on disk, answered stale during a registry outage (off: none).
    last_good: LastKnownGoodSettings | None = None
    # Where every decision is appended, hash-chained and signed (off: the JSON log lines only).
    decision_log: DecisionLogSettings | None = None
    # The trust config's ConfigMap, watched through the Kubernetes API and mirrored into
    # `trust_mirror` (off: the files under `config` only; see trust.kube).
    trust_configmap: KubeSource | None = None
    trust_mirror: Path = Path("/var/run/signet/trust")
    # The web console on a port of its own (off: none).
    console: ConsoleOptions | None = None
    # Alerts on anomalies, to Alertmanager and/or a webhook (off: none).
    alerts: AlertSettings | None = None


@dataclass(frozen=True, slots=True)
class DecisionLogSettings:
    directory: Path
    signer: Signer
    replica: str | None = None  # default: the host name (a Pod's name)


def server_ssl_context(
    cert: Path, key: Path, client_ca: Path | None, require_client_cert: bool
) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_cert_chain(cert, key)
    if require_client_cert:
        if client_ca is None:
            raise ValueError("--client-ca is required (or pass --no-client-auth explicitly)")
        context.load_verify_locations(cafile=client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


class CertificateReloader:
    """Reloads the serving certificate into the live SSL context when its files change.

    New handshakes use the new certificate; open connections keep theirs. A cert and key that
    do not match (say, one written before the other) are refused and retried on the next change.
    """

    def __init__(self, context: ssl.SSLContext, cert: Path, key: Path) -> None:
        self._contexts, self._cert, self._key = [context], cert, key
        self._metrics: Metrics | None = None
        self._stamp = self._read()

    def serve_also(self, context: ssl.SSLContext) -> None:
        """Reload into `context` too (another listener presenting the same certificate)."""
        context.load_cert_chain(self._cert, self._key)
        self._contexts.append(context)

    def attach(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._record_expiry()

    def _record_expiry(self) -> None:
        """The certificate's notAfter as a gauge (the chart's alert reads it)."""
        if self._metrics is None:
            return
        try:
            certificate = x509.load_pem_x509_certificate(self._cert.read_bytes())
        except (OSError, ValueError):
            return
        self._metrics.serving_certificate_expiry.set(certificate.not_valid_after_utc.timestamp())

    def _read(self) -> bytes:
        try:
            return self._cert.read_bytes() + b"\0" + self._key.read_bytes()
        except OSError:
            return b""

    def reload_if_changed(self) -> bool:
        stamp = self._read()
        if not stamp or stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            for context in self._contexts:
                context.load_cert_chain(self._cert, self._key)
        except (ssl.SSLError, OSError) as exc:
            log.error("serving certificate not reloaded, keeping the previous one: %s", exc)
            return False
        log.info("serving certificate reloaded from %s", self._cert)
        self._record_expiry()
        return True

    async def watch(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self.reload_if_changed()


def build(
    options: ServeOptions,
    certificates: CertificateReloader | None = None,
    heartbeat: Heartbeat | None = None,
    console: ConsoleServer | None = None,
) -> tuple[ProviderApp, Starlette, Engine]:
    """The app, the health app and the engine; raises TrustConfigError for an invalid config
    (so a started server always holds a loaded one)."""
    heartbeat = heartbeat or Heartbeat(lambda: True)
    metrics = Metrics()
    if certificates is not None:
        certificates.attach(metrics)
    mirror = None
    if options.trust_configmap is not None:
        mirror = ConfigMapMirror(options.trust_configmap, options.trust_mirror)
        mirror.seed(options.config)  # the kubelet's copy, until the API's arrives
    alerts = None if options.alerts is None else Alerts(options.alerts)
    store = TrustStore(
        options.trust_mirror if mirror else options.config,
        metrics,
        on_reload=None if alerts is None else alerts.trust_reload,
        kms_refresh=options.kms_refresh,
    )
    log = options.decision_log
    parts = runtime.build(
        store.current,
        settings=options.engine,
        limits=options.limits,
        metrics=metrics,
        cpu_processes=options.cpu_processes,
        shared_cache=options.shared_cache,
        last_good=options.last_good,
        audit=None if log is None else DecisionLog(log.directory, log.signer, replica=log.replica),
        alerts=alerts,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        parts.cpu.start()
        parts.registry.prepare()
        if parts.shared is not None:
            await parts.shared.start()  # a store that is down does not stop the start
        if parts.alerts is not None:
            await parts.alerts.start()
        watchers = [
            asyncio.create_task(store.watch(options.reload_interval)),
            asyncio.create_task(heartbeat.run()),
        ]
        if certificates is not None:
            watchers.append(asyncio.create_task(certificates.watch(options.reload_interval)))
        if mirror is not None:
            watchers.append(asyncio.create_task(mirror.run()))
        if console is not None:
            console.start(parts.engine, store.current, store.path)
        try:
            yield
        finally:
            if console is not None:
                await asyncio.to_thread(console.stop)
            for watcher in watchers:
                watcher.cancel()
            await parts.aclose()

    app = create_app(
        parts.engine, metrics, ready=lambda: True, settings=options.app, lifespan=lifespan
    )
    probes = health_routes(metrics, heartbeat.ready, heartbeat.live)
    return app, Starlette(routes=probes), parts.engine


def serve(options: ServeOptions) -> None:
    """Run until interrupted; raises TrustConfigError or ValueError before listening."""
    if options.cert is None or options.key is None:
        raise ValueError(
            "serving needs --cert and --key: Gatekeeper only calls providers over HTTPS"
        )
    context = server_ssl_context(
        options.cert, options.key, options.client_ca, options.require_client_cert
    )
    main_server: list[uvicorn.Server] = []  # set below; the probes ask it whether it started
    heartbeat = Heartbeat(lambda: bool(main_server) and main_server[0].started)
    certificates = CertificateReloader(context, options.cert, options.key)
    console = None
    if options.console is not None:
        console_context = server_ssl_context(options.cert, options.key, None, False)
        certificates.serve_also(console_context)
        console = ConsoleServer(options.console, options.host, console_context)
    app, health, _ = build(options, certificates, heartbeat, console)
    if options.health_port is not None:
        # A second, plain listener in its own thread; the main server keeps the signal handling.
        health_server = uvicorn.Server(
            uvicorn.Config(
                health,
                host=options.host,
                port=options.health_port,
                log_config=None,
                access_log=False,
                lifespan="off",
                server_header=False,
            )
        )
        threading.Thread(target=health_server.run, name="health", daemon=True).start()
    config = uvicorn.Config(
        app,
        host=options.host,
        port=options.port,
        ssl_context_factory=lambda _config, _default: context,
        # libuv's event loop and the C HTTP/1.1 parser, named rather than "auto" so that a
        # missing one fails the start instead of silently serving at half the speed (BENCHMARKS).
        loop="uvloop",
        http="httptools",
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        # Past this many open connections uvicorn answers 503, which the policy denies.
        limit_concurrency=MAX_CONNECTIONS,
        log_config=None,
        access_log=False,
        server_header=False,
        # Gatekeeper calls directly; X-Forwarded-* from a client would only be rewritten into
        # the scope, per request, for nothing.
        proxy_headers=False,
        lifespan="on",
    )
    main_server.append(uvicorn.Server(config))
    main_server[0].run()
