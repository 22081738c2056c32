"""The trust config's lifecycle fields: `notBefore`/`notAfter` windows, and the `revoked:` list.

```yaml
revoked:
  - key: dev-2025                 # a key id of this config (with `attestor:` when two share it),
    reason: leaked in a CI log    #   or a key's SHA-256 fingerprint (16 or 64 hex characters)
    time: 2026-03-01T09:00:00Z
  - file: keys/old.pub            # or pem: the public key itself
  - certificate: {serial: "3a:5f:09", issuer: "CN=sigstore-intermediate,O=sigstore.dev"}
  - identity: {subject: ci@team.example, issuer: https://oidc.team.example}
  - digest: sha256:…              # one `.sig` layer, or one bundle's referrer manifest
```

Every entry names exactly one thing and has a `reason` and a `time` (RFC 3339, with a zone).
Key ids are resolved once every file is read, to the key's fingerprint: a revoked key stays
revoked under any id, and an id naming no key is an error (a typo must not revoke nothing).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from signet.crypto.keys import UnusableKey, load_public_key_pem
from signet.model.reference import is_sha256_digest
from signet.trust.lifecycle import Revocation, Window, normalize_dn
from signet.trust.model import Attestor, TrustConfigError
from signet.trust.source import Where

__all__ = ["WINDOW_FIELDS", "KeyReference", "resolve", "revocations", "window"]

WINDOW_FIELDS = frozenset({"notBefore", "notAfter"})
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)
_SUBJECTS = ("key", "file", "pem", "certificate", "identity", "digest")
_FIELDS = {*_SUBJECTS, "attestor", "reason", "time"}
_HEX = re.compile(r"[0-9a-f]{16}|[0-9a-f]{64}", re.ASCII)


@dataclass(frozen=True, slots=True)
class KeyReference:
    """A `key:` revocation, resolved to a fingerprint once every attestor is known."""

    file: Path
    at: str
    name: str
    attestor: str | None
    reason: str
    time: datetime


def window(where: Where, at: str, fields: Mapping[str, Any]) -> Window:
    """The `notBefore`/`notAfter` of a key or identity (both optional)."""
    bounds = {name: timestamp(where, f"{at}.{name}", fields[name]) for name in fields}
    try:
        return Window(bounds.get("notBefore"), bounds.get("notAfter"))
    except ValueError as exc:
        where.fail(at, str(exc))


def timestamp(where: Where, at: str, value: Any) -> datetime:
    """An RFC 3339 timestamp with its zone (YAML may already have read it as a datetime)."""
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            where.fail(at, f"{value.isoformat()} has no time zone; write e.g. ...T00:00:00Z")
        return value
    if isinstance(value, date):
        where.fail(at, f"{value} is a date; give a time and zone, e.g. {value}T00:00:00Z")
    if not isinstance(value, str) or _RFC3339.fullmatch(value.strip()) is None:
        where.fail(at, f"{value!r} is not an RFC 3339 timestamp (e.g. 2026-03-01T09:00:00Z)")
    try:
        return datetime.fromisoformat(value.strip().upper().replace(" ", "T"))
    except ValueError as exc:
        where.fail(at, f"{value!r} is not a valid time: {exc}")


def revocations(where: Where, items: Sequence[Any]) -> list[Revocation | KeyReference]:
    return [_entry(where, f"revoked[{i}]", item) for i, item in enumerate(items)]


def _entry(where: Where, at: str, item: Any) -> Revocation | KeyReference:
    fields = where.mapping(item, at, _FIELDS)
    named = [name for name in _SUBJECTS if name in fields]
    if not named:
        where.fail(at, f"names nothing to revoke; give one of {', '.join(_SUBJECTS)}")
    if len(named) > 1:
        where.fail(at, f"names both {named[0]!r} and {named[1]!r}; one revocation per entry")
    (kind,) = named
    if "attestor" in fields and kind != "key":
        where.fail(f"{at}.attestor", "only scopes a revocation by key id ('key')")
    if "reason" not in fields:
        where.fail(at, "has no 'reason' (why it is revoked: it is shown in every denial)")
    if "time" not in fields:
        where.fail(at, "has no 'time' (when it was revoked, RFC 3339)")
    reason = where.string(fields["reason"], f"{at}.reason")
    when = timestamp(where, f"{at}.time", fields["time"])
    value = fields[kind]
    if kind == "key":
        name = where.string(value, f"{at}.key")
        scope = where.string(fields["attestor"], f"{at}.attestor") if "attestor" in fields else None
        return KeyReference(where.file, at, name, scope, reason, when)
    if kind in ("file", "pem"):
        fingerprint = _key_fingerprint(where, at, kind, value)
        return Revocation(reason, when, key=fingerprint)
    if kind == "digest":
        digest = where.string(value, f"{at}.digest")
        if not is_sha256_digest(digest):
            where.fail(f"{at}.digest", f"{digest!r} is not sha256:<64 hex digits>")
        return Revocation(reason, when, evidence=digest)
    if kind == "certificate":
        certificate = where.mapping(value, f"{at}.certificate", {"serial", "issuer"})
        serial = _serial(where, f"{at}.certificate.serial", certificate.get("serial"))
        ca = normalize_dn(where.string(certificate.get("issuer"), f"{at}.certificate.issuer"))
        return Revocation(reason, when, serial=serial, ca=ca)
    identity = where.mapping(value, f"{at}.identity", {"subject", "issuer"})
    subject = where.string(identity.get("subject"), f"{at}.identity.subject")
    issuer = where.string(identity.get("issuer"), f"{at}.identity.issuer")
    return Revocation(reason, when, subject=subject, issuer=issuer)


def _key_fingerprint(where: Where, at: str, kind: str, value: Any) -> str:
    if kind == "pem":
        pem = where.string(value, f"{at}.pem").encode()
    else:
        path = where.relative_path(where.string(value, f"{at}.file"))
        try:
            pem = path.read_bytes()
        except OSError as exc:
            where.fail(at, f"cannot read key file {path}: {exc.strerror}")
    try:
        return load_public_key_pem(pem).fingerprint
    except UnusableKey as exc:
        where.fail(at, str(exc))


def _serial(where: Where, at: str, value: Any) -> int:
    """A certificate serial: hex as `openssl x509 -serial` prints it (colons allowed), or an
    integer."""
    if type(value) is int and value > 0:
        return value
    text = where.string(value, at).replace(":", "").lower()
    text = text.removeprefix("0x")
    if not re.fullmatch(r"[0-9a-f]{1,40}", text, re.ASCII) or int(text, 16) == 0:
        where.fail(at, f"{value!r} is not a certificate serial (hex, e.g. 3a:5f:09)")
    return int(text, 16)


def resolve(
    entries: Sequence[Revocation | KeyReference], attestors: Sequence[Attestor]
) -> tuple[Revocation, ...]:
    """Every `key:` revocation resolved to the fingerprint of the key it names."""
    return tuple(
        entry if isinstance(entry, Revocation) else _resolve_key(entry, attestors)
        for entry in entries
    )


def _resolve_key(ref: KeyReference, attestors: Sequence[Attestor]) -> Revocation:
    def fail(problem: str) -> TrustConfigError:
        return TrustConfigError(f"{ref.file}: {ref.at}: {problem}")

    scoped = [a for a in attestors if ref.attestor is None or a.name == ref.attestor]
    if not scoped:
        raise fail(f"attestor {ref.attestor!r} is not configured")
    by_id = [(a, k) for a in scoped for k in a.keys if k.id == ref.name]
    by_fingerprint = [
        (a, k)
        for a in scoped
        for k in a.keys
        if _HEX.fullmatch(ref.name) and k.key.fingerprint.startswith(ref.name)
    ]
    found = by_id or by_fingerprint
    if len(found) > 1:
        owners = ", ".join(sorted({a.name for a, _ in found}))
        raise fail(f"key {ref.name!r} is a key of {owners}; add `attestor:` to say whose")
    if found:
        fingerprint = found[0][1].key.fingerprint
    elif len(ref.name) == 64 and _HEX.fullmatch(ref.name):
        fingerprint = ref.name  # a key not (yet) configured
    else:
        where = f" of {ref.attestor}" if ref.attestor else ""
        raise fail(
            f"key {ref.name!r} names no configured key{where} (give a key id, a 16- or "
            "64-hex fingerprint, or the key's file or pem)"
        )
    return Revocation(ref.reason, ref.time, key=fingerprint)
