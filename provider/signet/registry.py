"""The OCI registry client: the only module that talks to registries.

Registries are attacker-controlled input: anyone who can create a pod can name one. So:
- every body is streamed under a size cap, and every call runs under a deadline;
- every manifest and blob fetched by digest is hashed and compared with that digest;
- redirects and token realms are followed by hand, and refused when they lead to loopback,
  link-local or private addresses (DNS names are resolved and the connection pinned to the
  checked address), or downgrade HTTPS to HTTP, unless the target host is configured;
- credentials go only to the registry they were configured for, and to the token realms that
  registry's settings name — never to another origin, never across a redirect;
- plain HTTP only for registries the trust config lists as `insecure`.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import socket
import ssl
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import anyio
import httpx
from cachetools import LRUCache

from .metrics import Metrics
from .reasons import DeterministicFailure, Reason, TransientFailure
from .reference import DOCKER_HUB, Reference, is_sha256_digest
from .trust import RegistrySettings, TrustConfig

__all__ = ["MANIFEST_ACCEPT", "Limits", "Manifest", "RegistryClient", "load_docker_config"]

OCI_INDEX: Final = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST: Final = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST: Final = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST: Final = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_ACCEPT: Final = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST))

_MAX_REDIRECTS: Final = 3
_MAX_TOKEN_BYTES: Final = 64 * 1024
_MAX_ERROR_BYTES: Final = 4 * 1024
_TOKEN_MARGIN_SECONDS: Final = 5.0
_DEFAULT_REALMS: Final = {DOCKER_HUB: ("auth.docker.io",)}
_MAX_REMEMBERED: Final = 4096
# Metric label values are kept per host; past this many hosts, calls are counted as "other".
_MAX_HOST_LABELS: Final = 64


@dataclass(frozen=True, slots=True)
class Limits:
    request_timeout: float = 2.0
    max_manifest_bytes: int = 4 * 1024 * 1024
    # Hosts (host[:port]) to which redirects and token realms may lead even when they are private.
    private_hosts: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Manifest:
    raw: bytes
    media_type: str
    digest: str


@dataclass(frozen=True, slots=True)
class _Credentials:
    username: str
    password: str

    def basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    expires: float


class RegistryClient:
    def __init__(
        self,
        trust: Callable[[], TrustConfig],
        *,
        limits: Limits | None = None,
        metrics: Metrics | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        resolver: Callable[[str], list[str]] | None = None,
    ) -> None:
        self._trust = trust
        self._limits = limits or Limits()
        self._metrics = metrics
        self._transport = transport
        self._resolve_host = resolver or _resolve
        self._clients: dict[tuple[bool, bytes | None], httpx.AsyncClient] = {}
        # Image references name any host and repository, so everything kept per host or per
        # scope is bounded: an attacker's endless names must not grow memory.
        self._tokens: LRUCache[tuple[str, str], _Token] = LRUCache(_MAX_REMEMBERED)
        self._token_locks: LRUCache[tuple[str, str], anyio.Lock] = LRUCache(_MAX_REMEMBERED)
        self._challenges: LRUCache[str, dict[str, str]] = LRUCache(_MAX_REMEMBERED)
        self._counted_hosts: set[str] = set()
        self._credentials_source: tuple[Path | None, float] | None = None
        self._credentials: Mapping[str, _Credentials] = {}

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()

    # -- the operations -------------------------------------------------------------------

    async def resolve(self, ref: Reference) -> str:
        """The digest the reference names now: the given digest, or the tag's (index-aware)."""
        if ref.digest is not None:
            return ref.digest
        response, _ = await self._request(
            ref, "HEAD", f"manifests/{ref.tag_or_latest}", {"Accept": MANIFEST_ACCEPT}, "pull"
        )
        if response.status_code == 404:
            raise DeterministicFailure(
                Reason.IMAGE_NOT_FOUND, f"{ref} was not found in its registry"
            )
        digest = str(response.headers.get("Docker-Content-Digest", ""))
        if is_sha256_digest(digest):
            return digest
        # No usable digest header: fetch the manifest and hash what we got.
        manifest = await self.manifest(ref, ref.tag_or_latest)
        if manifest is None:
            raise DeterministicFailure(
                Reason.IMAGE_NOT_FOUND, f"{ref} was not found in its registry"
            )
        return manifest.digest

    async def manifest(self, ref: Reference, tag_or_digest: str) -> Manifest | None:
        """GET a manifest (None when absent). By digest, the body must hash to that digest."""
        response, body = await self._request(
            ref,
            "GET",
            f"manifests/{tag_or_digest}",
            {"Accept": MANIFEST_ACCEPT},
            "pull",
            max_bytes=self._limits.max_manifest_bytes,
        )
        if response.status_code == 404:
            return None
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if is_sha256_digest(tag_or_digest) and digest != tag_or_digest:
            raise DeterministicFailure(
                Reason.DIGEST_MISMATCH,
                f"the registry served a manifest for {tag_or_digest} whose digest is {digest}",
            )
        header = response.headers.get("Docker-Content-Digest")
        if header and header != digest:
            raise DeterministicFailure(
                Reason.DIGEST_MISMATCH,
                f"the registry says {header} but served a manifest whose digest is {digest}",
            )
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        return Manifest(body, media_type, digest)

    async def blob(self, ref: Reference, digest: str, *, max_bytes: int) -> bytes:
        """GET a blob by digest, at most `max_bytes`, and check that it hashes to `digest`."""
        response, body = await self._request(
            ref, "GET", f"blobs/{digest}", {}, "pull", max_bytes=max_bytes
        )
        if response.status_code == 404:
            raise DeterministicFailure(Reason.SIGNATURE_INVALID, f"blob {digest} is missing")
        actual = "sha256:" + hashlib.sha256(body).hexdigest()
        if actual != digest:
            raise DeterministicFailure(
                Reason.SIGNATURE_INVALID, f"blob {digest} was served with content {actual}"
            )
        return body

    async def push_blob(self, ref: Reference, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        head, _ = await self._request(ref, "HEAD", f"blobs/{digest}", {}, "pull,push")
        if head.status_code == 200:
            return digest
        start, _ = await self._request(ref, "POST", "blobs/uploads/", {}, "pull,push", ok=(202,))
        location = start.headers.get("Location", "")
        upload = urllib.parse.urljoin(str(start.url), location)
        separator = "&" if "?" in upload else "?"
        await self._request(
            ref,
            "PUT",
            f"{upload}{separator}digest={digest}",
            {"Content-Type": "application/octet-stream"},
            "pull,push",
            content=data,
            ok=(201,),
        )
        return digest

    async def push_manifest(self, ref: Reference, tag: str, raw: bytes, media_type: str) -> str:
        await self._request(
            ref,
            "PUT",
            f"manifests/{tag}",
            {"Content-Type": media_type},
            "pull,push",
            content=raw,
            ok=(201,),
        )
        return "sha256:" + hashlib.sha256(raw).hexdigest()

    # -- HTTP with auth, redirects, caps and deadlines -------------------------------------

    async def _request(
        self,
        ref: Reference,
        method: str,
        path: str,
        headers: dict[str, str],
        actions: str,
        *,
        max_bytes: int = _MAX_ERROR_BYTES,
        content: bytes | None = None,
        ok: tuple[int, ...] = (200,),
    ) -> tuple[httpx.Response, bytes]:
        host = ref.api_host
        settings = self._settings(host)
        scheme = "http" if settings.insecure else "https"
        url = path if "://" in path else f"{scheme}://{host}/v2/{ref.repository}/{path}"
        scope = f"repository:{ref.repository}:{actions}"
        try:
            with anyio.fail_after(self._limits.request_timeout):
                response, body = await self._send_authorized(
                    host, settings, scope, method, url, headers, content, max_bytes
                )
        except TimeoutError as exc:
            raise TransientFailure(
                Reason.REGISTRY_TIMEOUT,
                f"{host} did not answer {method} {_path_of(url)} "
                f"within {self._limits.request_timeout}s",
            ) from exc
        status = response.status_code
        if status in ok or (status == 404 and method in ("GET", "HEAD")):
            return response, body
        raise _status_failure(host, method, url, status, response.headers)

    async def _send_authorized(
        self,
        host: str,
        settings: RegistrySettings,
        scope: str,
        method: str,
        url: str,
        headers: dict[str, str],
        content: bytes | None,
        max_bytes: int,
    ) -> tuple[httpx.Response, bytes]:
        authorization = None
        known = self._challenges.get(host)
        if known is not None:
            authorization = await self._authorization(host, settings, scope, known, rejected=None)
        response, body = await self._send(
            settings, method, url, headers, authorization, content, max_bytes
        )
        if response.status_code != 401:
            return response, body
        challenge = _parse_challenge(response.headers.get("WWW-Authenticate", ""))
        if challenge is None:
            raise TransientFailure(
                Reason.REGISTRY_AUTH_FAILED, f"{host} demands authentication it does not describe"
            )
        self._challenges[host] = challenge
        authorization = await self._authorization(
            host, settings, scope, challenge, rejected=authorization
        )
        if authorization is None:
            raise TransientFailure(
                Reason.REGISTRY_AUTH_FAILED,
                f"{host} requires credentials and none are configured for it",
            )
        return await self._send(settings, method, url, headers, authorization, content, max_bytes)

    async def _authorization(
        self,
        host: str,
        settings: RegistrySettings,
        scope: str,
        challenge: dict[str, str],
        *,
        rejected: str | None,
    ) -> str | None:
        """The Authorization header for `scope`; `rejected` is one the registry just refused."""
        credentials = self._credentials_for(host)
        if challenge["scheme"] == "basic":
            return credentials.basic() if credentials else None
        key = (host, scope)
        lock = self._token_locks.get(key)
        if lock is None:
            lock = self._token_locks[key] = anyio.Lock()
        async with lock:
            token = self._tokens.get(key)
            if (
                token is None
                or token.expires <= time.monotonic()
                or f"Bearer {token.value}" == rejected
            ):
                token = await self._fetch_token(host, settings, scope, challenge, credentials)
                self._tokens[key] = token
            return f"Bearer {token.value}"

    async def _fetch_token(
        self,
        host: str,
        settings: RegistrySettings,
        scope: str,
        challenge: dict[str, str],
        credentials: _Credentials | None,
    ) -> _Token:
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
        allowed = {host, *settings.realms, *_DEFAULT_REALMS.get(_config_key(host), ())}
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
            realm_settings, "GET", url, {}, authorization, None, _MAX_TOKEN_BYTES, origin_host=host
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

    async def _send(
        self,
        settings: RegistrySettings,
        method: str,
        url: str,
        headers: dict[str, str],
        authorization: str | None,
        content: bytes | None,
        max_bytes: int,
        *,
        origin_host: str | None = None,
    ) -> tuple[httpx.Response, bytes]:
        """One request and its redirects, each hop checked, the body read under `max_bytes`."""
        for _ in range(_MAX_REDIRECTS + 1):
            target = urllib.parse.urlsplit(url)
            target_host = target.netloc.lower()
            hop_settings = self._settings(target_host)
            # Identity-encoded bodies only: the bytes we count and hash are the bytes sent.
            request_headers = {**headers, "Accept-Encoding": "identity"}
            # Credentials go to the host they were chosen for, never along a redirect.
            if authorization and target_host == settings.host:
                request_headers["Authorization"] = authorization
            extensions: dict[str, Any] = {}
            send_url = httpx.URL(url)
            # A registry named by an image is contacted as named; where it sends us (redirects,
            # token realms) is checked, and the connection pinned to the address we checked.
            if origin_host is not None or target_host != settings.host:
                address = await self._checked_address(target_host, target.hostname or "")
                if address is not None:
                    request_headers["Host"] = target.netloc
                    extensions["sni_hostname"] = target.hostname
                    send_url = send_url.copy_with(host=address)
            elif (
                _is_link_local_literal(target.hostname or "")
                and target_host not in self._private_hosts()
            ):
                raise TransientFailure(
                    Reason.REGISTRY_UNAVAILABLE,
                    f"refusing to contact link-local address {target.hostname}",
                )
            client = self._client(hop_settings)
            request = client.build_request(
                method, send_url, headers=request_headers, content=content, extensions=extensions
            )
            try:
                response = await client.send(request, stream=True)
            except httpx.TimeoutException as exc:
                raise TransientFailure(
                    Reason.REGISTRY_TIMEOUT, f"{target_host} timed out: {exc}"
                ) from exc
            except httpx.HTTPError as exc:
                raise TransientFailure(
                    Reason.REGISTRY_UNAVAILABLE,
                    f"cannot reach {target_host}: {exc or type(exc).__name__}",
                ) from exc
            try:
                self._count(target_host, response.status_code)
                if response.status_code in (301, 302, 303, 307, 308) and method in ("GET", "HEAD"):
                    location = response.headers.get("Location", "")
                    next_url = urllib.parse.urljoin(url, location)
                    self._check_redirect(url, next_url)
                    url = next_url
                    continue
                body = await _read_capped(response, max_bytes, target_host, method)
                return response, body
            finally:
                await response.aclose()
        raise TransientFailure(
            Reason.REGISTRY_UNAVAILABLE,
            f"more than {_MAX_REDIRECTS} redirects from {settings.host}",
        )

    def _check_redirect(self, current: str, next_url: str) -> None:
        before, after = urllib.parse.urlsplit(current), urllib.parse.urlsplit(next_url)
        if after.scheme not in ("http", "https") or not after.netloc:
            raise TransientFailure(
                Reason.REGISTRY_UNAVAILABLE, f"refusing redirect to {next_url!r}"
            )
        if (
            before.scheme == "https"
            and after.scheme == "http"
            and not self._settings(after.netloc.lower()).insecure
        ):
            raise TransientFailure(
                Reason.REGISTRY_UNAVAILABLE,
                f"refusing redirect from HTTPS to plain HTTP ({after.netloc})",
            )

    async def _checked_address(self, host_port: str, hostname: str) -> str | None:
        """Resolve a redirect or realm host once, refuse private targets, return the IP to dial."""
        if host_port in self._private_hosts():
            return None
        try:
            addresses = [ipaddress.ip_address(hostname.strip("[]"))]
        except ValueError:
            try:
                # Abandoned on cancel: a stalling DNS server must not outlast the deadline.
                resolved = await anyio.to_thread.run_sync(
                    self._resolve_host, hostname, abandon_on_cancel=True
                )
            except OSError as exc:
                raise TransientFailure(
                    Reason.REGISTRY_UNAVAILABLE, f"cannot resolve {hostname}: {exc}"
                ) from exc
            addresses = [ipaddress.ip_address(a) for a in resolved]
        if not addresses:
            raise TransientFailure(Reason.REGISTRY_UNAVAILABLE, f"{hostname} has no address")
        for address in addresses:
            problem = _forbidden(address)
            if problem:
                raise TransientFailure(
                    Reason.REGISTRY_UNAVAILABLE,
                    f"refusing to contact {hostname} ({address}, {problem}); list it in the trust "
                    "config's registries to allow it",
                )
        return str(addresses[0])

    # -- configuration ---------------------------------------------------------------------

    def _settings(self, host: str) -> RegistrySettings:
        return self._trust().registry(host) or RegistrySettings(host)

    def _private_hosts(self) -> frozenset[str]:
        trust = self._trust()
        configured = {r.host for r in trust.registries} | {
            h for r in trust.registries for h in r.realms
        }
        return self._limits.private_hosts | configured

    def _client(self, settings: RegistrySettings) -> httpx.AsyncClient:
        key = (settings.insecure, settings.ca_pem)
        client = self._clients.get(key)
        if client is None:
            verify: ssl.SSLContext | bool = True
            if settings.ca_pem is not None:
                verify = ssl.create_default_context(cadata=settings.ca_pem.decode())
            client = httpx.AsyncClient(
                verify=verify,
                transport=self._transport,
                follow_redirects=False,
                timeout=httpx.Timeout(self._limits.request_timeout),
                limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
                trust_env=False,
            )
            self._clients[key] = client
        return client

    def _credentials_for(self, host: str) -> _Credentials | None:
        path = self._trust().docker_config
        try:
            stamp = path.stat().st_mtime if path else 0.0
        except OSError:
            stamp = -1.0
        if self._credentials_source != (path, stamp):
            self._credentials = load_docker_config(path) if path and stamp >= 0 else {}
            self._credentials_source = (path, stamp)
        return self._credentials.get(_config_key(host))

    def _count(self, host: str, status: int) -> None:
        if self._metrics is None:
            return
        if host not in self._counted_hosts:
            if len(self._counted_hosts) >= _MAX_HOST_LABELS:
                host = "other"
            else:
                self._counted_hosts.add(host)
        self._metrics.registry_calls.labels(host, str(status)).inc()


def load_docker_config(path: Path) -> dict[str, _Credentials]:
    """Credentials from a docker `config.json` (or a mounted kubernetes.io/dockerconfigjson)."""
    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read docker config: {exc}") from exc
    auths = document.get("auths", document) if isinstance(document, dict) else {}
    found: dict[str, _Credentials] = {}
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
            found[_config_key(server)] = _Credentials(username, password)
    return found


def _config_key(server: str) -> str:
    """Normalise a config.json server key or a host to one form (Docker Hub has several names)."""
    text = server.lower()
    if "://" in text:
        text = urllib.parse.urlsplit(text).netloc
    text = text.split("/")[0]
    if text in ("index.docker.io", "registry-1.docker.io", "docker.io"):
        return DOCKER_HUB
    return text


def _parse_challenge(header: str) -> dict[str, str] | None:
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


async def _read_capped(response: httpx.Response, max_bytes: int, host: str, method: str) -> bytes:
    if method == "HEAD":
        return b""
    encoding = response.headers.get("Content-Encoding", "identity").lower()
    if encoding not in ("identity", ""):
        raise TransientFailure(
            Reason.REGISTRY_UNAVAILABLE, f"{host} sent a {encoding}-encoded body"
        )
    declared = response.headers.get("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        _raise_oversized(response, max_bytes, host)
    chunks: list[bytes] = []
    total = 0
    async for chunk in response.aiter_raw():
        total += len(chunk)
        if total > max_bytes:
            _raise_oversized(response, max_bytes, host)
        chunks.append(chunk)
    return b"".join(chunks)


def _raise_oversized(response: httpx.Response, max_bytes: int, host: str) -> None:
    if response.status_code == 200:
        raise DeterministicFailure(
            Reason.LIMIT_EXCEEDED,
            f"{host} sent more than {max_bytes} bytes for {response.request.url.path}",
        )
    raise TransientFailure(
        Reason.REGISTRY_UNAVAILABLE, f"{host} sent an oversized {response.status_code} answer"
    )


def _status_failure(
    host: str, method: str, url: str, status: int, headers: httpx.Headers
) -> TransientFailure:
    where = f"{host} answered {status} to {method} {_path_of(url)}"
    if status == 429:
        retry = headers.get("Retry-After")
        return TransientFailure(
            Reason.REGISTRY_RATE_LIMITED, where + (f" (retry after {retry}s)" if retry else "")
        )
    if status in (401, 403):
        return TransientFailure(Reason.REGISTRY_AUTH_FAILED, where)
    return TransientFailure(Reason.REGISTRY_UNAVAILABLE, where)


def _path_of(url: str) -> str:
    return urllib.parse.urlsplit(url).path


def _forbidden(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            return _forbidden(mapped) or ""
    for label, test in (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("private", address.is_private),
        ("unspecified", address.is_unspecified),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        # Neither private nor global, e.g. 100.64.0.0/10 (shared address space), where some
        # clouds run their metadata service (100.100.100.200).
        ("not globally reachable", not address.is_global),
    ):
        if test:
            return label
    return ""


def _is_link_local_literal(hostname: str) -> bool:
    try:
        address = ipaddress.ip_address(hostname.strip("[]"))
    except ValueError:
        return False
    return _forbidden(address) == "link-local"


def _resolve(hostname: str) -> list[str]:
    infos = socket.getaddrinfo(hostname, None, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))
