"""Who may use the console: the login token, the session cookie, CSRF and same-origin checks.

The session is a cookie holding `{sid, exp, auth}` and its HMAC under a key made at start-up, so
a restart logs everyone out and only logged-out sessions are remembered (until they expire).
The login form gets a session too (`auth` false), so even the login POST carries a CSRF token
bound to a session; logging in makes a new `sid` (no session fixation). A POST's CSRF token is
an HMAC of the `sid` (the synchronizer token pattern, without server state).

Same origin: `Referrer-Policy: no-referrer` makes browsers send `Origin: null` on form posts, so
`Sec-Fetch-Site` (sent by every current browser) decides when present; otherwise `Origin` must be
this console's origin. A POST with neither is refused: it cannot show where it came from.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Final

from starlette.requests import Request

__all__ = ["COOKIE", "Session", "Sessions", "cross_origin"]

COOKIE: Final = "__Host-signet-console"
_LOGIN_SECONDS: Final = 3600.0


@dataclass(frozen=True, slots=True)
class Session:
    sid: str
    expires: float
    authenticated: bool


class Sessions:
    def __init__(self, token: bytes, session_seconds: float) -> None:
        self._token_digest = hashlib.sha256(token).digest()
        self._key = secrets.token_bytes(32)  # per process: a restart ends every session
        self._seconds = session_seconds
        self._ended: dict[str, float] = {}  # sid -> expiry: logged out before its cookie expired

    def token_matches(self, offered: str) -> bool:
        # Compared as digests: the time taken says nothing about the token, not even its length.
        digest = hashlib.sha256(offered.strip().encode()).digest()
        return hmac.compare_digest(digest, self._token_digest)

    def bearer(self, request: Request) -> bool:
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and bool(credentials) and self.token_matches(credentials)

    def new(self, now: float, *, authenticated: bool) -> Session:
        seconds = self._seconds if authenticated else _LOGIN_SECONDS
        return Session(secrets.token_hex(16), now + seconds, authenticated)

    def read(self, request: Request, now: float) -> Session | None:
        """The request's session cookie, if it is ours and has not expired."""
        value = request.cookies.get(COOKIE, "")
        body, _, mac = value.partition(".")
        if not body or not hmac.compare_digest(_bytes(mac), _bytes(self._mac(body))):
            return None
        try:
            fields = json.loads(base64.urlsafe_b64decode(body.encode()))
            session = Session(str(fields["sid"]), float(fields["exp"]), fields["auth"] is True)
        except (ValueError, KeyError, TypeError, binascii.Error):
            return None
        if session.expires <= now or session.sid in self._ended:
            return None
        return session

    def end(self, session: Session, now: float) -> None:
        """Log out: the cookie stops working here even if a copy of it was kept."""
        self._ended = {sid: t for sid, t in self._ended.items() if t > now}
        self._ended[session.sid] = session.expires

    def cookie(self, session: Session) -> str:
        payload = {"sid": session.sid, "exp": session.expires, "auth": session.authenticated}
        body = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()
        return f"{body}.{self._mac(body)}"

    def csrf(self, session: Session) -> str:
        return hmac.new(self._key, b"csrf\0" + session.sid.encode(), hashlib.sha256).hexdigest()

    def csrf_matches(self, session: Session, offered: str) -> bool:
        return hmac.compare_digest(_bytes(offered), _bytes(self.csrf(session)))

    def _mac(self, body: str) -> str:
        return hmac.new(self._key, b"session\0" + body.encode(), hashlib.sha256).hexdigest()


def _bytes(value: str) -> bytes:
    return value.encode(errors="replace")  # compare_digest refuses non-ASCII str


def cross_origin(request: Request) -> str | None:
    """Why this POST is not from the console's own pages, or None when it is."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return None if site == "same-origin" else f"the request came from a {site} page"
    origin = request.headers.get("origin")
    if origin is None:
        return "the request shows no Origin or Sec-Fetch-Site: its origin cannot be checked"
    own = f"{request.url.scheme}://{request.headers.get('host', '')}"
    return None if origin == own else f"the request came from {origin}, not {own}"
