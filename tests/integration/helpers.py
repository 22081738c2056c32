"""Shared pieces of the integration tests: a trust config on disk and the engine run once."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from signet.model.report import Report
from signet.oci.client import Limits
from signet.reasons import TransientFailure
from signet.service.engine import Answer, EngineSettings
from signet.service.runtime import running
from signet.trust.config import load
from signet.trust.model import TrustConfig
from tests.support.provider import Provider


def write_trust(directory: Path, attestors: dict[str, list[Path]], registries: list[str]) -> Path:
    """A trust config file naming each attestor's public key files; registries are plain HTTP."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["version: 1", "attestors:"]
    for name, keys in attestors.items():
        lines += [f"  - name: {name}", "    keys:"]
        lines += [f"      - file: {key}" for key in keys]
    lines.append("registries:")
    for host in registries:
        lines += [f"  - host: {host}", "    insecure: true"]
    path = directory / "trust.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def check(
    config: Path | TrustConfig, *images: str, deadline: float = 20.0
) -> list[Report | TransientFailure]:
    """Run the real engine, against the real registry, for `images`."""
    trust = config if isinstance(config, TrustConfig) else load(config)

    async def run() -> list[Report | TransientFailure]:
        settings = EngineSettings(deadline=deadline, flight_deadline=deadline)
        limits = Limits(request_timeout=10.0)
        async with running(lambda: trust, settings=settings, limits=limits) as runtime:
            outcomes = await runtime.engine.check_many(list(images))
            return [o.report if isinstance(o, Answer) else o for o in outcomes]

    return asyncio.run(run())


def run_signet(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "signet.cli", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COSIGN_PASSWORD": ""},
    )
    assert result.returncode == 0, result.stderr
    return result


def report_of(provider: Provider, image: str) -> dict[str, Any]:
    """The provider's report for one image over /validate; a transient failure fails the test."""
    body = {
        "apiVersion": "externaldata.gatekeeper.sh/v1beta1",
        "kind": "ProviderRequest",
        "request": {"keys": [image]},
    }
    with provider.client() as client:
        answer = client.post(f"{provider.url}/validate", json=body).json()
    assert answer["response"]["systemError"] == "", answer
    value: dict[str, Any] = answer["response"]["items"][0]["value"]
    return value


def signet_process(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`signet ARGS...` as a person runs it, in `env` (default: this process's environment)."""
    return subprocess.run(
        [sys.executable, "-m", "signet.cli", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def signet_cli(*args: str) -> tuple[int, str, str]:
    """`signet ARGS...` as a person runs it: its exit code, standard output and error."""
    result = subprocess.run(
        [sys.executable, "-m", "signet.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result.returncode, result.stdout, result.stderr
