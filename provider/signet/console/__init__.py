"""A web console for people: recent decisions, a check on demand, the signers and the trust config.

Server-rendered HTML on its own port (never Gatekeeper's), no scripts and no external assets,
behind a token login (see auth). It reads; it never writes the trust config: a proposed config is
validated and offered as a download, for policy as code to take in.
"""

from __future__ import annotations

from signet.console.app import Checks, create_console
from signet.console.settings import ConsoleSettings, read_token_file

__all__ = ["Checks", "ConsoleSettings", "create_console", "read_token_file"]
