"""Fuzz targets for keyless evidence: trusted roots, RFC 3161 timestamps, Rekor log entries and
whole keyless bundles, seeded from the sigstore-conformance vectors and the classic keyless
vector. The property everywhere: an answer or a DeterministicFailure (TrustedRootError for a
root), never another exception; a bundle that verifies names the identity the policy accepts."""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from signet.formats.sigstore_bundle.artifact import verify_artifact
from signet.keyless.root import TrustedRootError, parse_trusted_root
from signet.keyless.timestamp import verify_timestamp
from signet.keyless.tlog import parse_cosign_bundle_annotation, parse_log_entry
from signet.reasons import DeterministicFailure
from signet.trust.model import Keyless, KeylessIdentity
from tests.support import vectors

SHARED = vectors.VECTORS.parent
SUITE = SHARED / "sigstore-conformance" / "bundle-verify"
PRODUCTION_ROOT = SHARED / "sigstore-production-trusted_root.json"
IDENTITY = (
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
    ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
)
ISSUER = "https://token.actions.githubusercontent.com"
# Rekor v2 and TSA cases carry their own (staging) root; the fuzzer uses one of them.
STAGING_ROOT = SUITE / "rekor2-happy-path" / "trusted_root.json"


def _policy(root: Path) -> Keyless:
    return Keyless(
        parse_trusted_root(root.read_bytes()), (KeylessIdentity(ISSUER, subject=IDENTITY),)
    )


POLICIES = (_policy(PRODUCTION_ROOT), _policy(STAGING_ROOT))
ARTIFACT = (SUITE / "a.txt").read_bytes()


def trusted_root(data: bytes) -> None:
    try:
        parse_trusted_root(data)
    except TrustedRootError:
        return


def rfc3161_timestamp(data: bytes) -> None:
    authorities = POLICIES[1].trusted_root.timestamp_authorities
    try:
        verify_timestamp(data, b"a signature", authorities)
    except DeterministicFailure:
        return


def log_entry(data: bytes) -> None:
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        document = None
    with contextlib.suppress(DeterministicFailure):
        parse_log_entry(document)
    with contextlib.suppress(DeterministicFailure):
        parse_cosign_bundle_annotation(data.decode("utf-8", "replace"))


def keyless_bundle(data: bytes) -> None:
    for policy in POLICIES:
        try:
            subject = verify_artifact(data, ARTIFACT, keyless=policy)
        except DeterministicFailure:
            continue
        assert subject == IDENTITY, subject


TARGETS: dict[str, Callable[[bytes], None]] = {
    "trusted_root": trusted_root,
    "rfc3161_timestamp": rfc3161_timestamp,
    "log_entry": log_entry,
    "keyless_bundle": keyless_bundle,
}


def _bundles() -> list[bytes]:
    return [p.read_bytes() for p in sorted(SUITE.glob("*/bundle.sigstore.json"))]


def _material(raw: bytes) -> dict[str, Any]:
    try:
        material = json.loads(raw).get("verificationMaterial", {})
    except (ValueError, AttributeError):
        return {}
    return material if isinstance(material, dict) else {}


def _timestamps() -> list[bytes]:
    found = []
    for raw in _bundles():
        stamps = _material(raw).get("timestampVerificationData", {}).get("rfc3161Timestamps", [])
        found += [base64.b64decode(s["signedTimestamp"]) for s in stamps]
    return found


def _log_entries() -> list[bytes]:
    found = [
        json.dumps(e).encode() for raw in _bundles() for e in _material(raw).get("tlogEntries", [])
    ]
    (layer,) = vectors.layers("dir-img-cosign-fulcio-rekor-valid")
    return [*found, layer.annotations["dev.sigstore.cosign/bundle"].encode()]


SEEDS: dict[str, Callable[[], Iterable[bytes]]] = {
    "trusted_root": lambda: [
        PRODUCTION_ROOT.read_bytes(),
        *(p.read_bytes() for p in sorted(SUITE.glob("*/trusted_root.json"))),
    ],
    "rfc3161_timestamp": _timestamps,
    "log_entry": _log_entries,
    "keyless_bundle": _bundles,
}
