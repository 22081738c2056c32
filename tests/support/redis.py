"""A real Redis: Debian's redis-server on 127.0.0.1, in memory only (no RDB, no AOF)."""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import redis

from .procs import free_port, stop

REDIS_BINARY = "/usr/bin/redis-server"


@dataclass(frozen=True)
class RedisServer:
    port: int
    url: str  # redis://127.0.0.1:PORT/0, without the password
    password: str | None
    log: Path
    process: subprocess.Popen[bytes]

    def client(self) -> redis.Redis:
        """A client of our own (as an attacker who can write to the store has)."""
        return redis.Redis(
            host="127.0.0.1", port=self.port, password=self.password, socket_timeout=5
        )

    def pause(self) -> None:
        """Freeze the server: connections are accepted by the kernel, nothing is answered."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)  # a no-op once it ended

    def stop(self) -> None:
        self.resume()  # a stopped process would only see the TERM once continued
        stop(self.process)


@contextlib.contextmanager
def run_redis(directory: Path, *, password: str | None = None) -> Iterator[RedisServer]:
    binary = shutil.which("redis-server") or REDIS_BINARY
    if not Path(binary).exists():
        raise RuntimeError("redis-server is not installed: run `make tools`")
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    args = [
        binary,
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(directory),
        "--daemonize",
        "no",
        "--logfile",
        "",
    ]
    if password is not None:
        args += ["--requirepass", password]
    log = directory / "redis.log"
    with log.open("w") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        server = RedisServer(port, f"redis://127.0.0.1:{port}/0", password, log, process)
        try:
            _wait_ready(server)
            yield server
        except BaseException:
            print(log.read_text())
            raise
        finally:
            server.stop()


def _wait_ready(server: RedisServer, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"redis-server exited with {server.process.returncode}")
        with contextlib.suppress(redis.RedisError), server.client() as client:
            if client.ping():
                return
        time.sleep(0.05)
    raise RuntimeError(f"redis-server on port {server.port} did not answer within {timeout}s")
