"""The connection pools to registries: one httpx client per host, TLS trust and egress policy.

One pool per host (and policy), because httpx scans every connection of a pool on every request:
one shared pool would grow slower with every registry in use. Each pool's transport checks the
address of every connection it opens (see `egress`); the least recently used pool is closed past
_MAX_POOLS hosts.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from collections.abc import Callable
from typing import Final

import anyio
import httpcore
import httpx

from signet.oci.dns import Resolver
from signet.oci.egress import EgressTransport, Policy
from signet.trust.model import RegistrySettings, TrustConfig

__all__ = ["ConnectionPools"]

_MAX_POOLS: Final = 256
_SPARE_CONNECTIONS: Final = 4
_PoolKey = tuple[str, bool, bytes | None, Policy]


class ConnectionPools:
    def __init__(
        self,
        trust: Callable[[], TrustConfig],
        *,
        per_host: int,
        request_timeout: float,
        private_hosts: frozenset[str],
        resolver: Resolver,
        transport: httpx.AsyncBaseTransport | None = None,
        network: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        """`transport` replaces all HTTP below the pools, `network` the sockets below the egress
        checks (tests)."""
        self._trust = trust
        self._per_host = per_host
        self._request_timeout = request_timeout
        self._private_hosts = private_hosts
        self._resolver = resolver
        self._transport = transport
        self._network = network
        self._clients: collections.OrderedDict[_PoolKey, httpx.AsyncClient] = (
            collections.OrderedDict()
        )
        self._contexts: dict[bytes | None, ssl.SSLContext] = {}
        self._closing: set[asyncio.Future[None]] = set()

    def prepare(self) -> None:
        """The TLS contexts (loading the system CAs takes ~0.1 s, which the first request would
        pay), and anyio's asyncio backend, which httpcore's connection pool loads at its first
        lock (~10 ms of imports)."""
        anyio.Event()
        self._ssl_context(None)
        for settings in self._trust().registries:
            if settings.ca_pem is not None:
                self._ssl_context(settings.ca_pem)

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()

    def client(self, host: str, settings: RegistrySettings, policy: Policy) -> httpx.AsyncClient:
        key = (host, settings.insecure, settings.ca_pem, policy)
        client = self._clients.get(key)
        if client is not None:
            self._clients.move_to_end(key)
            return client
        limits = httpx.Limits(
            max_connections=self._per_host + _SPARE_CONNECTIONS,
            max_keepalive_connections=self._per_host,
        )
        transport = self._transport or EgressTransport(
            verify=self._ssl_context(settings.ca_pem),
            limits=limits,
            policy=policy,
            resolver=self._resolver,
            configured=self._configured,
            network=self._network,
        )
        client = httpx.AsyncClient(
            transport=transport,
            follow_redirects=False,
            timeout=httpx.Timeout(self._request_timeout),
            limits=limits,
            trust_env=False,
        )
        self._clients[key] = client
        if len(self._clients) > _MAX_POOLS:  # the least recently used host's pool goes
            _, evicted = self._clients.popitem(last=False)
            task = asyncio.ensure_future(evicted.aclose())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        return client

    def _configured(self, host: str, port: int) -> bool:
        """Whether the trust config (or the limits) lists `host`: then it may be anywhere."""
        trust = self._trust()
        listed = {r.host for r in trust.registries} | {
            h for r in trust.registries for h in r.realms
        }
        listed |= self._private_hosts
        name = f"[{host}]" if ":" in host else host
        return name in listed or f"{name}:{port}" in listed

    def _ssl_context(self, ca_pem: bytes | None) -> ssl.SSLContext:
        """Made once per CA (loading the default CAs takes tens of milliseconds)."""
        context = self._contexts.get(ca_pem)
        if context is None:
            if ca_pem is None:
                context = httpx.create_ssl_context(trust_env=False)  # as before: env ignored
            else:
                context = ssl.create_default_context(cadata=ca_pem.decode())
            self._contexts[ca_pem] = context
        return context
