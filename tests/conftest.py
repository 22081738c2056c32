"""Fixtures that start real components on 127.0.0.1 (torn down after the session)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.keyless import KeylessStack, run_keyless_stack
from tests.support.referrers_registry import run_referrers_registry
from tests.support.registry import Registry, run_registry


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "integration: uses real components (docker-registry, cosign, signet serve)"
    )
    config.addinivalue_line("markers", "node: starts a real Kubernetes node (tests/support/node/)")


@pytest.fixture
def anyio_backend() -> str:
    """asyncio for every `anyio` test: the provider runs on asyncio (uvicorn's uvloop), and
    with trio installed (Selenium brings it) anyio would otherwise run each test under both."""
    return "asyncio"


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


@pytest.fixture(scope="session")
def keyless_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeylessStack]:
    """Images the real cosign signed keyless through a private Fulcio, TSA and OIDC issuers.

    Signed once per session inside a private network namespace (root only), then served by a
    docker-registry on 127.0.0.1; see tests/support/keyless/ and `KeylessStack`.
    """
    if os.geteuid() != 0:
        pytest.fail(
            "keyless_stack needs root: it runs Fulcio and a timestamp authority in a private "
            "network namespace (unshare --net); run the tests as root"
        )
    with run_keyless_stack(tmp_path_factory.mktemp("keyless")) as stack:
        yield stack
