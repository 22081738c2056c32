"""Keys held in HashiCorp Vault's (or OpenBao's) Transit engine, named by cosign's KMS URI form.

`hashivault://KEYNAME` (or `openbao://KEYNAME`), the name matching cosign's pattern
`\\w(([\\w-.]+)?\\w)?`. Where Vault is and how to reach it is not in the URI: the trust config's
`kms.hashivault` section gives it, and the CLI reads cosign's environment (`VAULT_ADDR`/`BAO_ADDR`,
`VAULT_TOKEN`/`BAO_TOKEN`, `TRANSIT_SECRET_ENGINE_PATH` (default `transit`), `VAULT_CACERT`,
`VAULT_NAMESPACE`).

Verification (`read_public_keys`): `GET /v1/<transit>/keys/<name>` once per trust load, never per
request. Every version Vault itself would still verify with — `min_decryption_version` up to
`latest_version` — becomes an ordinary `PublicKey`, so a rotation keeps admitting what the older
version signed until Vault's operator raises `min_decryption_version`. Signatures are then
checked here, offline; Vault is not asked to verify anything.

Signing (`VaultSigner`): as cosign signs with a Transit key — the SHA-256 digest, `prehashed`,
PKCS#1 v1.5 for RSA; the message itself for Ed25519 — and each signature is checked against the
version's public key before it is used.

Every error is an `UnusableKey` naming the URI and the Vault address; `VaultUnreachable` (a
subclass) is the one a cached copy may stand in for: no answer, a timeout, 429 or 5xx.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from signet.crypto.keys import PublicKey, UnusableKey, load_public_key_der, load_public_key_pem

__all__ = [
    "SCHEMES",
    "KeyVersion",
    "VaultSettings",
    "VaultSigner",
    "VaultUnreachable",
    "is_hashivault",
    "key_name",
    "read_public_keys",
]

SCHEMES: Final = ("hashivault://", "openbao://")
_NAME: Final = re.compile(r"\w(?:[\w\-.]*\w)?", re.ASCII)
_TIMEOUT: Final = 5.0
_MAX_ANSWER: Final = 1024 * 1024
_MAX_TOKEN_FILE: Final = 64 * 1024
_SIGNATURE_PREFIX: Final = re.compile(r"vault:v([0-9]+):")
_MULTIERROR: Final = re.compile(r"[0-9]+ errors? occurred:")


class VaultUnreachable(UnusableKey):
    """Vault did not answer (or answered 429/5xx): a transient failure, unlike a refusal."""


def is_hashivault(reference: str) -> bool:
    return reference.startswith(SCHEMES)


def key_name(reference: str) -> str:
    """The Transit key's name in `hashivault://NAME`; UnusableKey when the URI is malformed."""
    for scheme in SCHEMES:
        if reference.startswith(scheme):
            name = reference[len(scheme) :]
            if _NAME.fullmatch(name):
                return name
            raise UnusableKey(
                f"{reference}: not a Transit key name (letters, digits, '_', and '-' or '.' "
                "inside, as cosign accepts)"
            )
    raise UnusableKey(f"{reference}: not a hashivault:// or openbao:// key reference")


@dataclass(frozen=True, slots=True)
class VaultSettings:
    """How to reach Vault: its address, a token (or a file holding one, read at each use so an
    agent may rotate it), the Transit mount, an optional CA and namespace."""

    address: str
    token: str | None = field(default=None, repr=False)
    token_file: Path | None = None
    transit_path: str = "transit"
    ca_pem: bytes | None = field(default=None, repr=False)
    namespace: str | None = None
    transport: httpx.BaseTransport | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        url = httpx.URL(self.address)
        if url.scheme not in ("https", "http") or not url.host or url.path not in ("", "/"):
            raise UnusableKey(f"Vault address {self.address!r} is not https://host[:port]")
        if url.scheme == "http" and not _loopback(url.host):
            raise UnusableKey(
                f"Vault address {self.address!r}: plain http would send the token in clear; "
                "use https (http is for a Vault on this machine only)"
            )
        if (self.token is None) == (self.token_file is None):
            raise UnusableKey("give Vault a token or a token file (exactly one)")
        if not re.fullmatch(r"[\w\-]+(?:/[\w\-]+)*", self.transit_path, re.ASCII):
            raise UnusableKey(f"Transit mount {self.transit_path!r} is not a path like 'transit'")

    @classmethod
    def from_environment(cls, env: Mapping[str, str] = os.environ) -> VaultSettings:
        """cosign's environment: VAULT_ADDR, VAULT_TOKEN, TRANSIT_SECRET_ENGINE_PATH, ..."""
        address = env.get("VAULT_ADDR") or env.get("BAO_ADDR")
        if not address:
            raise UnusableKey("hashivault:// keys need VAULT_ADDR (or BAO_ADDR), as cosign does")
        token = env.get("VAULT_TOKEN") or env.get("BAO_TOKEN")
        if not token:
            raise UnusableKey("hashivault:// keys need VAULT_TOKEN (or BAO_TOKEN), as cosign does")
        ca_pem = None
        if env.get("VAULT_CACERT"):
            try:
                ca_pem = Path(env["VAULT_CACERT"]).read_bytes()
            except OSError as exc:
                raise UnusableKey(f"VAULT_CACERT {env['VAULT_CACERT']}: {exc.strerror}") from None
        return cls(
            address,
            token=token,
            transit_path=env.get("TRANSIT_SECRET_ENGINE_PATH") or "transit",
            ca_pem=ca_pem,
            namespace=env.get("VAULT_NAMESPACE") or None,
        )

    @property
    def origin(self) -> str:
        return self.address.rstrip("/")

    def describe(self, reference: str) -> str:
        return f"{reference} (Vault {self.origin}, mount {self.transit_path})"

    def call(self, reference: str, method: str, path: str, body: object = None) -> Any:
        """One Vault API call; its `data` object. No redirects; the answer size is capped."""
        where = self.describe(reference)
        headers = {"X-Vault-Token": self._token(where), "X-Vault-Request": "true"}
        if self.namespace:
            headers["X-Vault-Namespace"] = self.namespace
        url = f"{self.origin}/v1/{self.transit_path}/{path}"
        try:
            with (
                httpx.Client(
                    verify=self._tls(),
                    timeout=_TIMEOUT,
                    follow_redirects=False,
                    transport=self.transport,
                ) as client,
                client.stream(method, url, headers=headers, json=body) as answer,
            ):
                raw = bytearray()
                for chunk in answer.iter_bytes():
                    raw += chunk
                    if len(raw) > _MAX_ANSWER:
                        raise UnusableKey(f"{where}: answer larger than {_MAX_ANSWER} bytes")
        except httpx.HTTPError as exc:
            raise VaultUnreachable(f"{where}: no answer: {exc or type(exc).__name__}") from None
        return _data(where, answer.status_code, bytes(raw))

    def _token(self, where: str) -> str:
        if self.token is not None:
            return self.token
        assert self.token_file is not None
        try:
            with self.token_file.open("rb") as handle:
                token = handle.read(_MAX_TOKEN_FILE).decode("utf-8", "replace").strip()
        except OSError as exc:
            raise UnusableKey(f"{where}: token file {self.token_file}: {exc.strerror}") from None
        if not token:
            raise UnusableKey(f"{where}: token file {self.token_file} is empty")
        return token

    def _tls(self) -> ssl.SSLContext:
        """The system's CAs; or, with a CA given, that CA alone."""
        if self.ca_pem is None:
            return ssl.create_default_context()
        try:
            return ssl.create_default_context(cadata=self.ca_pem.decode("ascii", "replace"))
        except ssl.SSLError as exc:
            raise UnusableKey(f"Vault CA for {self.origin}: not PEM certificates: {exc}") from None


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _data(where: str, status: int, raw: bytes) -> Any:
    try:
        document = json.loads(raw) if raw else {}
    except ValueError:
        document = None
    errors = document.get("errors") if isinstance(document, dict) else None
    detail = _one_line(errors) if isinstance(errors, list) else ""
    if status == 429 or status >= 500:
        raise VaultUnreachable(f"{where}: Vault answered {status} {detail}".rstrip())
    if status == 404 and not detail:
        raise UnusableKey(f"{where}: Vault refused: 404 no such key (or no such mount)")
    if status != 200:
        raise UnusableKey(f"{where}: Vault refused: {status} {detail or 'no reason given'}")
    if not isinstance(document, dict) or not isinstance(document.get("data"), dict):
        raise UnusableKey(f"{where}: Vault's answer has no data object")
    return document["data"]


def _one_line(errors: list[Any]) -> str:
    """Vault's errors on one line ("2 errors occurred:\n\t* permission denied\n\t* ..." is a
    go-multierror's text), capped: they reach logs and alerts."""
    parts = []
    for error in errors:
        for raw in str(error).splitlines():
            line = raw.strip().removeprefix("* ")
            if line and not _MULTIERROR.fullmatch(line):
                parts.append(line)
    return "; ".join(dict.fromkeys(parts))[:500]


@dataclass(frozen=True, slots=True)
class KeyVersion:
    version: int
    key: PublicKey


def read_public_keys(reference: str, settings: VaultSettings) -> tuple[KeyVersion, ...]:
    """The versions of the Transit key that Vault would verify with, oldest first."""
    name = key_name(reference)
    where = settings.describe(reference)
    data = settings.call(reference, "GET", f"keys/{name}")
    latest, minimum = data.get("latest_version"), data.get("min_decryption_version", 1)
    keys = data.get("keys")
    if type(latest) is not int or type(minimum) is not int or not isinstance(keys, dict):
        raise UnusableKey(f"{where}: Vault's key answer lacks keys or versions")
    if not data.get("supports_signing", True):
        raise UnusableKey(f"{where}: a {data.get('type')} key cannot sign; use a signing key type")
    versions = []
    for version in range(max(minimum, 1), latest + 1):
        entry = keys.get(str(version))
        if entry is None:
            continue
        if not isinstance(entry, dict) or not entry.get("public_key"):
            raise UnusableKey(
                f"{where}: version {version} has no public key (a {data.get('type')} key?)"
            )
        versions.append(KeyVersion(version, _public_key(where, version, entry)))
    if not versions:
        raise UnusableKey(f"{where}: no key version is available for verification")
    return tuple(versions)


def _public_key(where: str, version: int, entry: Mapping[str, Any]) -> PublicKey:
    text = str(entry["public_key"])
    try:
        if entry.get("name") == "ed25519":  # the raw 32 bytes, base64: Vault's own form
            raw = ed25519.Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
            return load_public_key_der(
                raw.public_bytes(
                    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            )
        return load_public_key_pem(text.encode())
    except (UnusableKey, ValueError) as exc:
        raise UnusableKey(f"{where}: version {version}: {exc}") from None


@dataclass(frozen=True, slots=True)
class VaultSigner:
    """A Transit key that signs in Vault; `public` is its latest version's public key."""

    reference: str
    settings: VaultSettings
    versions: tuple[KeyVersion, ...]

    @classmethod
    def open(cls, reference: str, settings: VaultSettings) -> VaultSigner:
        return cls(reference, settings, read_public_keys(reference, settings))

    @property
    def public(self) -> PublicKey:
        return self.versions[-1].key

    def sign(self, message: bytes) -> tuple[bytes, str]:
        where = self.settings.describe(self.reference)
        if self.public.kind == "ed25519":
            body: dict[str, object] = {"input": base64.b64encode(message).decode()}
        else:
            digest = hashlib.sha256(message).digest()
            body = {"input": base64.b64encode(digest).decode(), "prehashed": True}
            body["signature_algorithm"] = "pkcs1v15"
        name = key_name(self.reference)
        data = self.settings.call(self.reference, "POST", f"sign/{name}/sha2-256", body)
        encoded = data.get("signature")
        prefix = _SIGNATURE_PREFIX.match(encoded) if isinstance(encoded, str) else None
        if prefix is None or not isinstance(encoded, str):
            raise UnusableKey(f"{where}: Vault's signature is not vault:v<N>:<base64>")
        used = int(prefix.group(1))
        signature = base64.b64decode(encoded[prefix.end() :])
        key = next((v.key for v in self.versions if v.version == used), None)
        scheme = key.verify(message, signature) if key is not None else None
        if scheme is None:
            raise UnusableKey(
                f"{where}: Vault signed with version {used}, and the signature does not verify "
                "under the public key read for that version"
            )
        return signature, scheme
