"""The node's private network namespace, and finding (and ending) what runs in it.

The namespace is pinned by `unshare --net=<file>` (an nsfs bind mount on a file in the node's
folder; no /run/netns, no `ip netns`, whose exec also remounts /sys and would hide the cgroups
from kubelet and runc). A veth pair with both ends inside carries the node IP; the only route
besides the link's own is the Service CIDR (a ClusterIP connect would otherwise fail with
ENETUNREACH before kube-proxy's DNAT). No default route and no link out: nothing leaves it.
Processes join it with `nsenter --net`, which changes only the network namespace.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

NODE_IP = "10.200.0.1"
NODE_PREFIX = 24
SERVICE_CIDR = "10.0.0.0/24"
POD_CIDR = "10.244.0.0/24"
VETH = "signet0"  # and its peer signet0p, both inside


@dataclass(frozen=True)
class Namespace:
    pin: Path
    inode: int  # /proc/PID/ns/net of its processes reads net:[inode]

    def argv(self, *argv: str) -> list[str]:
        """`argv` run inside (nsenter execs it: the PID is the program's own)."""
        return ["nsenter", f"--net={self.pin}", *argv]

    def run(self, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            self.argv(*argv), capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} (in the node's netns): {result.stderr}")
        return result


def create(pin: Path) -> Namespace:
    pin.touch()
    subprocess.run(["unshare", f"--net={pin}", "true"], check=True, capture_output=True)
    namespace = Namespace(pin, os.stat(pin).st_ino)
    script = (
        f"ip link set lo up\n"
        f"ip link add {VETH} type veth peer name {VETH}p\n"
        f"ip addr add {NODE_IP}/{NODE_PREFIX} dev {VETH}\n"
        f"ip link set {VETH}p up\n"
        f"ip link set {VETH} up\n"
        f"ip route add {SERVICE_CIDR} dev {VETH}\n"
    )
    namespace.run("sh", "-ec", script)
    return namespace


def namespace_inodes_under(directory: Path) -> set[int]:
    """The network namespaces pinned under `directory` (the node's, and the Pods' that
    containerd pins in its state folder)."""
    inodes = set()
    for mount in mounts_under(directory):
        if _fstype(mount) == "nsfs":
            try:
                inodes.add(os.stat(mount).st_ino)
            except OSError:
                continue
    return inodes


def _mountinfo() -> list[tuple[str, str]]:
    """(mount point, fs type) per line of /proc/self/mountinfo, in mount order."""
    entries = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        separator = fields.index("-")
        point = fields[4].replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")
        entries.append((point, fields[separator + 1]))
    return entries


def _fstype(point: Path) -> str:
    types = [fstype for mounted, fstype in _mountinfo() if mounted == str(point)]
    return types[-1] if types else ""


def mounts_under(directory: Path) -> list[Path]:
    """Mount points at or below `directory`, deepest first (later mounts first at one depth)."""
    prefix = str(directory).rstrip("/") + "/"
    points = [
        (index, Path(point))
        for index, (point, _) in enumerate(_mountinfo())
        if point == str(directory) or point.startswith(prefix)
    ]
    points.sort(key=lambda entry: (len(entry[1].parts), entry[0]), reverse=True)
    return [point for _, point in points]


def unmount_all_under(directory: Path) -> list[str]:
    """Unmount everything at or below `directory`, deepest first; what would not go."""
    for _ in range(10):
        points = mounts_under(directory)
        if not points:
            return []
        for point in points:
            done = subprocess.run(["umount", str(point)], capture_output=True, check=False)
            if done.returncode != 0:
                subprocess.run(["umount", "-l", str(point)], capture_output=True, check=False)
    return [str(point) for point in mounts_under(directory)]


def state(pid: int) -> str:
    """The process's state letter ('' once it is gone; 'Z' for a zombie not reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[0]


def alive(pid: int) -> bool:
    return state(pid) not in ("", "Z")


def processes_in(inodes: Iterable[int]) -> list[int]:
    """Live processes whose network namespace is one of `inodes`."""
    wanted = {f"net:[{inode}]" for inode in inodes}
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(entry / "ns" / "net") in wanted and alive(int(entry.name)):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def end(pids: Iterable[int], grace: float) -> None:
    """TERM, then KILL what is still alive after `grace` seconds."""
    pids = list(pids)
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in pids:
        if alive(pid):
            _signal(pid, signal.SIGKILL)


def _signal(pid: int, number: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, number)
