"""The coverage-guided fuzzer, bounded: every target for a few thousand inputs, from the seeds.
(`make fuzz` runs each for a minute.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.fuzz import harness

ROOT = Path(__file__).resolve().parents[2]


def test_every_target_survives_a_bounded_fuzzing_run(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.fuzz.run",
            "--all",
            "--runs",
            "3000",
            "--artifacts",
            str(tmp_path / "artifacts"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    crashes = (
        sorted(p.name for p in (tmp_path / "artifacts").glob("*") if p.name != "signer.json")
        if result.returncode
        else []
    )
    assert result.returncode == 0, (
        f"crashes: {crashes}\n{result.stdout[-4000:]}{result.stderr[-4000:]}"
    )
    assert result.stderr.count("Done 3000 runs") == len(harness.TARGETS), result.stderr[-2000:]
