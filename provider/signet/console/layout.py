"""The page every view is shown in, and the headers every response carries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from signet.console.html import Child, Html, join, tag

__all__ = ["NAV", "SECURITY_HEADERS", "SecureHeaders", "csrf_field", "message_page", "page"]

SECURITY_HEADERS: Final = (
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        b"frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
)

NAV: Final = (
    ("/", "Recent decisions"),
    ("/check", "Check an image"),
    ("/signers", "Signers and keys"),
    ("/config", "Trust config"),
)


class SecureHeaders:
    """Every response, errors and 404s included, gets SECURITY_HEADERS (replacing any)."""

    _names: Final = frozenset(name for name, _ in SECURITY_HEADERS)

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers", [])
                kept = [(k, v) for k, v in headers if k.lower() not in self._names]
                message = {**message, "headers": [*kept, *SECURITY_HEADERS]}
            await send(message)

        await self._app(scope, receive, send_secured)


def csrf_field(token: str) -> Html:
    return tag("input", type="hidden", name="csrf", value=token)


def page(
    title: str,
    *body: Child,
    csrf: str | None = None,
    status_code: int = 200,
    nav: Sequence[tuple[str, str]] = NAV,
    current: str = "",
) -> Response:
    """A whole page: `title` is its <h1>; `csrf` (a logged-in session's) adds the log-out form."""
    links = [
        tag("a", label, href=path, aria_current="page" if path == current else None)
        for path, label in nav
    ]
    logout = (
        tag(
            "form",
            csrf_field(csrf),
            tag("button", "Log out", type="submit"),
            method="post",
            action="/logout",
        )
        if csrf is not None
        else None
    )
    document = join(
        [
            Html("<!DOCTYPE html>"),
            tag(
                "html",
                tag(
                    "head",
                    tag("meta", charset="utf-8"),
                    tag("meta", name="viewport", content="width=device-width, initial-scale=1"),
                    tag("title", title, " · Signet console"),
                    tag("link", rel="stylesheet", href="/console.css"),
                ),
                tag(
                    "body",
                    tag("a", "Skip to main content", href="#main", class_="skip"),
                    tag(
                        "header",
                        tag("strong", "Signet console"),
                        " ",
                        tag("nav", links, logout, aria_label="Console") if csrf else None,
                    ),
                    tag("main", tag("h1", title), *body, id="main", tabindex="-1"),
                ),
                lang="en",
            ),
        ]
    )
    return HTMLResponse(document.markup, status_code=status_code)


def message_page(title: str, message: str, status_code: int) -> Response:
    return page(title, tag("p", message, class_="error"), status_code=status_code)
