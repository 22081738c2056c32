"""The shared cache's settings: where the store is, the replicas' secret, and the time bounds.

`load` reads the secret (and an optional password) from files, as a Kubernetes Secret mounts
them, and refuses a missing, empty or short secret with a message naming the file: a replica
without the secret could neither trust nor write a verdict, so it must not start as if it could.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from signet.service.shared.envelope import MIN_SECRET_BYTES, Secret

__all__ = ["SharedCacheSettings", "load"]


@dataclass(frozen=True, slots=True)
class SharedCacheSettings:
    url: str = field(repr=False)  # may hold a password; see `where`
    secret: Secret
    password: str | None = field(default=None, repr=False)
    # Each call to the store (connecting included) ends within this, or counts as a failure.
    timeout: float = 0.1
    # After a failure, the store is not asked again for this long: a dead store costs one
    # timeout per this many seconds, not one per image.
    backoff: float = 5.0
    # A replica that starts verifying an image claims it for this long; the others wait at most
    # `wait` (polling every `poll`) for its verdict, then verify the image themselves.
    claim_ttl: float = 2.0
    wait: float = 0.5
    poll: float = 0.025
    # Connections to the store at once (a call waiting for one counts against its timeout).
    max_connections: int = 64

    def __post_init__(self) -> None:
        if not _is_redis_url(self.url):
            raise ValueError(
                f"--shared-cache {self.where}: expected redis://HOST[:PORT][/DB] or rediss://…"
            )
        if urlsplit(self.url).password and self.password is not None:
            raise ValueError(
                "the shared cache password is given twice: in the URL and in a file; keep one"
            )
        for name in ("timeout", "backoff", "claim_ttl", "wait", "poll"):
            if not getattr(self, name) > 0:
                raise ValueError(f"shared cache {name} must be positive")
        if self.wait >= self.claim_ttl:
            raise ValueError("the shared cache's wait must be shorter than its claim_ttl")
        if self.max_connections < 1:
            raise ValueError("the shared cache needs at least one connection")

    @property
    def where(self) -> str:
        """The URL without its password, for messages and logs."""
        parts = urlsplit(self.url)
        if parts.password is None:
            return self.url
        user = parts.username or ""
        host = parts.netloc.rsplit("@", 1)[1]
        return parts._replace(netloc=f"{user}:***@{host}").geturl()


def load(
    url: str | None, secret_file: Path | None, password_file: Path | None = None
) -> SharedCacheSettings | None:
    """The settings for `--shared-cache URL --shared-cache-secret FILE
    [--shared-cache-password-file FILE]` (None without a URL); raises ValueError naming what
    is wrong."""
    if url is None:
        for flag, given in (
            ("--shared-cache-secret", secret_file),
            ("--shared-cache-password-file", password_file),
        ):
            if given is not None:
                raise ValueError(f"{flag} needs --shared-cache URL")
        return None
    if secret_file is None:
        raise ValueError(
            "--shared-cache needs --shared-cache-secret FILE: the secret the replicas "
            "authenticate shared verdicts with"
        )
    secret = _read(secret_file, "--shared-cache-secret").strip()
    if not secret:
        raise ValueError(f"--shared-cache-secret {secret_file}: the file is empty")
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(
            f"--shared-cache-secret {secret_file}: {len(secret)} bytes is too short for an "
            f"HMAC-SHA256 key; use at least {MIN_SECRET_BYTES} random bytes "
            "(e.g. openssl rand -base64 48)"
        )
    password = None
    if password_file is not None:
        raw = _read(password_file, "--shared-cache-password-file").rstrip(b"\r\n")
        if not raw:
            raise ValueError(f"--shared-cache-password-file {password_file}: the file is empty")
        try:
            password = raw.decode()
        except UnicodeDecodeError:
            raise ValueError(
                f"--shared-cache-password-file {password_file}: not UTF-8 text"
            ) from None
    return SharedCacheSettings(url, Secret(secret), password)


def _is_redis_url(url: str) -> bool:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:  # not a number, or out of range
        return False
    return parts.scheme in ("redis", "rediss") and bool(parts.hostname) and port != 0


def _read(path: Path, flag: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ValueError(f"{flag} {path}: no such file") from None
    except OSError as exc:
        raise ValueError(f"{flag} {path}: {exc.strerror or exc}") from None
