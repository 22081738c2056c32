"""End to end: kube-apiserver + Gatekeeper + Signet (mTLS with Gatekeeper's certificate), a real
registry and real cosign signatures; `kubectl` is the user."""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509

from signet.crypto.keyfile import encrypt_cosign_key, generate, public_pem
from signet.crypto.keys import load_public_key_pem
from tests.integration.helpers import write_trust
from tests.support import cosign
from tests.support.controlplane import Gatekeeper, module_source, run_gatekeeper
from tests.support.images import push_image
from tests.support.keyless import KeylessStack
from tests.support.keyless.oidc import GITHUB_IDENTITY
from tests.support.procs import free_port
from tests.support.provider import Provider, run_provider
from tests.support.registry import Registry, run_registry
from tests.support.stalling import StallingRegistry, run_stalling_registry

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_OPERATOR_VERSION = "v0.85.0"  # as scripts/install-tools.sh
BUILDER = "https://ci.example/builders/release@v1"
SOURCE = "https://git.example/team/app"


@dataclass
class Cluster:
    gatekeeper: Gatekeeper
    provider: Provider
    registry: Registry
    signed: str
    unsigned: str
    signed_digest: str
    unsigned_digest: str
    flaky: Path  # a second registry's storage, stopped between tests
    flaky_port: int
    flaky_digest: str
    stalling: StallingRegistry  # the same registry, behind a proxy that can stall tag lookups
    keyless: KeylessStack  # images signed keyless through a private Sigstore
    trust: Path  # the provider's trust config file (tests may edit it, and put it back)
    dev_key: Path  # dev-team's public key
    decisions: Path  # the provider's decision log, and the public key of its checkpoints
    decisions_key: Path

    @property
    def unsigned_pinned(self) -> str:
        """What the unsigned image is called once Signet's mutator pinned it."""
        return f"{self.registry.host}/e2e/app@{self.unsigned_digest}"

    def run_pod(self, name: str, image: str) -> tuple[int, str]:
        result = self.gatekeeper.kubectl(
            "run", name, f"--image={image}", "--restart=Never", check=False
        )
        return result.returncode, result.stdout + result.stderr

    def enforce_in(self, namespace: str, constraint: str) -> None:
        """Create `namespace` (with its default ServiceAccount) and apply `constraint` there."""
        self.gatekeeper.kubectl("create", "namespace", namespace, check=False)
        self.gatekeeper.apply(
            f"apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: default, namespace: "
            f"{namespace}}}\n"
        )
        self.gatekeeper.apply(constraint)

    def first_denial(self, namespace: str, name: str, image: str) -> str:
        """Run Pods of `image` in `namespace` until one is refused (the constraint is in); its
        message."""
        deadline = time.monotonic() + 60
        for attempt in itertools.count(1):
            denied = self.gatekeeper.kubectl(
                "run",
                f"{name}-{attempt}",
                "-n",
                namespace,
                f"--image={image}",
                "--restart=Never",
                check=False,
            )
            if denied.returncode != 0:
                return denied.stderr
            assert time.monotonic() < deadline, f"the constraint in {namespace} was never enforced"
            time.sleep(2)
        raise AssertionError("unreachable")

    def admitted_in(self, namespace: str, name: str, image: str) -> None:
        admitted = self.gatekeeper.kubectl(
            "run", name, "-n", namespace, f"--image={image}", "--restart=Never", check=False
        )
        assert admitted.returncode == 0, admitted.stderr

    def image_after_admission(self, name: str, image: str) -> str:
        """The image a Pod written with `image` has once admitted (a server-side dry run), or
        why it was refused."""
        result = self.gatekeeper.kubectl(
            "run",
            name,
            f"--image={image}",
            "--restart=Never",
            "--dry-run=server",
            "-o",
            "jsonpath={.spec.containers[0].image}",
            check=False,
        )
        return result.stdout.strip() if result.returncode == 0 else result.stderr


@pytest.fixture(scope="module")
def cluster(
    registry: Registry, keyless_stack: KeylessStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    work = tmp_path_factory.mktemp("e2e")
    signed_digest = push_image(registry.url, "e2e/app", "signed", seed="e2e-signed")
    unsigned_digest = push_image(registry.url, "e2e/app", "unsigned", seed="e2e-unsigned")
    keys = cosign.generate_key_pair("v3.1.3", work / "keys")
    cosign.sign("v3.1.3", keys.private, f"{registry.host}/e2e/app@{signed_digest}")
    security = cosign.generate_key_pair("v3.1.3", work / "security-keys")
    both_digest = push_image(registry.url, "e2e/app", "both", seed="e2e-both")
    for key in (keys.private, security.private):
        cosign.sign("v3.1.3", key, f"{registry.host}/e2e/app@{both_digest}")
    # cosign v3's defaults: a Sigstore bundle, and SLSA v1 provenance as a bundle; and an image
    # that carries only the provenance.
    predicate = cosign.write_predicate(
        work,
        "provenance.json",
        cosign.slsa_predicate("1", BUILDER, SOURCE, "refs/heads/main", "e" * 40),
    )
    for tag in ("bundled", "attested-only"):
        digest = push_image(registry.url, "e2e/app", tag, seed=f"e2e-{tag}")
        ref = f"{registry.host}/e2e/app@{digest}"
        if tag == "bundled":
            cosign.sign_bundle("v3.1.3", keys.private, ref)
        cosign.attest("v3.1.3", keys.private, ref, predicate, "slsaprovenance1", bundle=True)
    log_signer = generate("p256")  # signs the decision log's checkpoints
    log_key = work / "decisions.key"
    log_key.write_bytes(encrypt_cosign_key(log_signer, b""))
    (work / "decisions.pub").write_bytes(public_pem(log_signer))
    flaky_port = free_port()
    with run_registry(work / "flaky", port=flaky_port) as flaky:
        flaky_digest = push_image(flaky.url, "flaky/app", "v1", seed="e2e-flaky")
        cosign.sign("v3.1.3", keys.private, f"{flaky.host}/flaky/app@{flaky_digest}")
    stack = contextlib.ExitStack()
    stalling = stack.enter_context(run_stalling_registry(registry.url))
    config = write_trust(
        work / "trust",
        {"dev-team": [keys.public], "security-team": [security.public]},
        [registry.host, f"127.0.0.1:{flaky_port}", stalling.host, keyless_stack.registry],
    )
    trust = yaml.safe_load(config.read_text())
    trust["attestors"].append(
        {
            "name": "release-ci",
            "keyless": {
                "trustedRoot": str(keyless_stack.trusted_root),
                "transparencyLog": False,  # the private Sigstore has no log
                "certificateTransparency": False,
                "identities": [
                    {"issuer": keyless_stack.issuers["github"], "subject": GITHUB_IDENTITY}
                ],
            },
        }
    )
    config.write_text(yaml.safe_dump(trust))
    with (
        stack,
        run_gatekeeper(work / "cluster") as gatekeeper,
        run_provider(
            config,
            work / "provider",
            "--last-known-good",
            str(work / "last-known-good.db"),
            *("--decision-log", str(work / "decisions"), "--decision-log-key", str(log_key)),
            client_ca=gatekeeper.certs / "ca.crt",
            client_identity=(gatekeeper.certs / "tls.crt", gatekeeper.certs / "tls.key"),
        ) as provider,
    ):
        ca_bundle = base64.b64encode(provider.certs.ca.read_bytes()).decode()
        gatekeeper.apply((ROOT / "gatekeeper/signatures/template.yaml").read_text())
        # The pack's Provider objects (timeouts 3 s and 1 s) and pinning mutators, as installed.
        for name, path in (("signet", "validate"), ("signet-mutate", "mutate")):
            gatekeeper.apply(
                "apiVersion: externaldata.gatekeeper.sh/v1beta1\nkind: Provider\n"
                f"metadata: {{name: {name}}}\nspec:\n  url: {provider.url}/{path}\n"
                f"  timeout: {3 if path == 'validate' else 1}\n  caBundle: {ca_bundle}\n"
            )
        for mutator in sorted((ROOT / "gatekeeper/mutation").glob("pin-*.yaml")):
            gatekeeper.apply(mutator)
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
            # Namespaces keyless, exempting and outage-grace have constraints of their own.
            "  match: {kinds: [{apiGroups: [''], kinds: [Pod]}],"
            " excludedNamespaces: [keyless, exempting, outage-grace, revoke-watch]}\n"
            "  parameters: {requiredAttestors: [dev-team]}\n"
        )
        current = Cluster(
            gatekeeper,
            provider,
            registry,
            f"{registry.host}/e2e/app:signed",
            f"{registry.host}/e2e/app:unsigned",
            signed_digest,
            unsigned_digest,
            work / "flaky",
            flaky_port,
            flaky_digest,
            stalling,
            keyless_stack,
            config,
            keys.public,
            work / "decisions",
            work / "decisions.pub",
        )
        # Enforcement starts once Gatekeeper has ingested the template, constraint, Providers and
        # mutators: an unsigned image is refused, pinned.
        deadline = time.monotonic() + 90
        while True:
            code, output = current.run_pod("probe", current.unsigned)
            if code != 0 and f"image <{current.unsigned_pinned}>: not signed" in output:
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
        f"container <unsigned> image <{cluster.unsigned_pinned}>: not signed by <dev-team>: "
        f"NO_SIGNATURE -> sign {cluster.unsigned_pinned} with a dev-team key" in output
    )


def test_a_pod_signed_with_cosign_v3_defaults_is_admitted(cluster: Cluster) -> None:
    code, output = cluster.run_pod("bundled", f"{cluster.registry.host}/e2e/app:bundled")
    assert code == 0, output


def test_an_image_with_only_an_attestation_is_denied_as_unsigned(cluster: Cluster) -> None:
    code, output = cluster.run_pod("attested", f"{cluster.registry.host}/e2e/app:attested-only")
    assert code != 0
    assert "not signed by <dev-team>: NO_SIGNATURE" in output, output


def test_provenance_from_the_allowed_builder_is_required(cluster: Cluster) -> None:
    cluster.enforce_in(
        "release",
        "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: SignetImageSignatures\n"
        "metadata: {name: release-provenance}\nspec:\n"
        "  match: {kinds: [{apiGroups: [''], kinds: [Pod]}], namespaces: [release]}\n"
        "  parameters:\n    requiredAttestors: [dev-team]\n    requiredAttestations:\n"
        "      - predicateType: https://slsa.dev/provenance/v1\n"
        f"        builderIds: ['{BUILDER}']\n        sourceRepositories: ['{SOURCE}']\n",
    )
    # The classic-signed image has no provenance.
    denied = cluster.first_denial("release", "no-provenance", cluster.signed)
    assert "[release-provenance]" in denied
    assert "no https://slsa.dev/provenance/v1 attestation from builder" in denied
    cluster.admitted_in("release", "with-provenance", f"{cluster.registry.host}/e2e/app:bundled")


def test_a_keyless_image_is_admitted_only_for_the_attestors_identity(cluster: Cluster) -> None:
    cluster.enforce_in(
        "keyless",
        "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: SignetImageSignatures\n"
        "metadata: {name: require-release-ci}\nspec:\n"
        "  match: {kinds: [{apiGroups: [''], kinds: [Pod]}], namespaces: [keyless]}\n"
        "  parameters: {requiredAttestors: [release-ci]}\n",
    )
    # Signed keyless by mallory@example.test: not the release workflow.
    denied = cluster.first_denial(
        "keyless", "keyless-wrong", cluster.keyless["wrong-identity"].reference
    )
    assert "[require-release-ci]" in denied
    assert "release-ci" in denied and "NOT_SIGNED_BY_ATTESTOR" in denied
    cluster.admitted_in("keyless", "keyless-right", cluster.keyless["bundle-github"].reference)


def test_pinning_never_blocks_an_image_no_constraint_governs(cluster: Cluster) -> None:
    """An image its constraint exempts, at a registry that cannot be reached: the pinning
    mutator's lookup fails, the image is left as written, and the constraint — which exempts it
    — admits the Pod; the same unreachable registry's image, not exempted, is still refused."""
    down = f"127.0.0.1:{cluster.flaky_port}"  # the flaky registry, stopped between tests
    cluster.enforce_in(
        "exempting",
        "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: SignetImageSignatures\n"
        "metadata: {name: exempt-vendor}\nspec:\n"
        "  match: {kinds: [{apiGroups: [''], kinds: [Pod]}], namespaces: [exempting]}\n"
        "  parameters:\n    requiredAttestors: [dev-team]\n"
        f"    exemptImages: ['{down}/vendor/**']\n",
    )
    denied = cluster.first_denial("exempting", "not-exempt", f"{down}/flaky/app:v1")
    assert "[exempt-vendor]" in denied
    admitted = cluster.gatekeeper.kubectl(
        "run",
        "vendor",
        "-n",
        "exempting",
        f"--image={down}/vendor/tool:1",
        "--restart=Never",
        check=False,
    )
    assert admitted.returncode == 0, admitted.stderr


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
    assert f"initContainer <setup> image <{cluster.unsigned_pinned}>: not signed" in result.stderr


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
        f"ephemeralContainer <debugger> image <{cluster.unsigned_pinned}>: not signed by "
        "<dev-team>: NO_SIGNATURE" in denied.stderr
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
        "{apiGroups: [''], kinds: [Pod]}], namespaces: [default]}\n"
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
    # Gatekeeper runs the pinning mutators on the Pod it expands, too.
    assert f"image <{cluster.unsigned_pinned}>: not signed by <dev-team>: NO_SIGNATURE" in (
        result.stderr
    )
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
    pinned = f"{cluster.registry.host}/e2e/app@{cluster.signed_digest}"
    assert cluster.image_after_admission("pinned", cluster.signed) == pinned


def test_a_tag_is_denied_when_its_registry_stalls_the_pinning_lookup(cluster: Cluster) -> None:
    """The mutating webhook fails open (Ignore, 1 s) and the registry takes 1.5 s to answer the
    tag lookup: /mutate gives up at its own 0.8 s, and the Pod is refused, not admitted unpinned.
    With the registry answering again, the same Pod is admitted, pinned."""
    stalled = cluster.stalling
    image = f"{stalled.host}/e2e/app:signed"
    stalled.stall_tags = 1.5
    try:
        code, output = cluster.run_pod("stalled-tag", image)
    finally:
        stalled.stall_tags = 0
    assert code != 0, output
    assert stalled.tag_lookups >= 1
    assert "DEADLINE_EXCEEDED" in output or f"image <{image}>: not pinned to a digest" in output
    assert cluster.image_after_admission("healthy-tag", image) == (
        f"{stalled.host}/e2e/app@{cluster.signed_digest}"
    )


def test_a_tag_is_denied_when_the_mutating_webhook_fails_open(cluster: Cluster) -> None:
    """Gatekeeper's mutating webhook unreachable, with the chart's failurePolicy Ignore: the API
    server admits the Pod unmutated, and validation refuses the tag, naming the digest to pin."""
    with cluster.gatekeeper.mutation_unreachable():
        deadline = time.monotonic() + 30
        while True:
            code, output = cluster.run_pod("unmutated", cluster.signed)
            if code != 0:
                break
            cluster.gatekeeper.kubectl("delete", "pod", "unmutated", "--wait=false", check=False)
            assert time.monotonic() < deadline, "the webhook change never took effect"
            time.sleep(1)
    pinned = f"{cluster.registry.host}/e2e/app@{cluster.signed_digest}"
    assert (
        f"container <unmutated> image <{cluster.signed}>: not pinned to a digest; the pinning "
        f"mutator did not run" in output
    ), output
    assert f"Write it as <{pinned}>" in output
    assert "mutatingWebhookFailurePolicy: Fail" in output


def image_volume_pod(name: str, volume_image: str, app_image: str) -> str:
    return f"""apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: default}}
spec:
  containers:
    - name: app
      image: "{app_image}"
      volumeMounts: [{{name: payload, mountPath: /payload}}]
  volumes:
    - name: payload
      image: {{reference: "{volume_image}", pullPolicy: IfNotPresent}}
    - name: scratch
      emptyDir: {{}}
"""


def test_an_unsigned_image_volume_is_denied_and_a_signed_one_is_pinned(cluster: Cluster) -> None:
    """A signed container could run /payload/run.sh from an unsigned image volume."""
    gatekeeper = cluster.gatekeeper
    denied = gatekeeper.kubectl(
        "apply",
        "-f",
        "-",
        stdin=image_volume_pod("unsigned-volume", cluster.unsigned, cluster.signed),
        check=False,
    )
    assert denied.returncode != 0
    assert (
        f"imageVolume <payload> image <{cluster.unsigned_pinned}>: not signed by <dev-team>: "
        "NO_SIGNATURE" in denied.stderr
    ), denied.stderr
    admitted = gatekeeper.kubectl(
        "apply",
        "-f",
        "-",
        "--dry-run=server",
        "-o",
        "json",
        stdin=image_volume_pod("signed-volume", cluster.signed, cluster.signed),
        check=False,
    )
    assert admitted.returncode == 0, admitted.stderr
    volumes = json.loads(admitted.stdout)["spec"]["volumes"]
    pinned = f"{cluster.registry.host}/e2e/app@{cluster.signed_digest}"
    assert volumes[0]["image"]["reference"] == pinned
    assert "image" not in volumes[1], "the mutator leaves other volumes alone"


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
    admitted once the registry is back (within the breaker's cool-down), not after Gatekeeper's
    response cache (3 minutes by default; the README recommends none).
    By tag, pinning cannot resolve it (the image is left as written) and validation refuses it,
    unpinned and unverifiable; by digest, validation refuses it."""
    tag = f"127.0.0.1:{cluster.flaky_port}/flaky/app:v1"
    pinned = f"127.0.0.1:{cluster.flaky_port}/flaky/app@{cluster.flaky_digest}"
    code, output = cluster.run_pod("registry-down", tag)
    assert code != 0
    assert 'admission webhook "validation.gatekeeper.sh" denied the request' in output
    assert f"image <{tag}>: not pinned to a digest" in output
    # Refused connections, then (once the host's breaker opens) failing fast without calling it.
    host = f"127.0.0.1:{cluster.flaky_port}"
    assert f"cannot reach {host}" in output or f"{host} is failing fast" in output, output
    code, output = cluster.run_pod("registry-down-pinned", pinned)
    assert code != 0
    assert f"image <{pinned}>: not verified: the provider could not answer now" in output
    assert "REGISTRY_UNAVAILABLE" in output
    with run_registry(cluster.flaky, port=cluster.flaky_port):
        # Back within the breaker's cool-down (5 s) and one probe.
        for name, image in (("registry-back", tag), ("registry-back-pinned", pinned)):
            deadline = time.monotonic() + 15
            while (result := cluster.run_pod(name, image))[0] != 0:
                assert time.monotonic() < deadline, result[1]
                time.sleep(1)


def test_a_revoked_key_denies_within_two_seconds_of_the_edit(cluster: Cluster) -> None:
    """Time to revoke, with Gatekeeper as the README recommends (no response cache): from the
    trust config's edit to the first denial of an image admitted a moment before."""
    image = f"{cluster.registry.host}/e2e/app@{cluster.signed_digest}"
    assert cluster.image_after_admission("revoke-before", image) == image
    original = cluster.trust.read_text()
    trust = yaml.safe_load(original)
    fingerprint = load_public_key_pem(cluster.dev_key.read_bytes()).fingerprint
    trust["revoked"] = [
        {"key": fingerprint, "reason": "e2e: leaked", "time": "2026-12-01T00:00:00Z"}
    ]
    try:
        started = time.monotonic()
        cluster.trust.write_text(yaml.safe_dump(trust))
        attempts = 0
        while (answer := cluster.image_after_admission(f"revoke-{attempts}", image)) == image:
            attempts += 1
            assert time.monotonic() - started < 30, "the revocation never took effect"
        elapsed = time.monotonic() - started
        print(f"\ntime to revoke: {elapsed:.2f} s (first denial after {attempts} admissions)")
        assert "KEY_REVOKED" in answer and "e2e: leaked" in answer, answer
        assert elapsed <= 2.0, f"time to revoke {elapsed:.2f} s"
    finally:
        cluster.trust.write_text(original)
        deadline = time.monotonic() + 30
        while cluster.image_after_admission("revoke-after", image) != image:
            assert time.monotonic() < deadline, "the config put back was never loaded"
            time.sleep(0.2)


def test_a_revocation_in_the_trust_configmap_denies_within_two_seconds(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Time to revoke in a cluster: the trust config in the chart's ConfigMap, watched by a
    provider through the API server with the chart's service account and Role (list and watch
    of that ConfigMap alone, enforced by RBAC), reached by Gatekeeper through its own Provider;
    from `kubectl apply` of the edited ConfigMap to the first denial."""
    gatekeeper, namespace = cluster.gatekeeper, "signet-watch"
    gatekeeper.kubectl("create", "namespace", namespace)
    original = tmp_path / "trust.yaml"
    original.write_text(cluster.trust.read_text())
    chart = subprocess.run(
        [
            *(str(HELM), "template", "signet", str(ROOT / "gatekeeper/chart/signet")),
            *("--namespace", namespace, "--set-file", f"trust.config={original}"),
            *("--show-only", "templates/serviceaccount.yaml", "--show-only", "templates/rbac.yaml"),
            *("--show-only", "templates/configmap.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    gatekeeper.kubectl("apply", "-n", namespace, "-f", "-", stdin=chart)
    account = tmp_path / "serviceaccount"
    account.mkdir()
    token = gatekeeper.kubectl("create", "token", "signet", "-n", namespace, "--duration=1h")
    (account / "token").write_text(token.stdout.strip())
    (account / "ca.crt").write_bytes((gatekeeper.certs / "ca.crt").read_bytes())
    server = yaml.safe_load(gatekeeper.kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", server.rsplit(":", 1)[1])
    mounted = tmp_path / "mounted"  # the kubelet's copy: the seed, until the API answers
    mounted.mkdir()
    (mounted / "trust.yaml").write_text(original.read_text())
    image = f"{cluster.registry.host}/e2e/app@{cluster.signed_digest}"

    def admission(name: str) -> str:
        result = gatekeeper.kubectl(
            *("run", name, "-n", "revoke-watch", f"--image={image}", "--restart=Never"),
            *("--dry-run=server", "-o", "jsonpath={.spec.containers[0].image}"),
            check=False,
        )
        return result.stdout.strip() if result.returncode == 0 else result.stderr

    with run_provider(
        mounted,
        tmp_path / "provider",
        *("--trust-configmap", f"{namespace}/signet-trust"),
        *("--trust-mirror", str(tmp_path / "mirror"), "--kube-service-account", str(account)),
        client_ca=gatekeeper.certs / "ca.crt",
        client_identity=(gatekeeper.certs / "tls.crt", gatekeeper.certs / "tls.key"),
    ) as watching:
        ca_bundle = base64.b64encode(watching.certs.ca.read_bytes()).decode()
        gatekeeper.apply(
            "apiVersion: externaldata.gatekeeper.sh/v1beta1\nkind: Provider\n"
            f"metadata: {{name: signet-watch}}\nspec:\n  url: {watching.url}/validate\n"
            f"  timeout: 3\n  caBundle: {ca_bundle}\n"
        )
        cluster.enforce_in(
            "revoke-watch",
            "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: SignetImageSignatures\n"
            "metadata: {name: revoke-watch}\nspec:\n"
            "  match: {kinds: [{apiGroups: [''], kinds: [Pod]}], namespaces: [revoke-watch]}\n"
            "  parameters: {provider: signet-watch, requiredAttestors: [dev-team]}\n",
        )
        cluster.first_denial("revoke-watch", "watch-probe", cluster.unsigned)
        assert admission("watch-before") == image
        assert "mirrored" in watching.log.read_text()  # the API's version, not only the seed

        trust = yaml.safe_load(original.read_text())
        fingerprint = load_public_key_pem(cluster.dev_key.read_bytes()).fingerprint
        trust["revoked"] = [
            {"key": fingerprint, "reason": "e2e: leaked", "time": "2026-12-01T00:00:00Z"}
        ]
        edited = tmp_path / "edited.yaml"
        edited.write_text(yaml.safe_dump(trust))
        configmap = gatekeeper.kubectl(
            *("create", "configmap", "signet-trust", "-n", namespace),
            *(f"--from-file=trust.yaml={edited}", "--dry-run=client", "-o", "yaml"),
        ).stdout
        started = time.monotonic()
        gatekeeper.kubectl("apply", "-n", namespace, "-f", "-", stdin=configmap)
        attempts = 0
        while (answer := admission(f"watch-{attempts}")) == image:
            attempts += 1
            assert time.monotonic() - started < 60, "the revocation never took effect"
        elapsed = time.monotonic() - started
        print(f"\ntime to revoke through the ConfigMap: {elapsed:.2f} s ({attempts} admitted)")
        assert "KEY_REVOKED" in answer, answer
        assert elapsed <= 2.0, f"time to revoke {elapsed:.2f} s"


def test_a_stale_answer_is_admitted_only_where_the_constraint_allows_it(cluster: Cluster) -> None:
    """Last known good: the digest verified while its registry was up is answered stale after
    the provider restarts with the registry down; the constraint with outageGraceSeconds admits
    it, the one without denies it naming the outage; once the registry is back, fresh again."""
    pinned = f"127.0.0.1:{cluster.flaky_port}/flaky/app@{cluster.flaky_digest}"
    cluster.enforce_in(
        "outage-grace",
        "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: SignetImageSignatures\n"
        "metadata: {name: outage-grace}\nspec:\n"
        "  match: {kinds: [{apiGroups: [''], kinds: [Pod]}], namespaces: [outage-grace]}\n"
        "  parameters: {requiredAttestors: [dev-team], outageGraceSeconds: 600}\n",
    )
    cluster.first_denial("outage-grace", "grace-probe", cluster.unsigned)
    with run_registry(cluster.flaky, port=cluster.flaky_port):
        deadline = time.monotonic() + 15  # the previous test's breaker may still be open
        while cluster.image_after_admission("outage-fresh", pinned) != pinned:
            assert time.monotonic() < deadline, "the flaky image never verified"
            time.sleep(1)
    cluster.provider.restart()  # nothing in memory: only the store on disk remembers

    answer = cluster.image_after_admission("outage-default", pinned)
    assert "not verified now: REGISTRY_UNAVAILABLE" in answer, answer
    assert "admits such an answer for 0s (outageGraceSeconds)" in answer, answer
    cluster.admitted_in("outage-grace", "outage-admitted", pinned)
    with run_registry(cluster.flaky, port=cluster.flaky_port):
        deadline = time.monotonic() + 15
        while cluster.image_after_admission("outage-back", pinned) != pinned:
            assert time.monotonic() < deadline, "fresh answers never came back"
            time.sleep(1)


def test_the_decision_log_says_which_key_admitted_a_digest_and_who_denied_one(
    cluster: Cluster,
) -> None:
    """`signet audit query` on the log the provider has written during this run (and across its
    restart): verified against the checkpoints' key, then filtered."""

    def query(*filters: str) -> list[dict[str, Any]]:
        result = subprocess.run(
            [
                *(sys.executable, "-m", "signet.cli", "audit", "query", str(cluster.decisions)),
                *("--key", str(cluster.decisions_key), "--json", *filters),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return [json.loads(line)["decision"] for line in result.stdout.splitlines()]

    key_id = load_public_key_pem(cluster.dev_key.read_bytes()).short_id
    admitted = query("--digest", cluster.signed_digest, "--attestor", "dev-team")
    assert admitted, "no decision about the signed image"
    assert {s["key"] for d in admitted for s in d["signers"] if s["attestor"] == "dev-team"} == {
        key_id
    }
    denied = query("--digest", cluster.unsigned_digest, "--reason", "NO_SIGNATURE")
    assert denied and all(d["verified"] == [] for d in denied)
    revoked = query("--reason", "KEY_REVOKED")  # the time-to-revoke test's denials
    assert revoked and {d["digest"] for d in revoked} == {cluster.signed_digest}
    stale = [d for d in query("--digest", cluster.flaky_digest) if d["stale"]]
    assert stale and all(d["verified"] == ["dev-team"] for d in stale)


def test_with_the_provider_stopped_new_images_are_denied(cluster: Cluster) -> None:
    """Fail closed. (Gatekeeper still answers from its cache for images it asked about before.)
    The pinning mutator cannot reach the provider and leaves the image as written; validation
    cannot reach it either, and refuses — by tag and by digest."""
    new = push_image(cluster.registry.url, "e2e/app", "never-asked", seed="e2e-never-asked")
    cluster.provider.stop()
    for name, image in (
        ("provider-down", f"{cluster.registry.host}/e2e/app:never-asked"),
        ("provider-down-pinned", f"{cluster.registry.host}/e2e/app@{new}"),
    ):
        code, output = cluster.run_pod(name, image)
        assert code != 0, output
        assert 'admission webhook "validation.gatekeeper.sh" denied the request' in output
        assert "/validate" in output and "connection refused" in output


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
            "--set",
            "prometheusRule.enabled=true",
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
        "PrometheusRule",
        "Provider",
        "Role",
        "RoleBinding",
        "Secret",
        "Service",
        "ServiceAccount",
        "ServiceMonitor",
    }
    service_monitor_crd = module_source(
        "github.com/prometheus-operator/prometheus-operator",
        PROMETHEUS_OPERATOR_VERSION,
        "example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml",
    )
    rule_crd = module_source(
        "github.com/prometheus-operator/prometheus-operator",
        PROMETHEUS_OPERATOR_VERSION,
        "example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml",
    )
    for crd in (service_monitor_crd, rule_crd):
        cluster.gatekeeper.kubectl("apply", "--server-side", "-f", str(crd))
    for name in ("servicemonitors", "prometheusrules"):
        cluster.gatekeeper.kubectl(
            "wait", "--for=condition=Established", f"crd/{name}.monitoring.coreos.com"
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
    # The pack as a user applies it, as it is: no placeholder left to patch (the chart renders the
    # Provider objects, with a real caBundle).
    built = cluster.gatekeeper.kubectl("kustomize", str(ROOT / "gatekeeper")).stdout
    assert "caBundle" not in built
    pack = cluster.gatekeeper.kubectl(
        "apply", "--dry-run=server", "-f", "-", stdin=built, check=False
    )
    assert pack.returncode == 0, pack.stderr
    assert pack.stdout.count("(server dry run)") == 7


def test_the_charts_certificate_and_provider_ca_survive_an_upgrade(cluster: Cluster) -> None:
    """`helm install` then `helm upgrade` on the real apiserver: the CA the chart generated, and
    so the Provider objects' caBundle, stay what Gatekeeper already trusts; the Secret is kept
    across `helm uninstall`."""
    chart = ROOT / "gatekeeper" / "chart" / "signet"
    env = {**os.environ, "KUBECONFIG": str(cluster.gatekeeper.kubeconfig)}
    release = ["upgraded", str(chart), "-f", str(chart / "ci-values.yaml")]
    # In Gatekeeper's namespace, which its pinning mutators skip: the Deployment's expansion then
    # needs no provider (an earlier test may have stopped it).
    release += ["--namespace", "gatekeeper-system", "--set", "providers.validate.name=upgraded"]
    release += [
        "--set",
        "providers.mutate.name=upgraded-mutate",
        "--set",
        "serviceMonitor.enabled=false",
    ]

    def helm(*args: str) -> None:
        result = subprocess.run(
            [str(HELM), *args], capture_output=True, text=True, timeout=120, env=env, check=False
        )
        assert result.returncode == 0, result.stderr

    def issued() -> tuple[str, str, str]:
        secret = json.loads(
            cluster.gatekeeper.kubectl(
                "get", "secret", "-n", "gatekeeper-system", "upgraded-signet-tls", "-o", "json"
            ).stdout
        )
        provider = json.loads(
            cluster.gatekeeper.kubectl("get", "provider", "upgraded", "-o", "json").stdout
        )
        return secret["data"]["ca.crt"], secret["data"]["tls.crt"], provider["spec"]["caBundle"]

    helm("install", *release)
    try:
        ca, certificate, bundle = issued()
        assert bundle == ca
        signed = x509.load_pem_x509_certificate(base64.b64decode(certificate))
        signed.verify_directly_issued_by(x509.load_pem_x509_certificate(base64.b64decode(ca)))
        names = signed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert "upgraded-signet.gatekeeper-system.svc" in names.get_values_for_type(x509.DNSName)
        helm("upgrade", *release, "--set", "replicaCount=3")
        assert issued() == (ca, certificate, bundle)
    finally:
        helm("uninstall", "upgraded", "--namespace", "gatekeeper-system")
    kept = cluster.gatekeeper.kubectl(
        "get", "secret", "-n", "gatekeeper-system", "upgraded-signet-tls", check=False
    )
    assert kept.returncode == 0, "the serving certificate is kept across uninstall"
    cluster.gatekeeper.kubectl("delete", "secret", "-n", "gatekeeper-system", "upgraded-signet-tls")
