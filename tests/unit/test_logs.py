"""The log is JSON lines: every line one object, every key in it once (strict parsers refuse
duplicates, and a log pipeline keeps only one of them)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from signet.observe.logs import JsonFormatter
from signet.service import runtime
from signet.service.engine import EngineSettings
from signet.trust.model import TrustConfig
from tests.unit.fakes import HOST, FakeRegistry, new_key, trust_for

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def strict(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise ValueError(f"duplicate keys {duplicates}")
    return dict(pairs)


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


async def test_every_decision_line_is_one_strict_json_object(captured: io.StringIO) -> None:
    fake, key = FakeRegistry(), new_key()
    fake.signed_image("team/app", "v1", key)
    fake.push_image("team/app", "v2", "unsigned")
    trust: TrustConfig = trust_for(key)
    parts = runtime.build(
        lambda: trust, settings=EngineSettings(deadline=2), transport=fake.transport()
    )
    try:
        keys = [f"{HOST}/team/app:v1", f"{HOST}/team/app:v2", "Not A Reference"]
        await parts.engine.check_many(keys)
        await parts.engine.check_many(keys)  # and from the cache
    finally:
        await parts.aclose()
    logging.getLogger("signet.app").warning("and an ordinary line")

    lines = captured.getvalue().splitlines()
    entries = [json.loads(line, object_pairs_hook=strict) for line in lines]
    decisions = [e for e in entries if e.get("event") == "decision"]
    assert [d["key"] for d in decisions] == keys * 2
    assert [d["cached"] for d in decisions] == [False] * 3 + [True] * 3
    assert all(isinstance(d["time"], float) for d in decisions)
    assert entries[-1]["message"] == "and an ordinary line"
    # Every line carries what log pipelines key on, decisions included.
    for entry in entries:
        assert {"time", "level", "logger", "message"} <= set(entry), entry
    assert {(d["level"], d["logger"]) for d in decisions} == {("info", "signet.decision")}
