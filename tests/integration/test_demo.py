"""`make run` as a user runs it (its script, which `make run` calls after installing the tools)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_shows_a_cosign_v3_default_signature_verified() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py")],
        env={**os.environ, "SIGNET_DEMO_ONCE": "1"},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    out = result.stdout
    assert re.search(r"/demo/app:signed: verified by dev-team \(sigstore-bundle\)", out), out
    assert re.search(r"/demo/app:classic: verified by dev-team \(cosign-classic\)", out), out
    assert re.search(r"/demo/app:unsigned: REJECTED: NO_SIGNATURE -> sign ", out), out
    assert "no answer:" in out  # without a client certificate
