"""The web console's own HTTPS listener, beside the one Gatekeeper calls.

It runs in a thread with an event loop of its own, like the health listener, so that a person
browsing can never hold up an admission; "check an image now" hands its work to the engine on
the main loop (`_OnMainLoop`), where the engine's caches and flights live. The console presents
the serving certificate and asks for no client certificate: its login is the token.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from signet.console import ConsoleSettings, create_console
from signet.service.decisions import Outcome
from signet.service.engine import Engine
from signet.trust.model import TrustConfig

__all__ = ["ConsoleOptions", "ConsoleServer"]


@dataclass(frozen=True, slots=True)
class ConsoleOptions:
    port: int
    settings: ConsoleSettings


class _OnMainLoop:
    def __init__(self, engine: Engine, loop: asyncio.AbstractEventLoop) -> None:
        self._engine, self._loop = engine, loop

    async def check_many(self, keys: Sequence[str]) -> list[Outcome]:
        work = asyncio.run_coroutine_threadsafe(self._engine.check_many(keys), self._loop)
        return await asyncio.wrap_future(work)


class ConsoleServer:
    def __init__(
        self,
        options: ConsoleOptions,
        host: str,
        context: ssl.SSLContext,
    ) -> None:
        self._options, self._host, self._context = options, host, context
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self, engine: Engine, trust: Callable[[], TrustConfig], config: Path) -> None:
        """Start listening; call it on the main loop (the engine's)."""
        app = create_console(
            _OnMainLoop(engine, asyncio.get_running_loop()), trust, config, self._options.settings
        )
        self._server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=self._host,
                port=self._options.port,
                ssl_context_factory=lambda _config, _default: self._context,
                log_config=None,
                access_log=False,
                lifespan="off",
                server_header=False,
            )
        )
        self._thread = threading.Thread(target=self._server.run, name="console", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
