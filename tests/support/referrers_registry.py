"""A registry with the OCI 1.1 referrers API: go-containerregistry's in-memory registry (v0.22.1),
served on 127.0.0.1 by tools/referrers-registry, built by `make tools` into .tools/.

It keeps nothing on disk: a restart loses every blob and manifest."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

from .procs import free_port, stop, wait_for_http
from .registry import Registry

ROOT = Path(__file__).resolve().parents[2]
BINARY = ROOT / ".tools" / "referrers-registry-v0.22.1" / "referrers-registry"


@contextlib.contextmanager
def run_referrers_registry(directory: Path) -> Iterator[Registry]:
    """Start the registry on a free port; its log goes to `directory`/referrers-registry.log."""
    if not BINARY.exists():
        raise RuntimeError(f"{BINARY} is not built: run `make tools`")
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = directory / "referrers-registry.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(BINARY), "-addr", f"127.0.0.1:{port}"], stdout=out, stderr=subprocess.STDOUT
        )
        try:
            wait_for_http(f"http://127.0.0.1:{port}/v2/", ok=(200,))
            yield Registry(f"127.0.0.1:{port}", f"http://127.0.0.1:{port}", log)
        except BaseException:
            print(log.read_text())
            raise
        finally:
            stop(process)
