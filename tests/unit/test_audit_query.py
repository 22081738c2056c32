"""Querying the log: filters, replicas merged by time, times as people write them, and output
that hostile image names cannot turn into terminal escapes."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest

from signet.audit import Decision, DecisionLog, Filter, SignerFact, query
from signet.audit.command import main
from signet.audit.query import parse_time
from signet.crypto.keyfile import PrivateKey, generate, public_pem

T0 = 1_800_000_000.0
DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64
HOSTILE = "evil.test/x:\x1b[2J\x1b]0;pwned\x07\r\u202egnp.\\x1b"


@pytest.fixture(scope="module")
def key() -> PrivateKey:
    return generate("p256")


def decision(at: float, image: str, **fields: object) -> Decision:
    values: dict[str, object] = {"request": f"req-{at}", "digest": DIGEST_A} | fields
    return Decision(T0 + at, key=image, **values)  # type: ignore[arg-type]


SIGNED = SignerFact("dev", "0123456789abcdef", "bundle")
KEYLESS = SignerFact("ci", "keyless", "bundle", "https://github.com/o/r", "https://issuer")


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory, key: PrivateKey) -> Path:
    """Two replicas whose decisions interleave in time."""
    root = tmp_path_factory.mktemp("log")
    with DecisionLog(root, key, replica="r1") as one:
        one.submit(
            [
                decision(0, "registry.test/app:v1", verified=("dev",), signers=(SIGNED,)),
                decision(20, "registry.test/app:v2", reasons=("NO_SIGNATURE",)),
                decision(40, HOSTILE, digest=None, reasons=("IMAGE_NOT_FOUND",)),
            ]
        )
    with DecisionLog(root, key, replica="r2") as two:
        two.submit(
            [
                decision(10, "registry.test/app:v1", verified=("ci",), signers=(KEYLESS,)),
                decision(30, "other.test/db:v9", digest=DIGEST_B, reasons=("KEY_REVOKED",)),
            ]
        )
    return root


def times(root: Path, where: Filter, limit: int | None = None) -> list[float]:
    result = query(root, where, limit=limit)
    return [m.decision.time - T0 for m in result.matches]


def test_replicas_are_merged_in_time_order(log: Path) -> None:
    result = query(log, Filter())
    assert [(m.replica, m.seq, m.decision.time - T0) for m in result.matches] == [
        ("r1", 1, 0),
        ("r2", 1, 10),
        ("r1", 2, 20),
        ("r2", 2, 30),
        ("r1", 3, 40),
    ]
    assert result.verification is None


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        (Filter(digest=DIGEST_B), [30]),
        (Filter(image="app:v1"), [0, 10]),
        (Filter(image="registry.test/app"), [0, 10, 20]),
        (Filter(image="APP"), []),  # case-sensitive
        (Filter(attestor="ci"), [10]),
        (Filter(key_id="keyless"), [10]),
        (Filter(key_id="0123456789abcdef"), [0]),
        (Filter(key_id="0123"), []),  # exact, not a prefix
        (Filter(reason="KEY_REVOKED"), [30]),
        (Filter(since=T0 + 10), [10, 20, 30, 40]),  # inclusive
        (Filter(until=T0 + 20), [0, 10]),  # exclusive
        (Filter(since=T0 + 10, until=T0 + 30, image="app"), [10, 20]),
    ],
)
def test_filters(log: Path, where: Filter, expected: list[float]) -> None:
    assert times(log, where) == expected


def test_a_limit_keeps_the_oldest(log: Path) -> None:
    assert times(log, Filter(), limit=2) == [0, 10]


def test_with_keys_the_log_is_verified_in_the_same_pass(
    tmp_path: Path, key: PrivateKey, log: Path
) -> None:
    assert query(log, Filter(), [key.public]).verification is not None
    assert len(query(log, Filter(), [key.public]).matches) == 5
    copy = tmp_path / "copy"
    for path in log.rglob("segment-*.jsonl"):
        target = copy / path.relative_to(log)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes().replace(b"app:v2", b"app:v3"))
    result = query(copy, Filter(), [key.public])
    assert result.matches == ()
    assert result.verification is not None
    assert "prev does not match the hash of line 2" in str(result.verification.failures[0])
    unverified = query(copy, Filter(image="app:v3"))  # without keys: shown, and flagged
    assert [m.decision.key for m in unverified.matches] == ["registry.test/app:v3"]


def test_without_keys_lines_that_do_not_parse_are_skipped_and_counted(
    tmp_path: Path, key: PrivateKey
) -> None:
    with DecisionLog(tmp_path, key, replica="r1") as one:
        one.submit([decision(0, "a"), decision(1, "b")])
    path = tmp_path / "r1" / "segment-000001.jsonl"
    path.write_bytes(b"garbage\n" + path.read_bytes() + b"torn")
    result = query(tmp_path, Filter())
    assert [m.decision.key for m in result.matches] == ["a", "b"]
    assert result.skipped == 1  # the torn tail is not a line


NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2027-01-15T08:00:00Z", datetime.datetime(2027, 1, 15, 8, tzinfo=datetime.UTC)),
        ("2027-01-15T10:00:00+02:00", datetime.datetime(2027, 1, 15, 8, tzinfo=datetime.UTC)),
        ("2027-01-15t08:00:00.5z", datetime.datetime(2027, 1, 15, 8, 0, 0, 500000, datetime.UTC)),
        ("1700000000", 1_700_000_000.0),
        ("1700000000.25", 1_700_000_000.25),
        ("90s", NOW - 90),
        ("30m", NOW - 1800),
        ("1h", NOW - 3600),
        ("7d", NOW - 7 * 86400),
    ],
)
def test_times(text: str, expected: datetime.datetime | float) -> None:
    want = expected.timestamp() if isinstance(expected, datetime.datetime) else expected
    assert parse_time(text, NOW) == want


@pytest.mark.parametrize(
    "text", ["", "yesterday", "2027-01-15", "2027-01-15T08:00:00", "1y", "-5", "1e9", "5 m"]
)
def test_times_that_are_not(text: str) -> None:
    with pytest.raises(ValueError, match="is not a time: expected RFC 3339 with a time zone"):
        parse_time(text, NOW)


def test_the_table_escapes_what_is_not_printable(
    log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["query", str(log), "--table", "--reason", "IMAGE_NOT_FOUND"]) == 0
    out, err = capsys.readouterr()
    assert "unverified" in err
    assert all(c.isprintable() for c in out.replace("\n", ""))
    assert "\x1b" not in out and "\r" not in out and "\u202e" not in out
    header, row = out.splitlines()
    assert header.split() == [
        "TIME", "REPLICA", "SEQ", "IMAGE", "DIGEST", "VERIFIED", "REASONS", "CACHED"
    ]  # fmt: skip
    # Escapes are unambiguous: the literal backslash in the name is doubled.
    assert "evil.test/x:\\x1b[2J\\x1b]0;pwned\\x07\\x0d\\u202egnp.\\\\x1b" in row
    assert row.startswith("2027-01-15T08:00:40.000Z  r1")


def test_json_lines_are_one_object_each_and_ascii(
    log: Path, key: PrivateKey, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pub = tmp_path / "log.pub"
    pub.write_bytes(public_pem(key))
    assert main(["query", str(log), "--json", "--key", str(pub), "--since", str(T0 + 30)]) == 0
    out, err = capsys.readouterr()
    assert err == ""  # verified: no warning
    assert out.isascii()
    documents = [json.loads(line) for line in out.splitlines()]
    assert [(d["replica"], d["seq"]) for d in documents] == [("r2", 2), ("r1", 3)]
    assert documents[1]["decision"]["key"] == HOSTILE


def test_bad_usage_is_exit_2(log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["query", str(log), "--since", "soon"]) == 2
    assert "--since: 'soon' is not a time" in capsys.readouterr().err
    assert main(["query", str(log), "--limit", "0"]) == 2
    assert main(["query", str(tmp_path / "missing")]) == 2
    assert "No such file or directory" in capsys.readouterr().err
    not_a_key = tmp_path / "not.pem"
    not_a_key.write_bytes(b"hello")
    assert main(["verify", str(log), "--key", str(not_a_key)]) == 2
    assert "not a PEM public key" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["query", str(log), "--json", "--table"])
    assert exit_.value.code == 2
