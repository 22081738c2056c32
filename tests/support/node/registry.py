"""A registry the node's Pods reach: Debian's docker-registry (distribution 2.8, plain HTTP) in the
node's network namespace, on the node IP (a Pod reaches it through its bridge's gateway; nothing
outside the namespace can). Test images are pushed, and signed with the real cosign, from inside
the namespace too.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from tests.support.cosign import cosign_path
from tests.support.registry import REGISTRY_BINARY

from .images import ROOT
from .netns import NODE_IP

if TYPE_CHECKING:
    from .node import Node

PORT = 5000

_PUSH = """import sys
from tests.support.images import push_image
print(push_image(sys.argv[1], sys.argv[2], sys.argv[3], seed=sys.argv[4]))
"""


@dataclass
class NodeRegistry:
    node: Node
    process: subprocess.Popen[bytes]
    log: Path
    host: str = f"{NODE_IP}:{PORT}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def push(self, repo: str, tag: str, *, seed: str) -> str:
        """A small OCI image (tests/support/images.py) pushed from inside; its digest."""
        result = self.node.run(
            sys.executable, "-c", _PUSH, self.url, repo, tag, seed, env={"PYTHONPATH": str(ROOT)}
        )
        return result.stdout.strip()

    def sign(self, version: str, key: Path, reference: str) -> None:
        """`cosign sign` (classic `.sig`, no transparency log) from inside the namespace, as
        tests/support/cosign.py `sign` does from the machine's."""
        home = key.parent / ".cosign-home"
        home.mkdir(parents=True, exist_ok=True)
        args = ["sign", "--key", str(key), "--tlog-upload=false", "--yes", "--allow-http-registry"]
        if version.startswith("v3"):
            args += ["--use-signing-config=false", "--new-bundle-format=false"]
        self.node.run(
            str(cosign_path(version)),
            *args,
            reference,
            timeout=120,
            env={
                "HOME": str(home),
                "COSIGN_PASSWORD": "",
                "TUF_ROOT": str(home / "tuf"),
                "SIGSTORE_NO_CACHE": "true",
                "COSIGN_EXPERIMENTAL": "0",
            },
        )


@contextlib.contextmanager
def run_registry(node: Node, directory: Path) -> Iterator[NodeRegistry]:
    """The registry serving on the node IP until the block ends (then stopped by its PID)."""
    binary = shutil.which("docker-registry") or REGISTRY_BINARY
    if not Path(binary).exists():
        raise RuntimeError("docker-registry is not installed: run `make tools`")
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "config.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {directory / 'data'}\n"
        f"http:\n  addr: {NODE_IP}:{PORT}\n"
    )
    log = directory / "registry.log"
    out: IO[bytes]
    with log.open("wb") as out:
        process = subprocess.Popen(
            node.namespace.argv(binary, "serve", str(config)),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=dict(os.environ),
        )
    registry = NodeRegistry(node, process, log)
    try:
        deadline = time.monotonic() + 20
        while True:
            answer = node.run(
                "curl", "-s", "-m", "2", "-o", "/dev/null", "-w", "%{http_code}",
                f"{registry.url}/v2/", check=False,
            ).stdout  # fmt: skip
            if answer == "200":
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the registry did not answer: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield registry
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
