"""What the node changes outside its own network namespace and folder, and putting it back.

The network namespace takes its links, routes, iptables rules, conntrack entries and sysctls with
it when its pin is unmounted. What it cannot contain: kubelet's kernel tunables (saved before,
restored after), the `kubepods` cgroups in every hierarchy, the mounts under the node's folder,
and a few paths that kubelet and containerd 1.6 hard-code (removed when the node made them).
`teardown` is the whole of it, in the recipe's order: Pods deleted through the API (controllers
first, orphaning theirs), daemons stopped by PID, what is left in the node's namespaces ended by
namespace id, everything under the node's folder unmounted deepest first, then the machine-wide
leftovers. `host_state` is what a test compares before and after.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import netns

if TYPE_CHECKING:
    from .node import Node

# kubelet writes these when they differ from what it wants (protectKernelDefaults: false).
TUNABLES = (
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
)
# Created by kubelet / containerd 1.6 / the CNI library wherever they are configured; removed
# afterwards if they were not there before (deepest first).
HARD_CODED = (
    Path("/var/lib/kubelet/device-plugins"),
    Path("/var/lib/kubelet"),
    Path("/run/containerd/s"),
    Path("/run/containerd"),
    Path("/var/lib/cni/results"),
    Path("/var/lib/cni"),
    Path("/var/run/netns"),
    Path("/var/log/containers"),  # kubelet's links to each container's log
)
CONTAINER_LOGS = Path("/var/log/containers")
CGROUPS = Path("/sys/fs/cgroup")
# Stopped in this order once the Pods are gone (then containerd; the API server and etcd last).
DAEMONS = ("kubelet", "coredns", "kube-proxy", "kube-scheduler", "kube-controller-manager")
# Machine-wide places a daemon of the node (or buildah) would use if not pointed elsewhere.
MACHINE_PATHS = (
    *(str(path) for path in HARD_CODED),
    "/etc/cni",
    "/run/containers",
    "/var/lib/containers",
    "/opt/containerd",
    "/var/lib/containerd",
    "/run/containerd/runc",
    "/usr/libexec/kubernetes",
    "/var/log/pods",
    "/var/log/containers",
    "/var/run/kubernetes",
    "/etc/kubernetes",
)


@dataclass
class Saved:
    tunables: dict[str, str] = field(default_factory=dict)
    absent: list[Path] = field(default_factory=list)

    @classmethod
    def now(cls) -> Saved:
        return cls(
            {name: (Path("/proc/sys") / name).read_text() for name in TUNABLES},
            [path for path in HARD_CODED if not path.exists() and not path.is_symlink()],
        )

    def restore(self, directory: Path) -> list[str]:
        problems = []
        if CONTAINER_LOGS.is_dir():
            for link in CONTAINER_LOGS.iterdir():
                if link.is_symlink() and os.readlink(link).startswith(f"{directory}/"):
                    link.unlink()
        for name, value in self.tunables.items():
            path = Path("/proc/sys") / name
            if path.read_text() != value:
                try:
                    path.write_text(value)
                except OSError as error:
                    problems.append(f"{path}: {error}")
        for path in self.absent:
            _remove_tree(path)
            if path.exists():
                problems.append(f"{path} is left")
        return problems


def _remove_tree(path: Path) -> None:
    """Remove a hard-coded folder the node created: files, sockets and empty folders only (a
    mount below it would have been unmounted with the node's, so none is followed)."""
    if not path.is_dir() or path.is_symlink():
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return
    if any(str(point).startswith(f"{path}/") for point in netns.mounts_under(path)):
        return
    for directory, folders, files in os.walk(path, topdown=False):
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                (Path(directory) / name).unlink()
        for name in folders:
            with contextlib.suppress(OSError):
                (Path(directory) / name).rmdir()
    with contextlib.suppress(OSError):
        path.rmdir()


def kubepods_cgroups() -> list[Path]:
    """Every `kubepods` cgroup folder (each v1 hierarchy, and the unified one)."""
    found = []
    for hierarchy in sorted(CGROUPS.iterdir()):
        candidate = hierarchy / "kubepods"
        if candidate.is_dir() and not hierarchy.is_symlink():
            found.append(candidate)
    return found


def remove_kubepods() -> list[str]:
    """End what still runs in the kubepods cgroups, then remove them depth-first."""
    problems = []
    pids: set[int] = set()
    for top in kubepods_cgroups():
        for procs in top.rglob("cgroup.procs"):
            with contextlib.suppress(OSError):
                pids.update(int(pid) for pid in procs.read_text().split())
    netns.end(pids, grace=2)
    for top in kubepods_cgroups():
        for directory, _, _ in sorted(os.walk(top), key=lambda entry: -len(entry[0])):
            try:
                Path(directory).rmdir()
            except OSError as error:
                problems.append(f"{directory}: {error}")
    return problems


def listeners() -> list[str]:
    """TCP listeners of the root network namespace: "address:port pid,pid" each."""
    result = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True)
    found = []
    for line in result.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 4:
            owners = sorted(set(re.findall(r"pid=(\d+)", line)), key=int)
            found.append(f"{fields[3]} {','.join(owners) or '?'}")
    return sorted(found)


def host_state() -> dict[str, list[str]]:
    """What a node must leave as it found it, as seen from the root namespaces."""
    iptables = subprocess.run(
        ["iptables-save"], capture_output=True, text=True, check=False
    ).stdout.splitlines()
    return {
        "listeners": listeners(),
        "mounts": sorted(line.split()[4] for line in _read("/proc/self/mountinfo").splitlines()),
        "cgroups": sorted(
            str(path)
            for hierarchy in CGROUPS.iterdir()
            for path in hierarchy.glob("*")
            if path.is_dir() and not hierarchy.is_symlink()
        ),
        "links": sorted(os.listdir("/sys/class/net")),
        "routes": subprocess.run(
            ["ip", "route", "show", "table", "all"], capture_output=True, text=True, check=False
        ).stdout.splitlines(),
        "iptables": [line for line in iptables if not line.startswith("#")],
        "tunables": [f"{name}={_read(f'/proc/sys/{name}').strip()}" for name in TUNABLES],
        "paths": sorted(path for path in MACHINE_PATHS if os.path.lexists(path)),
        "container logs": sorted(os.listdir(CONTAINER_LOGS)) if CONTAINER_LOGS.is_dir() else [],
    }


def leftovers(
    before: dict[str, list[str]], after: dict[str, list[str]], node_pids: set[int]
) -> list[str]:
    """How `after` differs from `before` in what a node could have caused. Of the root
    namespace's listeners only those of `node_pids` count, and mounts under /run/netns not at all:
    other tests on the machine (the e2e control plane on 127.0.0.1, `ip netns add`) come and go
    meanwhile."""
    problems = []
    for key, was in before.items():
        now = after[key]
        added = [item for item in now if item not in was]
        removed = [item for item in was if item not in now]
        if key == "listeners":
            added = [item for item in now if node_pids & _pids(item)]
            removed = []
        if key == "mounts":
            added = [item for item in added if not item.startswith("/run/netns/")]
            removed = [item for item in removed if not item.startswith("/run/netns/")]
        problems += [f"{key}: added {item}" for item in added]
        problems += [f"{key}: gone {item}" for item in removed]
    return problems


def _pids(listener: str) -> set[int]:
    return {int(pid) for pid in listener.rsplit(maxsplit=1)[-1].split(",") if pid.isdigit()}


def _read(path: str) -> str:
    return Path(path).read_text()


def _drain(node: Node) -> list[str]:
    """Delete every Pod (controllers first, orphaning theirs, so nothing recreates them) and wait
    until kubelet has stopped all containers."""
    apiserver = node.processes.get("kube-apiserver")
    if apiserver is None or apiserver.poll() is not None:
        return ["kube-apiserver was not running: Pods were not deleted through it"]
    kinds = "deployments,replicasets,statefulsets,daemonsets,jobs,cronjobs"
    node.kubectl("delete", kinds, "--all", "-A", "--cascade=orphan", "--wait=false", check=False)
    node.kubectl("delete", "pods", "--all", "-A", "--grace-period=1", "--wait=false", check=False)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            pods = node.kubectl("get", "pods", "-A", "-o", "name", timeout=10).stdout.strip()
            tasks = node.ctr("tasks", "ls", "--quiet", timeout=10).strip()
            if not pods and not tasks:
                return []
        time.sleep(0.2)
    return ["Pods or containers still there 60 s after deleting them (ended by force)"]


def stop_process(process: subprocess.Popen[bytes], grace: float) -> None:
    """TERM, then KILL after `grace` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def teardown(node: Node | None, directory: Path, saved: Saved) -> list[str]:
    """The recipe's teardown, each step whatever the ones before it managed; what is left."""
    problems: list[str] = []
    if node is not None:
        if "kubelet" in node.processes and "containerd" in node.processes:
            node.notes += _drain(node)
        for name in (*DAEMONS, "containerd"):
            if name in node.processes:
                stop_process(node.processes[name], 5)
        # What remains in the node's or a Pod's namespace: shims, hostNetwork containers.
        inodes = netns.namespace_inodes_under(directory) | {node.namespace.inode}
        netns.end(netns.processes_in(inodes), grace=2)
        for name in ("kube-apiserver", "etcd"):  # the API server outlives SIGTERM by seconds
            if name in node.processes:
                stop_process(node.processes[name], 3)
        left = netns.processes_in(inodes)
        if left:
            problems.append(f"processes left in the node's namespaces: {left}")
    problems += [f"still mounted: {point}" for point in netns.unmount_all_under(directory)]
    problems += remove_kubepods()
    problems += saved.restore(directory)
    if not netns.mounts_under(directory):
        for name in ("containerd", "kubelet", "etcd", "images", "pod-logs", "cni", "helm"):
            shutil.rmtree(directory / name, ignore_errors=True)
    if node is not None and (node.notes or problems):
        node.layout.logs.mkdir(parents=True, exist_ok=True)
        (node.layout.logs / "teardown.log").write_text("\n".join([*node.notes, *problems]) + "\n")
    return problems
