"""Report v1: the facts Signet states about one image, and what a person can do about each failure.

A report states facts, not the policy decision: which configured attestors produced a valid
signature over the exact digest, and for every attestor that did not, a stable reason code and a
one-line remediation; and the attestations (in-toto statements about the digest) each attestor
verifiably made, with the facts the policy may require of them. The Rego pack decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from signet.model.remediation import remediation
from signet.reasons import Reason

__all__ = [
    "REPORT_VERSION",
    "TIME_SOURCES",
    "AttestationFact",
    "Failure",
    "KeylessFact",
    "Report",
    "SignatureFact",
    "Stale",
    "remediation",
]

REPORT_VERSION = 1


@dataclass(frozen=True, slots=True)
class KeylessFact:
    """Who Fulcio certified for a keyless signature, and the trusted time it signed at."""

    subject: str
    issuer: str
    claims: tuple[tuple[str, str], ...]
    signed_at: str  # RFC 3339, UTC
    time_source: str  # "timestamp-authority <uri>" or "transparency-log <url>"
    log_index: int | None = None
    log_url: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "claims": dict(self.claims),
            "signedAt": self.signed_at,
            "timeSource": self.time_source,
            "logIndex": self.log_index,
            "logURL": self.log_url,
        }

    @classmethod
    def from_json(cls, data: object, where: str) -> KeylessFact:
        fields = _fields(data, where, _KEYLESS)
        index = fields["logIndex"]
        if index is not None and (type(index) is not int or index < 0):
            raise ValueError(f"{where}.logIndex: expected a non-negative integer or null")
        return cls(
            _text(fields, "subject", where),
            _text(fields, "issuer", where),
            _pairs(fields, "claims", where),
            _text(fields, "signedAt", where),
            _text(fields, "timeSource", where),
            index,
            _text_or_null(fields, "logURL", where),
        )


@dataclass(frozen=True, slots=True)
class SignatureFact:
    """A verified signature. `key` is the key's id, or for a keyless signature the certified
    subject (the details are in `keyless`)."""

    attestor: str
    key: str
    format: str
    scheme: str
    keyless: KeylessFact | None = None
    # The time the key's validity window was judged at (RFC 3339, UTC), and who vouches for it:
    # "transparency-log", "timestamp-authority" or "verification-time".
    signed_at: str | None = None
    time_source: str | None = None

    def __post_init__(self) -> None:
        _check_time(self.signed_at, self.time_source)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "attestor": self.attestor,
            "key": self.key,
            "format": self.format,
            "scheme": self.scheme,
        }
        if self.keyless is not None:
            out["keyless"] = self.keyless.to_json()
        return _with_time(out, self.signed_at, self.time_source)

    @classmethod
    def from_json(cls, data: object, where: str) -> SignatureFact:
        fields = _fields(data, where, _SIGNATURE, ("keyless", *_TIME))
        return cls(
            _text(fields, "attestor", where),
            _text(fields, "key", where),
            _text(fields, "format", where),
            _text(fields, "scheme", where),
            _keyless(fields, where),
            *_time(fields, where),
        )


@dataclass(frozen=True, slots=True)
class AttestationFact:
    """A verified attestation: who signed which predicate about the digest, and what it says.

    `facts` are flat strings taken from the predicate (e.g. SLSA provenance's builder id and
    source repository); the rest of the predicate is not kept."""

    attestor: str
    key: str
    format: str
    predicate_type: str
    facts: tuple[tuple[str, str], ...] = ()
    keyless: KeylessFact | None = None
    signed_at: str | None = None  # as for SignatureFact
    time_source: str | None = None

    def __post_init__(self) -> None:
        _check_time(self.signed_at, self.time_source)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "attestor": self.attestor,
            "key": self.key,
            "format": self.format,
            "predicateType": self.predicate_type,
            "facts": dict(self.facts),
        }
        if self.keyless is not None:
            out["keyless"] = self.keyless.to_json()
        return _with_time(out, self.signed_at, self.time_source)

    @classmethod
    def from_json(cls, data: object, where: str) -> AttestationFact:
        fields = _fields(data, where, _ATTESTATION, ("keyless", *_TIME))
        return cls(
            _text(fields, "attestor", where),
            _text(fields, "key", where),
            _text(fields, "format", where),
            _text(fields, "predicateType", where),
            _pairs(fields, "facts", where),
            _keyless(fields, where),
            *_time(fields, where),
        )


@dataclass(frozen=True, slots=True)
class Failure:
    attestor: str | None
    reason: Reason
    remediation: str
    detail: str = ""

    def __post_init__(self) -> None:
        if self.reason.transient:
            raise ValueError(f"a report cannot hold the transient reason {self.reason}")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "attestor": self.attestor,
            "reason": str(self.reason),
            "remediation": self.remediation,
        }
        if self.detail:
            out["detail"] = self.detail
        return out

    @classmethod
    def from_json(cls, data: object, where: str) -> Failure:
        fields = _fields(data, where, _FAILURE, ("detail",))
        detail = _text(fields, "detail", where) if "detail" in fields else ""
        if "detail" in fields and not detail:
            raise ValueError(f"{where}.detail: expected a non-empty string (or no detail)")
        try:
            reason = Reason(_text(fields, "reason", where))
        except ValueError as exc:
            raise ValueError(f"{where}.reason: {exc}") from None
        return cls(
            _text_or_null(fields, "attestor", where),
            reason,
            _text(fields, "remediation", where),
            detail,
        )


@dataclass(frozen=True, slots=True)
class Stale:
    """Why a report is an earlier verdict: when it was verified (RFC 3339), and the outage that
    kept it from being verified now (a transient reason and its message)."""

    verified_at: str
    reason: Reason
    detail: str

    def __post_init__(self) -> None:
        if not self.reason.transient:
            raise ValueError(f"a report is stale for a transient reason, not {self.reason}")

    def to_json(self) -> dict[str, Any]:
        return {"verifiedAt": self.verified_at, "reason": str(self.reason), "detail": self.detail}

    @classmethod
    def from_json(cls, data: object, where: str) -> Stale:
        fields = _fields(data, where, ("verifiedAt", "reason", "detail"))
        try:
            reason = Reason(_text(fields, "reason", where))
        except ValueError as exc:
            raise ValueError(f"{where}.reason: {exc}") from None
        return cls(_text(fields, "verifiedAt", where), reason, _text(fields, "detail", where))


@dataclass(frozen=True, slots=True)
class Report:
    image: str
    digest: str | None
    verified: tuple[str, ...] = ()
    signatures: tuple[SignatureFact, ...] = ()
    failures: tuple[Failure, ...] = ()
    attestations: tuple[AttestationFact, ...] = ()
    version: int = field(default=REPORT_VERSION)
    # Not part of the report's JSON: the wall-clock instant (epoch seconds) after which this
    # verdict may not be reused, because a key's validity window judged at the time of
    # verification opens or closes then; None when time cannot change it.
    valid_until: float | None = field(default=None, compare=False)
    # Set only on an answer from the last known good verdicts during a registry outage.
    stale: Stale | None = None

    def __post_init__(self) -> None:
        named = {s.attestor for s in self.signatures}
        if set(self.verified) != named:
            raise ValueError("verified must list exactly the attestors that have signatures")
        if any(f.attestor in self.verified for f in self.failures):
            raise ValueError("a verified attestor cannot also have a failure")
        if self.digest is None and self.attestations:
            raise ValueError("an attestation is always about a digest")

    @property
    def reasons(self) -> tuple[Reason, ...]:
        return tuple(dict.fromkeys(f.reason for f in self.failures))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "version": self.version,
            "image": self.image,
            "digest": self.digest,
            "verified": list(self.verified),
            "signatures": [s.to_json() for s in self.signatures],
            "failures": [f.to_json() for f in self.failures],
            "attestations": [a.to_json() for a in self.attestations],
        }
        if self.stale is not None:
            out["stale"] = self.stale.to_json()
        return out

    @classmethod
    def from_json(cls, data: object) -> Report:
        """The report `to_json` wrote, exactly: anything else (an unknown or missing field, a
        wrong type, another version, a transient reason) is a ValueError."""
        where = "report"
        fields = _fields(data, where, _REPORT, ("stale",))
        if type(fields["version"]) is not int or fields["version"] != REPORT_VERSION:
            raise ValueError(f"report.version: expected {REPORT_VERSION}")
        return cls(
            _text(fields, "image", where),
            _text_or_null(fields, "digest", where),
            _strings(fields, "verified", where),
            tuple(
                SignatureFact.from_json(item, f"report.signatures[{index}]")
                for index, item in enumerate(_list(fields, "signatures", where))
            ),
            tuple(
                Failure.from_json(item, f"report.failures[{index}]")
                for index, item in enumerate(_list(fields, "failures", where))
            ),
            tuple(
                AttestationFact.from_json(item, f"report.attestations[{index}]")
                for index, item in enumerate(_list(fields, "attestations", where))
            ),
            stale=Stale.from_json(fields["stale"], f"{where}.stale") if "stale" in fields else None,
        )


# -- from_json: the exact shapes to_json writes ----------------------------------------------

_KEYLESS = ("subject", "issuer", "claims", "signedAt", "timeSource", "logIndex", "logURL")
_SIGNATURE = ("attestor", "key", "format", "scheme")
_ATTESTATION = ("attestor", "key", "format", "predicateType", "facts")
_FAILURE = ("attestor", "reason", "remediation")
_REPORT = ("version", "image", "digest", "verified", "signatures", "failures", "attestations")


def _fields(
    data: object, where: str, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> Mapping[str, object]:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object")
    missing = [name for name in required if name not in data]
    unknown = sorted(str(name) for name in data if name not in required and name not in optional)
    if missing or unknown:
        raise ValueError(f"{where}: missing fields {missing}, unknown fields {unknown}")
    return data


def _text(fields: Mapping[str, object], name: str, where: str) -> str:
    value = fields[name]
    if type(value) is not str:
        raise ValueError(f"{where}.{name}: expected a string")
    return value


def _text_or_null(fields: Mapping[str, object], name: str, where: str) -> str | None:
    return None if fields[name] is None else _text(fields, name, where)


def _list(fields: Mapping[str, object], name: str, where: str) -> list[object]:
    value = fields[name]
    if not isinstance(value, list):
        raise ValueError(f"{where}.{name}: expected a list")
    return value


def _strings(fields: Mapping[str, object], name: str, where: str) -> tuple[str, ...]:
    items = _list(fields, name, where)
    strings = tuple(item for item in items if type(item) is str)
    if len(strings) != len(items):
        raise ValueError(f"{where}.{name}: expected a list of strings")
    return strings


def _pairs(fields: Mapping[str, object], name: str, where: str) -> tuple[tuple[str, str], ...]:
    value = fields[name]
    if not isinstance(value, dict) or not all(
        type(k) is str and type(v) is str for k, v in value.items()
    ):
        raise ValueError(f"{where}.{name}: expected an object of strings")
    return tuple(value.items())


_TIME = ("signedAt", "timeSource")
TIME_SOURCES = ("transparency-log", "timestamp-authority", "verification-time")


def _check_time(signed_at: str | None, source: str | None) -> None:
    if (signed_at is None) != (source is None):
        raise ValueError("a signing time and its source come together")
    if source is not None and source not in TIME_SOURCES:
        raise ValueError(f"unknown time source {source!r}")


def _with_time(out: dict[str, Any], signed_at: str | None, source: str | None) -> dict[str, Any]:
    if signed_at is not None:
        out["signedAt"] = signed_at
        out["timeSource"] = source
    return out


def _time(fields: Mapping[str, object], where: str) -> tuple[str | None, str | None]:
    if ("signedAt" in fields) != ("timeSource" in fields):
        raise ValueError(f"{where}: signedAt and timeSource come together")
    if "signedAt" not in fields:
        return None, None
    source = _text(fields, "timeSource", where)
    if source not in TIME_SOURCES:
        raise ValueError(f"{where}.timeSource: expected one of {', '.join(TIME_SOURCES)}")
    return _text(fields, "signedAt", where), source


def _keyless(fields: Mapping[str, object], where: str) -> KeylessFact | None:
    if "keyless" not in fields:
        return None
    return KeylessFact.from_json(fields["keyless"], f"{where}.keyless")
