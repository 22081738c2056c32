"""A private SoftHSM2 token for the tests: its own token directory and config under tmp.

`make_token` writes a softhsm2.conf (SOFTHSM2_CONF points at it; nothing touches the system's
/var/lib/softhsm), initializes a token with `softhsm2-util --init-token`, and `generate` makes a
key pair *on the token* (private key sensitive and not extractable) through python-pkcs11 in a
child process, writing only the public key out as PEM — the file `cosign verify --key` gets.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[2]
MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
PIN = "s3cret-PIN-4711"  # distinctive, so a test can tell it never reached the output
SO_PIN = "so-PIN-0815"
KEY_TYPES = ("p256", "rsa2048", "ed25519")


@dataclass(frozen=True)
class SoftHsm:
    directory: Path
    conf: Path
    label: str
    pin: str = PIN

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SOFTHSM2_CONF": str(self.conf)}

    def uri(self, key: str, *, pin: str | None = PIN, token: str | None = None) -> str:
        """cosign's form: pkcs11:token=…;object=…?module-path=…&pin-value=…"""
        text = f"pkcs11:token={quote(token or self.label)};object={quote(key)}"
        text += f"?module-path={MODULE}"
        return text + (f"&pin-value={quote(pin)}" if pin is not None else "")

    def public_pem(self, key: str) -> Path:
        return self.directory / f"{key}.pub"


def make_token(directory: Path, label: str = "signet") -> SoftHsm:
    util = shutil.which("softhsm2-util")
    if util is None or not MODULE.is_file():
        raise RuntimeError("SoftHSM2 is not installed (Debian's softhsm2): run `make tools`")
    tokens = directory / "tokens"
    tokens.mkdir(parents=True, exist_ok=True)
    conf = directory / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    hsm = SoftHsm(directory, conf, label)
    subprocess.run(
        [util, "--init-token", "--free", "--label", label, "--pin", PIN, "--so-pin", SO_PIN],
        env=hsm.env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    return hsm


def generate(hsm: SoftHsm, key: str, key_type: str, key_id: bytes) -> None:
    """A `key_type` key pair labelled `key` with CKA_ID `key_id`, made on the token."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.support.softhsm",
            str(hsm.conf),
            hsm.label,
            key,
            key_type,
            key_id.hex(),
            str(hsm.public_pem(key)),
        ],
        env={**hsm.env, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=120,
    )


def _generate_on_token(token_label: str, key: str, key_type: str, key_id: bytes, out: Path) -> None:
    import pkcs11
    from cryptography.hazmat.primitives import serialization
    from pkcs11 import Attribute, KeyType, Mechanism
    from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters
    from pkcs11.util.rsa import encode_rsa_public_key

    token = pkcs11.lib(str(MODULE)).get_token(token_label=token_label)
    private = {Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False}
    with token.open(rw=True, user_pin=PIN) as session:
        if key_type == "p256":
            params = {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")}
            public, _ = session.generate_keypair(
                KeyType.EC,
                store=True,
                label=key,
                id=key_id,
                public_template=params,
                private_template=private,
            )
            der = encode_ec_public_key(public)
        elif key_type == "rsa2048":
            public, _ = session.generate_keypair(
                KeyType.RSA, 2048, store=True, label=key, id=key_id, private_template=private
            )
            der = encode_rsa_public_key(public)  # PKCS#1, which `cryptography` reads as well
        else:  # Ed25519: a key type Signet (and cosign) do not sign with on a token
            params = {Attribute.EC_PARAMS: encode_named_curve_parameters("1.3.101.112")}
            session.generate_keypair(
                KeyType.EC_EDWARDS,
                store=True,
                label=key,
                id=key_id,
                public_template=params,
                private_template=private,
                mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN,
            )
            return
    pem = serialization.load_der_public_key(der).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    out.write_bytes(pem)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    for name in ("conf", "token", "key", "key_type", "key_id", "out"):
        parser.add_argument(name)
    args = parser.parse_args()
    if args.key_type not in KEY_TYPES:
        raise SystemExit(f"key type: one of {', '.join(KEY_TYPES)}")
    os.environ["SOFTHSM2_CONF"] = args.conf
    _generate_on_token(
        args.token, args.key, args.key_type, bytes.fromhex(args.key_id), Path(args.out)
    )
