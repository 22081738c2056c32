"""The pure core does no I/O: importing it must not import an HTTP client or server."""

from __future__ import annotations

import subprocess
import sys

import pytest

PURE = [
    "reference",
    "keys",
    "keyfile",
    "cosign",
    "trust",
    "verify",
    "report",
    "reasons",
    "wire",
    "cache",
]
FORBIDDEN = ["httpx", "httpcore", "starlette", "uvicorn", "anyio"]


def imported_by(module: str) -> set[str]:
    code = (
        f"import sys, signet.{module}; "
        f"print(','.join(m for m in {FORBIDDEN!r} if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return {name for name in result.stdout.strip().split(",") if name}


@pytest.mark.parametrize("module", PURE)
def test_pure_module_imports_no_network_stack(module: str) -> None:
    assert imported_by(module) == set()


def test_the_check_can_fail() -> None:
    assert "httpx" in imported_by("registry")
