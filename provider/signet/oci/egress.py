"""Which addresses Signet may connect to, checked on every connection after resolution.

Image references name any host, and whoever writes a pod spec chooses it. The check is made on the
address each connection is actually opened to (by the network backend under httpx), never on how
the host is spelled: `2852039166`, `0xa9fea9fe` and a DNS name that resolves to 169.254.169.254 are
all the cloud metadata service. The connection is then opened to exactly the address checked, so
a name that resolves differently a moment later (DNS rebinding) changes nothing. TLS still
verifies the certificate against the host name, and connections are pooled per host name.

Two policies:
- `NAMED`, for the registry an image names: private networks are allowed (registries inside the
  cluster), but not loopback (Signet's own pod), link-local (cloud metadata), the metadata
  addresses outside link-local, unspecified, multicast or reserved addresses.
- `FOREIGN`, for where a registry sends us (redirects to another host, token realms): only
  globally reachable addresses.
A host listed in the trust config (a registry, or one of its realms) may be anywhere.
"""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Callable, Iterable
from enum import Enum
from typing import Any, Final

import httpcore
import httpx

from signet.oci.dns import Address, Resolver
from signet.reasons import Reason, TransientFailure

__all__ = ["EgressTransport", "Policy", "forbidden"]

# Metadata services that are not link-local: Alibaba Cloud's, and AWS's IPv6 endpoint.
_METADATA: Final = (
    ipaddress.ip_network("100.100.100.200/32"),
    ipaddress.ip_network("fd00:ec2::254/128"),
)


class Policy(Enum):
    NAMED = "named"
    FOREIGN = "foreign"


def forbidden(address: Address, policy: Policy) -> str:
    """Why `address` may not be contacted under `policy` ("" when it may)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            return forbidden(embedded, policy)
    if any(address in network for network in _METADATA):
        return "a cloud metadata address"
    for label, test in (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("unspecified", address.is_unspecified),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
    ):
        if test:
            return label
    if policy is Policy.FOREIGN:
        if address.is_private:
            return "private"
        # Neither private nor global, e.g. 100.64.0.0/10 (shared address space).
        if not address.is_global:
            return "not globally reachable"
    return ""


class _EgressBackend(httpcore.AsyncNetworkBackend):
    """Resolves with Signet's resolver, checks every address, then connects to a checked one."""

    def __init__(
        self,
        policy: Policy,
        resolver: Resolver,
        configured: Callable[[str, int], bool],
        network: httpcore.AsyncNetworkBackend | None,
    ) -> None:
        self._policy = policy
        self._resolver = resolver
        self._configured = configured
        self._inner = network or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._resolver.resolve(host)
        if not self._configured(host, port):
            for address in addresses:
                problem = forbidden(address, self._policy)
                if problem:
                    shown = host if host == str(address) else f"{host} ({address})"
                    raise TransientFailure(
                        Reason.REGISTRY_UNAVAILABLE,
                        f"refusing to contact {shown}: {problem} address; list the host in the "
                        "trust config's registries to allow it",
                    )
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # resolve() returns at least one address
        raise failure

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class EgressTransport(httpx.AsyncHTTPTransport):
    """httpx's transport, with every connection opened through the egress check."""

    def __init__(
        self,
        *,
        verify: ssl.SSLContext | bool,
        limits: httpx.Limits,
        policy: Policy,
        resolver: Resolver,
        configured: Callable[[str, int], bool],
        network: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        """`network` is what connections are opened on (default: sockets)."""
        super().__init__(verify=verify, limits=limits, trust_env=False)
        # httpx takes no network backend; its pool does (httpx is pinned, and the egress tests
        # fail if this stops taking effect).
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=self._pool._ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_EgressBackend(policy, resolver, configured, network),
        )
