"""The shared cache's pure parts: Report.from_json, the HMAC envelope, and loading its settings."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest

from signet.model.report import (
    AttestationFact,
    Failure,
    KeylessFact,
    Report,
    SignatureFact,
)
from signet.reasons import Reason
from signet.service.shared import envelope, load
from signet.service.shared.envelope import InvalidVerdict, Secret, names, seal, unseal

DIGEST = "sha256:" + "a" * 64
KEY = ("registry.example", "team/app", DIGEST, "fp-1")
SECRET = Secret(b"s" * 32)
NOW = 1_800_000_000.0

KEYLESS = KeylessFact(
    subject="https://ci.example/release.yml@refs/heads/main",
    issuer="https://token.actions.githubusercontent.com",
    claims=(("sourceRepositoryURI", "https://git.example/team/app"), ("buildTrigger", "push")),
    signed_at="2026-01-02T03:04:05Z",
    time_source="timestamp-authority https://tsa.example",
    log_index=42,
    log_url="https://rekor.example",
)
REPORT = Report(
    image="registry.example/team/app:1.2",
    digest=DIGEST,
    verified=("dev-team", "release-ci"),
    signatures=(
        SignatureFact("dev-team", "dev-2026", "cosign-classic", "ecdsa-p256-sha256"),
        SignatureFact(
            "release-ci", KEYLESS.subject, "sigstore-bundle", "ecdsa-p256-sha256", KEYLESS
        ),
    ),
    failures=(
        Failure("security-team", Reason.NOT_SIGNED_BY_ATTESTOR, "sign it", "key sec-1 absent"),
        Failure("ops", Reason.NO_SIGNATURE, "sign it too"),
    ),
    attestations=(
        AttestationFact(
            "dev-team",
            "dev-2026",
            "sigstore-bundle",
            "https://slsa.dev/provenance/v1",
            (("builderId", "https://ci.example/builder"),),
        ),
        AttestationFact(
            "release-ci",
            KEYLESS.subject,
            "cosign-classic",
            "https://slsa.dev/provenance/v0.2",
            keyless=KEYLESS,
        ),
    ),
)
DENIED = Report(
    image="registry.example/team/app:1.2",
    digest=DIGEST,
    failures=(Failure("dev-team", Reason.NO_SIGNATURE, "sign it"),),
)


# -- Report.from_json ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "report", [REPORT, DENIED, Report("x", None)], ids=["rich", "denied", "bare"]
)
def test_a_report_round_trips_through_its_json(report: Report) -> None:
    text = json.dumps(report.to_json())
    assert Report.from_json(json.loads(text)) == report


def _mutated(change: str) -> dict[str, Any]:
    data = copy.deepcopy(REPORT.to_json())
    if change == "unknown field":
        data["admit"] = True
    elif change == "missing field":
        del data["failures"]
    elif change == "another version":
        data["version"] = 2
    elif change == "version as a boolean":
        data["version"] = True
    elif change == "verified without a signature":
        data["verified"].append("security-team")
    elif change == "verified not strings":
        data["verified"] = [1]
    elif change == "signature field unknown":
        data["signatures"][0]["trusted"] = True
    elif change == "signature key not a string":
        data["signatures"][0]["key"] = None
    elif change == "keyless null":
        data["signatures"][1]["keyless"] = None
    elif change == "keyless claim not a string":
        data["signatures"][1]["keyless"]["claims"]["buildTrigger"] = 1
    elif change == "negative log index":
        data["signatures"][1]["keyless"]["logIndex"] = -1
    elif change == "log index a boolean":
        data["signatures"][1]["keyless"]["logIndex"] = True
    elif change == "unknown reason":
        data["failures"][0]["reason"] = "FINE"
    elif change == "transient reason":
        data["failures"][0]["reason"] = "REGISTRY_TIMEOUT"
    elif change == "empty detail":
        data["failures"][0]["detail"] = ""
    elif change == "facts not an object":
        data["attestations"][0]["facts"] = [["builderId", "x"]]
    elif change == "attestation without a digest":
        data["digest"] = None
    elif change == "signatures not a list":
        data["signatures"] = {}
    else:
        raise AssertionError(change)
    return data


@pytest.mark.parametrize(
    "change",
    [
        "unknown field",
        "missing field",
        "another version",
        "version as a boolean",
        "verified without a signature",
        "verified not strings",
        "signature field unknown",
        "signature key not a string",
        "keyless null",
        "keyless claim not a string",
        "negative log index",
        "log index a boolean",
        "unknown reason",
        "transient reason",
        "empty detail",
        "facts not an object",
        "attestation without a digest",
        "signatures not a list",
    ],
)
def test_from_json_refuses_anything_to_json_would_not_write(change: str) -> None:
    with pytest.raises(ValueError):  # each case has its own message
        Report.from_json(_mutated(change))


@pytest.mark.parametrize("data", [None, [], "report", 1])
def test_from_json_refuses_what_is_not_an_object(data: object) -> None:
    with pytest.raises(ValueError, match="expected an object"):
        Report.from_json(data)


# -- the envelope -------------------------------------------------------------------------------


def test_a_sealed_verdict_unseals_for_its_key() -> None:
    value = seal(SECRET, KEY, REPORT, NOW + 600)
    report, expires = unseal(SECRET, KEY, value, NOW)
    assert report == REPORT
    assert expires == NOW + 600


def _problem(value: bytes, *, key: envelope.VerdictKey = KEY, now: float = NOW) -> str:
    with pytest.raises(InvalidVerdict) as caught:
        unseal(SECRET, key, value, now)
    return caught.value.problem


def _mac(secret: bytes, payload: bytes) -> bytes:
    prefix = b"signet-verdict-v1."
    return hmac.new(secret, prefix + payload, hashlib.sha256).hexdigest().encode()


def _payload(report: Report, *, key: envelope.VerdictKey = KEY, expires: float = NOW + 60) -> bytes:
    document = {"key": list(key), "expires": int(expires * 1000), "report": report.to_json()}
    return json.dumps(document, separators=(",", ":")).encode()


FORGED = Report(
    image="registry.example/team/app:1.2",
    digest=DIGEST,
    verified=("dev-team",),
    signatures=(SignatureFact("dev-team", "dev-2026", "cosign-classic", "ecdsa-p256-sha256"),),
)


def test_a_verified_report_without_a_mac_is_refused() -> None:
    assert _problem(json.dumps(FORGED.to_json()).encode()) == "malformed"
    assert _problem(_payload(FORGED)) == "malformed"
    assert _problem(b"signet-verdict-v1." + _payload(FORGED)) == "malformed"


def test_a_wrong_mac_is_refused() -> None:
    payload = _payload(FORGED)
    assert _problem(b"signet-verdict-v1." + b"0" * 64 + b"." + payload) == "mac"
    other = _mac(b"t" * 32, payload)  # another installation's secret
    assert _problem(b"signet-verdict-v1." + other + b"." + payload) == "mac"


def test_any_change_to_a_sealed_value_breaks_its_mac() -> None:
    value = seal(SECRET, KEY, DENIED, NOW + 60)
    tampered = value.replace(b'"verified":[]', b'"verified":["dev-team"]')
    assert tampered != value
    assert _problem(tampered) == "mac"
    assert _problem(value.replace(b'"expires":', b'"expires":9')) == "mac"
    assert _problem(value[:-1]) == "mac"
    assert _problem(value.upper()) == "malformed"


def test_a_genuine_verdict_for_another_key_is_refused() -> None:
    value = seal(SECRET, KEY, REPORT, NOW + 60)
    for other in (
        ("registry.example", "team/other", DIGEST, "fp-1"),  # another repository
        ("mirror.example", "team/app", DIGEST, "fp-1"),  # another registry
        ("registry.example", "team/app", "sha256:" + "b" * 64, "fp-1"),  # another digest
        ("registry.example", "team/app", DIGEST, "fp-2"),  # another trust config
    ):
        assert _problem(value, key=other) == "key"


def test_a_report_about_another_digest_is_refused_even_under_its_key() -> None:
    other = Report("registry.example/team/app:1.2", "sha256:" + "c" * 64)
    payload = _payload(other)
    value = b"signet-verdict-v1." + _mac(SECRET.value, payload) + b"." + payload
    assert _problem(value) == "key"


def test_an_expired_verdict_is_refused() -> None:
    value = seal(SECRET, KEY, REPORT, NOW + 60)
    assert unseal(SECRET, KEY, value, NOW + 59.9)[0] == REPORT
    assert _problem(value, now=NOW + 60) == "expired"


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (b"{", "json"),
        (b"[]", "json"),
        (b'{"key":[],"expires":1,"report":{},"more":1}', "json"),
        (b'{"key":1,"key":2,"expires":1,"report":{}}', "json"),  # a duplicate field
        (json.dumps({"key": list(KEY), "expires": "soon", "report": {}}).encode(), "json"),
        (json.dumps({"key": list(KEY), "expires": 2 * 10**12, "report": {}}).encode(), "report"),
    ],
)
def test_a_payload_under_a_good_mac_still_parses_strictly(payload: bytes, problem: str) -> None:
    value = b"signet-verdict-v1." + _mac(SECRET.value, payload) + b"." + payload
    assert _problem(value) == problem


def test_an_oversized_value_is_refused_before_its_mac_is_computed() -> None:
    assert _problem(b"signet-verdict-v1." + b"0" * envelope.MAX_VALUE_BYTES) == "malformed"


def test_names_depend_on_the_key_and_the_secret_and_share_a_hash_tag() -> None:
    verdict, lock = names(SECRET, KEY)
    assert verdict.endswith(":verdict") and lock.endswith(":lock")
    assert verdict.split(":")[1] == lock.split(":")[1]
    assert verdict.split(":")[1].startswith("{") and verdict.split(":")[1].endswith("}")
    assert DIGEST.split(":")[1] not in verdict  # a name says nothing about the image
    assert names(SECRET, (*KEY[:3], "fp-2")) != (verdict, lock)
    assert names(Secret(b"t" * 32), KEY) != (verdict, lock)


def test_a_secret_is_long_enough_and_never_shown() -> None:
    with pytest.raises(ValueError, match="at least 32"):
        Secret(b"s" * 31)
    assert "sss" not in repr(SECRET)


# -- settings -------------------------------------------------------------------------------------


def _file(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def test_the_secret_and_password_are_read_from_their_files(tmp_path: Path) -> None:
    secret = _file(tmp_path, "secret", b"k" * 40 + b"\n")
    password = _file(tmp_path, "password", b"hunter2\n")
    settings = load("redis://cache:6379/0", secret, password)
    assert settings is not None
    assert settings.secret == Secret(b"k" * 40)
    assert settings.password == "hunter2"
    assert "hunter2" not in repr(settings)
    assert "k" * 40 not in repr(settings)


def test_no_url_is_no_shared_cache(tmp_path: Path) -> None:
    assert load(None, None, None) is None
    with pytest.raises(ValueError, match="--shared-cache-secret needs --shared-cache URL"):
        load(None, _file(tmp_path, "secret", b"k" * 40), None)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, r"--shared-cache-secret .*/secret: no such file"),
        (b"", r"--shared-cache-secret .*/secret: the file is empty"),
        (b" \n", r"--shared-cache-secret .*/secret: the file is empty"),
        (b"short\n", r"--shared-cache-secret .*/secret: 5 bytes is too short .* at least 32"),
    ],
)
def test_a_missing_empty_or_short_secret_is_refused_naming_the_file(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    secret = tmp_path / "secret"
    if content is not None:
        secret.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        load("redis://cache:6379", secret)


def test_a_url_needs_a_secret() -> None:
    with pytest.raises(ValueError, match="--shared-cache needs --shared-cache-secret FILE"):
        load("redis://cache:6379", None)


@pytest.mark.parametrize(
    "url",
    [
        "http://cache:6379",
        "unix:///run/redis.sock",
        "redis://",
        "cache:6379",
        "redis://cache:port/0",
        "redis://cache:70000",
    ],
)
def test_only_redis_urls_are_accepted(tmp_path: Path, url: str) -> None:
    with pytest.raises(ValueError, match=r"expected redis://HOST"):
        load(url, _file(tmp_path, "secret", b"k" * 40))


def test_a_password_is_given_once_and_never_shown(tmp_path: Path) -> None:
    secret = _file(tmp_path, "secret", b"k" * 40)
    password = _file(tmp_path, "password", b"hunter2")
    with pytest.raises(ValueError, match="given twice"):
        load("redis://:other@cache:6379", secret, password)
    with pytest.raises(ValueError, match=r"--shared-cache-password-file .*: the file is empty"):
        load("redis://cache:6379", secret, _file(tmp_path, "empty", b"\n"))
    settings = load("rediss://user:hunter2@cache:6380/1", secret)
    assert settings is not None
    assert settings.where == "rediss://user:***@cache:6380/1"
    assert "hunter2" not in repr(settings)
