"""Gatekeeper's external-data wire format: ProviderRequest in, ProviderResponse out.

Gatekeeper caches every returned item (errors too) for its TTL but never caches `systemError`, so
a key whose answer is transient is left out of `items` and named in `systemError`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["API_VERSION", "BadRequest", "Item", "parse_request", "response"]

API_VERSION = "externaldata.gatekeeper.sh/v1beta1"
_API_VERSIONS = frozenset({API_VERSION, "externaldata.gatekeeper.sh/v1alpha1"})


class BadRequest(ValueError):
    """The body is not a ProviderRequest this provider can answer; the message says why."""


@dataclass(frozen=True, slots=True)
class Item:
    key: str
    value: Any = None
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key": self.key}
        if self.error:
            out["error"] = self.error
        else:
            out["value"] = self.value
        return out

    def encode(self) -> bytes:
        return json.dumps(self.to_json(), separators=(",", ":")).encode()


def parse_request(body: bytes, *, max_keys: int) -> list[str]:
    """Return the request's keys, in order, without duplicates."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"the request body is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise BadRequest("the request body is not a JSON object")
    if document.get("kind") != "ProviderRequest":
        raise BadRequest(f"kind is {document.get('kind')!r}, expected 'ProviderRequest'")
    api_version = document.get("apiVersion")
    if not isinstance(api_version, str) or api_version not in _API_VERSIONS:
        raise BadRequest(f"apiVersion {document.get('apiVersion')!r} is not {API_VERSION!r}")
    request = document.get("request")
    if not isinstance(request, dict):
        raise BadRequest("'request' is missing or not an object")
    keys = request.get("keys", [])
    if not isinstance(keys, list):
        raise BadRequest("request.keys is not a list")
    for index, key in enumerate(keys):
        if not isinstance(key, str):
            raise BadRequest(f"request.keys[{index}] is a {type(key).__name__}, not a string")
    distinct = list(dict.fromkeys(keys))
    if len(distinct) > max_keys:
        raise BadRequest(f"the request has {len(distinct)} distinct keys; the limit is {max_keys}")
    return distinct


def response(items: Iterable[bytes], system_error: str = "") -> bytes:
    """A ProviderResponse around already-encoded items (see Item.encode)."""
    return b"".join(
        (
            b'{"apiVersion":"' + API_VERSION.encode() + b'","kind":"ProviderResponse",',
            b'"response":{"idempotent":true,"items":[',
            b",".join(items),
            b'],"systemError":',
            json.dumps(system_error).encode(),
            b"}}",
        )
    )
