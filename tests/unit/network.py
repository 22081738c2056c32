"""Sockets replaced by memory: connections that an in-process handler answers over real HTTP/1.1.

Beneath httpx and httpcore (connection pool, HTTP/1.1 framing) and Signet's egress backend
(resolution, address checks), the bytes go to a handler instead of a socket. So a unit test runs
the exact connection path a real registry call takes — which host name was resolved, which address
was dialled, whether TLS was asked for and with which server name — without a network.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import h11
import httpcore
import httpx

Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


@dataclass
class Dial:
    """One connection opened: the address dialled, and the TLS server name if TLS was started."""

    address: str
    port: int
    server_name: str | None = None


@dataclass
class MemoryNetwork(httpcore.AsyncNetworkBackend):
    handler: Handler
    dials: list[Dial] = field(default_factory=list)
    refused: set[str] = field(default_factory=set)  # addresses where nothing listens

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        dial = Dial(host, port)
        self.dials.append(dial)
        if host in self.refused:
            raise httpcore.ConnectError(f"[Errno 111] Connection refused ({host})")
        return _MemoryStream(self.handler, dial)

    async def sleep(self, seconds: float) -> None:
        import anyio

        await anyio.sleep(seconds)


class _MemoryStream(httpcore.AsyncNetworkStream):
    def __init__(self, handler: Handler, dial: Dial) -> None:
        self._handler = handler
        self._dial = dial
        self._server = h11.Connection(h11.SERVER)
        self._outgoing = b""
        self._body: AsyncIterator[bytes] | None = None

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> httpcore.AsyncNetworkStream:
        self._dial.server_name = server_hostname or ""
        return self

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        if buffer:  # an empty buffer would mean end of stream to h11
            self._server.receive_data(buffer)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        while not self._outgoing:
            if self._body is not None:
                await self._next_chunk()
            elif not await self._answer():
                return b""
        chunk, self._outgoing = self._outgoing[:max_bytes], self._outgoing[max_bytes:]
        return chunk

    async def _answer(self) -> bool:
        """Read one whole request, let the handler answer, and start sending the answer."""
        method = target = b""
        headers: list[tuple[bytes, bytes]] = []
        content = b""
        while True:
            event = self._server.next_event()
            if event is h11.NEED_DATA:
                return False
            if isinstance(event, h11.Request):
                method, target, headers = event.method, event.target, list(event.headers)
            elif isinstance(event, h11.Data):
                content += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
        scheme = "https" if self._dial.server_name is not None else "http"
        host = dict(headers).get(b"host", b"").decode()
        request = httpx.Request(
            method.decode(), f"{scheme}://{host}{target.decode()}", headers=headers, content=content
        )
        response = await self._handler(request)
        answer_headers = [
            (k, v) for k, v in response.headers.raw if k.lower() != b"transfer-encoding"
        ]
        self._outgoing += (
            self._server.send(
                h11.Response(status_code=response.status_code, headers=answer_headers)
            )
            or b""
        )
        # A HEAD answer has headers only, as a real server sends it.
        self._body = _nothing() if method == b"HEAD" else response.aiter_raw()
        return True

    async def _next_chunk(self) -> None:
        assert self._body is not None
        try:
            chunk = await self._body.__anext__()
        except StopAsyncIteration:
            self._body = None
            self._outgoing += self._server.send(h11.EndOfMessage()) or b""
            self._server.start_next_cycle()
            return
        if chunk:
            self._outgoing += self._server.send(h11.Data(data=chunk)) or b""

    async def aclose(self) -> None:
        self._body = None

    def get_extra_info(self, info: str) -> Any:
        return False if info == "is_readable" else None


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield b""
