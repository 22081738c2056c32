"""The benchmark's Go tools (Ratify, vegeta): built by their install script, found in the cache."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def go_tool(script: Path) -> Path:
    """The binary `script` installs (bench/install-go-tool.sh reuses a cached build in ~10 ms).

    The script reports progress on stderr (left to the terminal) and the binary's path on the
    last line of stdout."""
    result = subprocess.run(["bash", str(script)], stdout=subprocess.PIPE, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{script} failed with exit code {result.returncode}")
    built = Path(result.stdout.strip().splitlines()[-1])
    if not (built.is_file() and os.access(built, os.X_OK)):
        raise RuntimeError(f"{script} did not produce {built}")
    return built
