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

from signet.reasons import Reason

__all__ = [
    "REPORT_VERSION",
    "AttestationFact",
    "Failure",
    "KeylessFact",
    "Report",
    "SignatureFact",
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

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "attestor": self.attestor,
            "key": self.key,
            "format": self.format,
            "scheme": self.scheme,
        }
        if self.keyless is not None:
            out["keyless"] = self.keyless.to_json()
        return out

    @classmethod
    def from_json(cls, data: object, where: str) -> SignatureFact:
        fields = _fields(data, where, _SIGNATURE, ("keyless",))
        return cls(
            _text(fields, "attestor", where),
            _text(fields, "key", where),
            _text(fields, "format", where),
            _text(fields, "scheme", where),
            _keyless(fields, where),
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
        return out

    @classmethod
    def from_json(cls, data: object, where: str) -> AttestationFact:
        fields = _fields(data, where, _ATTESTATION, ("keyless",))
        return cls(
            _text(fields, "attestor", where),
            _text(fields, "key", where),
            _text(fields, "format", where),
            _text(fields, "predicateType", where),
            _pairs(fields, "facts", where),
            _keyless(fields, where),
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
class Report:
    image: str
    digest: str | None
    verified: tuple[str, ...] = ()
    signatures: tuple[SignatureFact, ...] = ()
    failures: tuple[Failure, ...] = ()
    attestations: tuple[AttestationFact, ...] = ()
    version: int = field(default=REPORT_VERSION)

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
        return {
            "version": self.version,
            "image": self.image,
            "digest": self.digest,
            "verified": list(self.verified),
            "signatures": [s.to_json() for s in self.signatures],
            "failures": [f.to_json() for f in self.failures],
            "attestations": [a.to_json() for a in self.attestations],
        }

    @classmethod
    def from_json(cls, data: object) -> Report:
        """The report `to_json` wrote, exactly: anything else (an unknown or missing field, a
        wrong type, another version, a transient reason) is a ValueError."""
        where = "report"
        fields = _fields(data, where, _REPORT)
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


def _keyless(fields: Mapping[str, object], where: str) -> KeylessFact | None:
    if "keyless" not in fields:
        return None
    return KeylessFact.from_json(fields["keyless"], f"{where}.keyless")


def remediation(
    reason: Reason, *, image: str, attestor: str | None = None, keyless: bool = False
) -> str:
    """A one-line instruction for the person who reads the denial (`keyless`: the attestor is
    identities Fulcio certifies, not keys)."""
    if keyless and attestor:
        as_identity = f"keyless as an identity of {attestor}"
        keyless_texts = {
            Reason.NO_SIGNATURE: (
                f"sign {image} {as_identity} (cosign sign, with that identity's OIDC token)"
            ),
            Reason.NOT_SIGNED_BY_ATTESTOR: (
                f"sign {image} {as_identity}, or add the signer's identity to {attestor}"
            ),
            Reason.SIGNATURE_INVALID: (
                f"re-sign {image} {as_identity}; the stored signature does not verify"
            ),
            Reason.DIGEST_MISMATCH: (
                f"sign {image} itself {as_identity}; the signature found names another digest"
            ),
            Reason.UNSUPPORTED_FORMAT: (
                f"sign {image} {as_identity} as cosign does (a .sig tag or a Sigstore bundle)"
            ),
        }
        if reason in keyless_texts:
            return keyless_texts[reason]
    who = f"a {attestor} key" if attestor else "a trusted key"
    texts = {
        Reason.INVALID_REFERENCE: f"fix the image reference {image!r} in the pod spec",
        Reason.IMAGE_NOT_FOUND: f"push {image} to its registry, or correct the reference",
        Reason.NO_SIGNATURE: f"sign {image} with {who} (signet sign / cosign sign)",
        Reason.NOT_SIGNED_BY_ATTESTOR: f"sign {image} with {who}",
        Reason.SIGNATURE_INVALID: f"re-sign {image} with {who}; its stored signature is corrupt",
        Reason.DIGEST_MISMATCH: (
            f"sign {image} itself with {who}; the signature found names another digest"
        ),
        Reason.LIMIT_EXCEEDED: f"remove surplus signatures and referrers from {image}",
        Reason.UNSUPPORTED_FORMAT: (
            f"sign {image} with {who} as cosign does (a .sig tag or a Sigstore bundle)"
        ),
    }
    return texts.get(reason, f"retry later; {reason} is not about the image itself")
