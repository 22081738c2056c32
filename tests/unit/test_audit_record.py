"""The decision record: it checks itself, reads back exactly what it wrote, and nothing else."""

from __future__ import annotations

import json
from typing import Any

import pytest

from signet.audit.record import Decision, SignerFact, canonical, parse_canonical

KEYLESS = SignerFact("ci", "keyless", "bundle", "https://github.com/org/repo", "https://issuer")


def full() -> Decision:
    return Decision(
        time=1_800_000_000.25,
        request="uid-1",
        key="registry.test/app:\x1b[31mred\u202e",
        digest="sha256:" + "a" * 64,
        verified=("ci", "dev"),
        signers=(SignerFact("dev", "0123456789abcdef", "classic"), KEYLESS),
        reasons=("KEY_REVOKED",),
        error="registry.test timed out",
        trust="f" * 64,
        cached=True,
    )


def test_a_decision_reads_back_as_itself_through_its_canonical_line() -> None:
    decision = full()
    line = canonical(decision.to_json())
    assert line.isascii() and b"\n" not in line
    assert Decision.from_json(parse_canonical(line)) == decision


def test_an_integer_time_is_kept_as_a_float_so_its_encoding_is_one() -> None:
    decision = Decision(1_800_000_000, "r", "k", None)
    assert type(decision.time) is float
    assert b'"time":1800000000.0' in canonical(decision.to_json())


def mutated(**changes: Any) -> dict[str, Any]:
    return full().to_json() | changes


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (mutated(extra=1), "decision.extra: unknown field"),
        ({k: v for k, v in full().to_json().items() if k != "trust"}, "decision.trust: missing"),
        (mutated(time="now"), "decision.time: expected non-negative"),
        (mutated(time=True), "decision.time: expected a number"),
        (mutated(time=-1.0), "decision.time: expected non-negative"),
        (mutated(request=""), "decision.request: expected a non-empty string"),
        (mutated(key=None), "decision.key: expected a string"),
        (mutated(digest="latest"), "decision.digest: expected null or an OCI digest"),
        (mutated(verified="dev"), "decision.verified: expected a list"),
        (mutated(verified=[1]), "decision.verified[0]: expected a str"),
        (mutated(reasons=["no signature"]), "decision.reasons[0]: expected a reason code"),
        (mutated(cached=1), "decision.cached: expected true or false"),
        (mutated(error=3), "decision.error: expected null or a string"),
        (mutated(signers=[{"attestor": "a"}]), "decision.signers[0].key: missing"),
        (
            mutated(signers=[KEYLESS.to_json() | {"issuer": 5}]),
            "decision.signers[0].issuer: expected a non-empty string",
        ),
        (
            mutated(signers=[KEYLESS.to_json() | {"subject": "x"}]),
            "decision.signers[0].subject: unknown field",
        ),
        ([], "decision: expected an object"),
    ],
)
def test_from_json_names_the_field_that_is_wrong(document: object, problem: str) -> None:
    with pytest.raises(ValueError, match="^" + problem.replace("[", r"\[").replace(".", r"\.")):
        Decision.from_json(document)


def test_a_decision_checks_itself_when_made() -> None:
    with pytest.raises(ValueError, match=r"decision\.verified: expected a tuple"):
        Decision(1.0, "r", "k", None, verified=["dev"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"signer\.attestor"):
        SignerFact("", "k", "bundle")
    with pytest.raises(ValueError, match=r"decision\.time"):
        Decision(float("nan"), "r", "k", None)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (b'{"a":1,"a":2}', "not JSON"),  # a duplicate key
        (b'{"a": 1}', "not in canonical form"),
        (b'{"b":1,"a":2}', "not in canonical form"),
        (b'{"a":"\xc3\xa9"}', "not in canonical form"),  # UTF-8, not \\u00e9
        (b'{"a":NaN}', "not JSON"),
        (b'{"a":1.50}', "not in canonical form"),
        (b"[1]", "not a JSON object"),
        (b"\xff", "not JSON"),
        (b"[" * 100_000, "not JSON"),
    ],
)
def test_parse_canonical_takes_only_the_one_spelling(line: bytes, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_canonical(line)


def test_canonical_is_sorted_compact_ascii() -> None:
    assert canonical({"b": "é", "a": [1, 2.5]}) == b'{"a":[1,2.5],"b":"\\u00e9"}'
    assert json.loads(canonical({"x": "\n"})) == {"x": "\n"}
    with pytest.raises(ValueError):
        canonical({"x": float("inf")})
