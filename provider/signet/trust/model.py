"""What is trusted: attestors (signers) and their keys, and the registries Signet may contact.

Frozen values, built by `signet.trust.config` from the YAML policy and read by verification; the
fingerprint covers everything that can change a verdict and is part of every verdict's cache key.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from signet.crypto.keys import PublicKey
from signet.keyless.certificate import Identity
from signet.keyless.root import TrustedRoot
from signet.trust.lifecycle import NOTHING_REVOKED, UNBOUNDED, Revocations, Window

if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path

__all__ = [
    "CONFIG_VERSION",
    "EVERYTHING",
    "Attestor",
    "EvidenceSettings",
    "Keyless",
    "KeylessIdentity",
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
    window: Window = UNBOUNDED


@dataclass(frozen=True, slots=True)
class KeylessIdentity:
    """One identity Fulcio may certify for an attestor: the OIDC issuer and the subject (SAN),
    each exactly or by a regular expression matched against the whole value; and CI claims the
    certificate must carry with exactly these values."""

    issuer: str | None
    subject: str | None = None
    subject_pattern: re.Pattern[str] | None = None
    claims: tuple[tuple[str, str], ...] = ()
    issuer_pattern: re.Pattern[str] | None = None
    window: Window = UNBOUNDED

    def __post_init__(self) -> None:
        if (self.subject is None) == (self.subject_pattern is None):
            raise TrustConfigError("a keyless identity has exactly one of subject and pattern")
        if (self.issuer is None) == (self.issuer_pattern is None):
            raise TrustConfigError("a keyless identity has exactly one of issuer and pattern")

    def matches(self, identity: Identity) -> bool:
        return (
            _matches(identity.issuer, self.issuer, self.issuer_pattern)
            and _matches(identity.subject, self.subject, self.subject_pattern)
            and all(identity.claim(name) == value for name, value in self.claims)
        )

    def describe(self) -> str:
        subject = (
            self.subject or f"/{self.subject_pattern.pattern if self.subject_pattern else ''}/"
        )
        issuer = self.issuer or f"/{self.issuer_pattern.pattern if self.issuer_pattern else ''}/"
        claims = "".join(f", {name}={value}" for name, value in self.claims)
        return f"{subject} (issuer {issuer}{claims})"

    def canonical(self) -> list[object]:
        patterns = [p.pattern if p else None for p in (self.subject_pattern, self.issuer_pattern)]
        claims = [list(c) for c in self.claims]
        return [self.issuer, self.subject, *patterns, claims, *_window(self.window)]


def _window(window: Window) -> list[object]:
    """A window in a fingerprint, only when it bounds anything (unbounded keys keep theirs)."""
    return [window.canonical()] if window.bounded else []


def _matches(value: str, exact: str | None, pattern: re.Pattern[str] | None) -> bool:
    if exact is not None:
        return value == exact
    return pattern is not None and pattern.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class Keyless:
    """Keyless signing for an attestor: which Sigstore to trust, and which identities count.

    `transparency_log` and `certificate_transparency` are on unless the config turns them off
    explicitly, for a private Sigstore (own Fulcio and timestamp authority, no public log)."""

    trusted_root: TrustedRoot
    identities: tuple[KeylessIdentity, ...]
    transparency_log: bool = True
    certificate_transparency: bool = True

    def canonical(self) -> list[object]:
        return [
            self.trusted_root.fingerprint,
            [i.canonical() for i in self.identities],
            self.transparency_log,
            self.certificate_transparency,
        ]

    def policy_key(self) -> tuple[str, bool, bool]:
        """What the cryptographic checks depend on (the identities are matched after)."""
        return (self.trusted_root.fingerprint, self.transparency_log, self.certificate_transparency)


@dataclass(frozen=True, slots=True)
class Attestor:
    name: str
    keys: tuple[TrustedKey, ...] = ()
    keyless: Keyless | None = None


@dataclass(frozen=True, slots=True)
class RegistrySettings:
    host: str
    insecure: bool = False
    ca_pem: bytes | None = None
    # Hosts this registry's token realm may be on; only these receive the registry's credentials.
    realms: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EvidenceSettings:
    """Which evidence is looked for: each format's, and attestations. Looking for less spares
    registry requests (a classic signature alone: the tag, the `.sig` manifest, its payload);
    what is not looked for is never found, so a policy needing it denies."""

    classic: bool = True
    bundles: bool = True
    attestations: bool = True

    def __post_init__(self) -> None:
        if not (self.classic or self.bundles):
            raise TrustConfigError("evidence: at least one format must be looked for")

    def canonical(self) -> list[object]:
        return [self.classic, self.bundles, self.attestations]


EVERYTHING = EvidenceSettings()


@dataclass(frozen=True, slots=True)
class TrustConfig:
    attestors: tuple[Attestor, ...]
    registries: tuple[RegistrySettings, ...] = ()
    docker_config: Path | None = None
    sources: tuple[Path, ...] = ()
    # Key and CA files the config refers to: a change to one of them is a change to the config.
    key_files: tuple[Path, ...] = ()
    revocations: Revocations = NOTHING_REVOKED
    # The KMS-held keys (as `VaultSettings.describe` names them): re-read at every refresh.
    remote_keys: tuple[str, ...] = ()
    evidence: EvidenceSettings = EVERYTHING
    # What the load could only do in part, e.g. KMS keys kept from before while it was down.
    warnings: tuple[str, ...] = field(default=(), compare=False)

    # SHA-256 over the attestors, their keys and windows, and the revocations: a change to any
    # of them changes every cache key.
    fingerprint: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        names = [a.name for a in self.attestors]
        if len(set(names)) != len(names):
            raise TrustConfigError("attestor names must be unique")
        canonical = [
            [
                a.name,
                [[k.id, k.key.fingerprint, *_window(k.window)] for k in a.keys],
                *([a.keyless.canonical()] if a.keyless else []),
            ]
            for a in self.attestors
        ]
        lifecycle = self.revocations.canonical()
        # Parts at their defaults are left out: a config that does not use them keeps its
        # fingerprint (and the verdicts cached under it) across an upgrade.
        optional: list[object] = [lifecycle] if lifecycle else []
        if self.evidence != EVERYTHING:
            optional += [["evidence", self.evidence.canonical()]]
        blob = json.dumps([CONFIG_VERSION, canonical, *optional], separators=(",", ":")).encode()
        object.__setattr__(self, "fingerprint", hashlib.sha256(blob).hexdigest())

    def next_boundary(self, now: datetime) -> datetime | None:
        """The first instant after `now` at which a key's window opens or closes. Key windows
        are judged at the time of verification, so a verdict reached at `now` may not be reused
        past this instant. (Keyless identities are judged at trusted times the evidence carries,
        which do not move.)"""
        edges = [
            edge
            for attestor in self.attestors
            for trusted in attestor.keys
            if (edge := trusted.window.next_boundary(now)) is not None
        ]
        return min(edges, default=None)

    def registry(self, host: str) -> RegistrySettings | None:
        for settings in self.registries:
            if settings.host == host:
                return settings
        return None
