"""Gatekeeper's external-data wire format: ProviderRequest in, ProviderResponse out."""

from __future__ import annotations

import json
from typing import Any

import pytest

from signet.http.wire import API_VERSION, BadRequest, Item, parse_request, response

MAX_KEYS = 10


def request(keys: Any = None, **fields: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": "ProviderRequest",
        "request": {"keys": keys if keys is not None else ["nginx"]},
    }
    for name, value in fields.items():
        if value is None:
            document.pop(name)
        else:
            document[name] = value
    return document


def body(document: Any) -> bytes:
    return json.dumps(document).encode()


def test_keys_are_deduplicated_in_order() -> None:
    keys = ["b", "a", "b", "c", "a", "b"]
    assert parse_request(body(request(keys)), max_keys=MAX_KEYS) == ["b", "a", "c"]


def test_what_gatekeeper_sends_is_read() -> None:
    # Byte for byte what Gatekeeper's external-data client sends (keys as in the pod spec).
    raw = (
        b'{"apiVersion":"externaldata.gatekeeper.sh/v1beta1","kind":"ProviderRequest",'
        b'"request":{"keys":["nginx:1.27","ghcr.io/o/r@sha256:' + b"1" * 64 + b'"]}}'
    )
    assert parse_request(raw, max_keys=MAX_KEYS) == ["nginx:1.27", "ghcr.io/o/r@sha256:" + "1" * 64]


def test_the_older_api_version_and_empty_keys_are_accepted() -> None:
    old = request(apiVersion="externaldata.gatekeeper.sh/v1alpha1")
    assert parse_request(body(old), max_keys=MAX_KEYS) == ["nginx"]
    assert parse_request(body(request([])), max_keys=MAX_KEYS) == []
    no_keys = request()
    no_keys["request"] = {}
    assert parse_request(body(no_keys), max_keys=MAX_KEYS) == []


def test_the_limit_counts_distinct_keys() -> None:
    assert parse_request(body(request(["a"] * 50)), max_keys=1) == ["a"]
    keys = [f"k{i}" for i in range(MAX_KEYS)]
    assert parse_request(body(request(keys)), max_keys=MAX_KEYS) == keys


@pytest.mark.parametrize(
    ("raw", "fragments"),
    [
        (b"", ["not JSON"]),
        (b"nope", ["not JSON"]),
        (b"\xff\xfe{}", ["not JSON"]),
        (b"[" * 100_000, ["not JSON", "recursion"]),
        (b'{"a":' * 100_000, ["not JSON", "recursion"]),
        (b"[]", ["not a JSON object"]),
        (b"null", ["not a JSON object"]),
        (
            body(request(kind="ProviderResponse")),
            ["kind is 'ProviderResponse'", "expected 'ProviderRequest'"],
        ),
        (body(request(kind=None)), ["kind is None", "expected 'ProviderRequest'"]),
        (body(request(kind=["ProviderRequest"])), ["kind is ['ProviderRequest']"]),
        (body(request(apiVersion="v1")), ["apiVersion 'v1' is not", API_VERSION]),
        (body(request(apiVersion=None)), ["apiVersion None is not"]),
        (body(request(apiVersion=[API_VERSION])), ["apiVersion [", "is not"]),
        (body(request(apiVersion={"v": 1})), ["apiVersion {'v': 1} is not"]),
        (body(request(request=None)), ["'request' is missing or not an object"]),
        (body(request(request=["nginx"])), ["'request' is missing or not an object"]),
        (body(request(keys="nginx")), ["request.keys is not a list"]),
        (body(request(keys={"0": "nginx"})), ["request.keys is not a list"]),
        (body(request(["a", "b", {"x": 1}])), ["request.keys[2] is a dict, not a string"]),
        (body(request([7])), ["request.keys[0] is a int, not a string"]),
        (body(request(["a", None])), ["request.keys[1] is a NoneType, not a string"]),
        (
            body(request([f"k{i}" for i in range(MAX_KEYS + 1)])),
            ["11 distinct keys; the limit is 10"],
        ),
    ],
    ids=[
        "empty",
        "text",
        "not-utf8",
        "deep-array",
        "deep-object",
        "array",
        "null",
        "wrong-kind",
        "no-kind",
        "kind-list",
        "wrong-api-version",
        "no-api-version",
        "api-version-list",
        "api-version-object",
        "no-request",
        "request-list",
        "keys-string",
        "keys-object",
        "key-object",
        "key-int",
        "key-null",
        "too-many-keys",
    ],
)
def test_bad_requests_are_named(raw: bytes, fragments: list[str]) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_request(raw, max_keys=MAX_KEYS)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, (fragment, message)


# -- the response -----------------------------------------------------------------------------


def test_the_empty_response_is_exact() -> None:
    assert response([]) == (
        b'{"apiVersion":"externaldata.gatekeeper.sh/v1beta1","kind":"ProviderResponse",'
        b'"response":{"idempotent":true,"items":[],"systemError":""}}'
    )


def test_items_with_values_and_errors() -> None:
    report = {"version": 1, "verified": ["dev"]}
    items = [Item("a", report).encode(), Item("b", error="not allowed").encode()]
    raw = response(items, 'c: REGISTRY_TIMEOUT "quoted" \u00e9')
    assert json.loads(raw) == {
        "apiVersion": API_VERSION,
        "kind": "ProviderResponse",
        "response": {
            "idempotent": True,
            "items": [{"key": "a", "value": report}, {"key": "b", "error": "not allowed"}],
            "systemError": 'c: REGISTRY_TIMEOUT "quoted" \u00e9',
        },
    }


def test_item_encoding() -> None:
    assert Item("a", {"x": [1]}).encode() == b'{"key":"a","value":{"x":[1]}}'
    assert Item("a").encode() == b'{"key":"a","value":null}'
    assert Item("a", {"x": 1}, error="e").encode() == b'{"key":"a","error":"e"}'
    assert Item('a"b', "v").to_json() == {"key": 'a"b', "value": "v"}
    assert json.loads(Item('a"b\n', "v").encode()) == {"key": 'a"b\n', "value": "v"}


def test_a_system_error_that_needs_escaping_stays_valid_json() -> None:
    hostile = '"}],"systemError":"","injected":{"x":"\n\\'
    document = json.loads(response([Item("k", 1).encode()], hostile))
    assert document["response"]["systemError"] == hostile
    assert set(document["response"]) == {"idempotent", "items", "systemError"}
