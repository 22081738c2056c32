"""A real Kubernetes control plane with Gatekeeper, as local processes on 127.0.0.1.

etcd (Debian's etcd-server), kube-apiserver and kubectl (built by `make tools` from the wrapper
module in tools/kube), and the Gatekeeper manager (`go install`), with Gatekeeper's webhooks
pointed at 127.0.0.1. No controllers run: Pods are admitted, never scheduled.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import ipaddress
import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .procs import free_port, stop_all

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / ".tools" / "kube-v1.34.4"
GATEKEEPER = ROOT / ".tools" / "gatekeeper-v3.23.1" / "gatekeeper"
GATEKEEPER_VERSION = "v3.23.1"


@dataclass(frozen=True)
class Gatekeeper:
    kubeconfig: Path
    certs: Path  # ca.crt, tls.crt, tls.key: Gatekeeper's webhook and client certificate
    work: Path
    webhook_port: int = 0

    def kubectl(
        self, *args: str, check: bool = True, stdin: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(KUBE / "kubectl"), "--kubeconfig", str(self.kubeconfig), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            input=stdin,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}:\n{result.stdout}\n{result.stderr}")
        return result

    def apply(self, document: str | Path) -> None:
        text = document.read_text() if isinstance(document, Path) else document
        self.kubectl("apply", "-f", "-", stdin=text)

    @contextlib.contextmanager
    def mutation_unreachable(self) -> Iterator[None]:
        """Point the mutating webhook at a port where nothing listens, as when Gatekeeper's
        mutation is down; with failurePolicy Ignore the API server then admits unmutated."""
        ca_bundle = base64.b64encode((self.certs / "ca.crt").read_bytes()).decode()
        self.apply(webhook_configurations(free_port(), ca_bundle, mutating_only=True))
        try:
            yield
        finally:
            self.apply(webhook_configurations(self.webhook_port, ca_bundle, mutating_only=True))


def _pem_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _issue(
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    name: str,
    usages: list[x509.ObjectIdentifier],
    organization: str | None = None,
) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, name)]
    if organization:
        attributes.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(attributes))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)


def _pki(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "e2e-ca")])
    now = datetime.datetime.now(datetime.UTC)
    ca = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    (directory / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    server = [ExtendedKeyUsageOID.SERVER_AUTH]
    both = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    for stem, usages, org in (
        ("apiserver", server, None),
        ("admin", [ExtendedKeyUsageOID.CLIENT_AUTH], "system:masters"),
        ("gatekeeper", both, None),
    ):
        cert, key = _issue(ca, ca_key, stem, usages, org)
        (directory / f"{stem}.crt").write_bytes(cert)
        (directory / f"{stem}.key").write_bytes(key)
    sa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (directory / "sa.key").write_bytes(_pem_key(sa))
    (directory / "sa.pub").write_bytes(
        sa.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def _wait(probe: object, what: str, timeout: float, log: Path | None = None) -> None:
    assert callable(probe)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if probe():
                return
        time.sleep(0.5)
    tail = log.read_text()[-3000:] if log and log.exists() else ""
    raise RuntimeError(f"{what} not ready in {timeout} s\n{tail}")


def module_source(module: str, version: str, inside: str) -> Path:
    """A folder of a Go module's source in the module cache (`make tools` downloads it)."""
    mod = subprocess.run(["go", "env", "GOMODCACHE"], capture_output=True, text=True, check=True)
    path = Path(mod.stdout.strip()) / f"{module}@{version}" / inside
    if not path.exists():
        raise RuntimeError(f"{path} is missing: run `make tools`")
    return path


def _crds() -> Path:
    return module_source(
        "github.com/open-policy-agent/gatekeeper/v3", GATEKEEPER_VERSION, "charts/gatekeeper/crds"
    )


@contextlib.contextmanager
def run_gatekeeper(work: Path, *, shutdown_delay: int = 10) -> Iterator[Gatekeeper]:
    """`shutdown_delay`: Gatekeeper's --shutdown-delay, the seconds it keeps serving after
    SIGTERM (10, its default, as in a Pod; 0 tears down at once, as the demo does)."""
    for binary in (KUBE / "kube-apiserver", KUBE / "kubectl", GATEKEEPER):
        if not binary.exists():
            raise RuntimeError(f"{binary} is missing: run `make tools`")
    pki = work / "pki"
    _pki(pki)
    processes: list[subprocess.Popen[bytes]] = []
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)

    def start(name: str, args: list[str], env: dict[str, str] | None = None) -> Path:
        log = logs / f"{name}.log"
        with log.open("w") as out:
            processes.append(subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env))
        return log

    etcd_port, etcd_peer, api_port = free_port(), free_port(), free_port()
    try:
        start(
            "etcd",
            [
                "etcd",
                "--data-dir",
                str(work / "etcd"),
                "--listen-client-urls",
                f"http://127.0.0.1:{etcd_port}",
                "--advertise-client-urls",
                f"http://127.0.0.1:{etcd_port}",
                "--listen-peer-urls",
                f"http://127.0.0.1:{etcd_peer}",
            ],
        )
        api_log = start(
            "kube-apiserver",
            [
                str(KUBE / "kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{etcd_port}",
                "--bind-address=127.0.0.1",
                f"--secure-port={api_port}",
                "--advertise-address=127.0.0.1",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={pki / 'ca.crt'}",
                "--service-account-issuer=https://kubernetes.default.svc",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                "--api-audiences=https://kubernetes.default.svc",
                "--authorization-mode=RBAC",
                "--service-cluster-ip-range=10.0.0.0/24",
                f"--cert-dir={work / 'apiserver-certs'}",
                # Image volumes: beta in 1.33-1.34 and off by default; on by default from 1.35.
                "--feature-gates=ImageVolume=true",
            ],
        )
        kubeconfig = work / "kubeconfig"
        kubeconfig.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "e2e",
                    "clusters": [
                        {
                            "name": "e2e",
                            "cluster": {
                                "server": f"https://127.0.0.1:{api_port}",
                                "certificate-authority": str(pki / "ca.crt"),
                            },
                        }
                    ],
                    "users": [
                        {
                            "name": "admin",
                            "user": {
                                "client-certificate": str(pki / "admin.crt"),
                                "client-key": str(pki / "admin.key"),
                            },
                        }
                    ],
                    "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": "admin"}}],
                }
            )
        )
        certs = work / "gatekeeper-certs"
        certs.mkdir()
        (certs / "ca.crt").write_bytes((pki / "ca.crt").read_bytes())
        (certs / "tls.crt").write_bytes((pki / "gatekeeper.crt").read_bytes())
        (certs / "tls.key").write_bytes((pki / "gatekeeper.key").read_bytes())
        webhook_port, health_port = free_port(), free_port()
        gatekeeper = Gatekeeper(kubeconfig, certs, work, webhook_port)
        _wait(
            lambda: gatekeeper.kubectl("get", "--raw", "/readyz", check=False).returncode == 0,
            "kube-apiserver",
            60,
            api_log,
        )
        gatekeeper.kubectl("apply", "--server-side", "-f", str(_crds()))
        gatekeeper.kubectl("wait", "--for=condition=established", "crd", "--all", "--timeout=60s")
        gatekeeper.kubectl("create", "namespace", "gatekeeper-system")
        gatekeeper.apply(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: default, namespace: default}\n"
        )
        audit_cache = work / "audit-cache"  # audit pages listed objects through it
        audit_cache.mkdir()
        metrics_port, prometheus_port = free_port(), free_port()
        gk_log = start(
            "gatekeeper",
            [
                str(GATEKEEPER),
                f"--kubeconfig={kubeconfig}",
                f"--port={webhook_port}",
                "--host=127.0.0.1",
                f"--cert-dir={certs}",
                "--disable-cert-rotation",
                "--debug-use-fake-pod",
                "--enable-external-data=true",
                f"--health-addr=127.0.0.1:{health_port}",
                f"--metrics-addr=127.0.0.1:{metrics_port}",
                f"--prometheus-port={prometheus_port}",
                "--audit-interval=5",
                f"--api-cache-dir={audit_cache}",
                # As Signet's README recommends: no response cache, so a revocation or a
                # registry's return reaches admission as soon as Signet has it.
                "--external-data-provider-response-cache-ttl=0s",
                f"--shutdown-delay={shutdown_delay}",
            ],
            env={"POD_NAMESPACE": "gatekeeper-system", "PATH": "/usr/bin:/bin"},
        )
        _wait(
            lambda: (
                subprocess.run(
                    ["curl", "-sf", f"http://127.0.0.1:{health_port}/readyz"],
                    capture_output=True,
                    check=False,
                ).returncode
                == 0
            ),
            "gatekeeper",
            90,
            gk_log,
        )
        ca_bundle = base64.b64encode((pki / "ca.crt").read_bytes()).decode()
        gatekeeper.apply(webhook_configurations(webhook_port, ca_bundle))
        yield gatekeeper
    finally:
        stop_all(list(reversed(processes)))


def webhook_configurations(port: int, ca_bundle: str, *, mutating_only: bool = False) -> str:
    """Gatekeeper's webhooks as its Helm chart installs them, but for the validating webhook's
    failure policy and timeout: Fail and 5 s, as Signet's README recommends. The mutating
    webhook keeps the chart's defaults (failurePolicy Ignore, 1 s), which Signet must be safe
    under."""
    rules = """
    rules:
      - apiGroups: ["*"]
        apiVersions: ["*"]
        operations: ["CREATE", "UPDATE"]
        resources: ["*", "pods/ephemeralcontainers"]"""
    validating = f"""apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: gatekeeper-validating-webhook-configuration
webhooks:
  - name: validation.gatekeeper.sh
    admissionReviewVersions: ["v1", "v1beta1"]
    sideEffects: None
    failurePolicy: Fail
    timeoutSeconds: 5
    matchPolicy: Exact
    namespaceSelector:
      matchExpressions:
        - {{key: kubernetes.io/metadata.name, operator: NotIn, values: [gatekeeper-system]}}
    clientConfig:
      url: https://127.0.0.1:{port}/v1/admit
      caBundle: {ca_bundle}{rules}
"""
    mutating = f"""apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: gatekeeper-mutating-webhook-configuration
webhooks:
  - name: mutation.gatekeeper.sh
    admissionReviewVersions: ["v1", "v1beta1"]
    sideEffects: None
    failurePolicy: Ignore
    timeoutSeconds: 1
    reinvocationPolicy: Never
    matchPolicy: Exact
    namespaceSelector:
      matchExpressions:
        - {{key: kubernetes.io/metadata.name, operator: NotIn, values: [gatekeeper-system]}}
    clientConfig:
      url: https://127.0.0.1:{port}/v1/mutate
      caBundle: {ca_bundle}{rules}
"""
    return mutating if mutating_only else f"{validating}---\n{mutating}"
