"""`make run`: a local registry, signed and unsigned images, Signet over mTLS, a real request.

One image is signed the way cosign v3 signs by default (a Sigstore bundle stored as an OCI 1.1
referrer), one in cosign's classic `.sig` format, one not at all. Everything runs on 127.0.0.1 and
is torn down on Ctrl-C (or at once with SIGNET_DEMO_ONCE=1, as the tests run it). The registry,
image and cosign helpers are the ones the integration tests use (tests/support), so the demo
shows what the tests prove.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import ssl
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support import cosign  # noqa: E402
from tests.support.images import push_image  # noqa: E402
from tests.support.provider import run_provider  # noqa: E402
from tests.support.registry import run_registry  # noqa: E402

COSIGN = "v3.1.3"


def say(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def main() -> int:
    work = ROOT / "run"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    with run_registry(work / "registry") as registry:
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

        with run_provider(config, work / "provider") as provider, provider.client() as client:
            say(f"signet serve on {provider.url} (mTLS: client CA {provider.certs.ca})")
            request = {
                "apiVersion": "externaldata.gatekeeper.sh/v1beta1",
                "kind": "ProviderRequest",
                "request": {"keys": [signed, classic, unsigned]},
            }
            say("Gatekeeper's request, with Gatekeeper's kind of client certificate")
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

            certs = provider.certs
            say("serving until Ctrl-C; try:")
            print(
                f"  curl --cacert {certs.ca} \\\n"
                f"    --cert {certs.client_cert} --key {certs.client_key} \\\n"
                f"    -H 'Content-Type: application/json' {provider.url}/validate \\\n"
                f"    -d '{json.dumps(request)}'\n"
                f"  provider log: {provider.log}"
            )
            if os.environ.get("SIGNET_DEMO_ONCE"):
                return 0
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    time.sleep(3600)
    return 0


if __name__ == "__main__":
    sys.exit(main())
