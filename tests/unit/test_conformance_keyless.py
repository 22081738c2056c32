"""Keyless bundles over artifacts: every case of the sigstore-conformance suite that is not a
managed-key case (those are in test_conformance.py), read in place from shared/vectors, with the
suite's rules: the case's own trusted root or the public-good one, its identity and issuer or the
suite's defaults, its artifact or a.txt, and `_fail` cases must fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from signet.formats.sigstore_bundle.artifact import verify_artifact
from signet.keyless.root import TrustedRootError, parse_trusted_root
from signet.reasons import DeterministicFailure, Reason
from signet.trust.model import Keyless, KeylessIdentity

VECTORS = Path(__file__).resolve().parents[3] / "shared" / "vectors"
SUITE = VECTORS / "sigstore-conformance" / "bundle-verify"
PRODUCTION_ROOT = VECTORS / "sigstore-production-trusted_root.json"
CASES = (
    sorted(p.name for p in SUITE.iterdir() if p.is_dir() and not p.name.startswith("managed-key"))
    if SUITE.is_dir()
    else []
)
DEFAULT_IDENTITY = (
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
    ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
)
DEFAULT_ISSUER = "https://token.actions.githubusercontent.com"


def policy(case: str) -> Keyless:
    directory = SUITE / case
    root_file = directory / "trusted_root.json"
    root = parse_trusted_root((root_file if root_file.exists() else PRODUCTION_ROOT).read_bytes())
    identity = _text(directory / "identity", DEFAULT_IDENTITY)
    issuer = _text(directory / "issuer", DEFAULT_ISSUER)
    return Keyless(root, (KeylessIdentity(issuer, subject=identity),))


def _text(path: Path, default: str) -> str:
    return path.read_text().strip() if path.exists() else default


def outcome(case: str) -> str | Reason | type[Exception]:
    directory = SUITE / case
    artifact = directory / "artifact"
    try:
        keyless = policy(case)
    except TrustedRootError:
        return TrustedRootError
    try:
        return verify_artifact(
            (directory / "bundle.sigstore.json").read_bytes(),
            (artifact if artifact.exists() else SUITE / "a.txt").read_bytes(),
            keyless=keyless,
        )
    except DeterministicFailure as failure:
        return failure.reason


def test_the_suite_is_there() -> None:
    assert SUITE.is_dir(), f"the shared vectors are missing at {SUITE}"
    assert len(CASES) >= 60


@pytest.mark.parametrize("case", CASES)
def test_signet_agrees_with_the_conformance_suite(case: str) -> None:
    result = outcome(case)
    verified = isinstance(result, str) and not isinstance(result, Reason)  # Reason is a str too
    assert verified is not case.endswith("_fail"), result


def test_a_verified_case_names_the_identity() -> None:
    assert outcome("happy-path-v0.3") == DEFAULT_IDENTITY


def test_only_a_malformed_trusted_root_fails_before_the_bundle_is_read() -> None:
    refused_roots = [c for c in CASES if outcome(c) is TrustedRootError]
    assert refused_roots == ["trust-root-tlog-missing-validity-start_fail"]


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("happy-path-v0.3", Reason.NOT_SIGNED_BY_ATTESTOR),
        ("rekor2-happy-path", Reason.NOT_SIGNED_BY_ATTESTOR),
    ],
)
def test_a_happy_case_with_another_identity_or_issuer_is_not_signed_by_attestor(
    case: str, reason: Reason
) -> None:
    directory = SUITE / case
    artifact = (SUITE / "a.txt").read_bytes()
    raw = (directory / "bundle.sigstore.json").read_bytes()
    root = policy(case).trusted_root
    for identity in (
        KeylessIdentity(DEFAULT_ISSUER, subject=DEFAULT_IDENTITY + "x"),
        KeylessIdentity("https://accounts.example.com", subject=DEFAULT_IDENTITY),
        KeylessIdentity(
            DEFAULT_ISSUER, subject=DEFAULT_IDENTITY, claims=(("buildTrigger", "push"),)
        ),
    ):
        with pytest.raises(DeterministicFailure) as raised:
            verify_artifact(raw, artifact, keyless=Keyless(root, (identity,)))
        assert raised.value.reason is reason, raised.value
