"""Key lifecycle: validity windows judged at the trusted signing time, revocations, the cache
lifetime cap, and the trust config's lifecycle fields and their errors."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from signet.attest.provenance import SLSA_V1
from signet.crypto.keyfile import PrivateKey, generate, public_pem
from signet.formats.cosign_classic import manifest as cosign
from signet.formats.cosign_classic.verify import ClassicEvidence
from signet.formats.judge import Evidence, judge
from signet.model.report import Report
from signet.reasons import Reason
from signet.trust.config import load
from signet.trust.lifecycle import (
    UNBOUNDED,
    Revocation,
    Revocations,
    SigningTime,
    TimeSource,
    Window,
    normalize_dn,
)
from signet.trust.model import Attestor, TrustConfig, TrustConfigError, TrustedKey
from tests.support import vectors
from tests.unit import test_bundle_verify as bundles
from tests.unit import test_keyless_classic as keyless
from tests.unit.fakes import FakeRegistry
from tests.unit.test_engine import Setup
from tests.unit.test_trust_keyless import config, identity

D1 = "sha256:" + "1" * 64
REPO = "registry.example/team/app"
IMAGE = f"{REPO}:1.0"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
DEV, NEXT = generate("p256"), generate("p256")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def classic(*keys: PrivateKey, digest: str = D1) -> Evidence:
    payload = cosign.make_payload(REPO, digest)
    descriptors = [
        cosign.signature_layer_descriptor(_digest(payload), len(payload), k.sign(payload)[0])
        for k in keys
    ]
    manifest = cosign.parse_signature_manifest(cosign.signature_manifest({}, descriptors))
    return Evidence(classic=ClassicEvidence(manifest, {_digest(payload): payload}))


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def trust(*keys: tuple[PrivateKey, Window], revoked: tuple[Revocation, ...] = ()) -> TrustConfig:
    trusted = tuple(TrustedKey(f"dev-{i}", k.public, w) for i, (k, w) in enumerate(keys))
    return TrustConfig((Attestor("dev", trusted),), revocations=Revocations(revoked))


def judged(evidence: Evidence, config: TrustConfig, now: datetime = NOW) -> Report:
    return judge(IMAGE, D1, evidence, config, now=now)


def only_failure(report: Report) -> tuple[Reason, str]:
    (failure,) = report.failures
    return failure.reason, failure.detail


# -- windows -----------------------------------------------------------------------------------


def test_a_window_holds_both_its_ends_and_nothing_outside() -> None:
    window = Window(NOW, NOW + DAY)
    for moment in (NOW, NOW + DAY / 2, NOW + DAY):
        assert window.refusal("k", SigningTime(moment, TimeSource.VERIFICATION_TIME)) is None
    late = window.refusal(
        "k", SigningTime(NOW + DAY + timedelta(seconds=1), TimeSource.VERIFICATION_TIME)
    )
    early = window.refusal(
        "k", SigningTime(NOW - timedelta(seconds=1), TimeSource.VERIFICATION_TIME)
    )
    assert late is not None and late.reason is Reason.KEY_EXPIRED
    assert early is not None and early.reason is Reason.KEY_NOT_YET_VALID


def test_a_window_must_open_before_it_closes_and_carry_zones() -> None:
    with pytest.raises(ValueError, match="is not before notAfter"):
        Window(NOW, NOW)
    with pytest.raises(ValueError, match="time zone"):
        Window(datetime(2026, 1, 1), None)


def test_a_key_inside_its_window_verifies_at_the_time_of_verification() -> None:
    report = judged(classic(DEV), trust((DEV, Window(NOW - DAY, NOW + DAY))))
    assert report.verified == ("dev",)
    (signature,) = report.signatures
    assert (signature.signed_at, signature.time_source) == (
        "2026-06-01T12:00:00Z",
        "verification-time",
    )
    assert signature.to_json()["timeSource"] == "verification-time"


def test_a_key_past_its_window_is_expired_when_only_the_verification_time_is_known() -> None:
    window = Window(None, at("2026-05-31T00:00:00+00:00"))
    reason, detail = only_failure(judged(classic(DEV), trust((DEV, window))))
    assert reason is Reason.KEY_EXPIRED
    assert detail == (
        "key dev-0 of dev was valid until 2026-05-31T00:00:00Z; the signature's time "
        "2026-06-01T12:00:00Z (verification-time) is after it"
    )
    failure = judged(classic(DEV), trust((DEV, window))).failures[0]
    assert failure.remediation == (
        f"re-sign {REPO}@{D1} with a current dev key, or renew the key's notAfter in the trust "
        "config"
    )


def test_a_key_before_its_window_is_not_yet_valid() -> None:
    window = Window(NOW + DAY, None)
    reason, detail = only_failure(judged(classic(DEV), trust((DEV, window))))
    assert reason is Reason.KEY_NOT_YET_VALID
    assert "key dev-0 of dev is valid from 2026-06-02T12:00:00Z" in detail
    assert "(verification-time)" in detail


def test_the_current_key_of_an_attestor_verifies_beside_its_expired_one() -> None:
    config = trust((DEV, Window(None, NOW - DAY)), (NEXT, Window(NOW - DAY, None)))
    report = judged(classic(DEV, NEXT), config)
    assert report.verified == ("dev",)
    assert report.signatures[0].key == "dev-1"


def test_a_key_based_bundle_is_judged_at_the_time_of_verification_too() -> None:
    config = trust((bundles.CI, Window(None, NOW - DAY)))
    found = Evidence(bundles=bundles.evidence(bundles.bundle(bundles.CI)))
    reason, detail = only_failure(judge(IMAGE, bundles.D1, found, config, now=NOW))
    assert reason is Reason.KEY_EXPIRED
    assert "(verification-time)" in detail
    fresh = judge(IMAGE, bundles.D1, found, trust((bundles.CI, Window(None, NOW + DAY))), now=NOW)
    assert fresh.signatures[0].time_source == "verification-time"


def test_an_attestation_by_an_expired_key_is_not_reported() -> None:
    predicate = bundles.statement(predicate_type=SLSA_V1, predicate={})
    found = Evidence(bundles=bundles.evidence(bundles.bundle(bundles.CI, predicate)))
    current = judge(IMAGE, bundles.D1, found, trust((bundles.CI, Window())), now=NOW)
    assert [a.time_source for a in current.attestations] == ["verification-time"]
    expired = judge(IMAGE, bundles.D1, found, trust((bundles.CI, Window(None, NOW - DAY))), now=NOW)
    assert expired.attestations == ()
    assert expired.failures[0].reason is Reason.KEY_EXPIRED


# -- keyless: the trusted time, not the clock ------------------------------------------------


def keyless_trust(window: Window = UNBOUNDED, revoked: tuple[Revocation, ...] = ()) -> TrustConfig:
    (attestor,) = keyless.trust().attestors
    assert attestor.keyless is not None
    (identity,) = attestor.keyless.identities
    identity = type(identity)(identity.issuer, subject=identity.subject, window=window)
    policy = type(attestor.keyless)(attestor.keyless.trusted_root, (identity,))
    return TrustConfig((Attestor("k", keyless=policy),), revocations=Revocations(revoked))


def keyless_judged(config: TrustConfig) -> Report:
    return judge("img", vectors.signed_digest(keyless.NAME), keyless.evidence(), config, now=NOW)


def test_keyless_evidence_logged_inside_the_window_verifies_after_the_window_closed() -> None:
    # Signed (and logged by Rekor) on 2023-01-20; the identity was retired on 2023-06-01.
    report = keyless_judged(keyless_trust(Window(None, at("2023-06-01T00:00:00+00:00"))))
    assert report.verified == ("k",), report.failures
    (signature,) = report.signatures
    assert signature.time_source == "transparency-log"
    assert signature.signed_at is not None and signature.signed_at.startswith("2023-01-20T")


def test_keyless_evidence_logged_outside_the_window_is_expired_or_not_yet_valid() -> None:
    reason, detail = only_failure(
        keyless_judged(keyless_trust(Window(None, at("2023-01-01T00:00:00+00:00"))))
    )
    assert reason is Reason.KEY_EXPIRED
    assert f"identity {keyless.SUBJECT} (issuer {keyless.ISSUER}) of k" in detail
    assert "(transparency-log)" in detail
    reason, _ = only_failure(
        keyless_judged(keyless_trust(Window(at("2024-01-01T00:00:00+00:00"), None)))
    )
    assert reason is Reason.KEY_NOT_YET_VALID


def _vector_certificate() -> x509.Certificate:
    (layer,) = vectors.layers(keyless.NAME)
    pem = layer.annotations["dev.sigstore.cosign/certificate"].encode()
    return x509.load_pem_x509_certificate(pem)


def test_a_revoked_keyless_identity_certificate_or_signature_never_counts() -> None:
    certificate = _vector_certificate()
    (layer,) = vectors.layers(keyless.NAME)
    issuer = certificate.issuer.rfc4514_string()
    revocations = [
        Revocation("left", NOW, subject=keyless.SUBJECT, issuer=keyless.ISSUER),
        Revocation("stolen", NOW, serial=certificate.serial_number, ca=normalize_dn(issuer)),
        Revocation("bad build", NOW, evidence=layer.digest),
    ]
    for revocation in revocations:
        reason, detail = only_failure(keyless_judged(keyless_trust(revoked=(revocation,))))
        assert reason is Reason.KEY_REVOKED, revocation
        assert f"({revocation.reason})" in detail and "2026-06-01T12:00:00Z" in detail
    assert keyless_judged(keyless_trust()).verified == ("k",)


# -- revocation ----------------------------------------------------------------------------------


def test_a_revoked_key_never_counts_whatever_its_window() -> None:
    revoked = Revocation("leaked", NOW + DAY, key=DEV.public.fingerprint)
    config = trust((DEV, Window(NOW - DAY, NOW + DAY)), revoked=(revoked,))
    reason, detail = only_failure(judged(classic(DEV), config))
    assert reason is Reason.KEY_REVOKED
    assert detail.startswith("key dev-0 of dev was revoked at 2026-06-02T12:00:00Z (leaked)")


def test_one_revoked_signature_leaves_the_key_and_its_other_signatures_alone() -> None:
    payload = cosign.make_payload(REPO, D1)
    config = trust((DEV, Window()), revoked=(Revocation("x", NOW, evidence=_digest(payload)),))
    assert only_failure(judged(classic(DEV), config))[0] is Reason.KEY_REVOKED
    other = cosign.make_payload(REPO, "sha256:" + "2" * 64)
    revoked_elsewhere = trust(
        (DEV, Window()), revoked=(Revocation("x", NOW, evidence=_digest(other)),)
    )
    assert judged(classic(DEV), revoked_elsewhere).verified == ("dev",)


def test_a_revoked_bundle_referrer_does_not_count() -> None:
    found = bundles.evidence(bundles.bundle(bundles.CI))
    referrer = found.bundles[0].referrer
    config = trust((bundles.CI, Window()), revoked=(Revocation("x", NOW, evidence=referrer),))
    report = judge(IMAGE, bundles.D1, Evidence(bundles=found), config, now=NOW)
    assert only_failure(report)[0] is Reason.KEY_REVOKED


def test_a_revocation_outranks_every_other_reason() -> None:
    revoked = Revocation("leaked", NOW, key=DEV.public.fingerprint)
    evidence = classic(DEV, NEXT)  # NEXT is nobody's: NOT_SIGNED_BY_ATTESTOR beside it
    assert only_failure(judged(evidence, trust((DEV, Window()), revoked=(revoked,))))[0] is (
        Reason.KEY_REVOKED
    )


def test_lifecycle_changes_the_fingerprint_and_unbounded_keys_keep_theirs() -> None:
    plain = trust((DEV, Window()))
    assert (
        plain.fingerprint
        == TrustConfig((Attestor("dev", (TrustedKey("dev-0", DEV.public),)),)).fingerprint
    )
    assert trust((DEV, Window(None, NOW))).fingerprint != plain.fingerprint
    revoked = trust((DEV, Window()), revoked=(Revocation("x", NOW, key="a" * 64),))
    assert revoked.fingerprint != plain.fingerprint


# -- the cache lifetime cap -------------------------------------------------------------------


def test_a_verdict_judged_at_verification_time_is_good_only_until_the_next_window_edge() -> None:
    closes = NOW + timedelta(hours=1)
    report = judged(classic(DEV), trust((DEV, Window(None, closes))))
    assert report.verified == ("dev",)
    assert report.valid_until == (closes + timedelta(microseconds=1)).timestamp()
    opens = judged(classic(DEV), trust((DEV, Window(NOW + DAY, None))))
    assert opens.valid_until == (NOW + DAY).timestamp()
    assert judged(classic(DEV), trust((DEV, Window()))).valid_until is None
    assert judged(classic(DEV), trust((DEV, Window(None, NOW - DAY)))).valid_until is None


@pytest.mark.anyio
async def test_a_key_whose_window_closes_stops_admitting_even_from_the_cache() -> None:
    fake = FakeRegistry()
    key = generate("p256")
    fake.signed_image("team/app", "v1", key)
    closes = datetime.now(UTC) + timedelta(seconds=1.5)
    config = TrustConfig(
        (Attestor("team-0", (TrustedKey("key-0", key.public, Window(None, closes)),)),)
    )
    setup = Setup(config, fake, verified_ttl=600.0)
    image = f"{fake.host}/team/app:v1"
    assert (await setup.report(image)).verified == ("team-0",)
    assert (await setup.report(image)).verified == ("team-0",)  # from the cache
    assert setup.verifications() == 1
    await asyncio.sleep(max(0.0, (closes - datetime.now(UTC)).total_seconds()) + 0.1)
    report = await setup.report(image)
    assert [f.reason for f in report.failures] == [Reason.KEY_EXPIRED]
    assert setup.verifications() == 2
    refusals = setup.metrics.registry.get_sample_value(
        "signet_lifecycle_refusals_total", {"attestor": "team-0", "reason": "KEY_EXPIRED"}
    )
    assert refusals == 1


# -- the trust config --------------------------------------------------------------------------


@pytest.fixture
def keyfile(tmp_path: Path) -> Path:
    (tmp_path / "dev.pub").write_bytes(public_pem(DEV))
    (tmp_path / "next.pub").write_bytes(public_pem(NEXT))
    return tmp_path


CONFIG = """version: 1
attestors:
  - name: dev
    keys:
      - id: dev-2025
        file: dev.pub
        notBefore: 2025-01-01T00:00:00Z
        notAfter: "2026-01-01T00:00:00+01:00"
      - id: dev-2026
        file: next.pub
revoked:
  - key: dev-2025
    reason: leaked in a CI log
    time: 2025-11-03T09:30:00Z
  - file: next.pub
    reason: lost laptop
    time: 2026-02-01T00:00:00Z
  - certificate: {serial: "3a:5F:09", issuer: "O=sigstore.dev, CN=sigstore-intermediate"}
    reason: mis-issued
    time: 2026-02-01T00:00:00Z
  - identity: {subject: ci@team.example, issuer: https://oidc.team.example}
    reason: account taken over
    time: 2026-02-01T00:00:00Z
  - digest: sha256:2222222222222222222222222222222222222222222222222222222222222222
    reason: signed a bad build
    time: 2026-02-01T00:00:00Z
"""


def test_the_lifecycle_fields_load(keyfile: Path) -> None:
    path = keyfile / "trust.yaml"
    path.write_text(CONFIG)
    config = load(path)
    (attestor,) = config.attestors
    assert attestor.keys[0].window == Window(
        at("2025-01-01T00:00:00+00:00"), at("2025-12-31T23:00:00+00:00")
    )
    assert attestor.keys[1].window == Window()
    entries = config.revocations.entries
    assert entries[0].key == DEV.public.fingerprint
    assert entries[1].key == NEXT.public.fingerprint
    assert entries[2].serial == 0x3A5F09
    assert config.revocations.certificate(0x3A5F09, "CN=sigstore-intermediate,O=sigstore.dev")
    assert config.revocations.identity("ci@team.example", "https://oidc.team.example")
    assert config.revocations.evidence("sha256:" + "2" * 64)


def _key_config(extra: str) -> str:
    return f"version: 1\nattestors:\n  - name: dev\n    keys:\n      - id: dev-2025\n        file: dev.pub\n{extra}"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (
            _key_config("        notAfter: tomorrow\n"),
            "keys[0].notAfter: 'tomorrow' is not an RFC 3339",
        ),
        (_key_config("        notAfter: 2026-01-01\n"), "keys[0].notAfter: 2026-01-01 is a date"),
        (_key_config("        notAfter: 2026-01-01T00:00:00\n"), "has no time zone"),
        (_key_config("        notAfter: '2026-02-30T00:00:00Z'\n"), "is not a valid time"),
        (
            _key_config(
                "        notBefore: 2026-01-01T00:00:00Z\n        notAfter: 2025-01-01T00:00:00Z\n"
            ),
            "keys[0]: notBefore 2026-01-01T00:00:00Z is not before notAfter 2025-01-01T00:00:00Z",
        ),
        (_key_config("        notafter: 2026-01-01T00:00:00Z\n"), "unknown field 'notafter'"),
        (
            _key_config("revoked:\n  - reason: x\n    time: 2026-01-01T00:00:00Z\n"),
            "revoked[0]: names nothing to revoke",
        ),
        (
            _key_config(
                "revoked:\n  - {key: dev-2025, digest: 'sha256:00', reason: x, time: 2026-01-01T00:00:00Z}\n"
            ),
            "revoked[0]: names both 'key' and 'digest'",
        ),
        (
            _key_config("revoked:\n  - {key: dev-2025, time: 2026-01-01T00:00:00Z}\n"),
            "revoked[0]: has no 'reason'",
        ),
        (_key_config("revoked:\n  - {key: dev-2025, reason: x}\n"), "revoked[0]: has no 'time'"),
        (
            _key_config("revoked:\n  - {key: dev-2025, reason: x, time: now}\n"),
            "revoked[0].time: 'now' is not an RFC 3339",
        ),
        (
            _key_config("revoked:\n  - {key: dev-2052, reason: x, time: 2026-01-01T00:00:00Z}\n"),
            "key 'dev-2052' names no configured key",
        ),
        (
            _key_config(
                "revoked:\n  - {key: dev-2025, attestor: ops, reason: x, time: 2026-01-01T00:00:00Z}\n"
            ),
            "attestor 'ops' is not configured",
        ),
        (
            _key_config(
                "revoked:\n  - {digest: 'sha256:12', reason: x, time: 2026-01-01T00:00:00Z}\n"
            ),
            "revoked[0].digest: 'sha256:12' is not sha256:<64 hex digits>",
        ),
        (
            _key_config(
                "revoked:\n  - {certificate: {serial: zz, issuer: CN=x}, reason: x, time: 2026-01-01T00:00:00Z}\n"
            ),
            "revoked[0].certificate.serial: 'zz' is not a certificate serial",
        ),
        (
            _key_config(
                "revoked:\n  - {identity: {subject: a}, reason: x, time: 2026-01-01T00:00:00Z}\n"
            ),
            "revoked[0].identity.issuer: expected a non-empty string",
        ),
        (
            _key_config(
                "revoked:\n  - {digest: 'sha256:12', attestor: dev, reason: x, time: 2026-01-01T00:00:00Z}\n"
            ),
            "revoked[0].attestor: only scopes a revocation by key id",
        ),
        (
            _key_config(
                "revoked:\n  - {key: dev-2025, reason: x, time: 2026-01-01T00:00:00Z, why: y}\n"
            ),
            "unknown field 'why'",
        ),
    ],
)
def test_each_lifecycle_mistake_is_named(keyfile: Path, body: str, fragment: str) -> None:
    path = keyfile / "trust.yaml"
    path.write_text(body)
    with pytest.raises(TrustConfigError) as caught:
        load(path)
    assert fragment in str(caught.value), str(caught.value)
    assert str(path) in str(caught.value)


def test_a_key_id_two_attestors_use_needs_its_attestor(keyfile: Path) -> None:
    path = keyfile / "trust.yaml"
    body = (
        "version: 1\nattestors:\n"
        "  - {name: dev, keys: [{id: main, file: dev.pub}]}\n"
        "  - {name: ops, keys: [{id: main, file: next.pub}]}\n"
        "revoked:\n  - {key: main, reason: x, time: 2026-01-01T00:00:00Z}\n"
    )
    path.write_text(body)
    with pytest.raises(TrustConfigError, match="key 'main' is a key of dev, ops; add `attestor:`"):
        load(path)
    path.write_text(body.replace("{key: main,", "{key: main, attestor: ops,"))
    assert load(path).revocations.entries[0].key == NEXT.public.fingerprint


def test_a_key_is_revoked_by_its_fingerprint_too(keyfile: Path) -> None:
    path = keyfile / "trust.yaml"
    short = DEV.public.fingerprint[:16]
    path.write_text(
        _key_config(f"revoked:\n  - {{key: '{short}', reason: x, time: 2026-01-01T00:00:00Z}}\n")
    )
    assert load(path).revocations.entries[0].key == DEV.public.fingerprint


def test_a_keyless_identity_has_a_window(tmp_path: Path) -> None:
    window = {"notAfter": "2026-01-01T00:00:00Z"}
    entry = {
        "name": "ci",
        "keyless": {"trustedRoot": "root.json", "identities": [identity(**window)]},
    }
    (attestor,) = load(config(tmp_path, entry)).attestors
    assert attestor.keyless is not None
    assert attestor.keyless.identities[0].window == Window(None, at("2026-01-01T00:00:00+00:00"))
