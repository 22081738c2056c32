"""A timestamp older than its certificate: an RFC 3161 timestamp taken over a signature first,
and only seconds later a Fulcio certificate for the key (genTime < notBefore). cosign cannot be
made to write that, so both `.sig` layers here are built by hand (tests/support/keyless/
handmade.py) from the same stack's timestamp authority and trusted Fulcio: `backdated` with the
timestamp first, and `handmade`, the control, with the certificate first as cosign does it.

Signet judges a certificate at every trusted signing time; at a time before its notBefore it
was not yet valid, so the signature is refused."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from pathlib import Path

import pytest
from cryptography import x509

from signet.reasons import Reason
from tests.support.images import get_manifest
from tests.support.keyless import ALICE, KeylessStack
from tests.support.keyless.handmade import gen_time
from tests.support.keyless.inspect import (
    CERTIFICATE_ANNOTATION,
    TIMESTAMP_ANNOTATION,
    tag_for,
)

from .keyless_helpers import report_for, trust_config

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def config(keyless_stack: KeylessStack, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """alice's e-mail identity at the stack's trusted Fulcio (and the release workflow)."""
    return trust_config(keyless_stack, tmp_path_factory.mktemp("keyless-backdated"))


def recorded(stack: KeylessStack, image: str) -> tuple[datetime, datetime]:
    """genTime and notBefore as the signing run recorded them in stack.json."""
    facts = stack.description["images"][image]["handmade"]
    return datetime.fromisoformat(facts["genTime"]), datetime.fromisoformat(facts["notBefore"])


def served(stack: KeylessStack, image: str) -> tuple[datetime, datetime]:
    """genTime and notBefore read back from the `.sig` layer the registry serves."""
    raw, _ = get_manifest(stack.url, image, tag_for(stack[image].digest, ".sig"))
    (layer,) = json.loads(raw)["layers"]
    annotations = layer["annotations"]
    stamp = json.loads(annotations[TIMESTAMP_ANNOTATION])["SignedRFC3161Timestamp"]
    leaf = x509.load_pem_x509_certificate(annotations[CERTIFICATE_ANNOTATION].encode())
    return gen_time(base64.b64decode(stamp)), leaf.not_valid_before_utc


def test_the_backdated_timestamp_predates_its_certificate(keyless_stack: KeylessStack) -> None:
    """What the scenario is about, from the evidence itself: genTime < notBefore for
    `backdated` (the certificate was not yet valid then, not expired), not for `handmade`."""
    assert keyless_stack["backdated"].identity == keyless_stack["handmade"].identity == ALICE
    for image in ("backdated", "handmade"):
        assert served(keyless_stack, image) == recorded(keyless_stack, image), image
    stamped, not_before = recorded(keyless_stack, "backdated")
    assert stamped < not_before
    not_after = keyless_stack.description["images"]["backdated"]["handmade"]["notAfter"]
    assert stamped < datetime.fromisoformat(not_after)
    stamped, not_before = recorded(keyless_stack, "handmade")
    assert not_before <= stamped


def test_the_handmade_control_verifies_as_alice(keyless_stack: KeylessStack, config: Path) -> None:
    """The hand-built layer is right: cosign and Signet both accept it."""
    assert keyless_stack["handmade"].oracle == {"verify classic": True}
    report = report_for(keyless_stack, config, "handmade")
    assert report.verified == ("alice",), report.failures
    (signature,) = report.signatures
    assert (signature.key, signature.format, signature.scheme) == (
        ALICE,
        "cosign-classic",
        "ecdsa-p256-sha256",
    )
    facts = signature.to_json()["keyless"]
    assert facts["issuer"] == keyless_stack.issuers["email"]
    assert facts["timeSource"].startswith("timestamp-authority")


def test_a_timestamp_older_than_the_certificate_is_refused(
    keyless_stack: KeylessStack, config: Path
) -> None:
    assert "verify classic" in keyless_stack["backdated"].oracle  # cosign's answer, recorded
    report = report_for(keyless_stack, config, "backdated")
    assert report.verified == ()
    (failure,) = [f for f in report.failures if f.attestor == "alice"]
    assert failure.reason is Reason.SIGNATURE_INVALID, failure
    assert "not at the signing time" in failure.detail
    stamped, _ = recorded(keyless_stack, "backdated")
    assert stamped.isoformat() in failure.detail  # judged at the timestamp's time
