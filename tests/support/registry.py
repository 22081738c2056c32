"""A real OCI registry: Debian's docker-registry (distribution 2.8), on 127.0.0.1."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import bcrypt

from .procs import free_port, stop, wait_for_http

REGISTRY_BINARY = "/usr/bin/docker-registry"


@dataclass(frozen=True)
class TokenAuth:
    """distribution's token auth: where the registry sends clients, and whom it trusts."""

    realm: str
    service: str
    issuer: str
    rootcertbundle: Path


@dataclass(frozen=True)
class ServerTLS:
    """HTTPS for the registry, and optionally basic auth (htpasswd, bcrypt) behind it."""

    certificate: Path
    key: Path
    users: dict[str, str] | None = None


@dataclass(frozen=True)
class Registry:
    host: str  # 127.0.0.1:PORT
    url: str  # http://127.0.0.1:PORT
    log: Path


@contextlib.contextmanager
def run_registry(
    directory: Path,
    *,
    token: TokenAuth | None = None,
    tls: ServerTLS | None = None,
    port: int | None = None,
) -> Iterator[Registry]:
    """Start a registry; pass the same directory and port again to restart it with its content."""
    binary = shutil.which("docker-registry") or REGISTRY_BINARY
    if not Path(binary).exists():
        raise RuntimeError("docker-registry is not installed: run `make tools`")
    directory.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    lines = [
        "version: 0.1",
        "log:",
        "  level: warn",
        "  accesslog:",
        "    disabled: true",
        "storage:",
        "  filesystem:",
        f"    rootdirectory: {directory / 'data'}",
        "  delete:",
        "    enabled: true",
        "http:",
        f"  addr: 127.0.0.1:{port}",
    ]
    if token is not None:
        lines += [
            "auth:",
            "  token:",
            f"    realm: {token.realm}",
            f"    service: {token.service}",
            f"    issuer: {token.issuer}",
            f"    rootcertbundle: {token.rootcertbundle}",
        ]
    if tls is not None:
        lines += ["  tls:", f"    certificate: {tls.certificate}", f"    key: {tls.key}"]
        if tls.users:
            htpasswd = directory / "htpasswd"
            htpasswd.write_text(
                "".join(
                    f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()}\n"
                    for user, password in tls.users.items()
                )
            )
            lines += ["auth:", "  htpasswd:", "    realm: signet-test", f"    path: {htpasswd}"]
    config = directory / "config.yml"
    config.write_text("\n".join(lines) + "\n")
    log = directory / "registry.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [binary, "serve", str(config)], stdout=out, stderr=subprocess.STDOUT
        )
        try:
            scheme = "https" if tls else "http"
            wait_for_http(f"{scheme}://127.0.0.1:{port}/v2/", verify=False)
            yield Registry(f"127.0.0.1:{port}", f"{scheme}://127.0.0.1:{port}", log)
        except BaseException:
            print(log.read_text())
            raise
        finally:
            stop(process)
