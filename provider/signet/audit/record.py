"""One decision as the audit log keeps it, and the canonical JSON every log line is written in.

A `Decision` is what the provider answered for one image key of one request. It checks itself
when made (`__post_init__`), so a record that reaches the log, or is read back from it, is always
well-formed; `from_json` reads exactly what `to_json` wrote and names the field of anything else.

`key` is the image as the user wrote it: attacker-controlled, kept verbatim (the canonical
encoding escapes everything outside printable ASCII, so it cannot break a line).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar

__all__ = ["Decision", "SignerFact", "canonical", "parse_canonical"]

# OCI image-spec digest grammar: algorithm ":" encoded.
_DIGEST: Final = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
_REASON: Final = re.compile(r"[A-Z][A-Z0-9_]*")
_DECISION: Final = (
    "time",
    "request",
    "key",
    "digest",
    "verified",
    "signers",
    "reasons",
    "error",
    "trust",
    "cached",
    "stale",
)
_SIGNER: Final = ("attestor", "key", "format", "identity", "issuer")
_T = TypeVar("_T")


def canonical(document: object) -> bytes:
    """The one encoding of `document` a hash is taken over: sorted keys, no spaces, ASCII only.

    NaN and infinities are refused: they are not JSON, and would not read back the same."""
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def parse_canonical(line: bytes) -> dict[str, Any]:
    """`line` as a JSON object, only if it is in canonical form (re-encoding gives `line` back).

    So every line has exactly one spelling: no duplicate keys, no whitespace, no `1` for `1.0`,
    no escapes that could be written two ways. Raises ValueError saying what is wrong."""
    try:
        document = json.loads(line, object_pairs_hook=_unique, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise ValueError(f"not JSON ({str(exc) or type(exc).__name__})") from None
    if not isinstance(document, dict):
        raise ValueError("not a JSON object")
    if canonical(document) != line:
        raise ValueError("not in canonical form (re-encoding it gives other bytes)")
    return document


@dataclass(frozen=True, slots=True)
class SignerFact:
    """Who signed: the attestor, its key's id (or "keyless"), the signature format, and for a
    keyless signature the certified identity and its OIDC issuer."""

    attestor: str
    key: str
    format: str
    identity: str | None = None
    issuer: str | None = None

    def __post_init__(self) -> None:
        where = "signer"
        for name in ("attestor", "key", "format"):
            _check_text(getattr(self, name), f"{where}.{name}")
        for name in ("identity", "issuer"):
            value = getattr(self, name)
            if value is not None:
                _check_text(value, f"{where}.{name}")

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _SIGNER}

    @classmethod
    def from_json(cls, data: object, where: str = "signer") -> SignerFact:
        fields = _fields(data, where, _SIGNER)
        return _construct(cls, where, **fields)


@dataclass(frozen=True, slots=True)
class Decision:
    """The provider's answer for one image key: `reasons` is empty when every attestor the key
    was checked against verified; `error` is a transient failure's message, if there was one."""

    time: float  # Unix seconds
    request: str
    key: str
    digest: str | None
    verified: tuple[str, ...] = ()
    signers: tuple[SignerFact, ...] = ()
    reasons: tuple[str, ...] = ()
    error: str | None = None
    trust: str = ""
    cached: bool = False
    # Answered from the provider's last known good verdict while the registry was down.
    stale: bool = False

    def __post_init__(self) -> None:
        if type(self.time) is int:  # so the canonical encoding is always a float's
            object.__setattr__(self, "time", float(self.time))
        if type(self.time) is not float or not math.isfinite(self.time) or self.time < 0:
            raise ValueError("decision.time: expected non-negative, finite Unix seconds")
        _check_text(self.request, "decision.request")
        if type(self.key) is not str:
            raise ValueError("decision.key: expected a string")
        if self.digest is not None and (
            type(self.digest) is not str or not _DIGEST.fullmatch(self.digest)
        ):
            raise ValueError("decision.digest: expected null or an OCI digest (algorithm:hex)")
        _check_tuple(self.verified, "decision.verified", str)
        _check_tuple(self.signers, "decision.signers", SignerFact)
        _check_tuple(self.reasons, "decision.reasons", str)
        for index, reason in enumerate(self.reasons):
            if not _REASON.fullmatch(reason):
                raise ValueError(f"decision.reasons[{index}]: expected a reason code")
        if self.error is not None and type(self.error) is not str:
            raise ValueError("decision.error: expected null or a string")
        if type(self.trust) is not str:
            raise ValueError("decision.trust: expected a string")
        if type(self.cached) is not bool:
            raise ValueError("decision.cached: expected true or false")
        if type(self.stale) is not bool:
            raise ValueError("decision.stale: expected true or false")

    def to_json(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "request": self.request,
            "key": self.key,
            "digest": self.digest,
            "verified": list(self.verified),
            "signers": [s.to_json() for s in self.signers],
            "reasons": list(self.reasons),
            "error": self.error,
            "trust": self.trust,
            "cached": self.cached,
            "stale": self.stale,
        }

    @classmethod
    def from_json(cls, data: object, where: str = "decision") -> Decision:
        """Exactly what `to_json` wrote; anything else is a ValueError naming the field."""
        fields = dict(_fields(data, where, _DECISION))
        if type(fields["time"]) is bool:  # a bool is an int to Python, not a time
            raise ValueError(f"{where}.time: expected a number")
        for name in ("verified", "reasons"):
            fields[name] = tuple(_list(fields, name, where))
        fields["signers"] = tuple(
            SignerFact.from_json(item, f"{where}.signers[{index}]")
            for index, item in enumerate(_list(fields, "signers", where))
        )
        return _construct(cls, where, **fields)


def _construct(cls: type[_T], where: str, **fields: object) -> _T:
    """`cls(**fields)`, its validation's messages rooted at `where` (e.g. `decision.signers[2]`)."""
    try:
        return cls(**fields)
    except ValueError as exc:
        message = str(exc)
        head, _, rest = message.partition(".")
        if head in ("decision", "signer") and rest:
            raise ValueError(f"{where}.{rest}") from None
        raise


def _check_text(value: object, where: str) -> None:
    if type(value) is not str or not value:
        raise ValueError(f"{where}: expected a non-empty string")


def _check_tuple(value: object, where: str, item_type: type) -> None:
    if type(value) is not tuple:
        raise ValueError(f"{where}: expected a tuple")
    for index, item in enumerate(value):
        if type(item) is not item_type:
            raise ValueError(f"{where}[{index}]: expected a {item_type.__name__}")


def _fields(data: object, where: str, names: tuple[str, ...]) -> Mapping[str, object]:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object")
    missing = [name for name in names if name not in data]
    unknown = sorted(str(name) for name in data if name not in names)
    if missing:
        raise ValueError(f"{where}.{missing[0]}: missing (missing fields: {', '.join(missing)})")
    if unknown:
        raise ValueError(f"{where}.{unknown[0]}: unknown field (unknown: {', '.join(unknown)})")
    return data


def _list(fields: Mapping[str, object], name: str, where: str) -> list[object]:
    value = fields[name]
    if not isinstance(value, list):
        raise ValueError(f"{where}.{name}: expected a list")
    return value


def _unique(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("a duplicate field")
    return out


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")
