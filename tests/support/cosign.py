"""The real cosign CLI (v2.5.0 and v3.1.3, built by `make tools` into .tools/), run offline.

Signatures are written in cosign's classic `.sig` format with no transparency log, so nothing
leaves this machine: v2.5.0 needs `--tlog-upload=false`; v3.1.3 also needs
`--use-signing-config=false` (or it refuses to skip the log) and `--new-bundle-format=false`
(or it writes a Sigstore bundle instead).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

ROOT = Path(__file__).resolve().parents[2]
COSIGN_VERSIONS = ("v2.5.0", "v3.1.3")
TIMEOUT = 120


@dataclass(frozen=True)
class KeyPair:
    private: Path
    public: Path


def cosign_path(version: str) -> Path:
    path = ROOT / ".tools" / f"cosign-{version}" / "cosign"
    if not path.exists():
        raise RuntimeError(f"{path} is missing: run `make tools`")
    return path


def _env(home: Path) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "COSIGN_PASSWORD": "",
        "TUF_ROOT": str(home / "tuf"),
        "SIGSTORE_NO_CACHE": "true",
        "COSIGN_EXPERIMENTAL": "0",
    }


def _run(version: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(cosign_path(version)), *args],
        cwd=cwd,
        env=_env(cwd / ".cosign-home"),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def _checked(version: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    result = _run(version, args, cwd)
    if result.returncode != 0:
        raise RuntimeError(f"cosign {version} {' '.join(args)} failed:\n{result.stderr}")
    return result


def generate_key_pair(version: str, directory: Path) -> KeyPair:
    directory.mkdir(parents=True, exist_ok=True)
    _checked(version, ["generate-key-pair"], directory)
    return KeyPair(directory / "cosign.key", directory / "cosign.pub")


def import_key_pair(version: str, directory: Path, key_type: str) -> KeyPair:
    """A key of `key_type` made with `cryptography`, imported by `cosign import-key-pair`."""
    directory.mkdir(parents=True, exist_ok=True)
    key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
    if key_type in ("p256", "p384", "p521"):
        curve = {"p256": ec.SECP256R1(), "p384": ec.SECP384R1(), "p521": ec.SECP521R1()}[key_type]
        key = ec.generate_private_key(curve)
    elif key_type == "ed25519":
        key = ed25519.Ed25519PrivateKey.generate()
    elif key_type.startswith("rsa"):
        key = rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[3:]))
    else:
        raise ValueError(f"unknown key type {key_type}")
    pem = directory / f"{key_type}.pem"
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    prefix = f"imported-{key_type}"
    _checked(
        version, ["import-key-pair", "--key", str(pem), "--output-key-prefix", prefix], directory
    )
    return KeyPair(directory / f"{prefix}.key", directory / f"{prefix}.pub")


def sign(version: str, key: Path, image_ref: str) -> None:
    """Sign `image_ref` (pass it by digest) in the classic format, with no transparency log."""
    args = ["sign", "--key", str(key), "--tlog-upload=false", "--yes"]
    if version.startswith("v3"):
        args += ["--use-signing-config=false", "--new-bundle-format=false"]
    _checked(version, [*args, image_ref], key.parent)


def verify(version: str, public: Path, image_ref: str) -> subprocess.CompletedProcess[str]:
    """`cosign verify --key` without the transparency log; the caller checks the result."""
    return _run(
        version,
        ["verify", "--key", str(public), "--insecure-ignore-tlog=true", image_ref],
        public.parent,
    )
