"""A real node (tests/support/node/): it comes up in its private network namespace, the provider
image built from the Dockerfile without a registry imports into it and runs as a Pod (its
ENTRYPOINT, its USER), a Service answers, and the teardown, with Pods still running, leaves the
machine as it found it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.node import (
    NODE_IP,
    PROVIDER_IMAGE,
    Node,
    dockerfile,
    host_state,
    images,
    leftovers,
    netns,
    provider_image,
    run_node,
)

pytestmark = [pytest.mark.integration, pytest.mark.node]

POD = f"""apiVersion: v1
kind: Pod
metadata: {{name: signet-help, namespace: default}}
spec:
  restartPolicy: Never
  containers:
    - name: help
      image: {PROVIDER_IMAGE}
      imagePullPolicy: Never
      args: ["--help"]
    - name: identity
      image: {PROVIDER_IMAGE}
      imagePullPolicy: Never
      # pkcs11: the Dockerfile installs the extra (the PKCS#11 binding for HSM-held keys).
      command: ["python3", "-c", "import os, shutil, pkcs11; print(os.getuid(), os.getgid(), shutil.which('signet'))"]
"""

RUNNING = f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: default}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
        - name: web
          image: {PROVIDER_IMAGE}
          imagePullPolicy: Never
          command: ["python3", "-m", "http.server", "8080"]
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: default}}
spec:
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: hostnet, namespace: default}}
spec:
  hostNetwork: true
  containers:
    - name: server
      image: {PROVIDER_IMAGE}
      imagePullPolicy: Never
      command: ["python3", "-m", "http.server", "--bind", "127.0.0.1", "38090"]
"""


def _http(node: Node, url: str, timeout: float = 30) -> str:
    """The status code from `url`, inside the node's namespace, once it answers (kube-proxy
    programs a new Service's endpoints a moment after the rollout)."""
    deadline = time.monotonic() + timeout
    while True:
        code = node.run(
            "curl", "-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}", url, check=False
        ).stdout
        if code != "000" or time.monotonic() > deadline:
            return code
        time.sleep(0.2)


def _root_listener_pids() -> set[int]:
    out = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True).stdout
    return {int(pid) for pid in re.findall(r"pid=(\d+)", out)}


def _finished(node: Node, name: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pod: dict[str, Any] = json.loads(node.kubectl("get", "pod", name, "-o", "json").stdout)
        if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            return pod
        time.sleep(0.2)
    described = node.kubectl("describe", "pod", name, check=False).stdout
    raise AssertionError(
        f"{name} did not finish in {timeout} s:\n{described}\n{node.log('kubelet')[-3000:]}"
    )


def test_the_provider_image_runs_as_a_pod_and_the_node_leaves_nothing(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.fail("the node needs root: network namespace, mounts, cgroups")
    timings: dict[str, float] = {}

    started = time.monotonic()
    archive = provider_image(tmp_path / "image")
    timings["image (0 when cached)"] = time.monotonic() - started
    timings.update({f"  of which {k}": v for k, v in images.timings.items() if k != "image"})

    with run_node(tmp_path / "node") as node:
        # Nothing of the node listens in the root namespace; inside, the stock ports.
        ours = node.pids()
        assert not ours & _root_listener_pids()
        inside = node.run("ss", "-Hltn").stdout
        for address in ("*:6443", "127.0.0.1:2379", f"{NODE_IP}:10250", f"{NODE_IP}:53"):
            assert f" {address} " in inside, inside
        assert "default" not in node.run("ip", "route", "show").stdout

        started = time.monotonic()
        assert PROVIDER_IMAGE in node.import_image(archive)
        timings["import"] = time.monotonic() - started

        started = time.monotonic()
        node.apply(POD)
        pod = _finished(node, "signet-help", 120)
        timings["pod"] = time.monotonic() - started
        statuses = {status["name"]: status for status in pod["status"]["containerStatuses"]}
        for name in ("help", "identity"):
            terminated = statuses[name]["state"].get("terminated", {})
            assert terminated.get("exitCode") == 0, (name, statuses[name], node.kubectl(
                "logs", "signet-help", "-c", name, check=False).stdout)  # fmt: skip

        # ENTRYPOINT ["signet"] with args replacing CMD: the CLI's help, from /usr/local/bin.
        help_text = node.kubectl("logs", "signet-help", "-c", "help").stdout
        assert help_text.startswith("usage: signet"), help_text
        assert "serve" in help_text
        # The uid of the Dockerfile's USER. Not its group: kubelet hands the runtime only the
        # image's uid (as runAsUser), and the runtime takes the group from the image's
        # /etc/passwd, which has no such user, so 0. The group is the Pod's runAsGroup to set
        # (the chart sets runAsUser and runAsGroup 65532); `docker run` would give 65532:65532.
        user = dockerfile.parse()[-1].last("USER")
        assert user is not None
        uid, gid, script = node.kubectl("logs", "signet-help", "-c", "identity").stdout.split()
        assert (uid, gid) == (user.arguments.split(":")[0], "0")
        # The script where `pip install --prefix` put it, on the image's PATH.
        assert script == "/usr/local/bin/signet"

        # Left running for the teardown: a Deployment behind a Service, and a hostNetwork Pod
        # (in the node's namespace, not the machine's).
        started = time.monotonic()
        node.apply(RUNNING)
        node.kubectl("rollout", "status", "deployment/web", "--timeout=90s", timeout=100)
        node.kubectl("wait", "--for=condition=Ready", "pod/hostnet", "--timeout=60s", timeout=70)
        service = node.kubectl("get", "service", "web", "-o", "jsonpath={.spec.clusterIP}").stdout
        assert _http(node, f"http://{service}/") == "200"
        assert _http(node, "http://127.0.0.1:38090/") == "200"
        assert not any(":38090 " in line for line in host_state()["listeners"])
        timings["running workloads"] = time.monotonic() - started
        assert node.helm("list", "--all-namespaces").stdout.startswith("NAME")
        timings.update({f"node {k}": v for k, v in node.timings.items()})
        inode = node.namespace.inode
        ours |= node.pids()  # the Pods' too, had they not ended
        assert not ours & _root_listener_pids()

    timings["node teardown"] = node.timings["teardown"]
    assert node.notes == []  # the Pods went through the API server, not by force
    print("node test timings:", json.dumps({k: round(v, 1) for k, v in timings.items()}))
    # Against the machine as it was once this node held the lock (not before: another test's
    # node may have been up then).
    assert leftovers(node.host_before, host_state(), ours) == []
    assert netns.processes_in({inode}) == []
    assert not [pid for pid in ours if netns.alive(pid)]
    assert netns.mounts_under(tmp_path) == []
