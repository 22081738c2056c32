"""Fixtures that start real components on 127.0.0.1 (torn down after the session)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.registry import Registry, run_registry


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "integration: uses real components (docker-registry, cosign, signet serve)"
    )


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with run_registry(tmp_path_factory.mktemp("registry")) as running:
        yield running
