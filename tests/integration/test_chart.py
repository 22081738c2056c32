"""The Helm chart as rendered (`helm template`): the serving certificate and the Provider objects'
caBundle in each TLS mode, names that follow the release, and what it refuses to render. (That
the generated CA survives an upgrade on a real apiserver is in tests/e2e/test_gatekeeper.py.)"""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509

from signet.http.devcerts import write_dev_certs

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
HELM = ROOT / ".tools" / "helm-v3.22.0" / "helm"
CHART = ROOT / "gatekeeper" / "chart" / "signet"


def render(
    *settings: str, release: str = "signet", namespace: str = "gatekeeper-system"
) -> list[dict[str, Any]]:
    result = subprocess.run(
        [str(HELM), "template", release, str(CHART), "-f", str(CHART / "ci-values.yaml")]
        + [item for setting in settings for item in ("--set", setting)]
        + ["--namespace", namespace],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def only(documents: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in documents if d["kind"] == kind]


def providers(documents: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d["spec"] for d in only(documents, "Provider")}


def volume_secret(documents: list[dict[str, Any]], volume: str) -> str:
    (deployment,) = only(documents, "Deployment")
    (found,) = [v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == volume]
    name: str = found["secret"]["secretName"]
    return name


def test_by_default_the_chart_issues_its_certificate_and_the_providers_trust_its_ca() -> None:
    documents = render(release="prod", namespace="policy")
    (secret,) = only(documents, "Secret")
    assert secret["metadata"]["name"] == "prod-signet-tls"
    assert secret["type"] == "kubernetes.io/tls"
    data = {k: base64.b64decode(v) for k, v in secret["data"].items()}
    ca = x509.load_pem_x509_certificate(data["ca.crt"])
    served = x509.load_pem_x509_certificate(data["tls.crt"])
    served.verify_directly_issued_by(ca)
    names = served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "prod-signet.policy.svc" in names.get_values_for_type(x509.DNSName)
    assert volume_secret(documents, "tls") == "prod-signet-tls"
    found = providers(documents)
    assert set(found) == {"signet", "signet-mutate"}  # the names the pack's template/mutators use
    assert found["signet"]["url"] == "https://prod-signet.policy.svc:8443/validate"
    assert found["signet-mutate"]["url"] == "https://prod-signet.policy.svc:8443/mutate"
    assert (found["signet"]["timeout"], found["signet-mutate"]["timeout"]) == (3, 1)
    for spec in found.values():
        assert base64.b64decode(spec["caBundle"]) == data["ca.crt"]


def test_an_existing_secret_needs_its_ca_named(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"set tls\.caBundle"):
        render("tls.mode=existingSecret", "tls.existingSecret=mine")
    ca = write_dev_certs(tmp_path).ca.read_text()
    documents = render("tls.mode=existingSecret", "tls.existingSecret=mine", f"tls.caBundle={ca}")
    assert only(documents, "Secret") == []
    assert volume_secret(documents, "tls") == "mine"
    for spec in providers(documents).values():
        assert base64.b64decode(spec["caBundle"]).decode() == ca


def test_cert_manager_issues_into_the_charts_secret(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"issuerRef\.name is required"):
        render("tls.mode=certManager")
    ca = write_dev_certs(tmp_path).ca.read_text()
    documents = render(
        "tls.mode=certManager", "tls.certManager.issuerRef.name=internal-ca", f"tls.caBundle={ca}"
    )
    (certificate,) = only(documents, "Certificate")
    assert certificate["spec"]["secretName"] == "signet-tls"
    assert certificate["spec"]["issuerRef"]["name"] == "internal-ca"
    assert "signet.gatekeeper-system.svc" in certificate["spec"]["dnsNames"]
    assert volume_secret(documents, "tls") == "signet-tls"
    assert only(documents, "Secret") == []


def test_gatekeepers_ca_may_be_given_as_a_value(tmp_path: Path) -> None:
    assert volume_secret(render(), "gatekeeper-ca") == "gatekeeper-webhook-server-cert"
    ca = write_dev_certs(tmp_path).ca.read_text()
    documents = render(f"gatekeeper.caBundle={ca}")
    assert volume_secret(documents, "gatekeeper-ca") == "signet-gatekeeper-ca"
    (secret,) = [s for s in only(documents, "Secret") if s["metadata"]["name"].endswith("-ca")]
    assert base64.b64decode(secret["data"]["ca.crt"]).decode() == ca


def test_providers_can_be_left_to_the_admin() -> None:
    assert providers(render("providers.create=false")) == {}


def test_an_unknown_tls_mode_is_refused() -> None:
    # by the schema, and (should a schema-less tool render it) by the template itself
    with pytest.raises(RuntimeError, match="value must be one of 'generate', 'existingSecret'"):
        render("tls.mode=selfsigned")


def test_a_disruption_budget_only_for_more_than_one_replica() -> None:
    assert only(render("replicaCount=1"), "PodDisruptionBudget") == []
    (budget,) = only(render("replicaCount=2"), "PodDisruptionBudget")
    assert budget["spec"]["minAvailable"] == 1


def test_a_typo_or_a_wrong_value_is_refused_by_the_schema() -> None:
    with pytest.raises(RuntimeError, match="additional properties 'existingsecret' not allowed"):
        render("tls.existingsecret=mine")
    with pytest.raises(RuntimeError, match="value must be one of 'digest', 'tag-digest'"):
        render("serve.pinMode=tag")


def test_scheduling_identity_and_monitoring_knobs() -> None:
    documents = render(
        "priorityClassName=system-cluster-critical",
        "imagePullSecrets[0].name=pull",
        "serviceMonitor.labels.release=prometheus",
        "serviceMonitor.namespace=monitoring",
    )
    (deployment,) = only(documents, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["priorityClassName"] == "system-cluster-critical"
    assert pod["imagePullSecrets"] == [{"name": "pull"}]
    (account,) = only(documents, "ServiceAccount")
    assert pod["serviceAccountName"] == account["metadata"]["name"] == "signet"
    assert account["automountServiceAccountToken"] is True  # for trust.watch (below)
    (monitor,) = only(documents, "ServiceMonitor")
    assert monitor["metadata"]["namespace"] == "monitoring"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["gatekeeper-system"]}


def test_the_trust_configmap_is_watched_with_access_to_it_alone() -> None:
    documents = render()
    (deployment,) = only(documents, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    (configmap,) = only(documents, "ConfigMap")
    name = configmap["metadata"]["name"]
    assert f"--trust-configmap=gatekeeper-system/{name}" in container["args"]
    (role,) = only(documents, "Role")
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": [name],
            "verbs": ["list", "watch"],
        }
    ]
    (binding,) = only(documents, "RoleBinding")
    (account,) = only(documents, "ServiceAccount")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": account["metadata"]["name"],
            "namespace": "gatekeeper-system",
        }
    ]

    off = render("trust.watch=false")
    (deployment,) = only(off, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert not [a for a in container["args"] if a.startswith("--trust-configmap")]
    assert deployment["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
    assert not [d for d in off if d["kind"] in ("Role", "RoleBinding")]


def test_the_decision_log_console_and_alerts_get_their_args_secrets_and_port() -> None:
    documents = render(
        "decisionLog.enabled=true",
        "decisionLog.key.name=log-key",
        "decisionLog.password.name=log-password",
        "decisionLog.persistentVolumeClaim=audit",
        "console.enabled=true",
        "console.token.name=console",
        "console.allowChecks=true",
        "alerts.alertmanager=http://alertmanager.monitoring.svc:9093",
    )
    (deployment,) = only(documents, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    for arg in (
        "--decision-log=/var/lib/signet-audit",
        "--decision-log-key=/etc/signet/decision-log/key",
        "--decision-log-key-password-file=/etc/signet/decision-log-password/password",
        "--console-port=8444",
        "--console-token-file=/etc/signet/console/token",
        "--console-allow-checks",
        "--alertmanager=http://alertmanager.monitoring.svc:9093",
    ):
        assert arg in container["args"], container["args"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["decision-log"]["persistentVolumeClaim"] == {"claimName": "audit"}
    assert volumes["decision-log-key"]["secret"]["secretName"] == "log-key"
    assert volumes["console-token"]["secret"]["items"] == [{"key": "token", "path": "token"}]
    (service,) = only(documents, "Service")
    assert {"name": "console", "port": 8444, "targetPort": "console"} in service["spec"]["ports"]

    with pytest.raises(RuntimeError, match=r"decisionLog\.enabled needs decisionLog\.key\.name"):
        render("decisionLog.enabled=true")
    with pytest.raises(RuntimeError, match=r"console\.enabled needs console\.token\.name"):
        render("console.enabled=true")
    with pytest.raises(RuntimeError, match="does not match"):
        render("alerts.webhook=file:///etc/passwd")


def test_keys_and_roots_can_be_mounted_from_secrets_and_configmaps() -> None:
    documents = render(
        "trustMounts[0].name=keys",
        "trustMounts[0].secret=signet-keys",
        "trustMounts[1].name=sigstore",
        "trustMounts[1].configMap=trusted-root",
    )
    (deployment,) = only(documents, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["mount-keys"] == "/etc/signet/mounts/keys"
    assert mounts["mount-sigstore"] == "/etc/signet/mounts/sigstore"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["mount-keys"]["secret"] == {"secretName": "signet-keys"}
    assert volumes["mount-sigstore"]["configMap"] == {"name": "trusted-root"}
    with pytest.raises(RuntimeError, match="give secret or configMap"):
        render("trustMounts[0].name=keys")


def test_a_shared_cache_gets_its_url_secret_and_password_as_files() -> None:
    documents = render(
        "sharedCache.url=rediss://valkey.cache.svc:6380/0",
        "sharedCache.secret.name=signet-shared-cache",
        "sharedCache.password.name=valkey-auth",
        "sharedCache.password.key=pass",
    )
    (deployment,) = only(documents, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    shared = [a for a in container["args"] if a.startswith("--shared-cache")]
    assert shared == [
        "--shared-cache=rediss://valkey.cache.svc:6380/0",
        "--shared-cache-secret=/etc/signet/shared-cache/secret",
        "--shared-cache-password-file=/etc/signet/shared-cache-password/password",
    ]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["shared-cache-secret"]["mountPath"] == "/etc/signet/shared-cache"
    assert mounts["shared-cache-password"]["mountPath"] == "/etc/signet/shared-cache-password"
    assert all(
        mounts[name]["readOnly"] for name in ("shared-cache-secret", "shared-cache-password")
    )
    volumes = {v["name"]: v.get("secret") for v in pod["volumes"]}
    assert volumes["shared-cache-secret"] == {
        "secretName": "signet-shared-cache",
        "items": [{"key": "secret", "path": "secret"}],
    }
    assert volumes["shared-cache-password"] == {
        "secretName": "valkey-auth",
        "items": [{"key": "pass", "path": "password"}],
    }


def test_without_a_shared_cache_nothing_of_it_is_rendered() -> None:
    (deployment,) = only(render(), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert not [a for a in pod["containers"][0]["args"] if a.startswith("--shared-cache")]
    assert not [v for v in pod["volumes"] if v["name"].startswith("shared-cache")]
    # a password alone, or a secret alone, turns nothing on
    (deployment,) = only(render("sharedCache.secret.name=s"), "Deployment")
    assert not [
        v for v in deployment["spec"]["template"]["spec"]["volumes"] if "shared" in v["name"]
    ]


def test_a_shared_cache_needs_its_secret_and_a_redis_url() -> None:
    with pytest.raises(RuntimeError, match=r"sharedCache\.url needs sharedCache\.secret\.name"):
        render("sharedCache.url=redis://valkey:6379/0")
    with pytest.raises(RuntimeError, match=r"/sharedCache/url.*does not match"):
        render("sharedCache.url=http://valkey:6379", "sharedCache.secret.name=s")
