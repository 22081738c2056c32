"""Verification of the decision log: every kind of tampering is named at its first bad line.

Each test tampers with a real log the real writer wrote, and asserts *which* check caught it and
where, so removing that check makes the test fail (another check catching it later would name
another line or another problem)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from signet.audit import Decision, DecisionLog, LogSettings, SignerFact, Verification, verify_log
from signet.audit.chain import GENESIS, Checkpoint, checkpoint_line, line_hash, parse_line
from signet.audit.record import canonical
from signet.crypto.keyfile import PrivateKey, generate

REPLICA = "r1"


@pytest.fixture(scope="module")
def key() -> PrivateKey:
    return generate("p256")


@pytest.fixture(scope="module")
def other_key() -> PrivateKey:
    return generate("p256")


def decision(index: int) -> Decision:
    return Decision(
        time=1_800_000_000.0 + index,
        request=f"req-{index}",
        key=f"registry.test/app:v{index}",
        digest="sha256:" + f"{index:02x}" * 32,
        verified=("dev",) if index % 2 else (),
        signers=(SignerFact("dev", "0123456789abcdef", "bundle"),) if index % 2 else (),
        reasons=() if index % 2 else ("NO_SIGNATURE",),
        trust="cafe",
    )


def write_log(root: Path, key: PrivateKey, records: int = 9, segment_bytes: int = 900) -> Path:
    """A closed log of `records` records in segments of about 3 records each."""
    settings = LogSettings(segment_bytes=segment_bytes, checkpoint_records=1_000)
    with DecisionLog(root, key, replica=REPLICA, settings=settings) as log:
        assert log.submit([decision(i) for i in range(records)])
    return root


def segment(root: Path, number: int) -> Path:
    return root / REPLICA / f"segment-{number:06d}.jsonl"


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")[:-1]


def write_lines(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def verify(root: Path, key: PrivateKey) -> Verification:
    return verify_log(root, [key.public])


def failure(root: Path, key: PrivateKey) -> str:
    """The one failure verification reports, as it prints it."""
    problems = verify(root, key).failures
    assert len(problems) == 1, problems
    return str(problems[0])


@pytest.fixture
def log(tmp_path: Path, key: PrivateKey) -> Path:
    root = write_log(tmp_path / "log", key)
    assert [len(lines_of(segment(root, n))) for n in (1, 2, 3)] == [4, 4, 4]
    assert not segment(root, 4).exists()
    return root


def test_a_clean_log_verifies(log: Path, key: PrivateKey) -> None:
    result = verify(log, key)
    assert not result.failures
    assert not result.warnings
    (replica,) = result.replicas
    assert (replica.segments, replica.records, replica.checkpoints) == (3, 9, 3)
    assert (replica.last_seq, replica.sealed_seq, replica.unsealed) == (9, 9, 0)
    assert replica.head == line_hash(lines_of(segment(log, 3))[-1])


def test_the_first_record_chains_from_genesis_and_each_line_from_the_one_before(log: Path) -> None:
    one, two = lines_of(segment(log, 1)), lines_of(segment(log, 2))
    assert json.loads(one[0])["prev"] == GENESIS
    assert json.loads(one[1])["prev"] == line_hash(one[0])
    assert json.loads(two[0])["prev"] == line_hash(one[-1])  # the checkpoint
    assert json.loads(one[-1])["checkpoint"]["head"] == line_hash(one[-2])


def positions(data: bytes) -> list[int]:
    """Every byte of the middle segment is too slow to flip one by one in each segment: every
    line's first, middle and last bytes, the newlines, every 5th byte, and the whole last line
    (the checkpoint: its signature, key and scheme)."""
    chosen = set(range(0, len(data), 5)) | set(
        range(data.rindex(b"\n", 0, len(data) - 1), len(data))
    )
    start = 0
    for end in (i for i, byte in enumerate(data) if byte == ord("\n")):
        chosen |= {start, (start + end) // 2, end - 1, end}
        start = end + 1
    return sorted(chosen)


def test_every_single_byte_flip_is_caught(log: Path, key: PrivateKey) -> None:
    for number, sample in ((2, False), (3, True)):  # a middle segment, every byte; the last
        path = segment(log, number)
        original = path.read_bytes()
        for position in positions(original) if sample else range(len(original)):
            for bit in (0x01, 0x80) if position % 7 == 0 else (0x01,):
                tampered = bytearray(original)
                tampered[position] ^= bit
                path.write_bytes(bytes(tampered))
                result = verify(log, key)
                if number == 3 and position == len(original) - 1:
                    # The last newline gone: the final checkpoint is a torn line, and the
                    # records it sealed are reported unsealed (a truncated tail looks the same).
                    assert not result.failures
                    assert result.replicas[0].unsealed == 3
                else:
                    assert result.failures, (number, position, bit)
        path.write_bytes(original)
    assert not verify(log, key).failures


def test_a_deleted_record(log: Path, key: PrivateKey) -> None:
    path = segment(log, 2)
    lines = lines_of(path)
    del lines[1]
    write_lines(path, lines)
    assert failure(log, key) == (
        "r1/segment-000002.jsonl line 2 (seq 6): seq 6 where 5 was expected (a record removed, "
        "reordered or inserted)"
    )


def test_two_records_swapped(log: Path, key: PrivateKey) -> None:
    path = segment(log, 1)
    lines = lines_of(path)
    lines[0], lines[1] = lines[1], lines[0]
    write_lines(path, lines)
    assert failure(log, key).startswith("r1/segment-000001.jsonl line 1 (seq 2): seq 2 where 1")


def test_a_record_with_a_wrong_prev(log: Path, key: PrivateKey) -> None:
    path = segment(log, 2)
    lines = lines_of(path)
    document = json.loads(lines[2])
    document["prev"] = line_hash(b"something else")
    lines[2] = canonical(document)
    write_lines(path, lines)
    assert failure(log, key) == (
        "r1/segment-000002.jsonl line 3 (seq 6): prev does not match the hash of line 2"
    )


def test_an_edited_record_is_caught_by_the_next_line(log: Path, key: PrivateKey) -> None:
    path = segment(log, 1)
    lines = lines_of(path)
    lines[0] = lines[0].replace(b"registry.test/app:v0", b"registry.test/app:v9")
    write_lines(path, lines)
    assert failure(log, key) == (
        "r1/segment-000001.jsonl line 2 (seq 2): prev does not match the hash of line 1"
    )


def rechain(root: Path) -> None:
    """Recompute every prev and head after an edit, keeping the checkpoints' signatures."""
    prev = GENESIS
    head = GENESIS
    for number in (1, 2, 3):
        path = segment(root, number)
        out = []
        for original in lines_of(path):
            document = json.loads(original)
            if "prev" in document:
                document["prev"] = prev
                line = canonical(document)
                head = line_hash(line)
            else:
                document["checkpoint"]["head"] = head
                line = canonical(document)
            prev = line_hash(line)
            out.append(line)
        write_lines(path, out)


def test_an_edited_record_with_the_chain_recomputed_is_caught_by_the_signature(
    log: Path, key: PrivateKey
) -> None:
    path = segment(log, 2)
    lines = lines_of(path)
    lines[1] = lines[1].replace(b'"reasons":["NO_SIGNATURE"]', b'"reasons":[]')
    assert lines[1] != lines_of(path)[1]
    write_lines(path, lines)
    rechain(log)
    assert failure(log, key) == (
        "r1/segment-000002.jsonl line 4: the checkpoint's signature does not verify under key "
        f"{key.public.fingerprint[:16]}"
    )


def resign(line: bytes, signer: PrivateKey, **changes: object) -> bytes:
    """`line`, a checkpoint, with `changes` made to it and signed again by `signer`."""
    parsed = parse_line(line)
    assert not hasattr(parsed, "seq")
    body = json.loads(line)["checkpoint"] | changes
    return checkpoint_line(Checkpoint(**body), signer)


def test_a_checkpoint_signed_by_another_key(
    log: Path, key: PrivateKey, other_key: PrivateKey
) -> None:
    path = segment(log, 3)  # the last: no later line depends on its bytes
    lines = lines_of(path)
    lines[-1] = resign(lines[-1], other_key)
    write_lines(path, lines)
    assert failure(log, key) == (
        f"r1/segment-000003.jsonl line 4: the checkpoint is signed by key "
        f"{other_key.public.fingerprint[:16]}, not one of the trusted keys"
    )
    assert not verify_log(log, [key.public, other_key.public]).failures


def test_another_keys_signature_under_this_keys_name(
    log: Path, key: PrivateKey, other_key: PrivateKey
) -> None:
    path = segment(log, 3)
    lines = lines_of(path)
    document = json.loads(resign(lines[-1], other_key))
    document["key"] = key.public.fingerprint
    lines[-1] = canonical(document)
    write_lines(path, lines)
    assert "signature does not verify" in failure(log, key)


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"count": 2}, "checkpoint count is 2, not 3"),
        ({"first_seq": 5}, "checkpoint first_seq is 5, not 4"),
        ({"last_seq": 7}, "checkpoint last_seq is 7, not 6"),
        ({"segment": 3}, "checkpoint segment is 3, not 2"),
        ({"replica": "r2"}, "checkpoint replica is 'r2', not 'r1'"),
        ({"head": "1" * 64}, f"checkpoint head is '{'1' * 64}', not the hash of line 3"),
    ],
)
def test_a_validly_signed_checkpoint_must_still_describe_its_segment(
    log: Path, key: PrivateKey, changes: dict[str, object], problem: str
) -> None:
    path = segment(log, 2)
    lines = lines_of(path)
    lines[-1] = resign(lines[-1], key, **changes)
    write_lines(path, lines)
    if "head" not in changes:
        rechain(log)  # so that the signature and the chain hold, and only the field is wrong
    assert failure(log, key) == f"r1/segment-000002.jsonl line 4: {problem}"


def test_a_checkpoint_claiming_another_scheme(log: Path, key: PrivateKey) -> None:
    path = segment(log, 3)
    lines = lines_of(path)
    document = json.loads(lines[-1])
    document["scheme"] = "ecdsa-p256-sha512"
    lines[-1] = canonical(document)
    write_lines(path, lines)
    assert failure(log, key).endswith(
        "the checkpoint says scheme 'ecdsa-p256-sha512', but its signature is 'ecdsa-p256-sha256'"
    )


def test_a_repeated_checkpoint(log: Path, key: PrivateKey) -> None:
    path = segment(log, 3)
    lines = lines_of(path)
    write_lines(path, [*lines, lines[-1]])
    assert failure(log, key) == (
        "r1/segment-000003.jsonl line 5: a checkpoint right after another checkpoint"
    )


def test_a_checkpoint_first_in_its_segment(log: Path, key: PrivateKey) -> None:
    path = segment(log, 2)
    write_lines(path, [lines_of(segment(log, 1))[-1], *lines_of(path)])
    assert failure(log, key) == (
        "r1/segment-000002.jsonl line 1: a checkpoint with no record of its segment before it"
    )


def test_a_line_not_in_canonical_form(log: Path, key: PrivateKey) -> None:
    path = segment(log, 3)
    lines = lines_of(path)
    lines[-1] = json.dumps(json.loads(lines[-1]), sort_keys=True).encode()  # with spaces
    write_lines(path, lines)
    assert failure(log, key).endswith(
        "line 4: not in canonical form (re-encoding it gives other bytes)"
    )


def test_a_non_canonical_signature_encoding(log: Path, key: PrivateKey) -> None:
    path = segment(log, 3)
    lines = lines_of(path)
    document = json.loads(lines[-1])
    assert base64.b64decode("AB==") == base64.b64decode("AA==")  # unused bits set
    document["signature"] = "AB=="
    lines[-1] = canonical(document)
    write_lines(path, lines)
    assert failure(log, key) == "r1/segment-000003.jsonl line 4: signature: not canonical base64"


def test_a_segment_cut_at_a_line_boundary_before_a_later_segment(
    log: Path, key: PrivateKey
) -> None:
    path = segment(log, 1)
    write_lines(path, lines_of(path)[:-1])  # the checkpoint gone
    assert failure(log, key) == (
        "r1/segment-000002.jsonl line 1 (seq 4): prev does not match the hash of the last line "
        "of segment-000001.jsonl"
    )


@pytest.mark.parametrize(
    ("into", "problem"),
    [
        ("checkpoint", "prev does not match the hash of the last line of segment-000002.jsonl"),
        ("record", "seq 7 where 6 was expected (a record removed, reordered or inserted)"),
    ],
)
def test_a_segment_cut_mid_line_before_a_later_segment(
    log: Path, key: PrivateKey, into: str, problem: str
) -> None:
    path = segment(log, 2)
    data = path.read_bytes()
    last = data.rindex(b"\n", 0, len(data) - 1)  # the end of the last record
    path.write_bytes(data[: len(data) - 30] if into == "checkpoint" else data[: last - 30])
    result = verify(log, key)
    assert [str(p) for p in result.failures] == [
        f"r1/segment-000003.jsonl line 1 (seq 7): {problem}"
    ]
    assert "line 4: ends in a torn line" in str(result.warnings[0]) or into == "record"


def test_the_last_segment_cut_at_a_line_boundary_leaves_records_unsealed(
    log: Path, key: PrivateKey
) -> None:
    path = segment(log, 3)
    write_lines(path, lines_of(path)[:-1])
    result = verify(log, key)
    assert not result.failures
    assert result.replicas[0].unsealed == 3
    assert [str(w) for w in result.warnings] == [
        "r1/segment-000003.jsonl: ends without a checkpoint (its writer stopped without closing it)",
        "r1: 3 records (seq 7..9) after the last checkpoint are unsealed: a crash and a "
        "truncation look the same",
    ]


def test_the_last_segment_cut_mid_line_leaves_a_torn_line_and_unsealed_records(
    log: Path, key: PrivateKey
) -> None:
    path = segment(log, 3)
    data = path.read_bytes()
    path.write_bytes(data[: data.rindex(b"\n", 0, len(data) - 1) - 30])
    result = verify(log, key)
    assert not result.failures
    assert result.replicas[0].unsealed == 2  # seq 9 is torn: not a record at all
    assert "line 3: ends in a torn line" in str(result.warnings[0])


def test_a_missing_middle_segment(log: Path, key: PrivateKey) -> None:
    segment(log, 2).unlink()
    assert failure(log, key) == "r1/segment-000003.jsonl: segment segment-000002.jsonl is missing"


def test_a_missing_middle_segment_with_the_later_ones_renumbered(
    log: Path, key: PrivateKey
) -> None:
    segment(log, 2).unlink()
    segment(log, 3).rename(segment(log, 2))
    assert failure(log, key) == (
        "r1/segment-000002.jsonl line 1 (seq 7): seq 7 where 4 was expected (a record removed, "
        "reordered or inserted)"
    )


def test_a_missing_first_segment(log: Path, key: PrivateKey) -> None:
    segment(log, 1).unlink()
    assert "segment segment-000001.jsonl is missing" in failure(log, key)


def test_a_garbage_line(log: Path, key: PrivateKey) -> None:
    path = segment(log, 1)
    lines = lines_of(path)
    lines.insert(2, b'{"hello":"world"}')
    write_lines(path, lines)
    assert failure(log, key).startswith("r1/segment-000001.jsonl line 3: fields ['hello']")


def test_a_failure_in_one_replica_leaves_the_others_verified(
    tmp_path: Path, key: PrivateKey
) -> None:
    root = write_log(tmp_path / "log", key)
    with DecisionLog(root, key, replica="r2") as other:
        other.submit([decision(1)])
    segment(root, 2).write_bytes(b"")
    result = verify(root, key)
    assert [r.failure is None for r in result.replicas] == [False, True]
    assert result.replicas[1].records == 1
