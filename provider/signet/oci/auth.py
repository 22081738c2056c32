"""Registry authentication: challenges, bearer tokens, and credentials from a docker config.

Credentials go only to the registry they were configured for, and to the token realms that
registry's settings name (Docker Hub's own realm by default) — never to another origin. Everything
kept per host or per scope is bounded: image references name any host and repository, and an
attacker's endless names must not grow memory.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import httpx
from cachetools import LRUCache

from signet.model.reference import DOCKER_HUB
from signet.reasons import Reason, TransientFailure
from signet.trust.model import RegistrySettings, TrustConfig

__all__ = ["Authenticator", "Credentials", "config_key", "load_docker_config", "parse_challenge"]

MAX_TOKEN_BYTES: Final = 64 * 1024
_TOKEN_MARGIN_SECONDS: Final = 5.0
_DEFAULT_REALMS: Final = {DOCKER_HUB: ("auth.docker.io",)}
_MAX_REMEMBERED: Final = 4096

# (settings of the host asked, method, url, authorization, max bytes, origin host) -> answer
TokenSender = Callable[
    [RegistrySettings, str, str, str | None, int, str], Awaitable[tuple[httpx.Response, bytes]]
]


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str

    def basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    expires: float


class Authenticator:
    """The Authorization header for each (registry, scope), fetching tokens as challenged."""

    def __init__(
        self,
        trust: Callable[[], TrustConfig],
        settings: Callable[[str], RegistrySettings],
        send: TokenSender,
    ) -> None:
        self._trust = trust
        self._settings = settings
        self._send = send
        self._tokens: LRUCache[tuple[str, str], _Token] = LRUCache(_MAX_REMEMBERED)
        self._locks: LRUCache[tuple[str, str], asyncio.Lock] = LRUCache(_MAX_REMEMBERED)
        self._challenges: LRUCache[str, dict[str, str]] = LRUCache(_MAX_REMEMBERED)
        self._credentials_source: tuple[Path | None, float] | None = None
        self._credentials: Mapping[str, Credentials] = {}

    async def known(self, host: str, scope: str) -> str | None:
        """The header to send before being asked, when `host` challenged us before."""
        challenge = self._challenges.get(host)
        if challenge is None:
            return None
        return await self._authorization(host, scope, challenge, rejected=None)

    async def answer(self, host: str, scope: str, header: str, rejected: str | None) -> str:
        """The header to retry with after a 401 carrying `header` (WWW-Authenticate)."""
        challenge = parse_challenge(header)
        if challenge is None:
            raise TransientFailure(
                Reason.REGISTRY_AUTH_FAILED, f"{host} demands authentication it does not describe"
            )
        self._challenges[host] = challenge
        authorization = await self._authorization(host, scope, challenge, rejected=rejected)
        if authorization is None:
            raise TransientFailure(
                Reason.REGISTRY_AUTH_FAILED,
                f"{host} requires credentials and none are configured for it",
            )
        return authorization

    async def _authorization(
        self, host: str, scope: str, challenge: dict[str, str], *, rejected: str | None
    ) -> str | None:
        """`rejected` is a header the registry just refused: never offer it again."""
        credentials = self.credentials_for(host)
        if challenge["scheme"] == "basic":
            return credentials.basic() if credentials else None
        key = (host, scope)
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        async with lock:
            token = self._tokens.get(key)
            if (
                token is None
                or token.expires <= time.monotonic()
                or f"Bearer {token.value}" == rejected
            ):
                token = await self._fetch_token(host, scope, challenge, credentials)
                self._tokens[key] = token
            return f"Bearer {token.value}"

    async def _fetch_token(
        self, host: str, scope: str, challenge: dict[str, str], credentials: Credentials | None
    ) -> _Token:
        settings = self._settings(host)
        realm = challenge.get("realm", "")
        parsed = urllib.parse.urlsplit(realm)
        realm_host = (parsed.netloc or "").lower()
        if parsed.scheme not in ("https", "http") or not realm_host:
            raise TransientFailure(
                Reason.REGISTRY_AUTH_FAILED, f"{host} names an unusable token realm {realm!r}"
            )
        realm_settings = self._settings(realm_host)
        if parsed.scheme == "http" and not (
            realm_settings.insecure or (settings.insecure and realm_host == host)
        ):
            raise TransientFailure(
                Reason.REGISTRY_AUTH_FAILED,
                f"{host}'s token realm {realm} is plain HTTP; refusing to downgrade",
            )
        allowed = {host, *settings.realms, *_DEFAULT_REALMS.get(config_key(host), ())}
        send_credentials = credentials is not None and realm_host in allowed
        query = {"scope": scope}
        if "service" in challenge:
            query["service"] = challenge["service"]
        url = urllib.parse.urlunsplit(
            (
                parsed.scheme,
                parsed.netloc,
                parsed.path or "/",
                urllib.parse.urlencode(
                    sorted({*urllib.parse.parse_qsl(parsed.query), *query.items()})
                ),
                "",
            )
        )
        authorization = credentials.basic() if send_credentials and credentials else None
        response, body = await self._send(
            realm_settings, "GET", url, authorization, MAX_TOKEN_BYTES, host
        )
        if response.status_code != 200:
            raise TransientFailure(
                Reason.REGISTRY_AUTH_FAILED,
                f"the token service {realm_host} answered {response.status_code} for {scope}",
            )
        try:
            document = json.loads(body)
            value = document.get("token") or document.get("access_token")
            expires_in = document.get("expires_in", 60)
        except (ValueError, AttributeError, RecursionError) as exc:
            raise TransientFailure(
                Reason.REGISTRY_AUTH_FAILED, f"{realm_host} sent a malformed token"
            ) from exc
        if not isinstance(value, str) or not value or not isinstance(expires_in, int | float):
            raise TransientFailure(Reason.REGISTRY_AUTH_FAILED, f"{realm_host} sent no token")
        lifetime = max(float(expires_in), 60.0) - _TOKEN_MARGIN_SECONDS
        return _Token(value, time.monotonic() + lifetime)

    def credentials_for(self, host: str) -> Credentials | None:
        path = self._trust().docker_config
        try:
            stamp = path.stat().st_mtime if path else 0.0
        except OSError:
            stamp = -1.0
        if self._credentials_source != (path, stamp):
            self._credentials = load_docker_config(path) if path and stamp >= 0 else {}
            self._credentials_source = (path, stamp)
        return self._credentials.get(config_key(host))


def load_docker_config(path: Path) -> dict[str, Credentials]:
    """Credentials from a docker `config.json` (or a mounted kubernetes.io/dockerconfigjson)."""
    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read docker config: {exc}") from exc
    auths = document.get("auths", document) if isinstance(document, dict) else {}
    found: dict[str, Credentials] = {}
    if not isinstance(auths, dict):
        return found
    for server, entry in auths.items():
        if not isinstance(entry, dict) or not isinstance(server, str):
            continue
        username, password = entry.get("username"), entry.get("password")
        encoded = entry.get("auth")
        if isinstance(encoded, str) and encoded:
            try:
                username, _, password = base64.b64decode(encoded).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                continue
        if isinstance(username, str) and isinstance(password, str) and username:
            found[config_key(server)] = Credentials(username, password)
    return found


def config_key(server: str) -> str:
    """Normalise a config.json server key or a host to one form (Docker Hub has several names)."""
    text = server.lower()
    if "://" in text:
        text = urllib.parse.urlsplit(text).netloc
    text = text.split("/")[0]
    if text in ("index.docker.io", "registry-1.docker.io", "docker.io"):
        return DOCKER_HUB
    return text


def parse_challenge(header: str) -> dict[str, str] | None:
    scheme, _, rest = header.strip().partition(" ")
    scheme = scheme.lower()
    if scheme not in ("bearer", "basic"):
        return None
    params: dict[str, str] = {"scheme": scheme}
    for part in _split_params(rest):
        name, _, value = part.partition("=")
        params[name.strip().lower()] = value.strip().strip('"')
    if scheme == "bearer" and not params.get("realm"):
        return None
    return params


def _split_params(text: str) -> list[str]:
    parts, current, quoted = [], "", False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            parts.append(current)
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current)
    return parts
