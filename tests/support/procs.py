"""Small process helpers for tests that start real components on 127.0.0.1."""

from __future__ import annotations

import random
import socket
import subprocess
import time
from collections.abc import Sequence

import httpx

# Below Linux's ephemeral range (32768-60999): a port bound to 0 and released comes from that
# range, so any outgoing connection (kubectl, cosign, the processes starting up) could take it as
# its source port before the component meant to listen on it binds it, as a Gatekeeper once found.
_LISTEN_PORTS = range(20000, 32768)
_handed_out: set[int] = set()


def free_port() -> int:
    """A port on 127.0.0.1 that nothing is bound to and that this process has not handed out."""
    for _ in range(200):
        port = random.choice(_LISTEN_PORTS)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port in {_LISTEN_PORTS}")


def wait_for_http(
    url: str, timeout: float = 20.0, ok: tuple[int, ...] = (200, 401), *, verify: bool = True
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1, verify=verify).status_code in ok:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate, and kill if it does not exit within 10 s."""
    stop_all([process])


def stop_all(processes: Sequence[subprocess.Popen[bytes]], grace: float = 10.0) -> None:
    """Terminate them all at once, in the order given, and kill what has not exited `grace`
    seconds later: one wait for all, not one each (a kube-apiserver signalled while it starts
    can take 20 s to exit; after its etcd, three such waits outlast a Ctrl-C's patience)."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + grace
    for process in processes:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
