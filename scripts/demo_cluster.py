"""The second half of `make run`: Signet installed into a real Gatekeeper as the README tells a
user, then `kubectl run` of an unsigned image (denied) and signed ones (admitted, pinned).

The control plane is tests/support/controlplane.py's (etcd, kube-apiserver, Gatekeeper on
127.0.0.1; no scheduler or kubelet, so admitted Pods stay Pending). Every command is printed as
a user types it, from the repository's root, and run exactly as printed.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from tests.support.controlplane import KUBE

ROOT = Path(__file__).resolve().parents[1]
HELM = ROOT / ".tools" / "helm-v3.22.0" / "helm"
CHART = "gatekeeper/chart/signet"
CONSTRAINT = "gatekeeper/signatures/samples/require-dev-team/constraint.yaml"
TEMPLATE_CRD = "signetimagesignatures.constraints.gatekeeper.sh"


class Shell:
    """Runs commands with the environment it tells the user to export."""

    def __init__(self, kubeconfig: Path) -> None:
        self.exports = {
            "PATH": f"{KUBE}:{HELM.parent}:$PATH",
            "KUBECONFIG": str(kubeconfig),
        }
        path = f"{KUBE}:{HELM.parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"
        self.env = {**os.environ, "PATH": path, "KUBECONFIG": str(kubeconfig)}

    def export_lines(self) -> str:
        return "\n".join(f"  export {name}={value}" for name, value in self.exports.items())

    def run(
        self, command: str, *, show: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        if show:
            print(f"$ {command}", flush=True)
        result = subprocess.run(
            shlex.split(command),
            cwd=ROOT,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if show:
            for line in (result.stdout + result.stderr).rstrip().splitlines():
                print(f"  {line}")
        return result


def install(shell: Shell, provider_url: str, provider_ca: Path, trust: Path, work: Path) -> None:
    """The README's three install steps: the chart's Provider objects, `kubectl apply -k
    gatekeeper/`, a sample constraint."""
    helm = (
        f"helm template signet {CHART} --namespace gatekeeper-system"
        f" --set-file trust.config={trust} --set tls.mode=existingSecret"
        f" --set tls.existingSecret=signet-tls --set-file tls.caBundle={provider_ca}"
    )
    rendered = shell.run(helm, show=False)
    if rendered.returncode != 0:
        raise RuntimeError(f"{helm}:\n{rendered.stderr}")
    providers = [
        doc for doc in yaml.safe_load_all(rendered.stdout) if doc and doc["kind"] == "Provider"
    ]
    for doc in providers:  # https://signet.gatekeeper-system.svc:8443/validate -> 127.0.0.1
        doc["spec"]["url"] = provider_url + urlsplit(doc["spec"]["url"]).path
    (work / "providers.yaml").write_text(yaml.safe_dump_all(providers))
    print(
        "# 1. the Provider objects `helm install` creates, with signet serve's CA as the chart's"
        f" tls.caBundle:\n#      {helm}\n"
        f"#    {' and '.join(d['metadata']['name'] for d in providers)}, their url pointed at"
        f" {provider_url}, where signet serve runs (no Pods run here)"
    )
    shell.run(f"kubectl apply -f {work / 'providers.yaml'}")
    print("# 2. the policy pack: the template, the pinning mutators, workload expansion")
    shell.run("kubectl apply -k gatekeeper/")
    wait_for(
        lambda: shell.run(f"kubectl get crd {TEMPLATE_CRD}", show=False).returncode == 0,
        "Gatekeeper to make the SignetImageSignatures kind from the template",
    )
    shell.run(f"kubectl wait --for=condition=established crd/{TEMPLATE_CRD}", show=False)
    print("# 3. a constraint: Pods everywhere but kube-system and gatekeeper-system need dev-team")
    shell.run(f"kubectl apply -f {CONSTRAINT}")


def wait_for(probe: object, what: str, timeout: float = 60) -> bool:
    assert callable(probe)
    started = time.monotonic()
    print(f"# waiting for {what} ...", end="", flush=True)
    while time.monotonic() - started < timeout:
        if probe():
            print(f" {time.monotonic() - started:.1f} s")
            return True
        time.sleep(0.5)
    print(f" NOT within {timeout:.0f} s")
    return False


def admissions(shell: Shell, signed: str, classic: str, unsigned: str) -> bool:
    """`kubectl run` each image as a user would; whether Gatekeeper judged them as expected."""

    def enforced() -> bool:  # a server-side dry run creates nothing
        dry = "kubectl run probe --restart=Never --dry-run=server --image="
        denied = shell.run(dry + unsigned, show=False)
        pinned = shell.run(dry + signed + " -o jsonpath={.spec.containers[0].image}", show=False)
        return "NO_SIGNATURE" in denied.stderr and "@sha256:" in pinned.stdout

    wait_for(enforced, "Gatekeeper to enforce it (it reads the objects in a few seconds)")
    refused = shell.run(f"kubectl run unsigned --image={unsigned} --restart=Never")
    ok = refused.returncode != 0 and "NO_SIGNATURE" in refused.stderr
    for name, image in (("signed", signed), ("classic", classic)):
        created = shell.run(f"kubectl run {name} --image={image} --restart=Never")
        ok = ok and created.returncode == 0
    columns = "NAME:.metadata.name,IMAGE:.spec.containers[0].image,STATUS:.status.phase"
    listed = shell.run(f"kubectl get pods -o custom-columns='{columns}'")
    pinned = [line for line in listed.stdout.splitlines() if "@sha256:" in line]
    print("# admitted with the digest Signet verified (the pinning mutator); no kubelet runs them")
    return ok and len(pinned) == 2
