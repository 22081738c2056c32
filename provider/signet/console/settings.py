"""The console's settings, and reading its login token from a (Kubernetes Secret) file."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["MIN_TOKEN_BYTES", "ConsoleSettings", "read_token_file"]

MIN_TOKEN_BYTES = 16


@dataclass(frozen=True, slots=True)
class ConsoleSettings:
    token: bytes = field(repr=False)  # what a person types to log in (see read_token_file)
    decision_log: Path | None = None  # the `signet serve --decision-log` directory, if any
    # True: no action that makes the provider do anything (no "check an image now": a check
    # contacts the registry and adds a decision to the log). Proposing a config never writes.
    read_only: bool = True
    session_seconds: float = 8 * 3600
    recent_window: str = "24h"  # the decisions page's default `since`
    recent_limit: int = 200  # decisions shown at most (the newest)
    usage_window: str = "30d"  # how far back the signers page counts a key's use
    max_form_bytes: int = 1024 * 1024
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        if len(self.token) < MIN_TOKEN_BYTES:
            raise ValueError(f"the console token must be at least {MIN_TOKEN_BYTES} bytes")
        if self.session_seconds <= 0 or self.recent_limit < 1 or self.max_form_bytes < 1024:
            raise ValueError("console session_seconds, recent_limit and max_form_bytes too small")


def read_token_file(path: Path) -> bytes:
    """The token in `path`, without the surrounding whitespace a Secret's file often has."""
    token = path.read_bytes().strip()
    if len(token) < MIN_TOKEN_BYTES:
        raise ValueError(f"{path}: the console token must be at least {MIN_TOKEN_BYTES} bytes")
    return token
