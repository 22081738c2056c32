"""The `referrers_registry` fixture serves the OCI 1.1 referrers API; the Debian `registry` does not."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.support.images import (
    OCI_INDEX,
    OCI_MANIFEST,
    digest_of,
    get_manifest,
    push_image,
    put_blob,
    put_manifest,
)
from tests.support.registry import Registry

pytestmark = pytest.mark.integration

REPO = "referrers/app"
ARTIFACT_TYPE = "application/vnd.signet.test.v1+json"
EMPTY = "application/vnd.oci.empty.v1+json"


def push_referrer(base_url: str, repo: str, subject: str) -> str:
    """Push, by digest, an OCI manifest with an `artifactType` whose `subject` is `subject`."""
    raw, media_type = get_manifest(base_url, repo, subject)
    empty = put_blob(base_url, repo, b"{}")
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": ARTIFACT_TYPE,
            "config": {"mediaType": EMPTY, "digest": empty, "size": 2},
            "layers": [{"mediaType": EMPTY, "digest": empty, "size": 2}],
            "subject": {"mediaType": media_type, "digest": subject, "size": len(raw)},
        }
    ).encode()
    return put_manifest(base_url, repo, digest_of(manifest), manifest, OCI_MANIFEST)


def test_referrers_api_lists_a_referrer(referrers_registry: Registry) -> None:
    image = push_image(referrers_registry.url, REPO, "v1", seed=REPO)
    referrer = push_referrer(referrers_registry.url, REPO, image)

    response = httpx.get(f"{referrers_registry.url}/v2/{REPO}/referrers/{image}", timeout=30)

    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].split(";")[0] == OCI_INDEX
    index = response.json()
    assert index["mediaType"] == OCI_INDEX
    assert [entry["digest"] for entry in index["manifests"]] == [referrer]


def test_debian_registry_has_no_referrers_api(registry: Registry) -> None:
    image = push_image(registry.url, REPO, "v1", seed=REPO)

    response = httpx.get(f"{registry.url}/v2/{REPO}/referrers/{image}", timeout=30)

    assert response.status_code == 404
