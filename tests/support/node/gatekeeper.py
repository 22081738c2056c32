"""Gatekeeper's manager (v3.23.1) as a process in the node's network namespace, against the node's
API server, as the e2e runs it against its own (tests/support/controlplane.py): its CRDs, the
namespace gatekeeper-system, its webhook certificate (serverAuth and clientAuth: Gatekeeper also
presents it to external-data providers) in the Secret `gatekeeper-webhook-server-cert` (ca.crt,
tls.crt, tls.key) where a provider installed beside it mounts the client CA from, and the
webhook configurations pointed at 127.0.0.1 inside the namespace.

Gatekeeper calls providers by their Service names (`<svc>.<namespace>.svc`), so it must resolve
through the cluster DNS (CoreDNS on the node IP), not the machine's resolver: it runs in a
private mount namespace whose /etc/resolv.conf is a bind mount of the Pods' settings. Nothing of
that mount is seen outside, and it goes away with the process.
"""

from __future__ import annotations

import base64
import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from tests.support.controlplane import GATEKEEPER, GATEKEEPER_VERSION, module_source
from tests.support.controlplane import webhook_configurations as webhooks
from tests.support.node.teardown import stop_process

from . import pki
from .netns import NODE_IP

if TYPE_CHECKING:
    from .node import Node

NAMESPACE = "gatekeeper-system"
CA_SECRET = "gatekeeper-webhook-server-cert"  # the chart's default gatekeeper.caSecret
WEBHOOK_PORT = 8443  # the namespace's own ports: nothing else of the node uses these
HEALTH_PORT = 9090
METRICS_PORT = 8888
PROMETHEUS_PORT = 8889
RESOLV_CONF = f"""nameserver {NODE_IP}
search {NAMESPACE}.svc.cluster.local svc.cluster.local cluster.local
options ndots:5
"""


@dataclass
class NodeGatekeeper:
    node: Node
    certs: Path  # ca.crt (the node's CA), tls.crt, tls.key
    process: subprocess.Popen[bytes]
    log: Path

    def readyz(self) -> bool:
        result = self.node.run(
            "curl", "-sf", "-m", "2", f"http://127.0.0.1:{HEALTH_PORT}/readyz", check=False
        )
        return result.returncode == 0

    def metrics(self) -> str:
        return self.node.run(
            "curl", "-s", "-m", "5", f"http://127.0.0.1:{PROMETHEUS_PORT}/metrics", check=False
        ).stdout


def _crds() -> Path:
    return module_source(
        "github.com/open-policy-agent/gatekeeper/v3", GATEKEEPER_VERSION, "charts/gatekeeper/crds"
    )


def _certificates(node: Node, directory: Path) -> Path:
    """Gatekeeper's serving and client certificate from the node's CA (the issued pair stays in
    the node's PKI folder too)."""
    crt, key = pki.issue(
        node.pki,
        "gatekeeper",
        "gatekeeper-webhook",
        [*pki.SERVER, *pki.CLIENT],
        dns=["localhost", f"gatekeeper-webhook-service.{NAMESPACE}.svc"],
        ips=["127.0.0.1"],
    )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ca.crt").write_bytes((node.pki / "ca.crt").read_bytes())
    (directory / "tls.crt").write_bytes(crt.read_bytes())
    (directory / "tls.key").write_bytes(key.read_bytes())
    (directory / "tls.key").chmod(0o600)
    return directory


def _argv(node: Node, directory: Path, certs: Path, cache_ttl: str) -> list[str]:
    resolv = directory / "resolv.conf"
    resolv.write_text(RESOLV_CONF)
    audit_cache = directory / "audit-cache"
    audit_cache.mkdir(parents=True, exist_ok=True)
    manager = [
        str(GATEKEEPER),
        f"--kubeconfig={node.kubeconfig}",
        f"--port={WEBHOOK_PORT}",
        "--host=127.0.0.1",
        f"--cert-dir={certs}",
        "--disable-cert-rotation",
        "--debug-use-fake-pod",
        "--enable-external-data=true",
        f"--health-addr=127.0.0.1:{HEALTH_PORT}",
        f"--metrics-addr=127.0.0.1:{METRICS_PORT}",
        f"--prometheus-port={PROMETHEUS_PORT}",
        "--audit-interval=60",
        f"--api-cache-dir={audit_cache}",
        f"--external-data-provider-response-cache-ttl={cache_ttl}",
    ]
    # nsenter, unshare and sh each exec the next: the PID is Gatekeeper's own.
    script = 'mount --bind "$0" /etc/resolv.conf && exec "$@"'
    return node.namespace.argv(
        "unshare", "--mount", "--propagation", "private", "sh", "-ec", script, str(resolv), *manager
    )


def _wait(probe: object, what: str, timeout: float, gatekeeper: NodeGatekeeper | None) -> None:
    assert callable(probe)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if probe():
                return
        if gatekeeper is not None and gatekeeper.process.poll() is not None:
            break
        time.sleep(0.3)
    tail = gatekeeper.log.read_text(errors="replace")[-4000:] if gatekeeper else ""
    raise RuntimeError(f"{what}: not within {timeout} s\n{tail}")


@contextlib.contextmanager
def run_gatekeeper(
    node: Node, directory: Path, *, cache_ttl: str = "3m"
) -> Iterator[NodeGatekeeper]:
    """Gatekeeper up (/readyz) with its webhooks registered; on exit the webhook configurations
    are deleted first (their failurePolicy Fail would otherwise refuse what the node's teardown
    does), then the manager is stopped. `cache_ttl` "0s" turns the provider response cache off,
    so that every admission reaches the provider."""
    if not GATEKEEPER.exists():
        raise RuntimeError(f"{GATEKEEPER} is missing: run `make tools`")
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    node.kubectl("apply", "--server-side", "-f", str(_crds()), timeout=120)
    node.kubectl("wait", "--for=condition=established", "crd", "--all", "--timeout=60s")
    node.kubectl("create", "namespace", NAMESPACE)
    certs = _certificates(node, directory / "certs")
    node.kubectl(
        "create", "secret", "generic", CA_SECRET, "-n", NAMESPACE,
        *(f"--from-file={name}={certs / name}" for name in ("ca.crt", "tls.crt", "tls.key")),
    )  # fmt: skip
    log = directory / "gatekeeper.log"
    out: IO[bytes]
    with log.open("wb") as out:
        process = subprocess.Popen(
            _argv(node, directory, certs, cache_ttl),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, "POD_NAMESPACE": NAMESPACE, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        )
    gatekeeper = NodeGatekeeper(node, certs, process, log)
    registered = False
    try:
        _wait(gatekeeper.readyz, "Gatekeeper /readyz", 120, gatekeeper)
        ca_bundle = base64.b64encode((certs / "ca.crt").read_bytes()).decode()
        node.apply(webhooks(WEBHOOK_PORT, ca_bundle))
        registered = True
        yield gatekeeper
    finally:
        if registered:
            node.kubectl(
                "delete",
                "validatingwebhookconfiguration/gatekeeper-validating-webhook-configuration",
                "mutatingwebhookconfiguration/gatekeeper-mutating-webhook-configuration",
                "--ignore-not-found", check=False,
            )  # fmt: skip
        stop_process(process, 10)
