"""The console's Starlette app: routes, and the login every page but /login needs.

GET pages take the session cookie or `Authorization: Bearer <token>`; without either a browser
is sent to /login (303) and anything else gets 401. Every POST must come from the console's own
pages (same origin) and carry the CSRF token of its session (see auth), else 403.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from signet.audit.query import parse_time
from signet.console import check, config_page, decisions, logview, signers
from signet.console.auth import COOKIE, Session, Sessions, cross_origin
from signet.console.forms import FormTooLarge, read_form
from signet.console.html import Child, tag
from signet.console.layout import SecureHeaders, csrf_field, message_page, page
from signet.console.proposal import PROPOSED, config_folder, validate
from signet.console.settings import ConsoleSettings
from signet.console.style import CSS
from signet.service.decisions import Outcome
from signet.trust.model import TrustConfig

__all__ = ["Checks", "create_console"]


class Checks(Protocol):
    """What "check an image now" needs of the engine (`Engine.check_many`)."""

    async def check_many(self, keys: Sequence[str]) -> list[Outcome]: ...


_FAILED_LOGIN_DELAY = 0.5  # seconds: slows guessing, not a person who mistyped
_MAX_IMAGE = 4096


@dataclass(frozen=True, slots=True)
class _Visit:
    """A logged-in request: its session (None for a bearer token) and its CSRF token."""

    session: Session | None
    csrf: str


Handler = Callable[[Request, _Visit], Awaitable[Response]]


def create_console(
    engine: Checks,
    trust: Callable[[], TrustConfig],
    config_path: Path,
    settings: ConsoleSettings,
) -> Starlette:
    sessions = Sessions(settings.token, settings.session_seconds)
    clock = settings.clock
    log_dir = settings.decision_log

    def set_cookie(response: Response, session: Session) -> Response:
        response.set_cookie(
            COOKIE,
            sessions.cookie(session),
            max_age=max(1, int(session.expires - clock())),
            path="/",
            secure=True,
            httponly=True,
            samesite="strict",
        )
        return response

    def logged_in(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            session = sessions.read(request, clock())
            if request.method == "POST":
                refused = cross_origin(request)
                if refused:
                    return _forbidden(f"Refused: {refused}.")
                if session is None or not session.authenticated:
                    return _forbidden("Refused: not logged in (or the session expired).")
                form = await _form(request, settings.max_form_bytes)
                if form is None:
                    return _forbidden("Refused: the form is too large.")
                if not sessions.csrf_matches(session, form.get("csrf", "")):
                    return _forbidden("Refused: the form's CSRF token is missing or wrong.")
                request.state.form = form
                return await handler(request, _Visit(session, sessions.csrf(session)))
            if session is not None and session.authenticated:
                return await handler(request, _Visit(session, sessions.csrf(session)))
            if sessions.bearer(request):
                return await handler(request, _Visit(None, ""))
            if "text/html" in request.headers.get("accept", ""):
                return RedirectResponse("/login", status_code=303)
            return PlainTextResponse(
                "log in first: /login, or Authorization: Bearer <token>\n",
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="signet-console"'},
            )

        return endpoint

    def view(title: str, visit: _Visit, *body: Child, current: str, status: int = 200) -> Response:
        return page(
            title,
            *body,
            csrf=visit.csrf if visit.session is not None else None,
            current=current,
            status_code=status,
        )

    # -- login -------------------------------------------------------------------------------

    async def login_form(request: Request) -> Response:
        session = sessions.read(request, clock())
        if session is not None and session.authenticated:
            return RedirectResponse("/", status_code=303)
        pending = session or sessions.new(clock(), authenticated=False)
        return set_cookie(_login_page(sessions.csrf(pending), ""), pending)

    async def login(request: Request) -> Response:
        refused = cross_origin(request)
        if refused:
            return _forbidden(f"Refused: {refused}.")
        session = sessions.read(request, clock())
        form = await _form(request, settings.max_form_bytes)
        if (
            session is None
            or form is None
            or not sessions.csrf_matches(session, form.get("csrf", ""))
        ):
            return _forbidden(
                "Refused: the login form's CSRF token is missing or wrong (reload /login)."
            )
        if not sessions.token_matches(form.get("token", "")):
            await asyncio.sleep(_FAILED_LOGIN_DELAY)
            return _login_page(sessions.csrf(session), "That token is not right.", status=401)
        fresh = sessions.new(clock(), authenticated=True)
        return set_cookie(RedirectResponse("/", status_code=303), fresh)

    async def logout(request: Request, visit: _Visit) -> Response:
        if visit.session is not None:
            sessions.end(visit.session, clock())
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="strict")
        return response

    # -- decisions ---------------------------------------------------------------------------

    async def recent(request: Request, visit: _Visit) -> Response:
        values = {name: request.query_params.get(name, "").strip() for name, *_ in decisions.FIELDS}
        found, problem = await _scan(values, "")
        return view(
            "Recent decisions",
            visit,
            decisions.filters_form(values, settings.recent_window),
            decisions.results(found, problem, caption="Decisions, newest first"),
            current="/",
        )

    async def history(request: Request, visit: _Visit) -> Response:
        digest = request.query_params.get("digest", "").strip()
        image = request.query_params.get("image", "").strip()
        if not digest and not image:
            return view("History", visit, tag("p", "Give a digest or an image."), current="")
        values = {"digest": digest, "image": image, "since": "36500d"}
        found, problem = await _scan(values, image)
        subject = digest or image
        return view(
            "History",
            visit,
            tag("p", "Every decision for ", tag("code", subject), " in the log."),
            decisions.results(found, problem, caption=f"Decisions for {subject}"),
            current="",
        )

    async def _scan(values: dict[str, str], exact_image: str) -> tuple[logview.Recent | None, str]:
        if log_dir is None:
            return None, ""
        try:
            where = decisions.filter_of(values, settings.recent_window, clock())
        except ValueError as exc:
            return None, f"Since: {exc}"
        found = await run_in_threadpool(
            logview.recent,
            log_dir,
            where,
            values.get("q", ""),
            settings.recent_limit,
            exact_image,
        )
        return found, ""

    # -- check -------------------------------------------------------------------------------

    def check_page(visit: _Visit, image: str, *result: Child, status: int = 200) -> Response:
        if settings.read_only:
            body: tuple[Child, ...] = (
                tag(
                    "p",
                    "This console is read-only: it does not ask the provider to check "
                    "images (a check contacts the registry and adds a decision to the log).",
                ),
            )
        elif visit.session is None:
            body = (tag("p", "Log in with the form to check an image."),)
        else:
            body = (check.check_form(visit.csrf, image), *result)
        return view("Check an image now", visit, *body, current="/check", status=status)

    async def check_get(request: Request, visit: _Visit) -> Response:
        return check_page(visit, "")

    async def check_post(request: Request, visit: _Visit) -> Response:
        if settings.read_only:
            return _forbidden("Refused: this console is read-only.")
        image = request.state.form.get("image", "").strip()
        if not image or len(image) > _MAX_IMAGE:
            return check_page(visit, "", tag("p", "Give an image reference.", class_="error"))
        (outcome,) = await engine.check_many([image])
        return check_page(visit, image, check.outcome(image, outcome))

    # -- signers and config ------------------------------------------------------------------

    async def signers_page(request: Request, visit: _Visit) -> Response:
        usage = None
        if log_dir is not None:
            since = parse_time(settings.usage_window, clock())
            usage = await run_in_threadpool(logview.usage, log_dir, since)
        now = datetime.fromtimestamp(clock(), UTC)
        return view(
            "Signers and keys",
            visit,
            tag(
                "p",
                f"Use is counted over the last {settings.usage_window} of the decision log.",
                class_="note",
            ),
            signers.signers(trust(), usage, now),
            current="/signers",
        )

    def config_view(visit: _Visit, text: str, *result: Child, status: int = 200) -> Response:
        current = trust()
        form = config_page.proposal_form(visit.csrf, text) if visit.session else None
        return view(
            "Trust config",
            visit,
            *result,
            form,
            config_page.in_force(current),
            current="/config",
            status=status,
        )

    async def config_get(request: Request, visit: _Visit) -> Response:
        current = trust()
        starting = config_page.read_source(current.sources[0]) if len(current.sources) == 1 else ""
        return config_view(visit, starting)

    async def config_propose(request: Request, visit: _Visit) -> Response:
        text = request.state.form.get("config", "")
        proposal = await run_in_threadpool(validate, text, config_folder(config_path))
        result = config_page.proposal_result(visit.csrf, proposal, trust())
        return config_view(visit, proposal.text, result, status=200 if proposal.config else 422)

    async def config_download(request: Request, visit: _Visit) -> Response:
        text = request.state.form.get("config", "")
        proposal = await run_in_threadpool(validate, text, config_folder(config_path))
        if proposal.config is None:
            result = config_page.proposal_result(visit.csrf, proposal, trust())
            return config_view(visit, proposal.text, result, status=422)
        return Response(
            proposal.text,
            media_type="application/yaml; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{PROPOSED}"'},
        )

    async def stylesheet(_: Request) -> Response:
        return Response(CSS, media_type="text/css; charset=utf-8")

    return _Console(
        routes=[
            Route("/login", login_form, methods=["GET"]),
            Route("/login", login, methods=["POST"]),
            Route("/logout", logged_in(logout), methods=["POST"]),
            Route("/", logged_in(recent), methods=["GET"]),
            Route("/history", logged_in(history), methods=["GET"]),
            Route("/check", logged_in(check_get), methods=["GET"]),
            Route("/check", logged_in(check_post), methods=["POST"]),
            Route("/signers", logged_in(signers_page), methods=["GET"]),
            Route("/config", logged_in(config_get), methods=["GET"]),
            Route("/config/propose", logged_in(config_propose), methods=["POST"]),
            Route("/config/download", logged_in(config_download), methods=["POST"]),
            Route("/console.css", stylesheet, methods=["GET"]),
        ],
    )


class _Console(Starlette):
    def build_middleware_stack(self) -> ASGIApp:
        # Outermost, so that even the error middleware's 500 carries the security headers.
        return SecureHeaders(super().build_middleware_stack())


async def _form(request: Request, max_bytes: int) -> dict[str, str] | None:
    try:
        return await read_form(request, max_bytes)
    except FormTooLarge:
        return None


def _forbidden(message: str) -> Response:
    return message_page("Forbidden", message, 403)


def _login_page(csrf: str, problem: str, status: int = 200) -> Response:
    return page(
        "Log in",
        tag("p", problem, class_="error", role="alert") if problem else None,
        tag(
            "form",
            csrf_field(csrf),
            tag("label", "Console token", for_="token"),
            " ",
            tag(
                "input",
                id="token",
                name="token",
                type="password",
                required=True,
                autocomplete="current-password",
                autofocus=True,
            ),
            " ",
            tag("button", "Log in", type="submit"),
            method="post",
            action="/login",
        ),
        tag("p", "The token is in the console's Secret (--console-token-file).", class_="note"),
        status_code=status,
        nav=(),
    )
