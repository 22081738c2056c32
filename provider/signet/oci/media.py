"""The OCI and Docker media types Signet reads and writes."""

from __future__ import annotations

from typing import Final

__all__ = ["DOCKER_LIST", "DOCKER_MANIFEST", "MANIFEST_ACCEPT", "OCI_INDEX", "OCI_MANIFEST"]

OCI_INDEX: Final = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST: Final = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST: Final = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST: Final = "application/vnd.docker.distribution.manifest.v2+json"
# Index-aware: a multi-platform tag resolves to the index digest, which is what cosign signs.
MANIFEST_ACCEPT: Final = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST))
