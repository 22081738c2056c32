"""Run inside a network namespace whose name server stalls every name under `stall.test`:
`signet serve` is asked about 40 images on such registries, and, while those lookups hang, about a
signed image on `registry.healthy.test`. Prints one JSON line with what the healthy request got.

    ip netns exec NS python -m tests.support.dns_scenario WORKDIR
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

from signet.crypto.keyfile import generate, public_pem
from signet.model.reference import parse
from signet.oci.client import RegistryClient
from signet.signing.classic import sign_image
from signet.trust.model import RegistrySettings, TrustConfig
from tests.support.images import push_image
from tests.support.procs import stop
from tests.support.provider import run_provider
from tests.support.registry import run_registry

HEALTHY = "registry.healthy.test"


def request(*keys: str) -> dict[str, object]:
    return {
        "apiVersion": "externaldata.gatekeeper.sh/v1beta1",
        "kind": "ProviderRequest",
        "request": {"keys": list(keys)},
    }


def main(work: Path) -> int:
    nameserver = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.nameserver",
            "--port",
            "53",
            "--answer",
            f"{HEALTHY}=127.0.0.1",
            "--stall",
            ".stall.test",
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        with run_registry(work / "registry", port=5000) as registry:
            push_image(registry.url, "team/app", "v1", seed="dns-scenario")
            key = generate("p256")
            (work / "dev.pub").write_bytes(public_pem(key))
            image = f"{HEALTHY}:5000/team/app:v1"
            signing = TrustConfig((), (RegistrySettings(f"{HEALTHY}:5000", insecure=True),))

            async def sign() -> None:
                client = RegistryClient(lambda: signing)
                try:
                    await sign_image(client, parse(image), key)
                finally:
                    await client.aclose()

            asyncio.run(sign())
            config = work / "trust.yaml"
            config.write_text(
                "version: 1\nattestors:\n  - name: dev-team\n    keys:\n"
                f"      - file: {work / 'dev.pub'}\n"
                f"registries:\n  - host: {HEALTHY}:5000\n    insecure: true\n"
            )
            with run_provider(config, work / "provider") as provider:
                flood = [f"r{i}.stall.test:5000/team/app:v1" for i in range(40)]

                def stalled_request() -> None:
                    with provider.client(timeout=30) as client:
                        client.post(f"{provider.url}/validate", json=request(*flood))

                background = threading.Thread(target=stalled_request, daemon=True)
                background.start()
                time.sleep(0.5)  # the 40 lookups are pending now
                started = time.monotonic()
                with provider.client(timeout=30) as client:
                    answer = client.post(f"{provider.url}/validate", json=request(image)).json()
                took = time.monotonic() - started
                background.join(timeout=30)
        print(json.dumps({"took": took, "response": answer["response"]}))
        return 0
    finally:
        stop(nameserver)


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
