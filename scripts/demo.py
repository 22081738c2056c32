"""`make run`: a local registry, signed and unsigned images, Signet over mTLS, a real request,
then a real control plane with Gatekeeper where `kubectl run` is denied or admitted.

One image is signed the way cosign v3 signs by default (a Sigstore bundle stored as an OCI 1.1
referrer), one in cosign's classic `.sig` format, one not at all. Signet is then installed into
Gatekeeper as the README says (scripts/demo_cluster.py). Everything runs on 127.0.0.1 and is torn
down on Ctrl-C (or at once with SIGNET_DEMO_ONCE=1, as the tests run it): every process, and the
temporary folder. The registry, image, cosign and control-plane helpers are the ones the tests
use (tests/support), so the demo shows what the tests prove.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import ssl
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import demo_cluster  # noqa: E402

from tests.support import cosign  # noqa: E402
from tests.support.controlplane import GATEKEEPER_VERSION, run_gatekeeper  # noqa: E402
from tests.support.images import push_image  # noqa: E402
from tests.support.provider import run_provider  # noqa: E402
from tests.support.registry import run_registry  # noqa: E402

COSIGN = "v3.1.3"


def say(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def interrupted(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM tears down as Ctrl-C does


def main() -> int:
    started = time.monotonic()
    signal.signal(signal.SIGTERM, interrupted)
    with contextlib.ExitStack() as stack:  # unwinds in reverse: processes, then the folder
        work = Path(tempfile.mkdtemp(prefix="signet-demo-"))
        stack.callback(shutil.rmtree, work, ignore_errors=True)
        print(f"work dir: {work} (removed at the end)")
        try:
            code = demo(stack, work, started)
        except KeyboardInterrupt:
            print("\ninterrupted", flush=True)
            code = 130
        finally:  # a second Ctrl-C must not cut the teardown short
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            print(f"tearing down: every process, and {work}", flush=True)
            stopping = time.monotonic()
    print(f"torn down in {time.monotonic() - stopping:.1f} s", flush=True)
    return code


def demo(stack: contextlib.ExitStack, work: Path, started: float) -> int:
    registry = stack.enter_context(run_registry(work / "registry"))
    say(f"registry: docker-registry on {registry.url}")
    digests = {
        tag: push_image(registry.url, "demo/app", tag, seed=tag)
        for tag in ("signed", "classic", "unsigned")
    }
    signed, classic, unsigned = (
        f"{registry.host}/demo/app:{tag}" for tag in ("signed", "classic", "unsigned")
    )
    for tag, digest in digests.items():
        print(f"pushed {registry.host}/demo/app:{tag} -> {digest}")

    keys = cosign.generate_key_pair(COSIGN, work / "keys")
    say(f"cosign {COSIGN}, its default format (a Sigstore bundle): sign {signed}")
    cosign.sign_bundle(COSIGN, keys.private, f"{registry.host}/demo/app@{digests['signed']}")
    print("  cosign sign --key cosign.key --tlog-upload=false --use-signing-config=false IMAGE")
    say(f"cosign {COSIGN}, the classic format: sign {classic}")
    cosign.sign(COSIGN, keys.private, f"{registry.host}/demo/app@{digests['classic']}")
    print("  cosign sign --key cosign.key --new-bundle-format=false ... IMAGE")

    config = work / "trust.yaml"
    config.write_text(
        "version: 1\n"
        "attestors:\n"
        "  - name: dev-team\n"
        "    keys:\n"
        f"      - file: {keys.public}\n"
        "registries:\n"
        f"  - host: {registry.host}\n"
        "    insecure: true\n"
    )
    say(f"trust config {config}")
    print(config.read_text(), end="")

    say(f"etcd, kube-apiserver v1.34.4 and Gatekeeper {GATEKEEPER_VERSION} on 127.0.0.1")
    gatekeeper = stack.enter_context(run_gatekeeper(work / "cluster", shutdown_delay=0))
    print(f"  up after {time.monotonic() - started:.1f} s; kubeconfig {gatekeeper.kubeconfig}")
    gk_identity = (gatekeeper.certs / "tls.crt", gatekeeper.certs / "tls.key")
    provider = stack.enter_context(
        run_provider(
            config,
            work / "provider",
            client_ca=gatekeeper.certs / "ca.crt",
            client_identity=gk_identity,
        )
    )
    client = stack.enter_context(provider.client())
    say(f"signet serve on {provider.url} (mTLS: only Gatekeeper's CA's clients)")
    request = {
        "apiVersion": "externaldata.gatekeeper.sh/v1beta1",
        "kind": "ProviderRequest",
        "request": {"keys": [signed, classic, unsigned]},
    }
    say("Gatekeeper's request, with Gatekeeper's client certificate")
    print(json.dumps(request, indent=2))
    answer = client.post(f"{provider.url}/validate", json=request).json()
    say("Signet's answer")
    print(json.dumps(answer, indent=2))
    for item in answer["response"]["items"]:
        report = item["value"]
        formats = sorted({s["format"] for s in report["signatures"]})
        verdict = (
            f"verified by {', '.join(report['verified'])} ({', '.join(formats)})"
            if report["verified"]
            else "REJECTED: "
            + "; ".join(f"{f['reason']} -> {f['remediation']}" for f in report["failures"])
        )
        print(f"  {item['key']}: {verdict}")

    say("the same request without a client certificate")
    bare_tls = ssl.create_default_context(cafile=str(provider.certs.ca))
    try:
        with httpx.Client(verify=bare_tls, timeout=5) as bare:
            bare.post(f"{provider.url}/validate", json=request)
        print("  UNEXPECTED: it was answered")
        return 1
    except httpx.HTTPError as exc:
        print(f"  no answer: {type(exc).__name__}: {exc}")

    shell = demo_cluster.Shell(gatekeeper.kubeconfig)
    say("installing Signet into Gatekeeper as the README says, from the repository's root")
    print(shell.export_lines())
    demo_cluster.install(shell, provider.url, provider.certs.ca, config, work)
    say("kubectl run: the unsigned image, then the signed ones")
    if not demo_cluster.admissions(shell, signed, classic, unsigned):
        print("UNEXPECTED: Gatekeeper did not deny the unsigned Pod and admit the signed ones")
        return 1

    certs = provider.certs
    say(f"all shown in {time.monotonic() - started:.1f} s; serving until Ctrl-C; try:")
    print(
        f"{shell.export_lines()}\n"
        f"  kubectl run mine --image={registry.host}/demo/app:classic --restart=Never\n"
        f"  curl --cacert {certs.ca} \\\n"
        f"    --cert {gk_identity[0]} --key {gk_identity[1]} \\\n"
        f"    -H 'Content-Type: application/json' {provider.url}/validate \\\n"
        f"    -d '{json.dumps(request)}'\n"
        f"  logs: {provider.log}, {gatekeeper.work / 'logs'}/"
    )
    if os.environ.get("SIGNET_DEMO_ONCE"):
        return 0
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            time.sleep(3600)
    return 0


if __name__ == "__main__":
    sys.exit(main())
