"""Attacker-written JSON, read into an object or refused with a deterministic failure."""

from __future__ import annotations

import json
from typing import Any

from signet.reasons import DeterministicFailure, Reason

__all__ = ["json_object"]


def json_object(raw: bytes, what: str, reason: Reason) -> dict[str, Any]:
    """`raw` as a JSON object; anything else (also nesting too deep to parse) is `reason`."""
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise DeterministicFailure(reason, f"the {what} is not JSON") from exc
    if not isinstance(document, dict):
        raise DeterministicFailure(reason, f"the {what} is not a JSON object")
    return document
