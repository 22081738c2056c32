"""The signers page: each attestor, its keys or keyless identities, and their lifecycle and use."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from signet.console.decisions import when
from signet.console.html import Child, Html, tag
from signet.console.logview import Usage
from signet.trust.lifecycle import Revocation, Window, rfc3339
from signet.trust.model import Attestor, TrustConfig

__all__ = ["signers"]

_KEY_COLUMNS = ("Key id", "SHA-256", "Valid from", "Valid until", "State", "Last used", "Images")
_IDENTITY_COLUMNS = ("Identity", "Valid from", "Valid until", "State")


def signers(
    config: TrustConfig, usage: Mapping[tuple[str, str], Usage] | None, now: datetime
) -> Html:
    sections = [_attestor(a, config, usage, now) for a in config.attestors]
    note = (
        tag("p", "No decision log is configured: last use is not known.", class_="note")
        if usage is None
        else None
    )
    return tag("div", note, sections)


def _attestor(
    attestor: Attestor,
    config: TrustConfig,
    usage: Mapping[tuple[str, str], Usage] | None,
    now: datetime,
) -> Html:
    rows: list[Html] = []
    for trusted in attestor.keys:
        used = None if usage is None else usage.get((attestor.name, trusted.id))
        revoked = config.revocations.key(trusted.key.fingerprint)
        rows.append(
            tag(
                "tr",
                tag("th", trusted.id, scope="row"),
                tag("td", tag("code", trusted.key.fingerprint[:16])),
                *_window(trusted.window),
                tag("td", _state(trusted.window, revoked, now)),
                tag("td", when(used.last_used) if used else "—"),
                tag("td", used.images if used else 0),
            )
        )
    parts: list[Child] = [tag("h2", "Attestor ", tag("code", attestor.name))]
    if rows:
        parts.append(_table(_KEY_COLUMNS, rows, f"Keys of {attestor.name}"))
    if attestor.keyless is not None:
        identities = []
        for identity in attestor.keyless.identities:
            subject, issuer = identity.subject, identity.issuer
            revoked = config.revocations.identity(subject, issuer) if subject and issuer else None
            identities.append(
                tag(
                    "tr",
                    tag("th", identity.describe(), scope="row"),
                    *_window(identity.window),
                    tag("td", _state(identity.window, revoked, now)),
                )
            )
        used = None if usage is None else usage.get((attestor.name, "keyless"))
        parts += [
            _table(_IDENTITY_COLUMNS, identities, f"Keyless identities of {attestor.name}"),
            tag(
                "p",
                "Keyless signatures: last used ",
                when(used.last_used) if used else "never (in the window)",
                f", {used.images if used else 0} images.",
            ),
        ]
    return tag("section", parts)


def _window(window: Window) -> tuple[Html, Html]:
    return (
        tag("td", rfc3339(window.not_before) if window.not_before else "—"),
        tag("td", rfc3339(window.not_after) if window.not_after else "—"),
    )


def _state(window: Window, revoked: Revocation | None, now: datetime) -> Html:
    if revoked is not None:
        return tag("span", f"revoked at {rfc3339(revoked.time)}: ", revoked.reason, class_="bad")
    if window.not_after is not None and now > window.not_after:
        return tag("span", "expired", class_="bad")
    if window.not_before is not None and now < window.not_before:
        return tag("span", "not yet valid", class_="bad")
    return tag("span", "valid", class_="ok")


def _table(columns: tuple[str, ...], rows: list[Html], caption: str) -> Html:
    head = tag("tr", [tag("th", c, scope="col") for c in columns])
    return tag("table", tag("caption", caption), tag("thead", head), tag("tbody", rows))
