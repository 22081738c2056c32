"""Fixtures that start real components on 127.0.0.1 (torn down after the session)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.referrers_registry import run_referrers_registry
from tests.support.registry import Registry, run_registry


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "integration: uses real components (docker-registry, cosign, signet serve)"
    )


# What the end-to-end tests took, printed after the run.
_E2E = {"tests": 0.0, "setup": 0.0, "seconds": 0.0}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if not report.nodeid.startswith("tests/e2e/"):
        return
    if report.when == "setup":
        _E2E["tests"] += 1
        _E2E["setup"] = max(_E2E["setup"], report.duration)  # the one that started the cluster
    _E2E["seconds"] += report.duration


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _E2E["tests"]:
        terminalreporter.write_line(
            f"e2e: {_E2E['tests']:.0f} tests in {_E2E['seconds']:.1f} s, of which "
            f"{_E2E['setup']:.1f} s starting etcd, kube-apiserver, Gatekeeper and the provider"
        )


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with run_registry(tmp_path_factory.mktemp("registry")) as running:
        yield running


@pytest.fixture(scope="session")
def referrers_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry with the OCI 1.1 referrers API (in memory: content lasts for the session)."""
    with run_referrers_registry(tmp_path_factory.mktemp("referrers-registry")) as running:
        yield running
