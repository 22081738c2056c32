"""The trust config's KMS-held keys: the `kms:` section, and `kms:` key entries.

```yaml
kms:
  hashivault:                       # in one file of the config; every file's keys may use it
    address: https://vault.example:8200
    token_file: /var/run/secrets/vault/token   # read at each fetch (an agent may rotate it)
    ca_file: vault-ca.pem           # optional; else the system's CAs
    transit_path: transit           # optional, cosign's TRANSIT_SECRET_ENGINE_PATH
    namespace: team-a               # optional (Vault Enterprise, OpenBao)
attestors:
  - name: release
    keys:
      - kms: hashivault://release-signing   # cosign's URI; `id` defaults to the key's name
```

One entry becomes one trusted key per version Vault would verify with, with ids `<id>@v<N>`
(revoke one by that id or by its fingerprint). The public keys are read when the config loads —
at start, at every reload, and at every refresh (`RemoteKeys`) — never while answering. When
Vault cannot be reached on a reload, the versions read last stand in (the load says so in its
warnings) so that an unrelated edit, such as a revocation, still takes effect; with nothing read
before, the load fails.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from signet.crypto.hashivault import (
    KeyVersion,
    VaultSettings,
    VaultUnreachable,
    is_hashivault,
    key_name,
    read_public_keys,
)
from signet.crypto.keys import UnusableKey
from signet.trust.lifecycle import Window
from signet.trust.model import TrustConfigError, TrustedKey
from signet.trust.source import Where

__all__ = ["KmsKeys", "RemoteKeys", "kms_settings"]

_SECTION_FIELDS = frozenset({"hashivault"})
_VAULT_FIELDS = frozenset({"address", "token_file", "ca_file", "transit_path", "namespace"})


class RemoteKeys:
    """The versions last read for each KMS key, kept across loads by whoever reloads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[tuple[str, ...], tuple[tuple[KeyVersion, ...], datetime]] = {}

    def read(self, reference: str, settings: VaultSettings) -> tuple[tuple[KeyVersion, ...], str]:
        """The key's versions, and a warning when they are the ones read before."""
        slot = (settings.origin, settings.transit_path, settings.namespace or "", reference)
        try:
            versions = read_public_keys(reference, settings)
        except VaultUnreachable as exc:
            with self._lock:
                held = self._held.get(slot)
            if held is None:
                raise
            stamp = held[1].isoformat(timespec="seconds").replace("+00:00", "Z")
            return held[0], f"{exc}; using the versions read at {stamp}"
        with self._lock:
            self._held[slot] = (versions, datetime.now(UTC))
        return versions, ""


@dataclass
class KmsKeys:
    """What one load needs for `kms:` keys: the settings, the remote cache, what it read."""

    vault: VaultSettings | None
    remote: RemoteKeys
    references: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def keys(
        self, where: Where, at: str, fields: Mapping[str, Any], bounds: Window
    ) -> list[TrustedKey]:
        reference = where.string(fields["kms"], f"{at}.kms")
        if not is_hashivault(reference):
            where.fail(
                f"{at}.kms",
                f"{reference!r}: only hashivault:// (and openbao://) keys are supported",
            )
        try:
            name = key_name(reference)
        except UnusableKey as exc:
            where.fail(f"{at}.kms", str(exc))
        if self.vault is None:
            where.fail(
                at,
                f"{reference} needs a kms.hashivault section (address and token_file) in one "
                "file of the config",
            )
        key_id = where.string(fields["id"], f"{at}.id") if "id" in fields else name
        try:
            versions, warning = self.remote.read(reference, self.vault)
        except UnusableKey as exc:
            where.fail(at, str(exc))
        self.references.append(self.vault.describe(reference))
        if warning:
            self.warnings.append(f"{where.file}: {at}: {warning}")
        return [TrustedKey(f"{key_id}@v{v.version}", v.key, bounds) for v in versions]


def kms_settings(sections: Sequence[tuple[Where, Any]]) -> VaultSettings | None:
    """The one `kms.hashivault` section among the files (`sections`: each file's `kms` value)."""
    found: VaultSettings | None = None
    first: Where | None = None
    for where, value in sections:
        section = where.mapping(value, "kms", _SECTION_FIELDS)
        if "hashivault" not in section:
            continue
        if first is not None:
            where.fail("kms.hashivault", f"is set in {first.file} already; set it in one file")
        first, found = where, _vault(where, section["hashivault"])
    return found


def _vault(where: Where, value: Any) -> VaultSettings:
    at = "kms.hashivault"
    fields = where.mapping(value, at, _VAULT_FIELDS)
    token_file = where.relative_path(where.string(fields.get("token_file"), f"{at}.token_file"))
    ca_pem = (
        where.certificate_file(fields["ca_file"], f"{at}.ca_file") if "ca_file" in fields else None
    )

    def optional(name: str) -> str | None:
        return where.string(fields[name], f"{at}.{name}") if name in fields else None

    try:
        return VaultSettings(
            where.string(fields.get("address"), f"{at}.address"),
            token_file=token_file,
            ca_pem=ca_pem,
            transit_path=optional("transit_path") or "transit",
            namespace=optional("namespace"),
        )
    except UnusableKey as exc:
        raise TrustConfigError(f"{where.file}: {at}: {exc}") from None
