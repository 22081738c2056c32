"""Push real content to a registry with plain httpx (what `docker push` does, minus Docker)."""

from __future__ import annotations

import hashlib
import json

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
ACCEPT = ", ".join(
    (
        OCI_INDEX,
        OCI_MANIFEST,
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def put_blob(
    base_url: str, repo: str, data: bytes, *, headers: dict[str, str] | None = None
) -> str:
    digest = digest_of(data)
    with httpx.Client(base_url=base_url, headers=headers or {}, timeout=30) as client:
        start = client.post(f"/v2/{repo}/blobs/uploads/")
        start.raise_for_status()
        location = start.headers["Location"]
        separator = "&" if "?" in location else "?"
        done = client.put(
            f"{location}{separator}digest={digest}",
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        done.raise_for_status()
    return digest


def put_manifest(
    base_url: str,
    repo: str,
    ref: str,
    raw: bytes,
    media_type: str,
    *,
    headers: dict[str, str] | None = None,
) -> str:
    response = httpx.put(
        f"{base_url}/v2/{repo}/manifests/{ref}",
        content=raw,
        headers={"Content-Type": media_type, **(headers or {})},
        timeout=30,
    )
    response.raise_for_status()
    return digest_of(raw)


def get_manifest(
    base_url: str, repo: str, ref: str, *, headers: dict[str, str] | None = None
) -> tuple[bytes, str]:
    response = httpx.get(
        f"{base_url}/v2/{repo}/manifests/{ref}",
        headers={"Accept": ACCEPT, **(headers or {})},
        timeout=30,
    )
    response.raise_for_status()
    return response.content, response.headers["Content-Type"].split(";")[0]


def _image_manifest(
    base_url: str,
    repo: str,
    seed: str,
    headers: dict[str, str] | None,
    platform: str = "linux/amd64",
) -> bytes:
    os_name, architecture = platform.split("/")
    layer = f"layer of {seed} for {platform}\n".encode() * 8
    config = json.dumps(
        {
            "architecture": architecture,
            "os": os_name,
            "rootfs": {"type": "layers", "diff_ids": [digest_of(layer)]},
        }
    ).encode()
    put_blob(base_url, repo, layer, headers=headers)
    put_blob(base_url, repo, config, headers=headers)
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": digest_of(config), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": digest_of(layer), "size": len(layer)}],
        }
    ).encode()


def push_image(
    base_url: str, repo: str, tag: str, *, seed: str, headers: dict[str, str] | None = None
) -> str:
    """Push a small single-platform OCI image under `tag`; return its manifest digest."""
    raw = _image_manifest(base_url, repo, seed, headers)
    return put_manifest(base_url, repo, tag, raw, OCI_MANIFEST, headers=headers)


def push_index(
    base_url: str,
    repo: str,
    tag: str,
    *,
    seed: str,
    platforms: tuple[str, ...] = ("linux/amd64", "linux/arm64"),
    headers: dict[str, str] | None = None,
) -> tuple[str, list[str]]:
    """Push one image per platform and an OCI index of them under `tag`."""
    entries, children = [], []
    for platform in platforms:
        raw = _image_manifest(base_url, repo, seed, headers, platform)
        digest = put_manifest(base_url, repo, digest_of(raw), raw, OCI_MANIFEST, headers=headers)
        children.append(digest)
        os_name, architecture = platform.split("/")
        entries.append(
            {
                "mediaType": OCI_MANIFEST,
                "digest": digest,
                "size": len(raw),
                "platform": {"os": os_name, "architecture": architecture},
            }
        )
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
    return put_manifest(base_url, repo, tag, index, OCI_INDEX, headers=headers), children
