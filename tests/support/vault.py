"""A real HashiCorp Vault dev server on 127.0.0.1 (built by scripts/install-tools.sh), over TLS.

`vault server -dev -dev-tls`: in memory, unsealed, a root token we choose, and a CA of its own
written to the state folder (what `kms.hashivault.ca_file` and cosign's VAULT_CACERT trust).
The Transit engine is mounted at `transit`, as cosign expects by default.
"""

from __future__ import annotations

import base64
import contextlib
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from .procs import free_port, stop

VERSION = "v1.21.0"
BINARY = Path(__file__).resolve().parents[2] / ".tools" / f"vault-{VERSION}" / "vault"
ROOT_TOKEN = "signet-test-root-token"


@dataclass(frozen=True)
class Vault:
    address: str
    ca: Path
    token: str
    log: Path
    process: subprocess.Popen[bytes]

    @property
    def env(self) -> dict[str, str]:
        """What cosign (and `signet --key hashivault://`) read to reach it."""
        return {"VAULT_ADDR": self.address, "VAULT_TOKEN": self.token, "VAULT_CACERT": str(self.ca)}

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = httpx.request(
            method,
            f"{self.address}/v1/{path}",
            headers={"X-Vault-Token": self.token},
            json=body,
            verify=ssl.create_default_context(cafile=self.ca),
            timeout=10,
        )
        if response.status_code >= 400:
            raise RuntimeError(f"vault {method} {path}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    def create_key(self, name: str, key_type: str) -> None:
        self.call("POST", f"transit/keys/{name}", {"type": key_type})

    def rotate(self, name: str) -> None:
        self.call("POST", f"transit/keys/{name}/rotate")

    def retire_before(self, name: str, version: int) -> None:
        """Vault no longer verifies with versions older than `version`."""
        self.call("POST", f"transit/keys/{name}/config", {"min_decryption_version": version})

    def public_pem(self, name: str, version: int) -> str:
        """The version's public key as PEM (cosign.pub); Vault lists Ed25519 keys as raw base64."""
        entry = self.call("GET", f"transit/keys/{name}")["data"]["keys"][str(version)]
        if entry["name"] != "ed25519":
            pem: str = entry["public_key"]
            return pem
        raw = ed25519.Ed25519PublicKey.from_public_bytes(base64.b64decode(entry["public_key"]))
        spki = serialization.PublicFormat.SubjectPublicKeyInfo
        return raw.public_bytes(serialization.Encoding.PEM, spki).decode()


@contextlib.contextmanager
def run_vault(directory: Path) -> Iterator[Vault]:
    if not BINARY.exists():
        raise RuntimeError(f"{BINARY} is missing: run `make tools`")
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    args = [
        str(BINARY),
        "server",
        "-dev",
        "-dev-tls",
        f"-dev-tls-cert-dir={directory}",
        f"-dev-listen-address=127.0.0.1:{port}",
        f"-dev-root-token-id={ROOT_TOKEN}",
        "-dev-no-store-token",
    ]
    log = directory / "vault.log"
    env = {"HOME": str(directory), "PATH": "/usr/bin:/bin", "VAULT_DISABLE_MLOCK": "true"}
    with log.open("ab") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
        running = Vault(
            f"https://127.0.0.1:{port}", directory / "vault-ca.pem", ROOT_TOKEN, log, process
        )
        try:
            _wait_ready(running)
            running.call("POST", "sys/mounts/transit", {"type": "transit"})
            yield running
        finally:
            stop(process)


def _wait_ready(vault: Vault, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if vault.process.poll() is not None:
            raise RuntimeError(f"vault exited:\n{vault.log.read_text(errors='replace')[-3000:]}")
        if vault.ca.exists():
            with contextlib.suppress(httpx.HTTPError):
                health = httpx.get(
                    f"{vault.address}/v1/sys/health",
                    verify=ssl.create_default_context(cafile=vault.ca),
                    timeout=2,
                )
                if health.status_code == 200:
                    return
        time.sleep(0.1)
    raise RuntimeError(f"vault not ready in {timeout}s:\n{vault.log.read_text(errors='replace')}")
