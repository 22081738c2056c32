"""The decisions pages: recent decisions with filters and a search box, and one image's history."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Final

from signet.audit.query import Filter, Match, parse_time
from signet.audit.record import Decision
from signet.console.html import Child, Html, tag, url
from signet.console.logview import Recent

__all__ = ["FIELDS", "filter_of", "filters_form", "results", "when"]

# The filters' form fields: (name, label, hint).
FIELDS: Final = (
    ("q", "Search", "image, digest, attestor, reason or error"),
    ("image", "Image contains", "as written in the pod"),
    ("digest", "Digest", "sha256:…"),
    ("attestor", "Attestor", "verified or signed"),
    ("reason", "Reason", "e.g. NO_SIGNATURE"),
    ("since", "Since", "1h, 7d or 2026-12-02T16:00:00Z"),
)


def when(seconds: float) -> str:
    return datetime.fromtimestamp(int(seconds), UTC).isoformat().replace("+00:00", "Z")


def filter_of(values: Mapping[str, str], default_since: str, now: float) -> Filter:
    """The log filter the form's values ask for; ValueError (its message for the page) when
    `since` is not a time."""
    since = parse_time(values.get("since") or default_since, now)
    return Filter(
        digest=values.get("digest") or None,
        image=values.get("image") or None,
        attestor=values.get("attestor") or None,
        reason=values.get("reason") or None,
        since=since,
    )


def filters_form(values: Mapping[str, str], default_since: str) -> Html:
    fields: list[Child] = []
    for name, label, hint in FIELDS:
        field_id = f"filter-{name}"
        fields.append(
            tag(
                "label",
                label,
                " ",
                tag(
                    "input",
                    id=field_id,
                    name=name,
                    type="search" if name == "q" else "text",
                    value=values.get(name, ""),
                    placeholder=default_since if name == "since" else hint,
                ),
                for_=field_id,
            )
        )
    return tag(
        "form",
        tag("fieldset", tag("legend", "Filter"), fields, tag("button", "Apply", type="submit")),
        method="get",
        action="/",
        role="search",
    )


def results(recent: Recent | None, problem: str, *, caption: str) -> Html:
    if problem:
        return tag("p", problem, class_="error")
    if recent is None:
        return tag("p", "No decision log is configured (signet serve --decision-log).")
    notes: list[Child] = [
        tag(
            "p",
            f"{recent.total} decisions matched; the newest {len(recent.matches)} are shown. "
            "Read from the log without verifying it: `signet audit verify` checks the chain.",
            class_="note",
        )
    ]
    if recent.skipped:
        notes.append(tag("p", f"{recent.skipped} log lines did not parse.", class_="bad"))
    if not recent.matches:
        return tag("div", notes, tag("p", "No decisions match."))
    return tag("div", notes, _table(recent.matches, caption))


_COLUMNS: Final = ("Time (UTC)", "Image", "Digest", "Verified", "Reasons", "Notes")


def _table(matches: Sequence[Match], caption: str) -> Html:
    head = tag("tr", [tag("th", name, scope="col") for name in _COLUMNS])
    rows = [_row(m.decision) for m in matches]
    return tag("table", tag("caption", caption), tag("thead", head), tag("tbody", rows))


def _row(decision: Decision) -> Html:
    image = tag("a", decision.key, href=url("/history", {"image": decision.key}))
    digest: Child = (
        tag("a", tag("code", decision.digest), href=url("/history", {"digest": decision.digest}))
        if decision.digest
        else "—"
    )
    notes = [
        *(["cached"] if decision.cached else []),
        *(["stale (registry down)"] if decision.stale else []),
        *([f"error: {decision.error}"] if decision.error else []),
        f"trust {decision.trust[:12]}" if decision.trust else "",
    ]
    return tag(
        "tr",
        tag("th", when(decision.time), scope="row"),
        tag("td", image),
        tag("td", digest),
        tag("td", ", ".join(decision.verified) or "—"),
        tag("td", ", ".join(decision.reasons) or ("—" if decision.error else "OK")),
        tag("td", "; ".join(n for n in notes if n)),
    )
