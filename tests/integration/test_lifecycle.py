"""Key lifecycle with the real cosign, a real registry and `signet serve`: a key past its
validity window is KEY_EXPIRED when only the time of verification is known, a key revoked by a
trust reload is KEY_REVOKED although it verified a moment before, and keyless evidence whose
trusted time lies inside the identity's window verifies after the window closed."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from signet.reasons import Reason
from signet.trust.lifecycle import rfc3339
from tests.support import cosign
from tests.support.images import push_image
from tests.support.keyless import ALICE, KeylessStack
from tests.support.provider import run_provider
from tests.support.registry import Registry

from .helpers import report_of
from .keyless_helpers import failure, report_for, trust_config

pytestmark = pytest.mark.integration

VERSION = "v3.1.3"


def write_config(path: Path, key: Path, host: str, *, window: str = "", revoked: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "version: 1\n"
        "attestors:\n"
        "  - name: team\n"
        "    keys:\n"
        f"      - id: team-2026\n        file: {key}\n{window}"
        f"registries:\n  - host: {host}\n    insecure: true\n{revoked}"
    )
    return path


def test_a_key_past_its_window_is_expired_at_the_time_of_verification(
    registry: Registry, tmp_path: Path
) -> None:
    digest = push_image(registry.url, "lifecycle/old", "v1", seed="lifecycle-old")
    pinned = f"{registry.host}/lifecycle/old@{digest}"
    signer = cosign.generate_key_pair(VERSION, tmp_path / "signer")
    cosign.sign(VERSION, signer.private, pinned)  # classic .sig, no log: no trusted time
    cosign.sign_bundle(VERSION, signer.private, pinned)  # a bundle without a log entry either
    retired = datetime.now(UTC) - timedelta(days=1)
    window = f"        notAfter: {rfc3339(retired.replace(microsecond=0))}\n"
    config = write_config(tmp_path / "trust" / "trust.yaml", signer.public, registry.host)
    expired = write_config(
        tmp_path / "expired" / "trust.yaml", signer.public, registry.host, window=window
    )

    with run_provider(config, tmp_path / "provider") as provider:
        current = report_of(provider, pinned)
    assert current["verified"] == ["team"]
    assert {s["timeSource"] for s in current["signatures"]} == {"verification-time"}

    with run_provider(expired, tmp_path / "provider-expired") as provider:
        report = report_of(provider, pinned)
    assert report["verified"] == []
    (failure,) = report["failures"]
    assert failure["reason"] == "KEY_EXPIRED", failure
    assert failure["detail"].startswith(
        f"key team-2026 of team was valid until {rfc3339(retired.replace(microsecond=0))}; "
        "the signature's time "
    )
    assert failure["detail"].endswith("(verification-time) is after it")
    assert "renew the key's notAfter" in failure["remediation"]


def test_a_key_revoked_by_a_reload_is_refused_although_it_verified_before(
    registry: Registry, tmp_path: Path
) -> None:
    digest = push_image(registry.url, "lifecycle/app", "v1", seed="lifecycle-revoked")
    image = f"{registry.host}/lifecycle/app:v1"
    signer = cosign.generate_key_pair(VERSION, tmp_path / "signer")
    cosign.sign_bundle(VERSION, signer.private, f"{registry.host}/lifecycle/app@{digest}")
    path = tmp_path / "trust" / "trust.yaml"
    write_config(path, signer.public, registry.host)

    with run_provider(path, tmp_path / "provider") as provider:
        assert report_of(provider, image)["verified"] == ["team"]  # and now cached
        revoked = (
            "revoked:\n  - key: team-2026\n    reason: leaked in a CI log\n"
            "    time: 2026-03-01T09:00:00Z\n"
        )
        write_config(path, signer.public, registry.host, revoked=revoked)
        deadline = time.monotonic() + 15
        report = report_of(provider, image)
        while report["verified"] and time.monotonic() < deadline:
            time.sleep(0.2)
            report = report_of(provider, image)
        assert report["verified"] == [], "the revocation never took effect"
        (failure,) = report["failures"]
        assert failure["reason"] == "KEY_REVOKED"
        assert failure["detail"].startswith(
            "key team-2026 of team was revoked at 2026-03-01T09:00:00Z (leaked in a CI log)"
        )
        with provider.client() as client:
            metrics = client.get(f"{provider.url}/metrics").text
    counted = re.search(
        r'^signet_lifecycle_refusals_total\{attestor="team",reason="KEY_REVOKED"\} (\S+)$',
        metrics,
        re.M,
    )
    assert counted and float(counted.group(1)) >= 1, metrics


def test_keyless_evidence_timestamped_inside_the_window_verifies_after_it_closed(
    keyless_stack: KeylessStack, tmp_path: Path
) -> None:
    """The private Sigstore has no log: its timestamp authority's RFC 3161 time is the trusted
    signing time, and the identity's window is judged at it, not at the time of verification."""
    identity = {"issuer": keyless_stack.issuers["email"], "subject": ALICE}
    plain = trust_config(keyless_stack, tmp_path / "plain", alice=identity)
    (signature,) = report_for(keyless_stack, plain, "bundle-email").signatures
    assert signature.time_source == "timestamp-authority" and signature.signed_at
    signed = datetime.fromisoformat(signature.signed_at)

    closed = signed + timedelta(seconds=1)
    time.sleep(max(0.0, (closed - datetime.now(UTC)).total_seconds()) + 0.1)
    window = {"notBefore": rfc3339(signed - timedelta(minutes=5)), "notAfter": rfc3339(closed)}
    inside = trust_config(keyless_stack, tmp_path / "inside", alice={**identity, **window})
    report = report_for(keyless_stack, inside, "bundle-email")
    assert "alice" in report.verified, report.failures
    assert datetime.now(UTC) > closed  # the window had closed when it verified

    before = {"notAfter": rfc3339(signed - timedelta(seconds=1))}
    expired = trust_config(keyless_stack, tmp_path / "expired", alice={**identity, **before})
    reason, detail = failure(report_for(keyless_stack, expired, "bundle-email"), "alice")
    assert reason is Reason.KEY_EXPIRED
    assert f"identity {ALICE} (issuer {keyless_stack.issuers['email']}) of alice" in detail
    assert "(timestamp-authority)" in detail
