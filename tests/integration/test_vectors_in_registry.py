"""Signatures made by the real cosign elsewhere (shared/vectors), served by a real registry.

Each vector holds a signed image manifest and its classic signature layer(s). Only the `.sig`
manifest is pushed (the image blobs are not part of the vectors), and the image is checked by
digest, exactly as a digest-pinned pod would be.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

from signet import cosign as fmt
from signet.reasons import Reason
from signet.report import Report
from tests.support.images import put_blob, put_manifest
from tests.support.registry import Registry

from .helpers import check, write_trust

pytestmark = pytest.mark.integration

VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "cosign-classic"
PREFIX = b"\x00sigstore-json\n"


def push_vector(registry: Registry, name: str) -> str:
    """Push the vector's signature layers as a `.sig` manifest; return the signed digest."""
    directory = VECTORS / name
    digest = "sha256:" + hashlib.sha256((directory / "manifest.json").read_bytes()).hexdigest()
    layers = []
    for path in sorted(directory.glob("signature-*")):
        raw = path.read_bytes()
        assert raw.startswith(PREFIX)
        document = json.loads(raw[len(PREFIX) :])
        payload = base64.b64decode(document["payload"])
        layers.append(
            {
                "mediaType": document["mimeType"],
                "size": len(payload),
                "digest": put_blob(registry.url, f"vectors/{name}", payload),
                "annotations": document["annotations"],
            }
        )
    config = fmt.signature_config([layer["digest"] for layer in layers])
    config_descriptor = {
        "mediaType": fmt.OCI_CONFIG,
        "size": len(config),
        "digest": put_blob(registry.url, f"vectors/{name}", config),
    }
    manifest = fmt.signature_manifest(config_descriptor, layers)
    put_manifest(
        registry.url, f"vectors/{name}", fmt.signature_tag(digest), manifest, fmt.OCI_MANIFEST
    )
    return digest


@pytest.mark.parametrize(
    ("name", "verified", "reason"),
    [
        ("dir-img-cosign-valid", ("a",), None),
        ("dir-img-cosign-valid-2", ("a",), None),
        ("dir-img-cosign-valid-with-tag", ("a",), None),
        ("dir-img-cosign-mixed", ("a",), None),
        ("dir-img-cosign-key-rekor-valid", ("b",), None),
        ("dir-img-cosign-modified-manifest", (), Reason.DIGEST_MISMATCH),
        ("dir-img-cosign-manifest-digest-error", (), Reason.DIGEST_MISMATCH),
        ("dir-img-cosign-other-attachment", (), Reason.NO_SIGNATURE),
        ("dir-img-cosign-fulcio-rekor-valid", (), Reason.NOT_SIGNED_BY_ATTESTOR),
        ("dir-img-cosign-pki-valid", (), Reason.NOT_SIGNED_BY_ATTESTOR),
    ],
)
def test_vector(
    registry: Registry, tmp_path: Path, name: str, verified: tuple[str, ...], reason: Reason | None
) -> None:
    assert VECTORS.is_dir(), f"the shared vectors are missing at {VECTORS}"
    digest = push_vector(registry, name)
    config = write_trust(
        tmp_path, {"a": [VECTORS / "cosign.pub"], "b": [VECTORS / "cosign2.pub"]}, [registry.host]
    )

    (report,) = check(config, f"{registry.host}/vectors/{name}@{digest}")

    assert isinstance(report, Report), report
    assert report.verified == verified
    if reason is not None:
        assert report.failures[0].attestor == "a"
        assert report.failures[0].reason is reason
