"""The pure core does no I/O: importing it must not import an HTTP client, server or async I/O stack.

Each module is imported in a fresh interpreter, so what other tests imported cannot hide an import.
"""

from __future__ import annotations

import json
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
    """The forbidden packages in sys.modules after importing `signet.<module>` alone."""
    code = (
        "import importlib, json, sys\n"
        f"importlib.import_module('signet.{module}')\n"
        f"print(json.dumps(sorted(m.split('.')[0] for m in sys.modules "
        f"if m.split('.')[0] in {FORBIDDEN!r})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout))


@pytest.mark.parametrize("module", PURE)
def test_a_pure_module_imports_no_network_stack(module: str) -> None:
    assert imported_by(module) == set()


@pytest.mark.parametrize(("module", "expected"), [("oci.client", "httpx"), ("app", "starlette")])
def test_the_check_sees_an_edge_module_import(module: str, expected: str) -> None:
    assert expected in imported_by(module)
