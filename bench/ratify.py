"""Ratify v1.4.6 as a standalone process beside Signet, for the benchmark.

Ratify (the CNCF external-data provider for Gatekeeper) is built from the Go module proxy by
bench/install-ratify.sh into the shared tool cache, and run here with the configuration its own
Helm chart (charts/ratify 1.15.7, appVersion v1.4.6, in the module's source) gives a cosign-key
deployment, translated from the chart's custom resources to Ratify's standalone config file:

- the ORAS store (`store-oras`): `cosignEnabled` (chart `cosign.enabled: true`) and the chart's
  ORAS cache (`oras.cache.enabled: true`, `oras.cache.ttl: 10`, seconds); `useHttp: true` (chart
  `oras.useHttp`), since the bench's registries are plain HTTP. Ratify has no per-host setting:
  `useHttp` applies to every registry, which is why `run_ratify` insists on loopback registries.
  Its local blob cache (the chart's `ratify-cache` emptyDir at /.ratify/local_oras_cache) is a
  directory under `work`.
- the cosign verifier (`verifier-cosign`): the chart's non-legacy form, one trust policy
  `default` with the chart's `cosign.scopes: ["*"]` and the key; the chart names the key through an
  inline KeyManagementProvider (`cosignKeys`), a CRD-only resource, so here it is the same
  P-256 PEM as a `file` key. `tLogVerify` is false (the chart's `cosign.tLogVerify`, default
  true): the bench signs without a transparency log, and true would fetch Rekor's keys from the
  internet.
- the policy (`ratify-policy`): the chart's default config policy, `default: all`.
- the executor timeouts (4900 ms / 1950 ms: the chart's 5 s and 2 s Gatekeeper timeouts less 100
  and 50 ms), the logger (`text`, level `info`) and `crl.cache.enabled: true`, from the chart's
  ConfigMap.
- the server flags of the chart's Deployment, including its Ratify-wide verification cache
  (`provider.cache`: `--cache-enabled=true --cache-type=ristretto --cache-name=dapr-redis
  --cache-size=256 --cache-ttl=10s`), TLS from `--cert-dir` (tls.crt/tls.key) and mutual TLS
  with `--ca-cert-file` (Gatekeeper's CA in a cluster; here the dev CA, as for Signet).

Unlike the chart: the verify endpoint listens on 127.0.0.1 (the chart: `:6001`), the CRD manager
is off (`--enable-crd-manager` needs a Kubernetes API; its health listener goes with it), the
notation verifier is not configured (no notation certificates in a cosign-key deployment), and
the Prometheus exporter is off: the chart enables it on port 8888, but Ratify binds it on every
interface (`:8888`) with no way to choose the address, and test traffic stays on 127.0.0.0/8.

`python -m bench.ratify --selftest` checks all of this end to end (see `_selftest`).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.install_go_tool import go_tool
from bench.load import client_context
from bench.targets import provider_request
from signet.http.devcerts import DevCerts
from tests.support.procs import free_port

RATIFY_VERSION = "v1.4.6"
VERIFY_PATH = "/ratify/gatekeeper/v1/verify"
# The artifact type the ORAS store gives a cosign `.sig` tag, and the verifier's (chart's) filter.
COSIGN_ARTIFACT_TYPE = "application/vnd.dev.cosign.artifact.sig.v1+json"
ROOT = Path(__file__).resolve().parents[1]
INSTALL_SCRIPT = ROOT / "bench" / "install-ratify.sh"
START_TIMEOUT = 60.0
# After SIGTERM Ratify drains connections for up to 6 s, logs this line, then sleeps 5 s "for
# controllers/manager to shutdown" (there are none standalone): once the line is there, KILL.
STOP_TIMEOUT = 15.0
SHUTDOWN_DONE = "ratify server shutdown complete"

__all__ = [
    "RATIFY_VERSION",
    "VERIFY_PATH",
    "RatifyServer",
    "provider_request",
    "ratify_args",
    "ratify_binary",
    "ratify_config",
    "ratify_verified",
    "run_ratify",
]


@dataclass(frozen=True)
class RatifyServer:
    port: int
    path: str  # the external-data endpoint path
    pid: int
    log: Path
    config: Path
    key: Path  # the public key as Ratify reads it (named in its answers' keyInformation)
    startup_seconds: float  # from exec to the first answer over mTLS

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}{self.path}"


def ratify_binary() -> Path:
    """The Ratify binary, built by bench/install-ratify.sh first if it is not there yet."""
    return go_tool(INSTALL_SCRIPT)


def ratify_config(*, public_key: Path, local_cache: Path) -> dict[str, Any]:
    """Ratify's standalone config.json: the chart's ConfigMap plus its Store, Verifier and
    Policy resources for a cosign-key deployment (see the module docstring)."""
    return {
        # ConfigMap `ratify-configuration` (templates/configmap.yaml), as the chart renders it
        # with its defaults (`logger.requestHeaders.traceIDHeaderName: [""]` renders as "[]").
        "logger": {"formatter": "text", "requestHeaders": {"traceIDHeaderName": "[]"}},
        "executor": {"verificationRequestTimeout": 4900, "mutationRequestTimeout": 1950},
        "crl": {"cache": {"enabled": True}},
        # Store `store-oras` (templates/store.yaml).
        "store": {
            "version": "1.0.0",
            "plugins": [
                {
                    "name": "oras",
                    "useHttp": True,
                    "cosignEnabled": True,
                    "cacheEnabled": True,
                    "ttl": 10,
                    "localCachePath": str(local_cache),
                }
            ],
        },
        # Verifier `verifier-cosign` (templates/verifier.yaml, the non-legacy branch). The CRD
        # manager names a verifier after its resource and types it by its spec.name.
        "verifier": {
            "version": "1.0.0",
            "plugins": [
                {
                    "name": "verifier-cosign",
                    "type": "cosign",
                    "artifactTypes": COSIGN_ARTIFACT_TYPE,
                    "trustPolicies": [
                        {
                            "name": "default",
                            "version": "1.0.0",
                            "scopes": ["*"],
                            "keys": [{"file": str(public_key)}],
                            "tLogVerify": False,
                        }
                    ],
                }
            ],
        },
        # Policy `ratify-policy` (templates/policy.yaml, `policy.useRego: false`).
        "policy": {
            "version": "1.0.0",
            "plugin": {"name": "configPolicy", "artifactVerificationPolicies": {"default": "all"}},
        },
    }


def ratify_args(
    binary: Path, *, port: int, config: Path, cert_dir: Path, client_ca: Path
) -> list[str]:
    """`ratify serve` as the chart's Deployment runs it (templates/deployment.yaml), less the CRD
    manager and the metrics exporter, on 127.0.0.1."""
    return [
        str(binary),
        "serve",
        "--http",
        f"127.0.0.1:{port}",
        "-c",
        str(config),
        f"--cert-dir={cert_dir}",
        f"--ca-cert-file={client_ca}",
        # provider.cache (values.yaml): enabled, ristretto, 256 MB, 10 s; the chart passes
        # `default "dapr-redis" provider.cache.name` (only the dapr cache type reads it).
        "--cache-enabled=true",
        "--cache-type=ristretto",
        "--cache-name=dapr-redis",
        "--cache-size=256",
        "--cache-ttl=10s",
        # instrumentation.metricsEnabled is true in the chart; off here (it binds `:8888`).
        "--metrics-enabled=false",
        "--metrics-type=prometheus",
        "--metrics-port=8888",
        # Only the CRD manager listens here; bound to loopback all the same.
        "--health-port=127.0.0.1:9099",
    ]


def _check_loopback(host: str) -> None:
    name, _, port = host.rpartition(":")
    try:
        loopback = ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        loopback = False
    if not loopback or not port.isdigit():
        raise ValueError(f"registry {host!r} is not host:port on 127.0.0.0/8")


def _tcp_listeners(pid: int) -> list[tuple[str, int]]:
    """The TCP sockets process `pid` is listening on, as (address, port), from /proc."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    found = []
    for table, size in (("tcp", 4), ("tcp6", 16)):
        path = Path(f"/proc/{pid}/net/{table}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A" or fields[9] not in inodes:  # 0A: LISTEN
                continue
            address_hex, port_hex = fields[1].split(":")
            raw = bytes.fromhex(address_hex)
            # /proc prints each 32-bit word in host (little-endian) order.
            words = b"".join(raw[i : i + 4][::-1] for i in range(0, size, 4))
            found.append((str(ipaddress.ip_address(words)), int(port_hex, 16)))
    return found


def _tail(log: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _stop(process: subprocess.Popen[bytes], log: Path) -> None:
    """TERM; KILL once Ratify has logged that its server is shut down, or after STOP_TIMEOUT."""
    if process.poll() is not None:
        return
    process.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return
        if SHUTDOWN_DONE in _tail(log, 5):
            break
        time.sleep(0.05)
    process.kill()
    process.wait()


@contextmanager
def run_ratify(
    work: Path,
    *,
    registries: Sequence[str],
    public_key: Path,
    certs: DevCerts,
    gomaxprocs: int | None = None,
) -> Iterator[RatifyServer]:
    """Ratify serving Gatekeeper's external-data API over mTLS on 127.0.0.1, for a `with` block.

    `registries` (host:port, plain HTTP, on 127.0.0.0/8) are the only registries it may be
    pointed at; `public_key` is the cosign public key (PEM) it trusts for every image; `certs`
    the server certificate it serves and the CA whose client certificates it requires. Its
    config, certificates, caches and log are in `work`/ratify. `gomaxprocs` sets GOMAXPROCS
    (under the chart's 1-CPU limit a Go 1.25+ binary would pick 1 in a cluster).
    """
    if not registries:
        raise ValueError("run_ratify needs at least one registry")
    for host in registries:
        _check_loopback(host)
    binary = ratify_binary()
    home = work / "ratify"
    cert_dir = home / "tls"
    client_ca = cert_dir / "client-ca" / "ca.crt"  # where the chart mounts Gatekeeper's CA
    key = home / "cosign" / "cosign.pub"
    local_cache = home / "local_oras_cache"
    for directory in (client_ca.parent, key.parent, home / "home", home / "docker"):
        directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(certs.server_cert, cert_dir / "tls.crt")
    shutil.copyfile(certs.server_key, cert_dir / "tls.key")
    (cert_dir / "tls.key").chmod(0o600)
    shutil.copyfile(certs.ca, client_ca)
    shutil.copyfile(public_key, key)
    config = home / "config.json"
    config.write_text(
        json.dumps(ratify_config(public_key=key, local_cache=local_cache), indent=2) + "\n"
    )
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        # Ratify's ~/.ratify (plugins dir, default caches), and no docker credentials at all:
        # the ORAS store's default auth provider reads $DOCKER_CONFIG/config.json.
        "HOME": str(home / "home"),
        "RATIFY_CONFIG": str(home),
        "DOCKER_CONFIG": str(home / "docker"),
        # The chart's container environment (templates/deployment.yaml, values.yaml).
        "RATIFY_LOG_LEVEL": "info",
        "RATIFY_NAMESPACE": "gatekeeper-system",
        "RATIFY_NAME": "ratify",
        "RATIFY_CERT_ROTATION": "0",
        "RATIFY_EXPERIMENTAL_HIGH_AVAILABILITY": "0",
    }
    if gomaxprocs is not None:
        env["GOMAXPROCS"] = str(gomaxprocs)
    args = ratify_args(binary, port=port, config=config, cert_dir=cert_dir, client_ca=client_ca)
    log = home / "ratify.log"
    context = client_context(certs.ca, certs.client_cert, certs.client_key)
    with log.open("wb") as out:
        started = time.perf_counter()
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            _wait_ready(process, port, context, log)
            startup = time.perf_counter() - started
            off_loopback = [
                (address, listened)
                for address, listened in _tcp_listeners(process.pid)
                if not ipaddress.ip_address(address).is_loopback
            ]
            if off_loopback:
                raise RuntimeError(f"Ratify listens off loopback: {off_loopback}")
            yield RatifyServer(port, VERIFY_PATH, process.pid, log, config, key, startup)
        except BaseException:
            print(f"--- {log} (last lines) ---\n{_tail(log)}", file=sys.stderr)
            raise
        finally:
            _stop(process, log)


def _wait_ready(
    process: subprocess.Popen[bytes], port: int, context: ssl.SSLContext, log: Path
) -> None:
    """Until an empty ProviderRequest gets a ProviderResponse over mTLS."""
    deadline = time.monotonic() + START_TIMEOUT
    url = f"https://127.0.0.1:{port}{VERIFY_PATH}"
    with httpx.Client(verify=context, timeout=2) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"Ratify exited with code {process.returncode}:\n{_tail(log)}")
            try:
                answer = client.post(url, content=provider_request([]))
                if answer.status_code == 200 and answer.json().get("kind") == "ProviderResponse":
                    return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.05)
    raise RuntimeError(f"Ratify did not answer on {url} within {START_TIMEOUT} s")


def ratify_verified(value: Any, *, key: Path | None = None) -> bool:
    """True iff one ProviderResponse item's value says the image verified: Ratify's verdict
    (`isSuccess`, what its Gatekeeper template checks) and a cosign verifier report saying a
    signature verified with a configured key file (`key`, if given: that one, as Ratify reads it,
    i.e. `RatifyServer.key`)."""
    if not isinstance(value, dict) or value.get("isSuccess") is not True:
        return False
    for report in value.get("verifierReports") or ():
        if not isinstance(report, dict) or report.get("isSuccess") is not True:
            continue
        if report.get("verifierType") != "cosign":
            continue
        extensions = report.get("extensions")
        signatures = extensions.get("signatures") if isinstance(extensions, dict) else None
        for signature in signatures or ():
            verifications = signature.get("verifications") if isinstance(signature, dict) else None
            for verification in verifications or ():
                if not isinstance(verification, dict) or verification.get("isSuccess") is not True:
                    continue
                information = verification.get("keyInformation")
                if not isinstance(information, dict) or information.get("provider") != "file":
                    continue
                if key is None or information.get("name") == str(key):
                    return True
    return False


# --- self-test -------------------------------------------------------------------------------


async def _sign_all(host: str, images: list[str], key: Any, *, bundle: bool = False) -> None:
    """bench/run.py's sign_all: Signet's own cosign-classic (or bundle) signing."""
    from signet.model.reference import parse
    from signet.oci.client import RegistryClient
    from signet.signing.bundle import sign_bundle
    from signet.signing.classic import sign_image
    from signet.trust.model import RegistrySettings, TrustConfig

    trust = TrustConfig((), (RegistrySettings(host, insecure=True),))
    client = RegistryClient(lambda: trust)
    try:
        for image in images:
            await (sign_bundle if bundle else sign_image)(client, parse(image), key)
    finally:
        await client.aclose()


def _selftest() -> int:
    from signet.crypto.keyfile import encrypt_cosign_key, generate, public_pem
    from signet.http.devcerts import write_dev_certs
    from tests.support import cosign
    from tests.support.images import push_image
    from tests.support.referrers_registry import BINARY as REFERRERS_BINARY
    from tests.support.referrers_registry import run_referrers_registry
    from tests.support.registry import run_registry

    started = time.perf_counter()
    binary = ratify_binary()
    print(f"ratify binary: {binary} ({time.perf_counter() - started:.1f} s to get it)")
    version = subprocess.run([str(binary), "version"], capture_output=True, text=True, check=False)
    print(f"ratify version: {version.stdout.strip() or version.stderr.strip()}")

    with tempfile.TemporaryDirectory(prefix="ratify-selftest-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        certs = write_dev_certs(work / "certs")
        registry = stack.enter_context(run_registry(work / "registry"))
        key = generate("p256")
        public_key = work / "ci.pub"
        public_key.write_bytes(public_pem(key))
        other_key = generate("p256")

        # expected: image -> should Ratify say it verified with `key`?
        expected: dict[str, bool] = {}

        def image(where: str, base_url: str, tag: str, verified: bool) -> str:
            ref = f"{where}/selftest/app:{tag}"
            push_image(base_url, "selftest/app", tag, seed=f"ratify-selftest-{where}-{tag}")
            expected[ref] = verified
            return ref

        signed = image(registry.host, registry.url, "signet-classic", True)
        image(registry.host, registry.url, "unsigned", False)
        wrong_key = image(registry.host, registry.url, "other-key", False)
        asyncio.run(_sign_all(registry.host, [signed], key))
        asyncio.run(_sign_all(registry.host, [wrong_key], other_key))

        informational: list[str] = []
        # Signet's Sigstore-bundle signature (cosign v3's default format: an OCI 1.1 referrer, or
        # here, without the referrers API, the `sha256-<hex>` tag schema). Reported, not asserted:
        # Ratify v1.4.6's ORAS store and cosign verifier know only the classic `.sig` tag.
        bundled = f"{registry.host}/selftest/app:signet-bundle"
        push_image(registry.url, "selftest/app", "signet-bundle", seed="ratify-selftest-bundle")
        asyncio.run(_sign_all(registry.host, [bundled], key, bundle=True))
        informational.append(bundled)

        registries = [registry.host]
        if REFERRERS_BINARY.exists():
            referrers = stack.enter_context(run_referrers_registry(work / "referrers"))
            registries.append(referrers.host)
            on_referrers = image(referrers.host, referrers.url, "signet-classic", True)
            asyncio.run(_sign_all(referrers.host, [on_referrers], key))
            bundled_api = f"{referrers.host}/selftest/app:signet-bundle"
            push_image(referrers.url, "selftest/app", "signet-bundle", seed="ratify-selftest-ba")
            asyncio.run(_sign_all(referrers.host, [bundled_api], key, bundle=True))
            informational.append(bundled_api)
        else:
            print(f"skipped the referrers registry: {REFERRERS_BINARY} is not built")

        # The real cosign CLI, classic format, no transparency log, with the same key.
        try:
            cosign.cosign_path("v3.1.3")
        except RuntimeError as error:
            print(f"skipped cosign: {error}")
        else:
            cosign_dir = work / "cosign"
            cosign_dir.mkdir()
            private = cosign_dir / "cosign.key"
            private.write_bytes(encrypt_cosign_key(key, b""))
            by_cosign = f"{registry.host}/selftest/app:cosign-classic"
            digest = push_image(registry.url, "selftest/app", "cosign-classic", seed=by_cosign)
            expected[by_cosign] = True
            cosign.sign("v3.1.3", private, f"{registry.host}/selftest/app@{digest}")

        with run_ratify(work, registries=registries, public_key=public_key, certs=certs) as server:
            print(f"ratify started in {server.startup_seconds:.2f} s on {server.url}")
            print(f"ratify config ({server.config}):\n{server.config.read_text()}")
            listeners = _tcp_listeners(server.pid)
            print(f"ratify listens on: {listeners}")
            assert listeners == [("127.0.0.1", server.port)], listeners

            context = client_context(certs.ca, certs.client_cert, certs.client_key)
            keys = [*expected, *informational]
            with httpx.Client(verify=context, timeout=30) as client:
                times = []
                answers = []
                for _ in range(2):  # cold, then from Ratify's 10 s verification cache
                    begin = time.perf_counter()
                    response = client.post(server.url, content=provider_request(keys))
                    times.append(time.perf_counter() - begin)
                    assert response.status_code == 200, (response.status_code, response.text)
                    answers.append(response.text)
                framing = {
                    name: response.headers[name]
                    for name in ("content-length", "transfer-encoding")
                    if name in response.headers
                }
                print(f"answer framing: HTTP/{response.http_version[5:]} {framing}")
            print("ratify's raw answer (cold):")
            print(answers[0])
            print(
                f"request of {len(keys)} keys: cold {times[0] * 1000:.0f} ms, "
                f"cached {times[1] * 1000:.0f} ms"
            )

            failures = []
            for raw in answers:
                body = json.loads(raw)
                assert body.get("kind") == "ProviderResponse", body
                assert not body["response"].get("systemError"), body
                items = {item["key"]: item for item in body["response"]["items"]}
                assert set(items) == set(keys), sorted(items)
                for ref, want in expected.items():
                    got = ratify_verified(items[ref].get("value"), key=server.key)
                    if got != want:
                        failures.append(f"{ref}: verified={got}, expected {want}: {items[ref]}")
            for ref in informational:
                item = json.loads(answers[0])["response"]["items"]
                value = next(i for i in item if i["key"] == ref)
                print(f"(not asserted) {ref}: verified={ratify_verified(value.get('value'))}")

            # Mutual TLS: without a client certificate the handshake or the request must fail.
            bare = ssl.create_default_context(cafile=str(certs.ca))
            try:
                with httpx.Client(verify=bare, timeout=5) as client:
                    refused = client.post(server.url, content=provider_request([]))
                failures.append(f"no client certificate, yet HTTP {refused.status_code}")
            except (httpx.HTTPError, ssl.SSLError) as error:
                print(f"without a client certificate: refused ({type(error).__name__}: {error})")

            stopping = time.perf_counter()
        print(f"ratify stopped in {time.perf_counter() - stopping:.2f} s")
        log_lines = server.log.read_text(errors="replace").splitlines()
        notable = [line for line in log_lines if "level=warning" in line or "level=error" in line]
        print(f"ratify log: {len(log_lines)} lines, {len(notable)} warnings/errors, e.g.:")
        for line in notable[:5]:
            print(f"  {line[:300]}")
        cold = {item["key"]: item for item in json.loads(answers[0])["response"]["items"]}
        for ref, want in expected.items():
            got = ratify_verified(cold[ref].get("value"), key=server.key)
            print(f"{ref}: verified={got} (expected {want})")
        if failures:
            print("SELFTEST FAILED:\n" + "\n".join(failures))
            return 1
    print("selftest passed")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--selftest", action="store_true", help="run the end-to-end self-test")
    args = parser.parse_args()
    if args.selftest:
        return _selftest()
    print(ratify_binary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
