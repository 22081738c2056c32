"""A private keyless Sigstore stack, and images the real cosign signed keyless through it.

`run_keyless_stack` runs `tests.support.keyless.sign` once in a fresh network and PID namespace
(`unshare`, root only): there a docker-registry, local OIDC issuers, two Fulcios (trusted and
rogue) and a timestamp authority are started, the images of `scenarios.IMAGES` pushed and signed,
and everything stopped again (the PID namespace ends with the script, so nothing survives it).
Then a docker-registry on 127.0.0.1, in the normal namespace, serves the same storage on the same
port, so references recorded while signing are the references served.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from tests.support.procs import free_port
from tests.support.registry import run_registry

from .scenarios import ALICE, MALLORY
from .services import FULCIO, TIMESTAMP_SERVER

__all__ = [
    "ALICE",
    "FULCIO",
    "MALLORY",
    "TIMESTAMP_SERVER",
    "KeylessImage",
    "KeylessStack",
    "run_keyless_stack",
]

ROOT = Path(__file__).resolve().parents[3]
SIGNING_TIMEOUT = 600


@dataclass(frozen=True)
class KeylessImage:
    name: str
    repository: str
    digest: str
    reference: str  # 127.0.0.1:PORT/<repository>@sha256:...
    identity: str  # the signer's certificate identity (email, or GitHub workflow URI)
    issuer: str  # the signer's OIDC issuer URL
    oracle: Mapping[str, bool]  # cosign's verdict per check label (True: accepted)


@dataclass(frozen=True)
class KeylessStack:
    registry: str  # host:port
    url: str  # http://host:port
    directory: Path
    trusted_root: Path  # the trusted Fulcio's CA and the TSA
    rogue_trusted_root: Path  # the rogue Fulcio's CA and the TSA (what signed rogue-email)
    issuers: Mapping[str, str]  # issuer path ("email", "github", "other-issuer") → URL
    images: Mapping[str, KeylessImage]
    description: Mapping[str, Any]  # stack.json as written by the signing run
    signed_at: str  # RFC 3339, when signing began: leaf certificates expire 10 minutes later
    signing_seconds: float  # wall time of the signing run, namespace and all

    def __getitem__(self, name: str) -> KeylessImage:
        return self.images[name]


def _load(directory: Path, host: str, seconds: float) -> KeylessStack:
    description = json.loads((directory / "stack.json").read_text())
    images = {
        name: KeylessImage(
            name,
            entry["repository"],
            entry["digest"],
            entry["reference"],
            entry["identity"],
            entry["issuer"],
            MappingProxyType({check["check"]: check["accepted"] for check in entry["oracle"]}),
        )
        for name, entry in description["images"].items()
    }
    return KeylessStack(
        registry=host,
        url=f"http://{host}",
        directory=directory,
        trusted_root=directory / description["trusted_root"],
        rogue_trusted_root=directory / description["rogue_trusted_root"],
        issuers=MappingProxyType(dict(description["issuers"])),
        images=MappingProxyType(images),
        description=MappingProxyType(description),
        signed_at=description["signed_at"],
        signing_seconds=seconds,
    )


def sign_in_namespace(directory: Path, registry_port: int) -> float:
    """Run the signing script in a fresh network + PID namespace; return its wall time."""
    if os.geteuid() != 0:
        raise PermissionError(
            "the keyless stack runs in a private network namespace (unshare --net): run as root"
        )
    for binary in (FULCIO, TIMESTAMP_SERVER):
        if not binary.exists():
            raise RuntimeError(f"{binary} is not built: run `make tools`")
    command = ["unshare", "--net", "--pid", "--fork", "--kill-child"]
    command += [sys.executable, "-m", "tests.support.keyless.sign", str(directory)]
    command += ["--registry-port", str(registry_port)]
    started = time.monotonic()
    result = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=SIGNING_TIMEOUT, check=False
    )
    seconds = time.monotonic() - started
    (directory / "signing.log").write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise RuntimeError(f"the keyless signing run failed:\n{result.stdout}{result.stderr}")
    return seconds


@contextlib.contextmanager
def run_keyless_stack(directory: Path) -> Iterator[KeylessStack]:
    """Sign the images once, then serve them from 127.0.0.1 until the context ends."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    seconds = sign_in_namespace(directory, port)
    with run_registry(directory / "registry", port=port) as registry:
        yield _load(directory, registry.host, seconds)
