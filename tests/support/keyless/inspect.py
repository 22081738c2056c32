"""What cosign stored for an image, read back from the registry: tags, media types, annotations,
and for Sigstore bundles their verification material (certificate, timestamps, log entries)."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx

from tests.support.images import OCI_INDEX, get_manifest, put_blob, put_manifest

SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
CHAIN_ANNOTATION = "dev.sigstore.cosign/chain"
TIMESTAMP_ANNOTATION = "dev.sigstore.cosign/rfc3161timestamp"
BUNDLE_ANNOTATION = "dev.sigstore.cosign/bundle"


def tag_for(digest: str, suffix: str = "") -> str:
    """cosign's tag for `digest`'s artifacts: `sha256-<hex>` + `.sig`, `.att` (or nothing, the
    referrers tag schema's index of bundles)."""
    return digest.replace(":", "-") + suffix


def tags(url: str, repository: str) -> list[str]:
    response = httpx.get(f"{url}/v2/{repository}/tags/list", timeout=30)
    response.raise_for_status()
    return sorted(response.json().get("tags") or [])


def blob(url: str, repository: str, digest: str) -> bytes:
    response = httpx.get(f"{url}/v2/{repository}/blobs/{digest}", timeout=30)
    response.raise_for_status()
    return response.content


def _bundle(raw: bytes) -> dict[str, Any]:
    bundle = json.loads(raw)
    material = bundle.get("verificationMaterial", {})
    timestamps = material.get("timestampVerificationData", {}).get("rfc3161Timestamps", [])
    summary: dict[str, Any] = {
        "mediaType": bundle.get("mediaType"),
        "material": sorted(key for key in material if key != "timestampVerificationData"),
        "rfc3161Timestamps": len(timestamps),
        "tlogEntries": len(material.get("tlogEntries", [])),
    }
    if "dsseEnvelope" in bundle:
        envelope = bundle["dsseEnvelope"]
        summary["content"] = "dsseEnvelope"
        summary["payloadType"] = envelope.get("payloadType")
        statement = json.loads(base64.b64decode(envelope["payload"]))
        summary["statementType"] = statement.get("_type")
        summary["predicateType"] = statement.get("predicateType")
    else:
        summary["content"] = ",".join(key for key in bundle if key not in ("mediaType",))
    return summary


def _layer(url: str, repository: str, layer: dict[str, Any]) -> dict[str, Any]:
    annotations: dict[str, str] = layer.get("annotations", {})
    summary: dict[str, Any] = {
        "mediaType": layer["mediaType"],
        "annotations": sorted(annotations),
    }
    if CHAIN_ANNOTATION in annotations:
        summary["chain"] = annotations[CHAIN_ANNOTATION].count("BEGIN CERTIFICATE")
    if TIMESTAMP_ANNOTATION in annotations:
        summary["rfc3161timestamp"] = bool(
            json.loads(annotations[TIMESTAMP_ANNOTATION]).get("SignedRFC3161Timestamp")
        )
    if "sigstore.bundle" in layer["mediaType"]:
        summary["bundle"] = _bundle(blob(url, repository, layer["digest"]))
    return summary


def _manifest(url: str, repository: str, reference: str) -> dict[str, Any]:
    raw, media_type = get_manifest(url, repository, reference)
    document = json.loads(raw)
    summary: dict[str, Any] = {"mediaType": media_type}
    if document.get("annotations"):
        summary["annotations"] = document["annotations"]
    if media_type == OCI_INDEX or "manifests" in document:
        summary["manifests"] = [
            {
                "entry": {
                    key: value for key, value in entry.items() if key not in ("digest", "size")
                },
                **_manifest(url, repository, entry["digest"]),
            }
            for entry in document["manifests"]
        ]
        return summary
    summary["artifactType"] = document.get("artifactType")
    summary["config"] = document["config"]["mediaType"]
    if "subject" in document:
        summary["subject"] = document["subject"]["digest"]
    summary["layers"] = [_layer(url, repository, layer) for layer in document["layers"]]
    return summary


def describe(url: str, repository: str, image_tag: str) -> dict[str, Any]:
    """Every tag of `repository` but the image's own, described."""
    return {
        tag: _manifest(url, repository, tag) for tag in tags(url, repository) if tag != image_tag
    }


def _copy_manifest(url: str, source: str, target: str, reference: str, to: str) -> None:
    raw, media_type = get_manifest(url, source, reference)
    document = json.loads(raw)
    for entry in document.get("manifests", []):
        _copy_manifest(url, source, target, entry["digest"], entry["digest"])
    for descriptor in [document.get("config"), *document.get("layers", [])]:
        if descriptor is not None:
            put_blob(url, target, blob(url, source, descriptor["digest"]))
    put_manifest(url, target, to, raw, media_type)


def copy_artifacts(
    url: str, source: str, source_digest: str, target: str, target_digest: str, suffix: str
) -> str:
    """Copy the artifact tag `suffix` (".sig", ".att", or "" for the bundle index) of
    `source@source_digest` verbatim to `target@target_digest`'s tag; return that tag."""
    to = tag_for(target_digest, suffix)
    _copy_manifest(url, source, target, tag_for(source_digest, suffix), to)
    return to
