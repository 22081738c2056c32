"""The install path as a cluster runs it, on a real node (tests/support/node/): the provider image
built from the Dockerfile, the Helm chart installed with its defaults (tls.mode generate: the
chart makes the serving certificate and the Provider objects' caBundle), Gatekeeper v3.23.1
calling the provider through the chart's Service, and the policy pack from `kubectl apply -k
gatekeeper/`. Images come from a registry inside the node's namespace, signed with cosign.

Gatekeeper runs as a process in the node's namespace, not as a Pod (there is no registry to pull
its image from); it resolves the chart's Service through the cluster DNS.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.support import cosign
from tests.support.node import PROVIDER_IMAGE, Node, host_state, leftovers, netns, run_node
from tests.support.node.gatekeeper import NAMESPACE, run_gatekeeper
from tests.support.node.images import ROOT, provider_image
from tests.support.node.registry import NodeRegistry, run_registry

pytestmark = [pytest.mark.integration, pytest.mark.node]

CHART = ROOT / "gatekeeper" / "chart" / "signet"
RELEASE = "signet"
FULLNAME = "signet"  # the chart's fullname: a release name that contains the chart's is used as is
COSIGN = "v3.1.3"
CONSTRAINT = """apiVersion: constraints.gatekeeper.sh/v1beta1
kind: SignetImageSignatures
metadata: {name: require-dev-team}
spec:
  match: {kinds: [{apiGroups: [''], kinds: [Pod]}]}
  parameters: {requiredAttestors: [dev-team]}
"""


@dataclass
class Images:
    registry: NodeRegistry
    signed_digest: str
    unsigned_digest: str

    @property
    def signed(self) -> str:
        return f"{self.registry.host}/e2e/app:signed"

    @property
    def unsigned(self) -> str:
        return f"{self.registry.host}/e2e/app:unsigned"

    def pinned(self, digest: str) -> str:
        return f"{self.registry.host}/e2e/app@{digest}"


def _trust(path: Path, public_key: Path, registry: str) -> Path:
    """Keys inline (the Pod has no key files), the in-namespace registry as plain HTTP."""
    config = {
        "version": 1,
        "attestors": [{"name": "dev-team", "keys": [{"pem": public_key.read_text()}]}],
        "registries": [{"host": registry, "insecure": True}],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    return path


def _run_pod(node: Node, name: str, image: str, *, dry_run: bool = False) -> tuple[int, str]:
    """`kubectl run`; (exit code, the admitted Pod's first image or the refusal)."""
    args = ["run", name, f"--image={image}", "--restart=Never", "-o", "json"]
    if dry_run:
        args.append("--dry-run=server")
    result = node.kubectl(*args, check=False, timeout=30)
    if result.returncode != 0:
        return result.returncode, result.stdout + result.stderr
    return 0, json.loads(result.stdout)["spec"]["containers"][0]["image"]


def _wait_enforced(node: Node, images: Images, timeout: float = 120) -> float:
    """Until Gatekeeper has the template, constraint, Providers and mutators: the unsigned image
    refused, pinned. How long it took."""
    started = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        code, output = _run_pod(node, f"probe-{attempt}", images.unsigned)
        if code != 0 and f"<{images.pinned(images.unsigned_digest)}>: not signed" in output:
            return time.monotonic() - started
        if code == 0:
            node.kubectl("delete", "pod", f"probe-{attempt}", "--wait=false", check=False)
        if time.monotonic() - started > timeout:
            raise AssertionError(f"the constraint was never enforced: {output}")
        time.sleep(1)


@dataclass
class Admissions:
    """Server-side dry runs of both images in a loop, until stopped; what each one got."""

    node: Node
    images: Images
    interval: float = 0.2
    results: list[tuple[float, str, int, str]] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    window: tuple[float, float] = (0.0, 0.0)
    durations: list[float] = field(default_factory=list)

    def run(self) -> None:
        count = 0
        while not self.stopping.is_set():
            count += 1
            kind = "signed" if count % 2 else "unsigned"
            image = self.images.signed if kind == "signed" else self.images.unsigned
            began = time.monotonic()
            try:
                code, output = _run_pod(self.node, f"loop-{count}", image, dry_run=True)
            except Exception as error:
                code, output = -1, repr(error)
            self.results.append((began, kind, code, output))
            self.durations.append(time.monotonic() - began)
            self.stopping.wait(self.interval)

    def refused_signed(self) -> list[tuple[float, str, int, str]]:
        """Signed-image admissions not answered with the pinned image (availability)."""
        pinned = self.images.pinned(self.images.signed_digest)
        return [r for r in self.results if r[1] == "signed" and (r[2] != 0 or r[3] != pinned)]

    def admitted_unsigned(self) -> list[tuple[float, str, int, str]]:
        """Unsigned-image admissions not refused (safety: there must never be one)."""
        return [r for r in self.results if r[1] == "unsigned" and r[2] == 0]

    def misreported_unsigned(self) -> list[tuple[float, str, int, str]]:
        """Unsigned-image refusals for another reason than the missing signature (a provider
        that could not be reached: fail closed, but not answered)."""
        return [
            r
            for r in self.results
            if r[1] == "unsigned" and r[2] != 0 and "NO_SIGNATURE" not in r[3]
        ]


def _install(node: Node, trust: Path) -> None:
    node.helm(
        "install", RELEASE, str(CHART), "-n", NAMESPACE,
        "--set", f"image.repository={PROVIDER_IMAGE.rsplit(':', 1)[0]}",
        "--set", f"image.tag={PROVIDER_IMAGE.rsplit(':', 1)[1]}",
        "--set", "image.pullPolicy=Never",
        "--set-file", f"trust.config={trust}",
        "--wait", "--timeout=180s",
        timeout=200,
    )  # fmt: skip


def _check_install(node: Node) -> None:
    deployment = json.loads(
        node.kubectl("get", "deployment", FULLNAME, "-n", NAMESPACE, "-o", "json").stdout
    )
    assert deployment["status"].get("readyReplicas") == 2, deployment["status"]
    secret = json.loads(
        node.kubectl("get", "secret", f"{FULLNAME}-tls", "-n", NAMESPACE, "-o", "json").stdout
    )
    for name, path in (("signet", "validate"), ("signet-mutate", "mutate")):
        provider = json.loads(node.kubectl("get", "provider", name, "-o", "json").stdout)["spec"]
        assert provider["url"] == f"https://{FULLNAME}.{NAMESPACE}.svc:8443/{path}"
        assert provider["caBundle"] == secret["data"]["ca.crt"]
    assert base64.b64decode(secret["data"]["ca.crt"]).startswith(b"-----BEGIN CERTIFICATE")


def _pods(node: Node) -> set[str]:
    selector = f"app.kubernetes.io/name=signet,app.kubernetes.io/instance={RELEASE}"
    names = node.kubectl("get", "pods", "-n", NAMESPACE, "-l", selector, "-o", "name").stdout
    return set(names.split())


def _rolling_restart(node: Node, images: Images, timings: dict[str, float]) -> Admissions:
    """The admission loop across `kubectl rollout restart`, from a few seconds before it until a
    few seconds after the last old Pod is gone (`loop.window`: those two moments)."""
    loop = Admissions(node, images)
    thread = threading.Thread(target=loop.run, daemon=True)
    old = _pods(node)
    thread.start()
    try:
        time.sleep(3)  # some admissions before
        started = time.monotonic()
        node.kubectl("rollout", "restart", f"deployment/{FULLNAME}", "-n", NAMESPACE)
        node.kubectl(
            "rollout", "status", f"deployment/{FULLNAME}", "-n", NAMESPACE, "--timeout=180s",
            timeout=200,
        )  # fmt: skip
        timings["rollout restart to rolled out"] = time.monotonic() - started
        deadline = time.monotonic() + 90
        while old & _pods(node):
            assert time.monotonic() < deadline, f"old Pods still there: {old & _pods(node)}"
            time.sleep(0.2)
        timings["rollout restart to old Pods gone"] = time.monotonic() - started
        loop.window = (started, time.monotonic())
        new = _pods(node)
        assert len(new) == 2 and not new & old, (old, new)
        time.sleep(3)  # and some after
    finally:
        loop.stopping.set()
        thread.join(timeout=60)
    return loop


def test_the_chart_on_a_node_serves_gatekeeper_through_its_service(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.fail("the node needs root: network namespace, mounts, cgroups")
    timings: dict[str, float] = {}
    started = time.monotonic()
    archive = provider_image(tmp_path / "image")
    keys = cosign.generate_key_pair(COSIGN, tmp_path / "keys")
    timings["image and key"] = time.monotonic() - started

    with run_node(tmp_path / "node") as node:
        ours = node.pids()
        started = time.monotonic()
        assert PROVIDER_IMAGE in node.import_image(archive)
        timings["import"] = time.monotonic() - started
        with (
            run_registry(node, tmp_path / "registry") as registry,
            run_gatekeeper(node, tmp_path / "gatekeeper", cache_ttl="0s") as gatekeeper,
        ):
            timings["registry and gatekeeper"] = time.monotonic() - started
            ours |= {registry.process.pid, gatekeeper.process.pid}
            started = time.monotonic()
            images = Images(
                registry,
                registry.push("e2e/app", "signed", seed="node-signed"),
                registry.push("e2e/app", "unsigned", seed="node-unsigned"),
            )
            registry.sign(COSIGN, keys.private, images.pinned(images.signed_digest))
            trust = _trust(tmp_path / "trust" / "trust.yaml", keys.public, registry.host)
            timings["push and sign"] = time.monotonic() - started

            started = time.monotonic()
            _install(node, trust)
            timings["helm install --wait"] = time.monotonic() - started
            _check_install(node)

            started = time.monotonic()
            node.kubectl("apply", "-k", str(ROOT / "gatekeeper"))
            deadline = time.monotonic() + 90
            crd = "signetimagesignatures.constraints.gatekeeper.sh"
            while node.kubectl("get", "crd", crd, check=False).returncode != 0:
                assert time.monotonic() < deadline, "the constraint CRD never appeared"
                time.sleep(0.5)
            node.apply(CONSTRAINT)
            timings["constraint to enforced"] = _wait_enforced(node, images)
            timings["pack to enforced"] = time.monotonic() - started

            code, output = _run_pod(node, "unsigned", images.unsigned)
            assert code != 0
            assert 'admission webhook "validation.gatekeeper.sh" denied the request' in output
            assert (
                f"container <unsigned> image <{images.pinned(images.unsigned_digest)}>: "
                "not signed by <dev-team>: NO_SIGNATURE" in output
            ), output
            print("denied:", output.strip())
            # trust.watch: the Pods watch their trust ConfigMap through the API server (the
            # chart's service account, its Role), not only the kubelet's copy.
            selector = f"app.kubernetes.io/name=signet,app.kubernetes.io/instance={RELEASE}"
            logs = node.kubectl("logs", "-n", NAMESPACE, "-l", selector, "--tail=-1").stdout
            assert "trust ConfigMap version" in logs and "mirrored" in logs, logs[-3000:]
            code, output = _run_pod(node, "signed", images.signed)
            assert code == 0, output
            assert output == images.pinned(images.signed_digest)
            stored = node.kubectl(
                "get", "pod", "signed", "-o", "jsonpath={.spec.containers[0].image}"
            ).stdout
            assert stored == images.pinned(images.signed_digest)

            loop = _rolling_restart(node, images, timings)
            assert gatekeeper.process.poll() is None, gatekeeper.log.read_text()[-3000:]
        timings.update({f"node {k}": v for k, v in node.timings.items()})
        inode = node.namespace.inode
        ours |= node.pids()

    timings["node teardown"] = node.timings["teardown"]
    print("chart on node timings:", json.dumps({k: round(v, 1) for k, v in timings.items()}))
    assert node.notes == []
    # Compared with the machine once this node held the node lock (another test's node may have
    # been up before that).
    assert leftovers(node.host_before, host_state(), ours) == []
    assert netns.processes_in({inode}) == []
    assert not [pid for pid in ours if netns.alive(pid)]
    assert netns.mounts_under(tmp_path) == []
    _check_restart(loop)


def _check_restart(loop: Admissions) -> None:
    """Across the rolling restart every admission answered: the signed image admitted (pinned),
    the unsigned one refused as unsigned. A terminating Pod's server closes its listener at
    SIGTERM, while its endpoint may still be in kube-proxy's rules for a moment: without a
    preStop delay in the chart, Gatekeeper's calls then meet "connection refused" (fail closed)."""
    refused, admitted = loop.refused_signed(), loop.admitted_unsigned()
    misreported = loop.misreported_unsigned()
    during = [r for r in loop.results if loop.window[0] <= r[0] <= loop.window[1]]
    print(
        "rolling restart admissions:",
        json.dumps({
            "total": len(loop.results), "during the restart": len(during),
            "signed refused": len(refused), "unsigned admitted": len(admitted),
            "unsigned refused for another reason": len(misreported),
            "span s": round(loop.results[-1][0] - loop.results[0][0], 1),
            "slowest s": round(max(loop.durations), 2),
            "median s": round(sorted(loop.durations)[len(loop.durations) // 2], 2),
        }),
    )  # fmt: skip
    for began, kind, code, output in sorted(refused + admitted + misreported)[:10]:
        print(f"  at {began - loop.results[0][0]:.1f} s {kind}: exit {code}: {output[:400]}")
    assert len(loop.results) > 20 and len(during) >= 4, (len(loop.results), len(during))
    assert admitted == []
    assert refused == [] and misreported == [], (
        "admissions failed while the provider's Pods were replaced (see above)"
    )
