"""End to end: kube-apiserver + Gatekeeper + Signet (mTLS with Gatekeeper's certificate), a real
registry and real cosign signatures; `kubectl` is the user."""

from __future__ import annotations

import base64
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.integration.helpers import write_trust
from tests.support import cosign
from tests.support.controlplane import Gatekeeper, module_source, run_gatekeeper
from tests.support.images import push_image
from tests.support.procs import free_port
from tests.support.provider import Provider, run_provider
from tests.support.registry import Registry, run_registry

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_OPERATOR_VERSION = "v0.85.0"  # as scripts/install-tools.sh


@dataclass
class Cluster:
    gatekeeper: Gatekeeper
    provider: Provider
    registry: Registry
    signed: str
    unsigned: str
    signed_digest: str
    flaky: Path  # a second registry's storage, stopped between tests
    flaky_port: int

    def run_pod(self, name: str, image: str) -> tuple[int, str]:
        result = self.gatekeeper.kubectl(
            "run", name, f"--image={image}", "--restart=Never", check=False
        )
        return result.returncode, result.stdout + result.stderr


@pytest.fixture(scope="module")
def cluster(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    work = tmp_path_factory.mktemp("e2e")
    signed_digest = push_image(registry.url, "e2e/app", "signed", seed="e2e-signed")
    push_image(registry.url, "e2e/app", "unsigned", seed="e2e-unsigned")
    keys = cosign.generate_key_pair("v3.1.3", work / "keys")
    cosign.sign("v3.1.3", keys.private, f"{registry.host}/e2e/app@{signed_digest}")
    security = cosign.generate_key_pair("v3.1.3", work / "security-keys")
    both_digest = push_image(registry.url, "e2e/app", "both", seed="e2e-both")
    for key in (keys.private, security.private):
        cosign.sign("v3.1.3", key, f"{registry.host}/e2e/app@{both_digest}")
    flaky_port = free_port()
    with run_registry(work / "flaky", port=flaky_port) as flaky:
        flaky_digest = push_image(flaky.url, "flaky/app", "v1", seed="e2e-flaky")
        cosign.sign("v3.1.3", keys.private, f"{flaky.host}/flaky/app@{flaky_digest}")
    config = write_trust(
        work / "trust",
        {"dev-team": [keys.public], "security-team": [security.public]},
        [registry.host, f"127.0.0.1:{flaky_port}"],
    )
    with (
        run_gatekeeper(work / "cluster") as gatekeeper,
        run_provider(
            config,
            work / "provider",
            client_ca=gatekeeper.certs / "ca.crt",
            client_identity=(gatekeeper.certs / "tls.crt", gatekeeper.certs / "tls.key"),
        ) as provider,
    ):
        ca_bundle = base64.b64encode(provider.certs.ca.read_bytes()).decode()
        gatekeeper.apply((ROOT / "gatekeeper/signatures/template.yaml").read_text())
        gatekeeper.apply(
            "apiVersion: externaldata.gatekeeper.sh/v1beta1\nkind: Provider\n"
            f"metadata: {{name: signet}}\nspec:\n  url: {provider.url}/validate\n"
            f"  timeout: 3\n  caBundle: {ca_bundle}\n"
        )
        deadline = time.monotonic() + 90
        while (
            gatekeeper.kubectl(
                "get", "crd", "signetimagesignatures.constraints.gatekeeper.sh", check=False
            ).returncode
            != 0
        ):
            assert time.monotonic() < deadline, "the constraint CRD never appeared"
            time.sleep(1)
        gatekeeper.apply(
            "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: SignetImageSignatures\n"
            "metadata: {name: require-dev-team}\nspec:\n"
            "  match: {kinds: [{apiGroups: [''], kinds: [Pod]}]}\n"
            "  parameters: {requiredAttestors: [dev-team]}\n"
        )
        current = Cluster(
            gatekeeper,
            provider,
            registry,
            f"{registry.host}/e2e/app:signed",
            f"{registry.host}/e2e/app:unsigned",
            signed_digest,
            work / "flaky",
            flaky_port,
        )
        # Enforcement starts once Gatekeeper has ingested the template, constraint and Provider.
        deadline = time.monotonic() + 90
        while True:
            code, output = current.run_pod("probe", current.unsigned)
            if code != 0 and "NO_SIGNATURE" in output:
                break
            if code == 0:
                gatekeeper.kubectl("delete", "pod", "probe", "--wait=false", check=False)
            assert time.monotonic() < deadline, f"the constraint was never enforced: {output}"
            time.sleep(2)
        yield current


def test_a_signed_pod_is_admitted(cluster: Cluster) -> None:
    code, output = cluster.run_pod("signed", cluster.signed)
    assert code == 0, output


def test_an_unsigned_pod_is_denied_with_reason_and_remediation(cluster: Cluster) -> None:
    code, output = cluster.run_pod("unsigned", cluster.unsigned)
    assert code != 0
    assert 'admission webhook "validation.gatekeeper.sh" denied the request' in output
    assert (
        f"container <unsigned> image <{cluster.unsigned}>: not signed by <dev-team>: NO_SIGNATURE"
        in output
    )
    assert f"sign {cluster.registry.host}/e2e/app@sha256:" in output


def test_an_unsigned_init_container_is_denied(cluster: Cluster) -> None:
    pod = f"""apiVersion: v1
kind: Pod
metadata: {{name: init, namespace: default}}
spec:
  initContainers: [{{name: setup, image: "{cluster.unsigned}"}}]
  containers: [{{name: app, image: "{cluster.signed}"}}]
"""
    result = cluster.gatekeeper.kubectl("apply", "-f", "-", stdin=pod, check=False)
    assert result.returncode != 0
    assert f"initContainer <setup> image <{cluster.unsigned}>" in result.stderr


def test_an_unsigned_ephemeral_container_is_denied(cluster: Cluster) -> None:
    """`kubectl debug` adds an ephemeral container through the pods/ephemeralcontainers
    subresource, an UPDATE that Gatekeeper's webhook sees with the whole Pod."""
    code, output = cluster.run_pod("debug-target", cluster.signed)
    assert code == 0, output
    denied = cluster.gatekeeper.kubectl(
        "debug", "debug-target", f"--image={cluster.unsigned}", "-c", "debugger", check=False
    )
    assert denied.returncode != 0
    assert (
        f"ephemeralContainer <debugger> image <{cluster.unsigned}>: not signed by <dev-team>: "
        "NO_SIGNATURE" in denied.stderr
    ), denied.stderr
    admitted = cluster.gatekeeper.kubectl(
        "debug", "debug-target", f"--image={cluster.signed}", "-c", "signed-debugger", check=False
    )
    assert admitted.returncode == 0, admitted.stderr
    names = cluster.gatekeeper.kubectl(
        "get", "pod", "debug-target", "-o", "jsonpath={.spec.ephemeralContainers[*].name}"
    ).stdout.split()
    assert names == ["signed-debugger"]


def test_an_unsigned_deployment_is_denied_at_creation(cluster: Cluster) -> None:
    """Through the ExpansionTemplate: refused at `kubectl apply`, not when its Pods are made."""
    gatekeeper = cluster.gatekeeper
    gatekeeper.apply((ROOT / "gatekeeper/expansion/workloads.yaml").read_text())
    gatekeeper.apply(
        "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: SignetImageSignatures\n"
        "metadata: {name: require-dev-team-deployments}\nspec:\n"
        "  match: {kinds: [{apiGroups: [apps], kinds: [Deployment]}, "
        "{apiGroups: [''], kinds: [Pod]}]}\n"
        "  parameters: {requiredAttestors: [dev-team]}\n"
    )

    def deployment(name: str, image: str) -> str:
        return (
            f"apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: default}}\n"
            f"spec:\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n"
            f"    metadata: {{labels: {{app: {name}}}}}\n"
            f"    spec: {{containers: [{{name: app, image: '{image}'}}]}}\n"
        )

    deadline = time.monotonic() + 60
    while True:
        result = gatekeeper.kubectl(
            "apply", "-f", "-", stdin=deployment("unsigned-deploy", cluster.unsigned), check=False
        )
        if result.returncode != 0:
            break
        gatekeeper.kubectl("delete", "deployment", "unsigned-deploy", "--wait=false", check=False)
        assert time.monotonic() < deadline, "the Deployment was never refused"
        time.sleep(2)
    assert "[Implied by signet-expand-workloads]" in result.stderr
    assert f"image <{cluster.unsigned}>: not signed by <dev-team>: NO_SIGNATURE" in result.stderr
    signed = gatekeeper.kubectl(
        "apply", "-f", "-", stdin=deployment("signed-deploy", cluster.signed), check=False
    )
    assert signed.returncode == 0, signed.stderr


def test_warn_mode_admits_with_a_warning(cluster: Cluster) -> None:
    gatekeeper = cluster.gatekeeper
    gatekeeper.kubectl("create", "namespace", "staging", check=False)
    gatekeeper.apply(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: default, namespace: staging}\n"
    )
    gatekeeper.apply(
        "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: SignetImageSignatures\n"
        "metadata: {name: warn-staging}\nspec:\n  enforcementAction: warn\n"
        "  match: {kinds: [{apiGroups: [''], kinds: [Pod]}], namespaces: [staging]}\n"
        "  parameters: {requiredAttestors: [security-team]}\n"
    )
    deadline = time.monotonic() + 60
    attempt = 0
    while True:
        attempt += 1
        result = gatekeeper.kubectl(
            "run",
            f"warned-{attempt}",
            "-n",
            "staging",
            f"--image={cluster.signed}",
            "--restart=Never",
            check=False,
        )
        if "Warning" in result.stderr:
            break
        assert time.monotonic() < deadline, f"no warning was ever given: {result.stderr}"
        time.sleep(2)
    assert result.returncode == 0, result.stderr
    assert "[warn-staging]" in result.stderr
    assert "not signed by <security-team>" in result.stderr


def test_an_admitted_pod_is_pinned_to_the_verified_digest(cluster: Cluster) -> None:
    gatekeeper = cluster.gatekeeper
    ca_bundle = base64.b64encode(cluster.provider.certs.ca.read_bytes()).decode()
    gatekeeper.apply(
        "apiVersion: externaldata.gatekeeper.sh/v1beta1\nkind: Provider\n"
        f"metadata: {{name: signet-mutate}}\nspec:\n  url: {cluster.provider.url}/mutate\n"
        f"  timeout: 2\n  caBundle: {ca_bundle}\n"
    )
    gatekeeper.apply((ROOT / "gatekeeper/mutation/pin-containers.yaml").read_text())
    pinned = f"{cluster.registry.host}/e2e/app@{cluster.signed_digest}"

    def image_after_admission(name: str) -> str:
        result = gatekeeper.kubectl(
            "run",
            name,
            f"--image={cluster.signed}",
            "--restart=Never",
            "--dry-run=server",
            "-o",
            "jsonpath={.spec.containers[0].image}",
            check=False,
        )
        return result.stdout.strip() if result.returncode == 0 else result.stderr

    deadline = time.monotonic() + 60
    while (image := image_after_admission("pinned")) != pinned:
        assert time.monotonic() < deadline, f"never pinned: {image}"
        time.sleep(2)
    # Remove the mutator again, and wait until Gatekeeper has let go of it.
    gatekeeper.kubectl("delete", "assign", "signet-pin-containers")
    deadline = time.monotonic() + 60
    while image_after_admission("unpinned") != cluster.signed:
        assert time.monotonic() < deadline, "the mutator was never removed"
        time.sleep(2)


def test_m_of_n_sign_off(cluster: Cluster) -> None:
    gatekeeper = cluster.gatekeeper
    gatekeeper.kubectl("create", "namespace", "production", check=False)
    gatekeeper.apply(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: default, namespace: production}\n"
    )
    gatekeeper.apply(
        "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: SignetImageSignatures\n"
        "metadata: {name: two-teams}\nspec:\n"
        "  match: {kinds: [{apiGroups: [''], kinds: [Pod]}], namespaces: [production]}\n"
        "  parameters: {anyOf: {attestors: [dev-team, security-team, release-team], minimum: 2}}\n"
    )
    both = f"{cluster.registry.host}/e2e/app:both"
    deadline = time.monotonic() + 60
    attempt = 0
    while True:
        attempt += 1
        one = gatekeeper.kubectl(
            "run",
            f"one-team-{attempt}",
            "-n",
            "production",
            f"--image={cluster.signed}",
            "--restart=Never",
            check=False,
        )
        if one.returncode != 0:
            break
        assert time.monotonic() < deadline, "the M-of-N constraint was never enforced"
        time.sleep(2)
    assert "[two-teams]" in one.stderr
    assert "signed by 1 of the required attestors; at least 2 of" in one.stderr
    two = gatekeeper.kubectl(
        "run", "two-teams", "-n", "production", f"--image={both}", "--restart=Never", check=False
    )
    assert two.returncode == 0, two.stderr


def test_audit_reports_a_pre_existing_unsigned_pod(cluster: Cluster) -> None:
    """A Pod that got in without admission (here: in the namespace the webhook skips) is found by
    Gatekeeper's audit, which calls the provider too, and shown in the constraint's status."""
    gatekeeper = cluster.gatekeeper
    gatekeeper.apply(
        "apiVersion: v1\nkind: ServiceAccount\n"
        "metadata: {name: default, namespace: gatekeeper-system}\n"
    )
    gatekeeper.kubectl(
        "run",
        "sneaked-in",
        "-n",
        "gatekeeper-system",
        f"--image={cluster.unsigned}",
        "--restart=Never",
    )
    deadline = time.monotonic() + 90
    while True:
        status = gatekeeper.kubectl(
            "get",
            "signetimagesignatures",
            "require-dev-team",
            "-o",
            "jsonpath={.status.violations}",
            check=False,
        ).stdout
        if "sneaked-in" in status:
            break
        assert time.monotonic() < deadline, f"audit never reported the Pod: {status}"
        time.sleep(2)
    assert "NO_SIGNATURE" in status


def test_registry_down_denies_and_recovery_admits_at_once(cluster: Cluster) -> None:
    """A transient failure travels in systemError, which Gatekeeper never caches: the image is
    admitted as soon as the registry is back, not after Gatekeeper's 3-minute response cache."""
    image = f"127.0.0.1:{cluster.flaky_port}/flaky/app:v1"
    code, output = cluster.run_pod("registry-down", image)
    assert code != 0
    assert f"image <{image}>: not verified: the provider could not answer now" in output
    assert "REGISTRY_UNAVAILABLE" in output
    with run_registry(cluster.flaky, port=cluster.flaky_port):
        code, output = cluster.run_pod("registry-back", image)
    assert code == 0, output


def test_with_the_provider_stopped_new_images_are_denied(cluster: Cluster) -> None:
    """Fail closed. (Gatekeeper still answers from its cache for images it asked about before.)"""
    new = push_image(cluster.registry.url, "e2e/app", "never-asked", seed="e2e-never-asked")
    assert new
    cluster.provider.stop()
    code, output = cluster.run_pod("provider-down", f"{cluster.registry.host}/e2e/app:never-asked")
    assert code != 0
    assert "denied the request" in output
    assert "not verified: the provider could not answer now" in output


HELM = ROOT / ".tools" / "helm-v3.22.0" / "helm"


def test_the_chart_and_the_pack_apply_cleanly(cluster: Cluster) -> None:
    """Server-side dry runs on the real apiserver: every object the Helm chart renders (the
    ServiceMonitor against the Prometheus operator's own CRD) and everything
    `kubectl apply -k gatekeeper/` applies."""
    chart = ROOT / "gatekeeper" / "chart" / "signet"
    rendered = subprocess.run(
        [
            str(HELM),
            "template",
            "signet",
            str(chart),
            "-f",
            str(chart / "ci-values.yaml"),
            "--namespace",
            "gatekeeper-system",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    objects = [d for d in yaml.safe_load_all(rendered) if d]
    assert {o["kind"] for o in objects} == {
        "ConfigMap",
        "Deployment",
        "PodDisruptionBudget",
        "Service",
        "ServiceMonitor",
    }
    service_monitor_crd = module_source(
        "github.com/prometheus-operator/prometheus-operator",
        PROMETHEUS_OPERATOR_VERSION,
        "example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml",
    )
    cluster.gatekeeper.kubectl("apply", "--server-side", "-f", str(service_monitor_crd))
    cluster.gatekeeper.kubectl(
        "wait", "--for=condition=Established", "crd/servicemonitors.monitoring.coreos.com"
    )
    result = cluster.gatekeeper.kubectl(
        "apply",
        "--dry-run=server",
        "-n",
        "gatekeeper-system",
        "-f",
        "-",
        stdin=yaml.safe_dump_all(objects),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("(server dry run)") == len(objects), result.stdout
    # The pack as a user applies it: kustomize, with the Providers' caBundle patched in (the
    # placeholder itself is refused by Gatekeeper's own webhook, as it should be).
    built = cluster.gatekeeper.kubectl("kustomize", str(ROOT / "gatekeeper")).stdout
    ca_bundle = base64.b64encode(cluster.provider.certs.ca.read_bytes()).decode()
    pack = cluster.gatekeeper.kubectl(
        "apply",
        "--dry-run=server",
        "-f",
        "-",
        stdin=built.replace("REPLACE_WITH_BASE64_CA", ca_bundle),
        check=False,
    )
    assert pack.returncode == 0, pack.stderr
    assert pack.stdout.count("(server dry run)") == 8
