"""The ProviderRequest / ProviderResponse wire format."""

from __future__ import annotations

import json

import pytest

from signet.wire import API_VERSION, BadRequest, Item, parse_request, response


def body(keys: object) -> bytes:
    return json.dumps(
        {"apiVersion": API_VERSION, "kind": "ProviderRequest", "request": {"keys": keys}}
    ).encode()


def test_keys_are_deduplicated_in_order() -> None:
    assert parse_request(body(["b", "a", "b"]), max_keys=10) == ["b", "a"]


def test_the_limit_counts_distinct_keys() -> None:
    assert len(parse_request(body(["a"] * 50), max_keys=1)) == 1
    with pytest.raises(BadRequest, match="3 distinct keys; the limit is 2"):
        parse_request(body(["a", "b", "c"]), max_keys=2)


def test_a_non_string_key_is_named_by_its_index() -> None:
    with pytest.raises(BadRequest, match=r"request.keys\[2\] is a dict"):
        parse_request(body(["a", "b", {"x": 1}]), max_keys=10)


def test_response_shape_is_exact() -> None:
    items = [Item("a", {"verified": []}).encode(), Item("b", error="nope").encode()]
    document = json.loads(response(items, 'broken "quote"'))
    assert document == {
        "apiVersion": API_VERSION,
        "kind": "ProviderResponse",
        "response": {
            "idempotent": True,
            "items": [{"key": "a", "value": {"verified": []}}, {"key": "b", "error": "nope"}],
            "systemError": 'broken "quote"',
        },
    }
    assert json.loads(response([]))["response"]["items"] == []
