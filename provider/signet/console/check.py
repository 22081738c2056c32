"""Check an image now: the form, and the engine's answer shown as the report's facts."""

from __future__ import annotations

from signet.console.html import Child, Html, tag
from signet.console.layout import csrf_field
from signet.model.report import Report
from signet.reasons import TransientFailure
from signet.service.decisions import Answer, Outcome

__all__ = ["check_form", "outcome"]


def check_form(csrf: str, image: str = "") -> Html:
    return tag(
        "form",
        csrf_field(csrf),
        tag("label", "Image reference", for_="check-image"),
        " ",
        tag(
            "input",
            id="check-image",
            name="image",
            type="text",
            value=image,
            required=True,
            size=60,
            autocomplete="off",
            spellcheck="false",
        ),
        " ",
        tag("button", "Check now", type="submit"),
        method="post",
        action="/check",
    )


def outcome(image: str, result: Outcome) -> Html:
    if isinstance(result, TransientFailure):
        return tag(
            "section",
            tag("h2", "Could not be answered now"),
            tag("p", tag("strong", str(result.reason)), ": ", result.message, class_="error"),
            tag("p", "Nothing about the image was learned; Gatekeeper would deny and retry."),
        )
    assert isinstance(result, Answer)
    return _report(image, result.report)


def _report(image: str, report: Report) -> Html:
    verdict = (
        tag("p", "Verified by: ", ", ".join(report.verified), class_="ok")
        if report.verified
        else tag("p", "No trusted attestor verified this image.", class_="bad")
    )
    parts: list[Child] = [
        tag("h2", "Result for ", tag("code", image)),
        tag("p", "Digest: ", tag("code", report.digest or "—")),
        verdict,
    ]
    if report.stale is not None:
        parts.append(
            tag(
                "p",
                f"Stale: verified at {report.stale.verified_at}; now {report.stale.reason}: ",
                report.stale.detail,
                class_="bad",
            )
        )
    if report.signatures:
        parts += [
            tag("h3", "Signatures"),
            _table(
                ("Attestor", "Key", "Format", "Scheme", "Signed at"),
                [
                    (s.attestor, s.key, s.format, s.scheme, s.signed_at or "—")
                    for s in report.signatures
                ],
            ),
        ]
    if report.failures:
        parts += [
            tag("h3", "Failures"),
            _table(
                ("Attestor", "Reason", "Remediation", "Detail"),
                [
                    (f.attestor or "—", str(f.reason), f.remediation, f.detail or "—")
                    for f in report.failures
                ],
            ),
        ]
    if report.attestations:
        parts += [
            tag("h3", "Attestations"),
            _table(
                ("Attestor", "Predicate type", "Facts"),
                [
                    (a.attestor, a.predicate_type, "; ".join(f"{k}={v}" for k, v in a.facts))
                    for a in report.attestations
                ],
            ),
        ]
    return tag("section", parts)


def _table(columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> Html:
    head = tag("tr", [tag("th", c, scope="col") for c in columns])
    body = [
        tag("tr", tag("th", first, scope="row"), [tag("td", cell) for cell in rest])
        for first, *rest in rows
    ]
    return tag("table", tag("thead", head), tag("tbody", body))
