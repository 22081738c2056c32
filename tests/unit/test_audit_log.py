"""The writer: segments, checkpoints, restarts and crashes, a full queue, a failing signer."""

from __future__ import annotations

import errno
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from signet.audit import Decision, DecisionLog, LogSettings, Verification, verify_log
from signet.crypto.keyfile import PrivateKey, generate
from signet.crypto.keys import PublicKey

REPLICA = "r1"


@pytest.fixture(scope="module")
def key() -> PrivateKey:
    return generate("p256")


def decision(index: int) -> Decision:
    return Decision(1_800_000_000.0 + index, f"req-{index}", f"registry.test/app:v{index}", None)


def segments(root: Path) -> list[Path]:
    return sorted((root / REPLICA).glob("segment-*.jsonl"))


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def verified(root: Path, key: PrivateKey) -> tuple[Verification, list[int]]:
    """The verification, and the seq of every record it verified, in order."""
    seen: list[int] = []
    result = verify_log(root, [key.public], lambda _replica, seq, _d: seen.append(seq))
    return result, seen


def wait_for(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not callable(condition) or not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_records_are_written_in_order_and_a_closed_log_ends_with_a_checkpoint(
    tmp_path: Path, key: PrivateKey
) -> None:
    with DecisionLog(tmp_path, key, replica=REPLICA) as log:
        assert log.submit([decision(i) for i in range(5)])
        assert log.submit([decision(5)])
    assert log.stats.written == 6
    assert log.stats.checkpoints == 1
    (only,) = segments(tmp_path)
    content = lines(only)
    assert [line["seq"] for line in content[:-1]] == [1, 2, 3, 4, 5, 6]
    assert [line["decision"]["request"] for line in content[:-1]] == [f"req-{i}" for i in range(6)]
    assert content[-1]["checkpoint"] == content[-1]["checkpoint"] | {
        "replica": REPLICA,
        "segment": 1,
        "first_seq": 1,
        "last_seq": 6,
        "count": 6,
    }
    assert content[-1]["key"] == key.public.fingerprint
    result, seen = verified(tmp_path, key)
    assert not result.failures and not result.warnings
    assert seen == [1, 2, 3, 4, 5, 6]


def test_segments_rotate_by_size_each_closed_by_a_checkpoint(
    tmp_path: Path, key: PrivateKey
) -> None:
    settings = LogSettings(segment_bytes=500)
    with DecisionLog(tmp_path, key, replica=REPLICA, settings=settings) as log:
        log.submit([decision(i) for i in range(20)])
    files = segments(tmp_path)
    assert len(files) > 3
    for path in files:
        assert "checkpoint" in lines(path)[-1]
        assert path.stat().st_size < 500 + 1000  # one record and a checkpoint past the size
    assert log.stats.checkpoints == len(files)
    result, seen = verified(tmp_path, key)
    assert not result.failures and not result.warnings
    assert seen == list(range(1, 21))


def test_a_checkpoint_every_n_records_within_a_segment(tmp_path: Path, key: PrivateKey) -> None:
    settings = LogSettings(checkpoint_records=3)
    with DecisionLog(tmp_path, key, replica=REPLICA, settings=settings) as log:
        log.submit([decision(i) for i in range(7)])
    (only,) = segments(tmp_path)
    kinds = ["c" if "checkpoint" in line else "r" for line in lines(only)]
    assert "".join(kinds) == "rrrcrrrcrc"
    checkpoints = [line["checkpoint"] for line in lines(only) if "checkpoint" in line]
    assert [(c["first_seq"], c["last_seq"], c["count"]) for c in checkpoints] == [
        (1, 3, 3),
        (1, 6, 6),
        (1, 7, 7),
    ]
    assert not verified(tmp_path, key)[0].failures


def test_a_checkpoint_after_checkpoint_seconds_without_closing(
    tmp_path: Path, key: PrivateKey
) -> None:
    settings = LogSettings(checkpoint_seconds=0.05)
    with DecisionLog(tmp_path, key, replica=REPLICA, settings=settings) as log:
        log.submit([decision(0), decision(1)])
        wait_for(lambda: log.stats.checkpoints == 1)
        result = verify_log(tmp_path, [key.public])
        assert not result.failures
        assert result.replicas[0].unsealed == 0  # while the log is still open
        time.sleep(0.2)
        assert log.stats.checkpoints == 1  # nothing new: no checkpoint
    assert log.stats.checkpoints == 1


def test_a_restart_continues_the_chain_in_a_new_segment(tmp_path: Path, key: PrivateKey) -> None:
    for start in (0, 3, 6):
        with DecisionLog(tmp_path, key, replica=REPLICA) as log:
            log.submit([decision(i) for i in range(start, start + 3)])
    assert len(segments(tmp_path)) == 3
    result, seen = verified(tmp_path, key)
    assert not result.failures and not result.warnings
    assert seen == list(range(1, 10))


def test_a_restart_after_a_crash_chains_from_the_last_whole_line(
    tmp_path: Path, key: PrivateKey
) -> None:
    with DecisionLog(tmp_path, key, replica=REPLICA) as log:
        log.submit([decision(i) for i in range(3)])
    # What a crash leaves: no final checkpoint, half of a line.
    (path,) = segments(tmp_path)
    data = path.read_bytes().splitlines(keepends=True)
    torn = b'{"decision":{"cached":fal'
    path.write_bytes(b"".join(data[:-1]) + torn)
    assert verify_log(tmp_path, [key.public]).replicas[0].unsealed == 3
    with DecisionLog(tmp_path, key, replica=REPLICA) as log:
        assert log.stats.torn_bytes == len(torn)
        log.submit([decision(3)])
    assert path.read_bytes().endswith(torn)  # left as it was
    result, seen = verified(tmp_path, key)
    assert not result.failures
    assert seen == [1, 2, 3, 4]
    assert result.replicas[0].unsealed == 0  # sealed by the new segment's checkpoint
    assert [p.message for p in result.warnings] == [
        f"ends in a torn line of {len(torn)} bytes (a crash while writing it)",
        "ends without a checkpoint (its writer stopped without closing it)",
    ]


def test_a_last_line_that_is_not_ours_stops_the_writer_from_opening(
    tmp_path: Path, key: PrivateKey
) -> None:
    (tmp_path / REPLICA).mkdir()
    (tmp_path / REPLICA / "segment-000001.jsonl").write_bytes(b'{"hello":"world"}\n')
    with pytest.raises(ValueError, match="the last line is not an audit record or checkpoint"):
        DecisionLog(tmp_path, key, replica=REPLICA)


def test_one_writer_per_replica(tmp_path: Path, key: PrivateKey) -> None:
    with DecisionLog(tmp_path, key, replica=REPLICA):
        with pytest.raises(OSError, match="another process has this replica's audit log open"):
            DecisionLog(tmp_path, key, replica=REPLICA)
        with DecisionLog(tmp_path, key, replica="r2"):
            pass
    with DecisionLog(tmp_path, key, replica=REPLICA):  # closed: free again
        pass


class BlockingSigner:
    """Signs with `key`, but only once `release` is set: holds the writer's thread."""

    def __init__(self, key: PrivateKey) -> None:
        self.key = key
        self.release = threading.Event()
        self.waiting = threading.Event()

    @property
    def public(self) -> PublicKey:
        return self.key.public

    def sign(self, message: bytes) -> tuple[bytes, str]:
        self.waiting.set()
        self.release.wait(30)
        return self.key.sign(message)


def test_a_full_queue_drops_counts_and_warns_but_never_blocks(
    tmp_path: Path, key: PrivateKey, caplog: pytest.LogCaptureFixture
) -> None:
    signer = BlockingSigner(key)
    settings = LogSettings(queue_records=4, checkpoint_records=1, warn_every=3600)
    log = DecisionLog(tmp_path, signer, replica=REPLICA, settings=settings)
    try:
        assert log.submit([decision(0)])
        assert signer.waiting.wait(10)  # the thread is stuck signing the first checkpoint
        assert log.submit([decision(i) for i in range(1, 5)])  # fills the queue
        with caplog.at_level(logging.WARNING, logger="signet.audit"):
            started = time.monotonic()
            assert not log.submit([decision(5), decision(6)])
            assert not log.submit([decision(7)])
            assert time.monotonic() - started < 1.0
        assert log.stats.dropped == 3
        warnings = [r for r in caplog.records if r.name == "signet.audit"]
        assert len(warnings) == 1  # at most once per warn_every
        assert "3 decisions dropped" not in warnings[0].getMessage()
        assert "2 decisions dropped so far" in warnings[0].getMessage()
    finally:
        signer.release.set()
        log.close()
    assert log.stats.written == 5
    assert not log.submit([decision(8)])  # closed: dropped, not raised
    assert log.stats.dropped == 4
    result, seen = verified(tmp_path, key)
    assert not result.failures and seen == [1, 2, 3, 4, 5]


class BrokenSigner:
    def __init__(self, key: PrivateKey) -> None:
        self.key = key
        self.broken = True

    @property
    def public(self) -> PublicKey:
        return self.key.public

    def sign(self, message: bytes) -> tuple[bytes, str]:
        if self.broken:
            raise RuntimeError("the token is gone")
        return self.key.sign(message)


def test_a_failing_signer_is_counted_and_the_records_stay_unsealed_until_it_works(
    tmp_path: Path, key: PrivateKey
) -> None:
    signer = BrokenSigner(key)
    settings = LogSettings(checkpoint_records=2)
    with DecisionLog(tmp_path, signer, replica=REPLICA, settings=settings) as log:
        log.submit([decision(i) for i in range(3)])
        wait_for(lambda: log.stats.written == 3)
        assert log.stats.write_errors >= 1
        assert verify_log(tmp_path, [key.public]).replicas[0].unsealed == 3
        signer.broken = False
        log.submit([decision(3)])
    assert log.stats.written == 4
    result = verify_log(tmp_path, [key.public])
    assert not result.failures and not result.warnings


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="segment_bytes"):
        LogSettings(segment_bytes=0)
    with pytest.raises(ValueError, match="checkpoint_seconds"):
        LogSettings(checkpoint_seconds=0)


def test_a_replica_name_must_be_a_directory_name(tmp_path: Path, key: PrivateKey) -> None:
    with pytest.raises(ValueError, match="replica name"):
        DecisionLog(tmp_path, key, replica="../escape")


def test_a_failing_signer_is_retried_once_a_period_not_in_a_busy_loop(
    tmp_path: Path, key: PrivateKey
) -> None:
    signer = BrokenSigner(key)
    settings = LogSettings(checkpoint_seconds=0.05)
    with DecisionLog(tmp_path, signer, replica=REPLICA, settings=settings) as log:
        log.submit([decision(0)])
        wait_for(lambda: log.stats.write_errors >= 1)
        time.sleep(0.5)
        errors = log.stats.write_errors
        assert 2 <= errors <= 15  # about one per 0.05 s
        signer.broken = False
        wait_for(lambda: log.stats.checkpoints == 1)
    assert not verify_log(tmp_path, [key.public]).warnings


def test_a_failed_write_abandons_the_segment_and_the_chain_goes_on_from_the_last_whole_line(
    tmp_path: Path, key: PrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = os.write
    calls = {"n": 0}

    def full_disk(fd: int, data: bytes | memoryview) -> int:
        """The third record: half of it reaches the file, then the disk is full."""
        calls["n"] += 1
        if calls["n"] == 3:
            return real_write(fd, bytes(data)[: len(data) // 2])
        if calls["n"] == 4:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr("signet.audit.writer.os.write", full_disk)
    with DecisionLog(tmp_path, key, replica=REPLICA) as log:
        log.submit([decision(i) for i in range(5)])
    assert (log.stats.written, log.stats.write_errors) == (4, 1)
    assert len(segments(tmp_path)) == 2
    result, seen = verified(tmp_path, key)
    assert not result.failures
    assert seen == [1, 2, 3, 4]  # the record that failed is lost, and its seq reused
    torn, unclosed = result.warnings
    assert (torn.segment, torn.line) == ("segment-000001.jsonl", 3)
    assert torn.message.startswith("ends in a torn line of")
    assert unclosed.message.startswith("ends without a checkpoint")
    assert result.replicas[0].unsealed == 0  # the second segment's checkpoint seals them
