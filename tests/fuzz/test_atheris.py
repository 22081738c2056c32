"""The coverage-guided fuzzer, bounded: every target for a few thousand inputs, from the seeds.
(`make fuzz` runs each for a minute.)"""

from __future__ import annotations

import re
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
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # one stream, in order: each target's lines follow its name
        text=True,
        timeout=600,
        check=False,
    )
    crashes = (
        sorted(p.name for p in (tmp_path / "artifacts").glob("*") if p.name != "signer.json")
        if result.returncode
        else []
    )
    assert result.returncode == 0, f"crashes: {crashes}\n{result.stdout[-8000:]}"
    # Each target ran its runs to the end (libFuzzer's "Done N runs"), named in the output.
    sections = re.split(r"^fuzz (\w+): -runs=3000$", result.stdout, flags=re.M)
    finished = {
        name: re.search(r"^Done \d+ runs", body, re.M) is not None
        for name, body in zip(sections[1::2], sections[2::2], strict=True)
    }
    unfinished = sorted(set(harness.TARGETS) - {n for n, done in finished.items() if done})
    assert unfinished == [], "\n".join(
        [f"unfinished: {unfinished}"]
        + [sections[2 * i + 2][-3000:] for i, n in enumerate(sections[1::2]) if n in unfinished]
    )
