"""A private network namespace for a test: its own loopback, and its own resolv.conf.

`ip netns exec` bind-mounts /etc/netns/<name>/resolv.conf over /etc/resolv.conf for what it runs,
so a process inside resolves names exactly as it would in a pod — through the system's
configuration — but with a name server the test controls. Nothing inside reaches the machine's
own network.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def network_namespace(resolv_conf: str) -> Iterator[str]:
    """Create a namespace (loopback up) whose resolv.conf is `resolv_conf`; yield its name."""
    name = f"signet-test-{os.getpid()}"
    etc = Path("/etc/netns") / name
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    try:
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "resolv.conf").write_text(resolv_conf)
        subprocess.run(
            ["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"],
            check=True,
            capture_output=True,
        )
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)
        shutil.rmtree(etc, ignore_errors=True)
