"""Classic keyless `.sig` layers (certificate, chain and Rekor bundle annotations) as the real
cosign wrote them to the public-good Sigstore (shared/vectors/cosign-classic), verified offline
with the production trusted root; and across the worker-process boundary."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pytest

from signet.formats.cosign_classic import manifest as cosign
from signet.formats.cosign_classic.verify import ClassicEvidence
from signet.formats.judge import Evidence, judge
from signet.keyless.root import parse_trusted_root
from signet.model.report import Report
from signet.reasons import Reason
from signet.trust.model import Attestor, Keyless, KeylessIdentity, TrustConfig
from tests.support import vectors

PRODUCTION_ROOT = vectors.VECTORS.parent / "sigstore-production-trusted_root.json"
NAME = "dir-img-cosign-fulcio-rekor-valid"
SUBJECT, ISSUER = "mitr@redhat.com", "https://github.com/login/oauth"


def trust(
    subject: str = SUBJECT, issuer: str = ISSUER, root: Path = PRODUCTION_ROOT
) -> TrustConfig:
    keyless = Keyless(
        parse_trusted_root(root.read_bytes()), (KeylessIdentity(issuer, subject=subject),)
    )
    return TrustConfig((Attestor("k", keyless=keyless),))


def evidence(name: str = NAME, edit: Any = None) -> Evidence:
    layers = vectors.layers(name)
    descriptors = [layer.descriptor() for layer in layers]
    if edit is not None:
        for descriptor in descriptors:
            edit(descriptor["annotations"])
    manifest = cosign.parse_signature_manifest(cosign.signature_manifest({}, descriptors))
    return Evidence(classic=ClassicEvidence(manifest, {x.digest: x.payload for x in layers}))


def judged(found: Evidence, config: TrustConfig, name: str = NAME) -> Report:
    return judge("img", vectors.signed_digest(name), found, config)


def reason_of(report: Report) -> Reason:
    return report.failures[0].reason


def test_the_classic_keyless_vector_verifies_offline_with_the_production_root() -> None:
    report = judged(evidence(), trust())
    assert report.verified == ("k",), report.failures
    (signature,) = report.signatures
    facts = signature.to_json()["keyless"]
    assert (signature.key, signature.format) == (SUBJECT, "cosign-classic")
    assert facts["issuer"] == ISSUER
    assert facts["timeSource"] == "transparency-log https://rekor.sigstore.dev"
    assert facts["signedAt"].startswith("2023-01-20T")
    assert isinstance(facts["logIndex"], int) and facts["logIndex"] > 0


def test_it_crosses_the_process_boundary_as_it_is() -> None:
    config = trust()
    assert pickle.loads(pickle.dumps(config)).fingerprint == config.fingerprint
    found = evidence()
    assert judged(pickle.loads(pickle.dumps(found)), pickle.loads(pickle.dumps(config))) == judged(
        found, config
    )


@pytest.mark.parametrize(
    ("subject", "issuer"),
    [("someone@redhat.com", ISSUER), (SUBJECT, "https://accounts.google.com")],
    ids=["identity", "issuer"],
)
def test_another_identity_or_issuer_is_not_signed_by_attestor(subject: str, issuer: str) -> None:
    assert reason_of(judged(evidence(), trust(subject, issuer))) is Reason.NOT_SIGNED_BY_ATTESTOR


def test_a_root_without_that_fulcio_is_not_signed_by_attestor() -> None:
    other = vectors.VECTORS.parent / "sigstore-conformance" / "bundle-verify"
    root = other / "intoto-with-custom-trust-root" / "trusted_root.json"
    report = judged(evidence(), trust(root=root))
    assert reason_of(report) in (Reason.NOT_SIGNED_BY_ATTESTOR, Reason.SIGNATURE_INVALID)


def _edit_set(annotations: dict[str, str]) -> None:
    bundle = json.loads(annotations["dev.sigstore.cosign/bundle"])
    bundle["Payload"]["integratedTime"] += 1
    annotations["dev.sigstore.cosign/bundle"] = json.dumps(bundle)


def _drop_set(annotations: dict[str, str]) -> None:
    del annotations["dev.sigstore.cosign/bundle"]


@pytest.mark.parametrize("edit", [_edit_set, _drop_set], ids=["edited-SET", "no-log-entry"])
def test_a_missing_or_bad_log_proof_is_signature_invalid(edit: Any) -> None:
    report = judged(evidence(edit=edit), trust())
    assert reason_of(report) is Reason.SIGNATURE_INVALID, report.failures


def test_a_signature_for_another_digest_is_digest_mismatch() -> None:
    report = judge("img", "sha256:" + "1" * 64, evidence(), trust())
    assert reason_of(report) is Reason.DIGEST_MISMATCH


def test_a_private_pki_certificate_is_not_a_fulcio_identity() -> None:
    report = judged(evidence("dir-img-cosign-pki-valid"), trust(), "dir-img-cosign-pki-valid")
    assert report.verified == ()
    assert reason_of(report) in (Reason.NOT_SIGNED_BY_ATTESTOR, Reason.SIGNATURE_INVALID)


def test_key_signatures_do_not_count_for_a_keyless_attestor() -> None:
    report = judged(evidence("dir-img-cosign-valid"), trust(), "dir-img-cosign-valid")
    assert reason_of(report) is Reason.NOT_SIGNED_BY_ATTESTOR
    assert "none keyless" in report.failures[0].detail
