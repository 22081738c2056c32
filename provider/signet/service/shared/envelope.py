"""A verdict as the shared store holds it: authenticated with HMAC-SHA256 over its key and value.

Whoever can write to the store could otherwise make every replica admit any image, so a stored
verdict counts only when its MAC verifies under the secret the replicas share, it names exactly
the key it was read for, it has not expired, and its report parses strictly (`Report.from_json`).
Anything else is an `InvalidVerdict`, and the replica verifies the image itself.

    value   = "signet-verdict-v1." + hex(mac) + "." + payload
    payload = {"key": [registry, repository, digest, fingerprint], "expires": <Unix ms>,
               "report": <Report.to_json()>}                                  (compact JSON)
    mac     = HMAC-SHA256(secret, "signet-verdict-v1." + payload)

The MAC covers the key (it is in the payload), so a genuine verdict copied to another image's
name is refused, and the expiry, so an old one replayed after its lifetime is too. The store's
names are derived with the secret as well: a name says nothing about the image, and two
installations with different secrets on one store never meet.

Pure: no I/O, no clock (the caller passes `now`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Literal

from signet.model.report import Report

__all__ = [
    "MAX_VALUE_BYTES",
    "MIN_SECRET_BYTES",
    "InvalidVerdict",
    "Problem",
    "Secret",
    "VerdictKey",
    "names",
    "seal",
    "unseal",
]

# (registry, repository, digest, trust-config fingerprint): the engine's verdict key.
VerdictKey = tuple[str, str, str, str]

MIN_SECRET_BYTES = 32
# A report is a few kilobytes; anything near this is not one of ours.
MAX_VALUE_BYTES = 1 << 20

_PREFIX = b"signet-verdict-v1."
_NAME_CONTEXT = b"signet-verdict-name-v1\0"
_MAC_HEX = 2 * hashlib.sha256().digest_size

Problem = Literal["malformed", "mac", "json", "key", "expired", "report"]


class InvalidVerdict(ValueError):
    """A stored value that must not be used; `problem` says which check refused it."""

    def __init__(self, problem: Problem, message: str) -> None:
        super().__init__(f"{problem}: {message}")
        self.problem: Problem = problem


@dataclass(frozen=True, slots=True)
class Secret:
    """The HMAC key the replicas share; never shown (not in a repr, not in a log)."""

    value: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.value) < MIN_SECRET_BYTES:
            raise ValueError(
                f"the shared cache secret has {len(self.value)} bytes; it needs at least "
                f"{MIN_SECRET_BYTES}"
            )


def names(secret: Secret, key: VerdictKey) -> tuple[str, str]:
    """The store's names for a verdict and for the claim of the replica verifying it.

    Both carry the same hash tag (`{…}`), so a Redis cluster keeps them on one shard."""
    tag = hmac.new(secret.value, _NAME_CONTEXT + _canonical(key), hashlib.sha256).hexdigest()
    return f"signet:{{{tag}}}:verdict", f"signet:{{{tag}}}:lock"


def seal(secret: Secret, key: VerdictKey, report: Report, expires: float) -> bytes:
    """The stored form of `report` for `key`, good until `expires` (Unix seconds)."""
    payload = json.dumps(
        {"key": list(key), "expires": int(expires * 1000), "report": report.to_json()},
        separators=(",", ":"),
        ensure_ascii=True,
    ).encode()
    mac = hmac.new(secret.value, _PREFIX + payload, hashlib.sha256).hexdigest().encode()
    return _PREFIX + mac + b"." + payload


def unseal(secret: Secret, key: VerdictKey, value: bytes, now: float) -> tuple[Report, float]:
    """The report stored in `value` for `key`, and when it expires (Unix seconds).

    The checks, in order: (1) the shape, (2) the MAC, before anything of the payload is read,
    (3) the payload parses, (4) it is for exactly this key, (5) it has not expired, (6) the
    report parses strictly and is about this digest. Raises InvalidVerdict."""
    # 1. prefix, hex MAC, separator; a bounded size
    if len(value) > MAX_VALUE_BYTES:
        raise InvalidVerdict("malformed", f"{len(value)} bytes, more than {MAX_VALUE_BYTES}")
    dot = len(_PREFIX) + _MAC_HEX
    if not value.startswith(_PREFIX) or value[dot : dot + 1] != b".":
        raise InvalidVerdict("malformed", "not a signet-verdict-v1 value")
    mac_hex, payload = value[len(_PREFIX) : dot], value[dot + 1 :]
    # 2. the MAC, in constant time
    expected = hmac.new(secret.value, _PREFIX + payload, hashlib.sha256).hexdigest().encode()
    if not hmac.compare_digest(mac_hex, expected):
        raise InvalidVerdict("mac", "the MAC does not verify under this secret")
    # 3. the payload
    try:
        document = json.loads(payload, object_pairs_hook=_unique)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise InvalidVerdict("json", str(exc) or type(exc).__name__) from None
    if not isinstance(document, dict) or set(document) != {"key", "expires", "report"}:
        raise InvalidVerdict("json", "expected exactly key, expires and report")
    # 4. this key
    if document["key"] != list(key):
        raise InvalidVerdict("key", "the verdict is for another image or trust config")
    # 5. not expired
    expires = document["expires"]
    if type(expires) is not int:
        raise InvalidVerdict("json", "expires is not an integer")
    if expires <= now * 1000:
        raise InvalidVerdict("expired", f"expired {now - expires / 1000:.1f}s ago")
    # 6. the report
    try:
        report = Report.from_json(document["report"])
    except ValueError as exc:
        raise InvalidVerdict("report", str(exc)) from None
    if report.digest != key[2]:
        raise InvalidVerdict("key", "the report is about another digest")
    return report, expires / 1000


def _canonical(key: VerdictKey) -> bytes:
    return json.dumps(list(key), separators=(",", ":"), ensure_ascii=True).encode()


def _unique(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("a duplicate field")
    return out
