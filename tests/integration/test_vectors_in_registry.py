"""Signatures made by the real cosign elsewhere (shared/vectors), served by a real registry.

Each vector holds a signed image manifest and its classic signature layer(s). Only the `.sig`
manifest is pushed (the image blobs are not part of the vectors), and the image is checked by
digest, exactly as a digest-pinned pod would be.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from signet.formats.cosign_classic import manifest as fmt
from signet.model.report import Report
from tests.support import vectors
from tests.support.images import put_blob, put_manifest
from tests.support.registry import Registry

from .helpers import check, write_trust

pytestmark = pytest.mark.integration


def push_vector(registry: Registry, name: str) -> str:
    """Push the vector's signature layers as a `.sig` manifest; return the signed digest."""
    repo = f"vectors/{name}"
    descriptors = [
        layer.descriptor(put_blob(registry.url, repo, layer.payload))
        for layer in vectors.layers(name)
    ]
    config = fmt.signature_config([str(d["digest"]) for d in descriptors])
    config_descriptor = {
        "mediaType": fmt.OCI_CONFIG,
        "size": len(config),
        "digest": put_blob(registry.url, repo, config),
    }
    digest = vectors.signed_digest(name)
    manifest = fmt.signature_manifest(config_descriptor, descriptors)
    put_manifest(registry.url, repo, fmt.signature_tag(digest), manifest, fmt.OCI_MANIFEST)
    return digest


IN_REGISTRY = [
    name for name in vectors.EXPECTED if name.startswith("dir-") and "no-manifest" not in name
]


@pytest.mark.parametrize("name", IN_REGISTRY)
def test_vector(registry: Registry, tmp_path: Path, name: str) -> None:
    verified, reason = vectors.EXPECTED[name]
    digest = push_vector(registry, name)
    config = write_trust(
        tmp_path,
        {"a": [vectors.VECTORS / "cosign.pub"], "b": [vectors.VECTORS / "cosign2.pub"]},
        [registry.host],
    )

    (report,) = check(config, f"{registry.host}/vectors/{name}@{digest}")

    assert isinstance(report, Report), report
    assert report.verified == verified
    if reason is not None:
        assert report.failures[0].attestor == "a"
        assert report.failures[0].reason is reason
