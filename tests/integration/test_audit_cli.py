"""`signet audit verify` and `signet audit query` as a person runs them: real processes, a log
the real writer wrote, exit codes 0 (verifies), 1 (tampered) and 2 (bad usage or input)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from signet.audit import Decision, DecisionLog, LogSettings, SignerFact
from signet.crypto.keyfile import generate, public_pem

from .helpers import signet_cli

pytestmark = pytest.mark.integration

HOSTILE = "evil.test/app:\x1b[2J\x1b]0;owned\x07"


def signet_audit(*args: str) -> tuple[int, str, str]:
    return signet_cli("audit", *args)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A log of two replicas, its public key, and another key."""
    work = tmp_path_factory.mktemp("audit")
    key, other = generate("p256"), generate("p256")
    (work / "log.pub").write_bytes(public_pem(key))
    (work / "other.pub").write_bytes(public_pem(other))
    signer = SignerFact("dev", key.public.short_id, "bundle")
    for replica, offset in (("replica-a", 0.0), ("replica-b", 0.5)):
        settings = LogSettings(segment_bytes=1000)
        with DecisionLog(work / "log", key, replica=replica, settings=settings) as log:
            log.submit(
                [
                    Decision(
                        1_800_000_000.0 + i + offset,
                        f"{replica}-{i}",
                        HOSTILE if i == 3 else f"registry.test/app:v{i}",
                        "sha256:" + f"{i:02x}" * 32,
                        verified=("dev",) if i % 2 else (),
                        signers=(signer,) if i % 2 else (),
                        reasons=() if i % 2 else ("NO_SIGNATURE",),
                        trust="f" * 64,
                    )
                    for i in range(8)
                ]
            )
    return work / "log", work / "log.pub", work / "other.pub"


def test_a_clean_log_verifies(setup: tuple[Path, Path, Path]) -> None:
    log, pub, _ = setup
    code, out, err = signet_audit("verify", str(log), "--key", str(pub))
    assert (code, err) == (0, "")
    assert "replica replica-a: ok: " in out and "2 of 2 replicas verify" in out
    code, out, _ = signet_audit("verify", str(log), "--key", str(pub), "--json")
    document = json.loads(out)
    assert code == 0 and document["ok"] is True
    assert [r["records"] for r in document["replicas"]] == [8, 8]


def test_the_wrong_key_and_tampering_are_exit_1(
    setup: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    log, pub, other = setup
    code, out, _ = signet_audit("verify", str(log), "--key", str(other))
    assert code == 1
    assert "not one of the trusted keys" in out
    copy = tmp_path / "log"
    for path in log.rglob("segment-*.jsonl"):
        target = copy / path.relative_to(log)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes().replace(b'"request":"replica-b-1"', b'"request":"x"'))
    code, out, _ = signet_audit("verify", str(copy), "--key", str(pub), "--json")
    document = json.loads(out)
    assert code == 1 and document["ok"] is False
    failure = document["replicas"][1]["failure"]
    assert (failure["replica"], failure["segment"], failure["line"], failure["seq"]) == (
        "replica-b",
        "segment-000001.jsonl",
        3,
        3,
    )
    assert failure["message"] == "prev does not match the hash of line 2"
    assert document["replicas"][0]["ok"] is True
    code, _, err = signet_audit("query", str(copy), "--key", str(pub))
    assert code == 1
    assert "the log does not verify; nothing shown" in err


def test_query_merges_the_replicas_and_escapes_hostile_names(
    setup: tuple[Path, Path, Path],
) -> None:
    log, pub, _ = setup
    code, out, err = signet_audit("query", str(log), "--key", str(pub), "--json", "--limit", "4")
    assert (code, err) == (0, "")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["replica"], r["seq"]) for r in rows] == [
        ("replica-a", 1),
        ("replica-b", 1),
        ("replica-a", 2),
        ("replica-b", 2),
    ]
    code, out, err = signet_audit("query", str(log), "--image", "evil", "--table")
    assert code == 0
    assert "unverified" in err
    assert "\x1b" not in out and "\x07" not in out
    assert out.count("evil.test/app:\\x1b[2J\\x1b]0;owned\\x07") == 2
    code, out, _ = signet_audit(
        "query", str(log), "--reason", "NO_SIGNATURE", "--since", "2027-01-15T08:00:04Z", "--json"
    )
    assert code == 0
    assert [json.loads(line)["decision"]["request"] for line in out.splitlines()] == [
        "replica-a-4",
        "replica-b-4",
        "replica-a-6",
        "replica-b-6",
    ]


@pytest.mark.parametrize(
    "args",
    [
        ("verify", "{missing}", "--key", "{pub}"),
        ("verify", "{log}"),  # no --key
        ("verify", "{log}", "--key", "{missing}"),
        ("verify", "{log}/replica-a", "--key", "{pub}"),  # one replica's directory
        ("query", "{log}", "--until", "tomorrow"),
        ("query", "{log}", "--limit", "-1"),
        ("query", "{log}", "--bogus"),
    ],
)
def test_bad_usage_and_unreadable_input_are_exit_2(
    setup: tuple[Path, Path, Path], tmp_path: Path, args: tuple[str, ...]
) -> None:
    log, pub, _ = setup
    values = {"log": str(log), "pub": str(pub), "missing": str(tmp_path / "missing")}
    code, out, err = signet_audit(*(arg.format(**values) for arg in args))
    assert code == 2, (out, err)
    assert err.strip()
    assert "Traceback" not in err
