"""The OCI manifest cosign pushes (by digest) to hold one bundle, with the image as its `subject`.

{"mediaType": "application/vnd.oci.image.manifest.v1+json",
 "artifactType": "application/vnd.dev.sigstore.bundle.v0.3+json",
 "config": {"mediaType": "application/vnd.oci.empty.v1+json", ...},
 "layers": [{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "digest": ...}],
 "subject": {"digest": "sha256:<the image>", ...},
 "annotations": {"dev.sigstore.bundle.predicateType": "<predicate type>", ...}}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, TypeGuard

from signet.formats.sigstore_bundle.bundle import is_bundle_media_type
from signet.model.json_object import json_object
from signet.model.reference import is_sha256_digest
from signet.reasons import Reason

__all__ = [
    "EMPTY_MEDIA_TYPE",
    "MAX_REFERRER_MANIFEST_SIZE",
    "PREDICATE_ANNOTATION",
    "BundleReferrer",
    "may_hold_bundle",
    "parse_referrer",
]

EMPTY_MEDIA_TYPE: Final = "application/vnd.oci.empty.v1+json"
OCI_MANIFEST: Final = "application/vnd.oci.image.manifest.v1+json"
PREDICATE_ANNOTATION: Final = "dev.sigstore.bundle.predicateType"
MAX_REFERRER_MANIFEST_SIZE: Final = 64 * 1024


@dataclass(frozen=True, slots=True)
class BundleReferrer:
    subject: str | None
    # The bundle layer (digest, size), or None when the manifest holds no bundle.
    layer: tuple[str, int] | None
    predicate_hint: str | None


def may_hold_bundle(media_type: str, artifact_type: str | None) -> bool:
    """Whether an index entry is worth fetching. Writers and registries disagree on the entry's
    `artifactType` (cosign v3.1 writes the bundle type, v2.6 the empty type, some registries the
    config's media type, some nothing), so only entries that say they are something else are
    skipped (a Notation signature, an SBOM)."""
    if media_type != OCI_MANIFEST:
        return False
    return artifact_type in (None, "", EMPTY_MEDIA_TYPE) or is_bundle_media_type(artifact_type)


def parse_referrer(raw: bytes) -> BundleReferrer:
    document = json_object(raw, "referrer", Reason.SIGNATURE_INVALID)
    subject = _field(document.get("subject"), "digest")
    annotations = document.get("annotations")
    hint = _field(annotations, PREDICATE_ANNOTATION)
    layers = document.get("layers")
    artifact_type = document.get("artifactType")
    config_type = _field(document.get("config"), "mediaType")
    layer = None
    if isinstance(layers, list) and (
        is_bundle_media_type(artifact_type)
        or is_bundle_media_type(config_type)
        or not artifact_type
    ):
        for entry in layers:
            if isinstance(entry, dict) and is_bundle_media_type(entry.get("mediaType")):
                digest, size = entry.get("digest"), entry.get("size")
                if isinstance(digest, str) and is_sha256_digest(digest) and _is_size(size):
                    layer = (digest, size)
                    break
    return BundleReferrer(
        subject if isinstance(subject, str) and is_sha256_digest(subject) else None,
        layer,
        hint if isinstance(hint, str) else None,
    )


def _field(parent: Any, name: str) -> Any:
    return parent.get(name) if isinstance(parent, dict) else None


def _is_size(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
