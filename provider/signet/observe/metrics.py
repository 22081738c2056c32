"""Prometheus metrics, on a registry of their own (so tests and several apps never collide)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

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
            "signet_request_seconds",
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
            "signet_cache",
            "Cache lookups, by cache and result",
            ["cache", "result"],
            registry=self.registry,
        )
        self.registry_calls = Counter(
            "signet_registry_calls",
            "HTTP calls to registries, by host and status (or timeout, connection_error)",
            ["host", "status"],
            registry=self.registry,
        )
        self.trust_reloads = Counter(
            "signet_trust_reloads",
            "Trust-config reloads, by result",
            ["result"],
            registry=self.registry,
        )
        self.verifications = Counter(
            "signet_verifications",
            "Signature evaluations actually run (cache misses)",
            registry=self.registry,
        )

        self.serving_certificate_expiry = Gauge(
            "signet_serving_certificate_expiry_timestamp_seconds",
            "When the certificate Signet serves Gatekeeper with expires (Unix time)",
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
