"""The keyless algorithm's own steps (signet/keyless/verify.py) on real conformance bundles,
where the suite's cases fail for more than one reason: each check here is the only one failing."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from signet.formats.sigstore_bundle.bundle import parse_bundle
from signet.formats.sigstore_bundle.verify import keyless_evidence
from signet.keyless.root import parse_trusted_root
from signet.keyless.verify import KeylessEvidence, verify
from signet.reasons import DeterministicFailure, Reason
from signet.trust.model import Keyless, KeylessIdentity

VECTORS = Path(__file__).resolve().parents[3] / "shared" / "vectors"
SUITE = VECTORS / "sigstore-conformance" / "bundle-verify"
PRODUCTION = json.loads((VECTORS / "sigstore-production-trusted_root.json").read_bytes())
BEACON = (
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
    ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
)
ACTIONS = "https://token.actions.githubusercontent.com"


def evidence(case: str, edit: Any = None) -> KeylessEvidence:
    document = json.loads((SUITE / case / "bundle.sigstore.json").read_bytes())
    if edit is not None:
        edit(document)
    bundle = parse_bundle(json.dumps(document).encode())
    artifact = SUITE / case / "artifact"
    return keyless_evidence(
        bundle, (artifact if artifact.exists() else SUITE / "a.txt").read_bytes()
    )


def policy(
    root: dict[str, Any] = PRODUCTION, subject: str = BEACON, issuer: str = ACTIONS
) -> Keyless:
    trusted = parse_trusted_root(json.dumps(root).encode())
    return Keyless(trusted, (KeylessIdentity(issuer, subject=subject),))


def integrated_time(case: str) -> datetime:
    document = json.loads((SUITE / case / "bundle.sigstore.json").read_bytes())
    seconds = int(document["verificationMaterial"]["tlogEntries"][0]["integratedTime"])
    return datetime.fromtimestamp(seconds, UTC)


def refused(reason: Reason, fragment: str) -> Any:
    return pytest.raises(
        DeterministicFailure, check=lambda e: e.reason is reason and fragment in e.message
    )


def test_the_happy_path_verifies_with_its_log_time() -> None:
    signed = verify(evidence("happy-path-v0.3"), policy())
    assert signed.signed_at == integrated_time("happy-path-v0.3")
    assert signed.time_source == "transparency-log https://rekor.sigstore.dev"
    assert signed.log_url == "https://rekor.sigstore.dev"


def test_an_integration_time_ahead_of_the_clock_is_refused() -> None:
    at = integrated_time("happy-path-v0.3")
    verify(evidence("happy-path-v0.3"), policy(), now=at)  # no skew: fine
    with refused(Reason.SIGNATURE_INVALID, "lies in the future"):
        verify(evidence("happy-path-v0.3"), policy(), now=at - timedelta(minutes=5))


def test_a_log_key_not_trusted_at_the_integration_time_is_refused() -> None:
    root = json.loads(json.dumps(PRODUCTION))
    at = integrated_time("happy-path-v0.3")
    root["tlogs"][0]["publicKey"]["validFor"]["end"] = (at - timedelta(seconds=1)).isoformat()
    with refused(Reason.SIGNATURE_INVALID, "was not trusted at"):
        verify(evidence("happy-path-v0.3"), policy(root))


def test_a_ca_not_trusted_at_the_signing_time_is_refused() -> None:
    root = json.loads(json.dumps(PRODUCTION))
    at = integrated_time("happy-path-v0.3")
    for authority in root["certificateAuthorities"]:
        authority["validFor"]["end"] = (at - timedelta(seconds=1)).isoformat()
    with refused(Reason.SIGNATURE_INVALID, "not at the signing time"):
        verify(evidence("happy-path-v0.3"), policy(root))


def _chain_without_root(document: dict[str, Any]) -> None:
    chain = document["verificationMaterial"]["x509CertificateChain"]["certificates"]
    del chain[1:]


def test_a_bundle_chain_carrying_a_root_is_refused_and_without_it_verifies() -> None:
    """bundle-with-root-cert_fail, judged as its own signer's identity: only the root in the
    chain is wrong."""
    own = policy(subject="a@tny.town", issuer="https://github.com/login/oauth")
    with refused(Reason.SIGNATURE_INVALID, "carries a root certificate"):
        verify(evidence("bundle-with-root-cert_fail"), own)
    signed = verify(evidence("bundle-with-root-cert_fail", _chain_without_root), own)
    assert signed.identity.subject == "a@tny.town"


def test_a_policy_requiring_a_log_refuses_a_signature_without_one() -> None:
    def no_entries(document: dict[str, Any]) -> None:
        document["verificationMaterial"]["tlogEntries"] = []

    with refused(Reason.SIGNATURE_INVALID, "no transparency-log entry"):
        verify(evidence("happy-path-v0.3", no_entries), policy())


def test_without_the_ct_log_the_sct_fails_unless_waived() -> None:
    root = json.loads(json.dumps(PRODUCTION))
    root["ctlogs"] = []
    with pytest.raises(DeterministicFailure) as raised:
        verify(evidence("happy-path-v0.3"), policy(root))
    assert raised.value.reason is Reason.SIGNATURE_INVALID
    trusted = parse_trusted_root(json.dumps(root).encode())
    waived = Keyless(
        trusted, (KeylessIdentity(ACTIONS, subject=BEACON),), certificate_transparency=False
    )
    assert verify(evidence("happy-path-v0.3"), waived).identity.subject == BEACON


def test_a_signature_edited_in_the_bundle_is_refused_before_anything_else() -> None:
    def flip(document: dict[str, Any]) -> None:
        signature = bytearray(base64.b64decode(document["messageSignature"]["signature"]))
        signature[-1] ^= 1
        document["messageSignature"]["signature"] = base64.b64encode(bytes(signature)).decode()

    with refused(Reason.SIGNATURE_INVALID, "does not verify under the signing certificate"):
        verify(evidence("happy-path-v0.3", flip), policy())
