"""Name resolution as a pod does it (the system's resolv.conf), against a name server that never
answers an attacker's domain: a healthy registry's image is still verified at once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.netns import network_namespace

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_a_stalling_name_server_does_not_hold_up_a_healthy_registry(tmp_path: Path) -> None:
    with network_namespace("nameserver 127.0.0.1\n") as namespace:
        result = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                namespace,
                sys.executable,
                "-m",
                "tests.support.dns_scenario",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            timeout=180,
            cwd=ROOT,
            check=False,
        )
    assert result.returncode == 0, result.stdout + result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    response = outcome["response"]
    assert response["systemError"] == "", response["systemError"]
    (item,) = response["items"]
    assert item["value"]["verified"] == ["dev-team"]
    assert outcome["took"] < 1.0, f"the healthy image took {outcome['took']:.2f}s"
