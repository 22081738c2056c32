"""What is trusted: attestors (signers) and their keys, and the registries Signet may contact.

Frozen values, built by `signet.trust.config` from the YAML policy and read by verification; the
fingerprint covers everything that can change a verdict and is part of every verdict's cache key.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from signet.crypto.keys import PublicKey

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "CONFIG_VERSION",
    "Attestor",
    "RegistrySettings",
    "TrustConfig",
    "TrustConfigError",
    "TrustedKey",
]

CONFIG_VERSION = 1


class TrustConfigError(ValueError):
    """The trust config is invalid; the message names the file, the attestor and the problem."""


@dataclass(frozen=True, slots=True)
class TrustedKey:
    id: str
    key: PublicKey


@dataclass(frozen=True, slots=True)
class Attestor:
    name: str
    keys: tuple[TrustedKey, ...]


@dataclass(frozen=True, slots=True)
class RegistrySettings:
    host: str
    insecure: bool = False
    ca_pem: bytes | None = None
    # Hosts this registry's token realm may be on; only these receive the registry's credentials.
    realms: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TrustConfig:
    attestors: tuple[Attestor, ...]
    registries: tuple[RegistrySettings, ...] = ()
    docker_config: Path | None = None
    sources: tuple[Path, ...] = ()
    # Key and CA files the config refers to: a change to one of them is a change to the config.
    key_files: tuple[Path, ...] = ()

    # SHA-256 over the attestors and their keys: a key change changes every cache key.
    fingerprint: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        names = [a.name for a in self.attestors]
        if len(set(names)) != len(names):
            raise TrustConfigError("attestor names must be unique")
        canonical = [[a.name, [[k.id, k.key.fingerprint] for k in a.keys]] for a in self.attestors]
        blob = json.dumps([CONFIG_VERSION, canonical], separators=(",", ":")).encode()
        object.__setattr__(self, "fingerprint", hashlib.sha256(blob).hexdigest())

    def registry(self, host: str) -> RegistrySettings | None:
        for settings in self.registries:
            if settings.host == host:
                return settings
        return None
