"""The registry client: resolve tags, fetch manifests and blobs, push (for `signet sign`).

Registries are attacker-controlled input: anyone who can create a pod can name one. So:
- every body is streamed under a size cap (see `responses`), every call runs under a deadline;
- every manifest and blob fetched by digest is hashed and compared with that digest;
- redirects and token realms are followed by hand, never downgrading HTTPS to HTTP; every
  connection's address is checked (see `egress`, under each of the `pools`) — a redirect or
  realm may lead only to globally reachable addresses, unless its host is configured;
- credentials go only where `auth` allows, never along a redirect to another origin;
- plain HTTP only for registries the trust config lists as `insecure`;
- at most a few calls per registry host at a time (see `slots`), and none while the host's
  circuit breaker is open (see `breaker`).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import httpcore
import httpx

from signet.model.reference import Reference, is_sha256_digest
from signet.observe.metrics import Metrics
from signet.oci.auth import Authenticator
from signet.oci.breaker import (
    Breakers,
    BreakerSettings,
    State,
    outage_of_failure,
    outage_of_status,
)
from signet.oci.budget import Budgets, BudgetSettings
from signet.oci.dns import Resolver
from signet.oci.egress import Policy
from signet.oci.media import MANIFEST_ACCEPT, OCI_INDEX
from signet.oci.pools import ConnectionPools
from signet.oci.responses import hint, path_of, read_capped, status_failure
from signet.oci.slots import HostSlots
from signet.reasons import DeterministicFailure, Reason, TransientFailure
from signet.trust.model import RegistrySettings, TrustConfig

__all__ = ["Limits", "Manifest", "Page", "RegistryClient"]

_MAX_REDIRECTS: Final = 3
_MAX_ERROR_BYTES: Final = 4 * 1024
# Metric label values are kept per host; past this many hosts, calls are counted as "other".
_MAX_HOST_LABELS: Final = 64


@dataclass(frozen=True, slots=True)
class Limits:
    request_timeout: float = 2.0
    max_manifest_bytes: int = 4 * 1024 * 1024
    # Hosts (host[:port]) that connections may reach even when they are private.
    private_hosts: frozenset[str] = frozenset()
    # Calls running against one registry host at a time, and calls waiting for a turn.
    per_host: int = 16
    max_waiting_per_host: int = 256
    breaker: BreakerSettings = field(default_factory=BreakerSettings)
    budget: BudgetSettings = field(default_factory=BudgetSettings)


@dataclass(frozen=True, slots=True)
class Manifest:
    raw: bytes
    media_type: str
    digest: str


@dataclass(frozen=True, slots=True)
class Page:
    """One answer of the referrers API: its status, content type, body and next page (if any)."""

    status: int
    media_type: str
    body: bytes
    next_url: str | None


class RegistryClient:
    def __init__(
        self,
        trust: Callable[[], TrustConfig],
        *,
        limits: Limits | None = None,
        metrics: Metrics | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        resolver: Resolver | None = None,
        network: httpcore.AsyncNetworkBackend | None = None,
        on_breaker: Callable[[str, bool], None] | None = None,
    ) -> None:
        """`on_breaker(host, open)` hears each host's breaker open and close (the alerts).
        Tests replace the network: `transport` instead of all HTTP below the client, or
        `network` instead of the sockets below the egress checks; `resolver` resolves names."""
        self._trust = trust
        self._limits = limits or Limits()
        self._metrics = metrics
        self._on_breaker = on_breaker
        self._resolver = resolver or Resolver(timeout=self._limits.request_timeout)
        self._pools = ConnectionPools(
            trust,
            per_host=self._limits.per_host,
            request_timeout=self._limits.request_timeout,
            private_hosts=self._limits.private_hosts,
            resolver=self._resolver,
            transport=transport,
            network=network,
        )
        self._slots = HostSlots(self._limits.per_host, self._limits.max_waiting_per_host)
        self._breakers = Breakers(
            self._limits.breaker, on_state=self._breaker_state, on_reject=self._breaker_rejected
        )
        self._budgets = Budgets(self._limits.budget, on_wait=self._budget_used)
        self._auth = Authenticator(trust, self._settings, self._send_for_token)
        self._counted_hosts: set[str] = set()

    async def aclose(self) -> None:
        await self._pools.aclose()
        await self._resolver.aclose()

    def prepare(self) -> None:
        """What can be made before the first image without contacting any registry (called on
        the event loop; see ConnectionPools.prepare)."""
        self._pools.prepare()

    @property
    def capacity(self) -> int:
        """Calls that may run or wait per registry host; past that, calls are refused."""
        return self._limits.per_host + self._limits.max_waiting_per_host

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

    async def manifest(
        self, ref: Reference, tag_or_digest: str, *, max_bytes: int | None = None
    ) -> Manifest | None:
        """GET a manifest (None when absent). By digest, the body must hash to that digest."""
        response, body = await self._request(
            ref,
            "GET",
            f"manifests/{tag_or_digest}",
            {"Accept": MANIFEST_ACCEPT},
            "pull",
            max_bytes=max_bytes or self._limits.max_manifest_bytes,
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

    async def referrers_page(self, ref: Reference, path_or_url: str, *, max_bytes: int) -> Page:
        """GET one page of `/v2/<name>/referrers/<digest>` (or the `Link` URL of the next one).

        A registry without the API answers 404, 400 or 406; those are pages too (the caller
        falls back to the referrers tag). A next page is offered only on the registry's own
        host, never wherever a redirect or a `Link` header points."""
        response, body = await self._request(
            ref,
            "GET",
            path_or_url,
            {"Accept": OCI_INDEX},
            "pull",
            max_bytes=max_bytes,
            ok=(200, 400, 406),
        )
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        next_url = None
        link = response.links.get("next", {}).get("url")
        if response.status_code == 200 and link:
            try:  # an unparseable link ends the list (found by fuzzing)
                candidate = urllib.parse.urljoin(str(response.url), link)
                there = urllib.parse.urlsplit(candidate)
                httpx.URL(candidate)
            except (ValueError, httpx.InvalidURL):
                return Page(response.status_code, media_type, body, None)
            scheme = "http" if self._settings(ref.api_host).insecure else "https"
            if (there.scheme, there.netloc.lower()) == (scheme, ref.api_host):
                next_url = candidate
        return Page(response.status_code, media_type, body, next_url)

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
        # The wait for a turn is bounded by the caller (its flight or request deadline); the
        # call itself, once it runs, by the request timeout.
        await self._budgets.take(host)  # Signet's own pace for this registry
        probe = self._breakers.admit(host)
        try:
            async with self._slots.slot(host):
                try:
                    async with asyncio.timeout(self._limits.request_timeout):
                        response, body = await self._send_authorized(
                            host, settings, scope, method, url, headers, content, max_bytes
                        )
                except TimeoutError as exc:
                    self._count(host, "timeout")
                    raise TransientFailure(
                        Reason.REGISTRY_TIMEOUT,
                        f"{host} did not answer {method} {path_of(url)} "
                        f"within {self._limits.request_timeout}s",
                    ) from exc
        except TransientFailure as failure:
            outage = outage_of_failure(failure)
            if outage is None:
                self._breakers.abandoned(host, probe)
            else:
                self._breakers.failed(host, probe, outage)
            raise
        except DeterministicFailure:
            self._breakers.succeeded(host, probe)  # an answer, if not a good one
            raise
        except BaseException:
            self._breakers.abandoned(host, probe)
            raise
        status = response.status_code
        why = f"{status} to {method} {path_of(url)}"
        outage = outage_of_status(status, response.headers, why)
        if outage is None:
            self._breakers.succeeded(host, probe)
        else:
            self._breakers.failed(host, probe, outage)
        if status in ok or (status == 404 and method in ("GET", "HEAD")):
            return response, body
        raise status_failure(host, method, url, status, response.headers)

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
        authorization = await self._auth.known(host, scope)
        response, body = await self._send(
            settings, method, url, headers, authorization, content, max_bytes
        )
        if response.status_code != 401:
            return response, body
        authorization = await self._auth.answer(
            host, scope, response.headers.get("WWW-Authenticate", ""), rejected=authorization
        )
        return await self._send(settings, method, url, headers, authorization, content, max_bytes)

    async def _send_for_token(
        self,
        settings: RegistrySettings,
        method: str,
        url: str,
        authorization: str | None,
        max_bytes: int,
        origin_host: str,
    ) -> tuple[httpx.Response, bytes]:
        return await self._send(
            settings, method, url, {}, authorization, None, max_bytes, origin_host=origin_host
        )

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
        """One request and its redirects, each hop checked, the body read under `max_bytes`.

        `settings` are those of the host the request is for; `origin_host` is the registry that
        sent us here (a token realm), if it is not that host itself.
        """
        named = origin_host or settings.host
        for _ in range(_MAX_REDIRECTS + 1):
            target_host = urllib.parse.urlsplit(url).netloc.lower()
            # Identity-encoded bodies only: the bytes we count and hash are the bytes sent.
            request_headers = {**headers, "Accept-Encoding": "identity"}
            # Credentials go to the host they were chosen for, never along a redirect.
            if authorization and target_host == settings.host:
                request_headers["Authorization"] = authorization
            # The registry an image names is reached under the NAMED policy; wherever it sends
            # us (another host) only under FOREIGN.
            policy = Policy.NAMED if target_host == named else Policy.FOREIGN
            client = self._pools.client(target_host, self._settings(target_host), policy)
            try:
                request = client.build_request(
                    method, url, headers=request_headers, content=content
                )
                sent = time.monotonic()
                response = await client.send(request, stream=True)
                self._time(target_host, time.monotonic() - sent)
            except httpx.TimeoutException as exc:
                self._count(target_host, "timeout")
                raise TransientFailure(
                    Reason.REGISTRY_TIMEOUT, f"{target_host} timed out: {exc}"
                ) from exc
            except httpx.HTTPError as exc:
                self._count(target_host, "connection_error")
                raise TransientFailure(
                    Reason.REGISTRY_UNAVAILABLE,
                    f"cannot reach {target_host}: {exc or type(exc).__name__}{hint(exc)}",
                ) from exc
            try:
                self._count(target_host, response.status_code)
                if response.status_code in (301, 302, 303, 307, 308) and method in ("GET", "HEAD"):
                    location = response.headers.get("Location", "")
                    try:  # `//[` is no URL (found by fuzzing)
                        next_url = urllib.parse.urljoin(url, location)
                        urllib.parse.urlsplit(next_url)
                    except ValueError as exc:
                        raise TransientFailure(
                            Reason.REGISTRY_UNAVAILABLE,
                            f"{target_host} redirected to an invalid URL {location[:100]!r}",
                        ) from exc
                    self._check_redirect(url, next_url)
                    url = next_url
                    continue
                body = await read_capped(response, max_bytes, target_host, method)
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

    # -- configuration ---------------------------------------------------------------------

    def _settings(self, host: str) -> RegistrySettings:
        return self._trust().registry(host) or RegistrySettings(host)

    def _count(self, host: str, status: int | str) -> None:
        """One call, by its HTTP status, or `timeout` / `connection_error` when none came."""
        if self._metrics is not None:
            self._metrics.registry_calls.labels(self._label(host), str(status)).inc()

    def _time(self, host: str, seconds: float) -> None:
        if self._metrics is not None:
            self._metrics.registry_seconds.labels(self._label(host)).observe(seconds)

    def _breaker_state(self, host: str, state: State) -> None:
        if self._metrics is not None:
            self._metrics.registry_breaker_state.labels(self._label(host)).set(state)
        if self._on_breaker is not None and state is not State.HALF_OPEN:
            self._on_breaker(host, state is State.OPEN)

    def _budget_used(self, host: str, result: str) -> None:
        if self._metrics is not None:
            self._metrics.registry_budget.labels(self._label(host), result).inc()

    def _breaker_rejected(self, host: str) -> None:
        if self._metrics is not None:
            self._metrics.registry_breaker_rejections.labels(self._label(host)).inc()

    def _label(self, host: str) -> str:
        """The host as a label value; past _MAX_HOST_LABELS distinct hosts, `other`."""
        if host not in self._counted_hosts:
            if len(self._counted_hosts) >= _MAX_HOST_LABELS:
                return "other"
            self._counted_hosts.add(host)
        return host
