"""The store behind the shared cache: a few byte values with lifetimes, on Redis (or Valkey).

`Store` is all the shared cache asks of a backend; `RedisStore` is that on `redis.asyncio`. It
neither retries nor waits long — every call is bounded by the settings' timeout (connecting,
waiting for a pooled connection, sending and reading alike) — and it raises on any failure: what
a failure means (verify locally, back off) is decided by the caller (`verdicts`).
"""

from __future__ import annotations

from typing import Protocol

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from signet.service.shared.config import SharedCacheSettings

__all__ = ["RedisStore", "Store"]


class Store(Protocol):
    async def get(self, *names: str) -> list[bytes | None]:
        """The values under `names` (None where there is none), in one round trip."""
        ...

    async def put(
        self, name: str, value: bytes, lifetime: float, *, only_if_absent: bool = False
    ) -> bool:
        """Store `value` for `lifetime` seconds; False when `only_if_absent` and there was one."""
        ...

    async def ping(self) -> None: ...

    async def aclose(self) -> None: ...


class RedisStore:
    def __init__(self, settings: SharedCacheSettings) -> None:
        extra = {} if settings.password is None else {"password": settings.password}
        pool = BlockingConnectionPool.from_url(
            settings.url,
            max_connections=settings.max_connections,
            timeout=settings.timeout,  # waiting for a free connection
            socket_connect_timeout=settings.timeout,
            socket_timeout=settings.timeout,
            retry=Retry(NoBackoff(), 0),  # redis-py retries 3 times by default; never here
            health_check_interval=0,
            driver_info=None,  # no CLIENT SETINFO round trips on each new connection
            **extra,
        )
        self._redis = Redis(connection_pool=pool)

    async def get(self, *names: str) -> list[bytes | None]:
        values = await self._redis.mget(names)
        return [value if isinstance(value, bytes) else None for value in values]

    async def put(
        self, name: str, value: bytes, lifetime: float, *, only_if_absent: bool = False
    ) -> bool:
        done = await self._redis.set(
            name, value, px=max(1, int(lifetime * 1000)), nx=only_if_absent
        )
        return bool(done)

    async def ping(self) -> None:
        await self._redis.ping()

    async def aclose(self) -> None:
        await self._redis.aclose()
