"""Name resolution for registry connections, without threads that a stalling name server can hold.

The event loop's own `getaddrinfo` runs in the default executor: a handful of threads that an
attacker's domain, whose name server never answers, ties up for the resolver's full timeout, so a
healthy registry's first connection then waits behind it. Here lookups go through c-ares
(`aiodns`), which reads the system's resolv.conf and hosts file like getaddrinfo does but keeps no
thread per lookup, so a waiter that gives up (its deadline passed) costs nothing further. On top:

- one lookup per name at a time, and answers kept briefly (`cache_seconds`);
- at most `per_domain` lookups pending under one domain (`a.evil.example`, `b.evil.example`, ...
  all count against `evil.example`), so one domain cannot pile up unbounded work;
- numeric spellings the C library accepts (`2852039166`, `0xa9fea9fe`, `0251.0376.0251.0376`)
  are read as the addresses they are, so the address check sees 169.254.169.254, not a name.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, TypeAlias

import aiodns
from cachetools import LRUCache

from signet.reasons import Reason, TransientFailure

__all__ = ["Address", "Resolver", "domain_of", "numeric_address"]

Address: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
Lookup: TypeAlias = Callable[[str], Awaitable[Sequence[str]]]

_MAX_NAMES: Final = 4096
# Second-level labels under which names are registered one level deeper (example.co.uk).
_SHARED_SECOND_LEVEL: Final = frozenset(
    {"ac", "co", "com", "edu", "gov", "go", "ne", "net", "or", "org", "gob", "mil", "nic"}
)


def numeric_address(host: str) -> Address | None:
    """The address `host` spells, in any form the C library would connect to, or None."""
    text = host.strip("[]")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if not text or not all(c in "0123456789abcdefxABCDEFX." for c in text):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except OSError:
        return None


def domain_of(name: str) -> str:
    """The domain a name is registered under: `a.b.evil.example` -> `evil.example`."""
    labels = name.lower().rstrip(".").split(".")
    keep = 2
    if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SHARED_SECOND_LEVEL:
        keep = 3
    return ".".join(labels[-keep:])


class Resolver:
    """Resolve host names to addresses; see the module docstring for the bounds."""

    def __init__(
        self,
        *,
        nameservers: Sequence[str] | None = None,
        per_domain: int = 8,
        cache_seconds: float = 30.0,
        timeout: float = 2.0,
        lookup: Lookup | None = None,
    ) -> None:
        self._nameservers = list(nameservers) if nameservers else None
        self._timeout = timeout
        self._lookup = lookup
        self._per_domain = per_domain
        self._cache_seconds = cache_seconds
        self._cache: LRUCache[str, tuple[float, tuple[Address, ...]]] = LRUCache(_MAX_NAMES)
        self._pending: dict[str, asyncio.Future[tuple[Address, ...]]] = {}
        self._per_domain_pending: dict[str, int] = {}
        self._channel: aiodns.DNSResolver | None = None

    async def resolve(self, host: str) -> tuple[Address, ...]:
        """Every address of `host` (at least one), or a TransientFailure saying why not."""
        numeric = numeric_address(host)
        if numeric is not None:
            return (numeric,)
        name = host.lower().rstrip(".")
        cached = self._cache.get(name)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        pending = self._pending.get(name)
        if pending is None:
            domain = domain_of(name)
            if self._per_domain_pending.get(domain, 0) >= self._per_domain:
                raise TransientFailure(
                    Reason.REGISTRY_UNAVAILABLE,
                    f"{self._per_domain} lookups under {domain} are already pending; "
                    f"not resolving {name} now",
                )
            pending = asyncio.ensure_future(self._lookup_counted(name, domain))
            self._pending[name] = pending
            pending.add_done_callback(lambda done: self._forget(name, done))
        # Shielded: one waiter giving up must not cancel the lookup the others wait for.
        return await asyncio.shield(pending)

    def _forget(self, name: str, done: asyncio.Future[tuple[Address, ...]]) -> None:
        if self._pending.get(name) is done:
            del self._pending[name]
        if not done.cancelled():
            done.exception()  # retrieved, so an unawaited failure is not logged as lost

    async def _lookup_counted(self, name: str, domain: str) -> tuple[Address, ...]:
        self._per_domain_pending[domain] = self._per_domain_pending.get(domain, 0) + 1
        try:
            async with asyncio.timeout(self._timeout):
                found = await (self._lookup or self._system_lookup)(name)
        except TimeoutError as exc:
            raise TransientFailure(
                Reason.REGISTRY_UNAVAILABLE, f"no DNS answer for {name} within {self._timeout}s"
            ) from exc
        finally:
            left = self._per_domain_pending[domain] - 1
            if left:
                self._per_domain_pending[domain] = left
            else:
                del self._per_domain_pending[domain]
        addresses = tuple(dict.fromkeys(ipaddress.ip_address(a) for a in found))
        if not addresses:
            raise TransientFailure(Reason.REGISTRY_UNAVAILABLE, f"{name} has no address")
        self._cache[name] = (time.monotonic() + self._cache_seconds, addresses)
        return addresses

    async def _system_lookup(self, name: str) -> list[str]:
        if self._channel is None:  # made on first use: it needs the running loop
            self._channel = aiodns.DNSResolver(
                nameservers=self._nameservers, timeout=self._timeout, tries=2
            )
        try:
            result = await self._channel.getaddrinfo(
                name, family=socket.AF_UNSPEC, type=socket.SOCK_STREAM
            )
        except aiodns.error.DNSError as exc:
            detail = exc.args[1] if len(exc.args) > 1 else exc
            raise TransientFailure(
                Reason.REGISTRY_UNAVAILABLE, f"cannot resolve {name}: {detail}"
            ) from exc
        return [node.addr[0].decode() for node in result.nodes]

    async def aclose(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None:
            await channel.close()
