"""`run_node`: a real one-node Kubernetes cluster in a private network namespace, and its teardown.

etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy, CoreDNS, containerd
(with runc and the CNI plugins) and kubelet run as plain processes of the test, each started by
`nsenter --net` into the namespace (so its PID is the daemon's own, and the test reaps it). Inside,
the stock ports are used; nothing listens in, or sends to, the root namespace.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from . import configs, images, netns, pki
from .configs import Layout
from .netns import NODE_IP, SERVICE_CIDR, Namespace
from .teardown import DAEMONS, Saved, host_state, kubepods_cgroups, teardown

ROOT = images.ROOT
TOOLS = ROOT / ".tools"
KUBE = TOOLS / "kube-v1.34.4"
HELM = TOOLS / "helm-v3.22.0" / "helm"
COREDNS = TOOLS / "coredns-v1.12.4" / "coredns"
NODE_NAME = "signet-node"


@dataclass
class Node:
    directory: Path
    namespace: Namespace
    layout: Layout
    name: str = NODE_NAME
    ip: str = NODE_IP
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what the teardown had to force
    # `host_state()` once this node held the machine's node lock, before anything of it started:
    # what to compare the machine with after the teardown (a snapshot taken before `run_node`
    # also holds whatever another test's node, still up then, had made).
    host_before: dict[str, list[str]] = field(default_factory=dict)

    @property
    def kubeconfig(self) -> Path:
        """The admin's (system:masters); https://127.0.0.1:6443 inside the namespace only."""
        return self.layout.admin

    @property
    def pki(self) -> Path:
        """ca.crt/ca.key and the node's certificates; `pki.issue` makes more from the CA."""
        return self.layout.pki

    def run(
        self,
        *argv: str,
        check: bool = True,
        stdin: str | None = None,
        timeout: float = 60,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """`argv` in the node's network namespace."""
        result = subprocess.run(
            self.namespace.argv(*argv),
            capture_output=True,
            text=True,
            input=stdin,
            timeout=timeout,
            check=False,
            env={**os.environ, **(env or {})},
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(argv)}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
            )
        return result

    def kubectl(
        self, *args: str, check: bool = True, stdin: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return self.run(
            str(KUBE / "kubectl"),
            f"--kubeconfig={self.kubeconfig}",
            f"--cache-dir={self.directory / 'kubectl-cache'}",
            *args,
            check=check,
            stdin=stdin,
            timeout=timeout,
        )

    def apply(self, document: str) -> None:
        self.kubectl("apply", "-f", "-", stdin=document)

    def helm(
        self, *args: str, check: bool = True, stdin: str | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """helm from .tools, its cache/config/data kept in the node's folder."""
        home = self.directory / "helm"
        return self.run(
            str(HELM),
            f"--kubeconfig={self.kubeconfig}",
            *args,
            check=check,
            stdin=stdin,
            timeout=timeout,
            env={
                "HELM_CACHE_HOME": str(home / "cache"),
                "HELM_CONFIG_HOME": str(home / "config"),
                "HELM_DATA_HOME": str(home / "data"),
            },
        )

    def ctr(self, *args: str, timeout: float = 120) -> str:
        """containerd's own client on the node's socket, in the CRI's namespace (k8s.io)."""
        result = subprocess.run(
            ["ctr", f"--address={self.layout.socket}", "--namespace=k8s.io", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"ctr {' '.join(args)}: {result.stderr}")
        return result.stdout

    def import_image(self, archive: Path) -> list[str]:
        """Import a docker-archive (or OCI) tar into the node's containerd; the names it holds
        (Pods must use them with imagePullPolicy Never or IfNotPresent: nothing can be pulled)."""
        before = set(self.images())
        self.ctr("images", "import", str(archive))
        return sorted(set(self.images()) - before) or self.images()

    def images(self) -> list[str]:
        return [name for name in self.ctr("images", "ls", "--quiet").split() if name]

    def pids(self) -> set[int]:
        """The node's daemons and whatever runs in its namespaces (shims, Pods' processes)."""
        inodes = netns.namespace_inodes_under(self.directory) | {self.namespace.inode}
        return {p.pid for p in self.processes.values() if p.poll() is None} | set(
            netns.processes_in(inodes)
        )

    def node_object(self) -> dict[str, object]:
        result: dict[str, object] = json.loads(
            self.kubectl("get", "node", self.name, "-o", "json").stdout
        )
        return result

    def log(self, daemon: str) -> str:
        path = self.layout.logs / f"{daemon}.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _missing_tools() -> list[str]:
    wanted = [KUBE / name for name in ("kube-apiserver", "kubectl", *DAEMONS) if name != "coredns"]
    wanted += [COREDNS, HELM, images.PAUSE]
    missing = [str(path) for path in wanted if not path.exists()]
    missing += [
        name for name in ("etcd", "containerd", "runc", "ctr", "iptables", "nsenter", "unshare")
        if shutil.which(name) is None
    ]  # fmt: skip
    return missing


def _wait(check: Callable[[], bool], what: str, timeout: float, node: Node, log: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        for name, process in node.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited {process.returncode}:\n{node.log(name)[-4000:]}")
        time.sleep(0.1)
    raise RuntimeError(f"{what}: not within {timeout} s\n{node.log(log)[-4000:]}")


def _start(node: Node, name: str, argv: Sequence[str], env: dict[str, str] | None = None) -> None:
    node.layout.logs.mkdir(parents=True, exist_ok=True)
    log: IO[bytes]
    with (node.layout.logs / f"{name}.log").open("wb") as log:
        node.processes[name] = subprocess.Popen(
            node.namespace.argv(*argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a ^C to the test reaches the teardown, not the daemons
            env={**os.environ, **(env or {})},
        )


def _ready(node: Node) -> bool:
    status = node.node_object().get("status", {})
    spec = node.node_object().get("spec", {})
    assert isinstance(status, dict) and isinstance(spec, dict)
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions", [])
    )
    return ready and not spec.get("taints")


def _control_plane(node: Node, apiserver_args: Sequence[str]) -> None:
    layout, p = node.layout, node.layout.pki
    _start(node, "etcd", [
        "etcd", f"--data-dir={node.directory / 'etcd'}", "--name=signet-node",
        "--listen-client-urls=http://127.0.0.1:2379",
        "--advertise-client-urls=http://127.0.0.1:2379",
        "--listen-peer-urls=http://127.0.0.1:2380",
        "--initial-advertise-peer-urls=http://127.0.0.1:2380",
        "--initial-cluster=signet-node=http://127.0.0.1:2380",
    ])  # fmt: skip
    _start(node, "kube-apiserver", [
        str(KUBE / "kube-apiserver"), "--etcd-servers=http://127.0.0.1:2379",
        "--bind-address=0.0.0.0",  # inside the namespace: lo and the node's veth only
        f"--secure-port={configs.API_PORT}", f"--advertise-address={NODE_IP}",
        f"--tls-cert-file={p / 'apiserver.crt'}", f"--tls-private-key-file={p / 'apiserver.key'}",
        f"--client-ca-file={p / 'ca.crt'}",
        "--service-account-issuer=https://kubernetes.default.svc",
        f"--service-account-key-file={p / 'sa.pub'}",
        f"--service-account-signing-key-file={p / 'sa.key'}",
        "--api-audiences=https://kubernetes.default.svc",
        "--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        f"--kubelet-client-certificate={p / 'admin.crt'}",
        f"--kubelet-client-key={p / 'admin.key'}",
        "--kubelet-preferred-address-types=InternalIP", "--allow-privileged=true",
        f"--cert-dir={node.directory / 'apiserver-certs'}", *apiserver_args,
    ])  # fmt: skip
    a = str(layout.admin)
    for name, port, extra in (
        ("kube-controller-manager", 10257, [
            f"--root-ca-file={p / 'ca.crt'}", f"--service-account-private-key-file={p / 'sa.key'}",
            "--use-service-account-credentials=true", "--controllers=*",
            f"--flex-volume-plugin-dir={node.directory / 'kube-controller-manager' / 'volume'}",
        ]),
        ("kube-scheduler", 10259, []),
    ):  # fmt: skip
        _start(node, name, [
            str(KUBE / name), f"--kubeconfig={a}", f"--authentication-kubeconfig={a}",
            f"--authorization-kubeconfig={a}", "--bind-address=127.0.0.1",
            f"--secure-port={port}", "--leader-elect=false",
            f"--cert-dir={node.directory / name}", *extra,
        ])  # fmt: skip


@contextlib.contextmanager
def run_node(directory: Path, *, apiserver_args: Sequence[str] = ()) -> Iterator[Node]:
    """Bring the node up in `directory` (Ready, untainted, the sandbox image imported); tear
    everything down on exit, and raise if anything is left behind."""
    missing = _missing_tools()
    if missing:
        raise RuntimeError(f"missing (run `make tools`): {', '.join(missing)}")
    if os.geteuid() != 0:
        raise RuntimeError("the node needs root (network namespace, mounts, cgroups)")
    with _one_node_at_a_time():
        if kubepods_cgroups():
            raise RuntimeError(
                f"kubepods cgroups exist ({kubepods_cgroups()[0]}): a node was killed before its"
                " teardown, or one not started by run_node runs on this machine"
            )
        with _node(directory, apiserver_args) as node:
            yield node


@contextlib.contextmanager
def _one_node_at_a_time(timeout: float = 900) -> Iterator[None]:
    """Nodes on one machine share the kubepods cgroups, /run/containerd/s and kubelet's kernel
    tunables, so a second one (another test run) waits for the first to be torn down."""
    images.CACHE.mkdir(parents=True, exist_ok=True)
    with (images.CACHE / "node.lock").open("w") as lock:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"another node held {lock.name} for {timeout} s") from None
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextlib.contextmanager
def _node(directory: Path, apiserver_args: Sequence[str]) -> Iterator[Node]:
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    layout = Layout(directory)
    layout.conf("x").parent.mkdir(parents=True, exist_ok=True)
    before = host_state()
    pause = images.pause_image(directory / "images")
    saved = Saved.now()
    started = time.monotonic()
    node: Node | None = None
    try:
        namespace = netns.create(directory / "netns")
        node = Node(directory, namespace, layout, host_before=before)
        pki.make(layout.pki, node.name)
        configs.kubeconfig(layout.admin, layout.pki, "admin")
        configs.kubeconfig(layout.node, layout.pki, "node")
        _control_plane(node, apiserver_args)
        containerd_conf = configs.containerd(layout, images.PAUSE_IMAGE)
        configs.cni(layout)  # before containerd and kubelet: the node is Ready once CNI is
        tmp = layout.containerd / "tmp"  # containerd's temporary mounts (image unpacking)
        tmp.mkdir(parents=True, exist_ok=True)
        _start(
            node, "containerd", ["containerd", f"--config={containerd_conf}"], {"TMPDIR": str(tmp)}
        )
        _wait(lambda: bool(node.ctr("version", timeout=5)), "containerd", 30, node, "containerd")
        node.import_image(pause)
        _wait(
            lambda: node.kubectl("get", "--raw", "/readyz", timeout=5).returncode == 0,
            "kube-apiserver /readyz", 60, node, "kube-apiserver",
        )  # fmt: skip
        node.timings["apiserver ready"] = time.monotonic() - started
        _start(
            node,
            "kube-proxy",
            [str(KUBE / "kube-proxy"), f"--config={configs.kube_proxy(layout, node.name)}"],
        )
        _start(node, "coredns", [str(COREDNS), "-conf", str(configs.corefile(layout))])
        _start(node, "kubelet", [
            str(KUBE / "kubelet"), f"--config={configs.kubelet(layout)}",
            f"--kubeconfig={layout.node}", f"--root-dir={layout.kubelet}",
            f"--cert-dir={layout.kubelet / 'pki'}", f"--hostname-override={node.name}",
            f"--node-ip={NODE_IP}",
        ])  # fmt: skip
        _wait(lambda: _ready(node), "node Ready and untainted", 120, node, "kubelet")
        _wait(
            lambda: node.kubectl("get", "serviceaccount", "default", check=False).returncode == 0,
            "the default ServiceAccount", 60, node, "kube-controller-manager",
        )  # fmt: skip
        node.timings["up"] = time.monotonic() - started
        yield node
    finally:
        began = time.monotonic()
        problems = teardown(node, directory, saved)
        if node is not None:
            node.timings["teardown"] = time.monotonic() - began
        if problems:
            raise RuntimeError("the node left things behind:\n" + "\n".join(problems))
