"""Prometheus metrics, on a registry of their own (so tests and several apps never collide)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from signet import __version__

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "signet_requests",
            "HTTP requests answered, by endpoint and outcome",
            ["endpoint", "outcome"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "signet_request_duration_seconds",
            "Time to answer one HTTP request, by endpoint",
            ["endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.decisions = Counter(
            "signet_decisions",
            "Per-image outcomes, by reason (OK when every attestor verified)",
            ["reason"],
            registry=self.registry,
        )
        self.cache = Counter(
            "signet_cache_lookups",
            "Cache lookups, by cache and result",
            ["cache", "result"],
            registry=self.registry,
        )
        self.registry_calls = Counter(
            "signet_registry_requests",
            "HTTP requests to registries, by host and code: the HTTP status, or timeout and "
            "connection_error when none came",
            ["host", "code"],
            registry=self.registry,
        )
        self.registry_seconds = Histogram(
            "signet_registry_request_duration_seconds",
            "Time from sending a registry request to its response headers, by host",
            ["host"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry_breaker_state = Gauge(
            "signet_registry_breaker_state",
            "Each registry host's circuit breaker: 0 closed, 1 open (calls fail at once), "
            "2 half-open (one probe call goes through)",
            ["host"],
            registry=self.registry,
        )
        self.registry_breaker_rejections = Counter(
            "signet_registry_breaker_rejections",
            "Registry calls refused at once because the host's circuit breaker was open, by host",
            ["host"],
            registry=self.registry,
        )
        self.registry_budget = Counter(
            "signet_registry_budget",
            "Registry calls that found Signet's own budget for the host spent, by host and "
            "result: waited (for a token, briefly) or refused (failed at once, transient)",
            ["host", "result"],
            registry=self.registry,
        )
        self.trust_reloads = Counter(
            "signet_trust_reloads",
            "Trust-config reloads, by result",
            ["result"],
            registry=self.registry,
        )
        self.lifecycle_refusals = Counter(
            "signet_lifecycle_refusals",
            "Verifications in which an attestor's valid signatures were all refused by the "
            "trust config's revocations or validity windows, by attestor and reason "
            "(KEY_REVOKED, KEY_EXPIRED, KEY_NOT_YET_VALID)",
            ["attestor", "reason"],
            registry=self.registry,
        )
        self.verifications = Counter(
            "signet_verifications",
            "Signature evaluations actually run (cache misses)",
            registry=self.registry,
        )
        self.last_known_good_writes = Counter(
            "signet_last_known_good_writes",
            "Verdicts written to the last-known-good store, by result (stored, dropped when "
            "its queue was full, error)",
            ["result"],
            registry=self.registry,
        )
        self.decision_log_records = Gauge(
            "signet_decision_log_records",
            "Decision-log records since the provider started, by result: written, dropped "
            "(its queue was full; admission goes on), error (a write failed)",
            ["result"],
            registry=self.registry,
        )
        self.alerts = Gauge(
            "signet_alerts",
            "Alert deliveries since the provider started, by result: sent, failed (a POST that "
            "failed; retried), dropped (the queue was full); and firing, the alerts firing now",
            ["result"],
            registry=self.registry,
        )
        self.shared_errors = Counter(
            "signet_shared_cache_errors",
            "Calls to the shared verdict cache's store that failed or timed out, by operation "
            "(each makes the replica leave the store alone for a few seconds)",
            ["operation"],
            registry=self.registry,
        )

        self.build_info = Gauge(
            "signet_build_info",
            "Always 1; the version in a label",
            ["version"],
            registry=self.registry,
        )
        self.build_info.labels(__version__).set(1)
        self.trust_config = Gauge(
            "signet_trust_config_info",
            "Always 1 for the trust config in use; its fingerprint in a label",
            ["fingerprint"],
            registry=self.registry,
        )
        self._fingerprint: str | None = None
        self.trust_loaded = Gauge(
            "signet_trust_last_load_success_timestamp_seconds",
            "When the trust config in use was loaded (Unix time)",
            registry=self.registry,
        )
        self.serving_certificate_expiry = Gauge(
            "signet_serving_certificate_expiry_timestamp_seconds",
            "When the certificate Signet serves Gatekeeper with expires (Unix time)",
            registry=self.registry,
        )

    def trust_in_use(self, fingerprint: str) -> None:
        """The trust config now in use (at start, and after each successful reload)."""
        if self._fingerprint is not None:
            self.trust_config.remove(self._fingerprint)
        self._fingerprint = fingerprint
        self.trust_config.labels(fingerprint).set(1)
        self.trust_loaded.set_to_current_time()

    def watch_decision_log(self, stats: Callable[[], Any]) -> None:
        """Read the decision log's counters (`LogStats`) at each scrape."""

        def reading(field: str) -> Callable[[], float]:
            return lambda: float(getattr(stats(), field))

        for result, field in (("written", "written"), ("dropped", "dropped")):
            self.decision_log_records.labels(result).set_function(reading(field))
        self.decision_log_records.labels("error").set_function(reading("write_errors"))

    def watch_alerts(self, alerts: Any) -> None:
        """Read the alerts' counters (`signet.alerts.Alerts`) at each scrape."""

        def reading(result: str) -> Callable[[], float]:
            return lambda: float(getattr(alerts, result))

        for result in ("sent", "failed", "dropped"):
            self.alerts.labels(result).set_function(reading(result))
        self.alerts.labels("firing").set_function(lambda: float(len(alerts.firing)))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
