"""Key lifecycle: validity windows, revocations, and the trusted time a signature is judged at.

Frozen values, built by `signet.trust.lifecycle_config` from the trust config and read by the
formats after a signature verified over exactly the admitted digest:

1. A revocation names a key (by its fingerprint), a keyless certificate (serial and issuing CA),
   a keyless identity (subject and issuer), or one piece of evidence (a `.sig` layer or a bundle
   referrer digest). Whatever matches is refused (KEY_REVOKED) **whatever the signing time**:
   revocation is for compromise, and a compromised key can sign with any time it likes where no
   authority vouches for the time; the revocation's `time` is a record, not a cut-off. (To
   retire a key on a date and keep what it provably signed before, use `notAfter`.)
2. A validity window (`notBefore`, `notAfter`, both inclusive, either optional) on a key or a
   keyless identity: the signature's trusted signing time must lie inside it, else KEY_EXPIRED
   or KEY_NOT_YET_VALID. The trusted time is a transparency-log integration time or an RFC 3161
   timestamp that verified against the trusted root (keyless), otherwise the time of
   verification — never a time the evidence merely states.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final

from signet.reasons import DeterministicFailure, Reason

__all__ = [
    "NOTHING_REVOKED",
    "UNBOUNDED",
    "Revocation",
    "Revocations",
    "SigningTime",
    "TimeSource",
    "Window",
    "normalize_dn",
    "rfc3339",
]


class TimeSource(StrEnum):
    TRANSPARENCY_LOG = "transparency-log"
    TIMESTAMP_AUTHORITY = "timestamp-authority"
    VERIFICATION_TIME = "verification-time"


def rfc3339(moment: datetime) -> str:
    """`2026-03-01T12:00:00Z`: UTC, seconds (and microseconds only when there are some)."""
    text = moment.astimezone(UTC).isoformat()
    return text.replace("+00:00", "Z")


def _aware(moment: datetime | None, what: str) -> None:
    if moment is not None and moment.utcoffset() is None:
        raise ValueError(f"{what} must carry a time zone")


@dataclass(frozen=True, slots=True)
class SigningTime:
    """The time a signature is judged at, and who vouches for it."""

    at: datetime
    source: TimeSource

    def __post_init__(self) -> None:
        _aware(self.at, "a signing time")

    def describe(self) -> str:
        return f"{rfc3339(self.at)} ({self.source})"


@dataclass(frozen=True, slots=True)
class Window:
    """When a key or identity may sign: both ends inclusive; None is unbounded."""

    not_before: datetime | None = None
    not_after: datetime | None = None

    def __post_init__(self) -> None:
        _aware(self.not_before, "notBefore")
        _aware(self.not_after, "notAfter")
        if self.not_before and self.not_after and self.not_before >= self.not_after:
            raise ValueError(
                f"notBefore {rfc3339(self.not_before)} is not before notAfter "
                f"{rfc3339(self.not_after)}"
            )

    @property
    def bounded(self) -> bool:
        return self.not_before is not None or self.not_after is not None

    def refusal(self, who: str, when: SigningTime) -> DeterministicFailure | None:
        """Why `who` (e.g. "key dev-2025 of dev-team") may not sign at `when`, or None."""
        if self.not_after is not None and when.at > self.not_after:
            return DeterministicFailure(
                Reason.KEY_EXPIRED,
                f"{who} was valid until {rfc3339(self.not_after)}; the signature's time "
                f"{when.describe()} is after it",
            )
        if self.not_before is not None and when.at < self.not_before:
            return DeterministicFailure(
                Reason.KEY_NOT_YET_VALID,
                f"{who} is valid from {rfc3339(self.not_before)}; the signature's time "
                f"{when.describe()} is before it",
            )
        return None

    def next_boundary(self, now: datetime) -> datetime | None:
        """The first instant after `now` at which a verdict judged at `now` could change: the
        window opens (just at notBefore) or closes (just after notAfter)."""
        edges = []
        if self.not_before is not None and self.not_before > now:
            edges.append(self.not_before)
        if self.not_after is not None and self.not_after >= now:
            edges.append(self.not_after + _TICK)
        return min(edges, default=None)

    def canonical(self) -> list[str | None]:
        return [rfc3339(t) if t else None for t in (self.not_before, self.not_after)]


_TICK = timedelta(microseconds=1)
UNBOUNDED: Final = Window()


@dataclass(frozen=True, slots=True)
class Revocation:
    """One revoked thing (exactly one of key, certificate, identity, evidence), why and when."""

    reason: str
    time: datetime
    key: str | None = None  # the key's fingerprint (SHA-256 of its SubjectPublicKeyInfo)
    serial: int | None = None  # a keyless certificate's serial number ...
    ca: str | None = None  # ... and its issuer (RFC 4514, as `openssl x509 -issuer` shows it)
    subject: str | None = None  # a keyless identity: the certified subject ...
    issuer: str | None = None  # ... and its OIDC issuer
    evidence: str | None = None  # a `.sig` layer's or a bundle referrer's digest

    def __post_init__(self) -> None:
        _aware(self.time, "a revocation time")
        kinds = [
            self.key is not None,
            self.serial is not None,
            self.subject is not None,
            self.evidence is not None,
        ]
        if sum(kinds) != 1:
            raise ValueError("a revocation names exactly one key, certificate, identity or digest")
        if (self.serial is None) != (self.ca is None):
            raise ValueError("a revoked certificate is named by its serial and its issuing CA")
        if (self.subject is None) != (self.issuer is None):
            raise ValueError("a revoked identity is named by its subject and its issuer")
        if not self.reason.strip():
            raise ValueError("a revocation needs a reason")

    def refusal(self, what: str) -> DeterministicFailure:
        return DeterministicFailure(
            Reason.KEY_REVOKED,
            f"{what} was revoked at {rfc3339(self.time)} ({self.reason}); what is revoked "
            "never counts again, whenever it signed",
        )

    def canonical(self) -> list[object]:
        return [
            self.reason,
            rfc3339(self.time),
            self.key,
            None if self.serial is None else format(self.serial, "x"),
            self.ca,
            self.subject,
            self.issuer,
            self.evidence,
        ]


@dataclass(frozen=True, slots=True)
class Revocations:
    entries: tuple[Revocation, ...] = ()

    def key(self, fingerprint: str) -> Revocation | None:
        return next((r for r in self.entries if r.key == fingerprint), None)

    def evidence(self, digest: str | None) -> Revocation | None:
        return next((r for r in self.entries if digest and r.evidence == digest), None)

    def certificate(self, serial: int, ca: str) -> Revocation | None:
        return next(
            (r for r in self.entries if r.serial == serial and r.ca == normalize_dn(ca)), None
        )

    def identity(self, subject: str, issuer: str) -> Revocation | None:
        return next((r for r in self.entries if r.subject == subject and r.issuer == issuer), None)

    def canonical(self) -> list[list[object]]:
        return [r.canonical() for r in self.entries]


NOTHING_REVOKED: Final = Revocations()


def normalize_dn(name: str) -> str:
    """A distinguished name compared without spaces around separators, case-blind in attribute
    types, and in either order (`openssl x509 -issuer` writes `O=sigstore.dev,
    CN=sigstore-intermediate`; RFC 4514 the reverse)."""
    parts = []
    for part in re.split(r"(?<!\\),", name):
        kind, _, value = part.partition("=")
        parts.append(f"{kind.strip().upper()}={value.strip()}")
    return ",".join(sorted(parts))
