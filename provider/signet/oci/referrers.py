"""The referrers of a digest (OCI distribution 1.1): the API, or else the referrers tag.

- `GET /v2/<name>/referrers/<digest>` answers an image index of descriptors. A registry without
  the API answers 404, 400 or 406, or a 200 that is not an index (as go-containerregistry's
  client also takes it); then the referrers tag `sha256-<hex>` holds an index of the same shape,
  which cosign and other writers keep up to date. A 404 there means no referrers.
- Whether a registry has the API is remembered per host for `remember_for`, so one without it
  costs one extra call once, not one on every image.
- `Link: <…>; rel="next"` pages are followed on the registry's own host, at most `MAX_PAGES`.
- Descriptors are hints, not evidence: the format that reads them fetches each manifest by
  digest (checked) and checks its `subject` itself. No filter is applied here: registries differ
  in what they put in an entry's `artifactType` (the manifest's, its config's media type, or
  nothing), and so do writers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from signet.model.reference import Reference, is_sha256_digest
from signet.oci.client import RegistryClient
from signet.oci.media import OCI_INDEX
from signet.reasons import DeterministicFailure, Reason
from signet.service.cache import ExpiringCache

__all__ = [
    "MAX_DESCRIPTORS",
    "MAX_PAGES",
    "Descriptor",
    "Referrers",
    "parse_index",
    "referrers_tag",
]

MAX_INDEX_BYTES: Final = 512 * 1024
MAX_PAGES: Final = 8
MAX_DESCRIPTORS: Final = 1024
_NO_API: Final = 404, 400, 406


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    artifact_type: str | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)


def parse_index(raw: bytes, what: str) -> tuple[Descriptor, ...]:
    """The well-formed descriptors of an image index (others are skipped: they are hints)."""
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise DeterministicFailure(Reason.UNSUPPORTED_FORMAT, f"{what} is not JSON") from exc
    manifests = document.get("manifests") if isinstance(document, dict) else None
    if not isinstance(manifests, list):
        raise DeterministicFailure(Reason.UNSUPPORTED_FORMAT, f"{what} is not an image index")
    if len(manifests) > MAX_DESCRIPTORS:
        raise DeterministicFailure(
            Reason.LIMIT_EXCEEDED,
            f"{what} lists {len(manifests)} referrers; the limit is {MAX_DESCRIPTORS}",
        )
    return tuple(d for d in map(_descriptor, manifests) if d is not None)


def _descriptor(entry: Any) -> Descriptor | None:
    if not isinstance(entry, dict):
        return None
    media_type, digest, size = entry.get("mediaType"), entry.get("digest"), entry.get("size")
    if not isinstance(media_type, str) or not isinstance(digest, str):
        return None
    if not is_sha256_digest(digest) or not isinstance(size, int) or isinstance(size, bool):
        return None
    artifact_type = entry.get("artifactType")
    annotations = entry.get("annotations")
    return Descriptor(
        media_type,
        digest,
        size,
        artifact_type if isinstance(artifact_type, str) else None,
        {k: v for k, v in annotations.items() if isinstance(v, str)}
        if isinstance(annotations, dict)
        else {},
    )


def referrers_tag(digest: str) -> str:
    return digest.replace(":", "-")


class Referrers:
    def __init__(
        self,
        client: RegistryClient,
        *,
        remember_for: float = 3600.0,
        max_hosts: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._remember_for = remember_for
        self._has_api: ExpiringCache[str, bool] = ExpiringCache(max_hosts, clock)

    def knows_no_api(self, host: str) -> bool:
        return self._has_api.get(host) is False

    async def list(self, ref: Reference, digest: str) -> tuple[Descriptor, ...]:
        """Every descriptor listed as a referrer of `digest` in `ref`'s repository."""
        host = ref.api_host
        if self._has_api.get(host) is not False:
            listed = await self._from_api(ref, digest)
            if listed is not None:
                self._has_api.put(host, True, self._remember_for)
                return listed
            self._has_api.put(host, False, self._remember_for)
        return await self._from_tag(ref, digest)

    async def _from_api(self, ref: Reference, digest: str) -> tuple[Descriptor, ...] | None:
        found: list[Descriptor] = []
        url: str | None = f"referrers/{digest}"
        pages = 0
        while url is not None and pages < MAX_PAGES:
            page = await self._client.referrers_page(ref, url, max_bytes=MAX_INDEX_BYTES)
            if page.status in _NO_API or (page.status == 200 and page.media_type != OCI_INDEX):
                if pages == 0:
                    return None
                break  # a later page that is not an index ends the list
            found.extend(parse_index(page.body, f"the referrers of {digest}"))
            if len(found) > MAX_DESCRIPTORS:
                raise DeterministicFailure(
                    Reason.LIMIT_EXCEEDED,
                    f"{digest} has more than {MAX_DESCRIPTORS} referrers",
                )
            url, pages = page.next_url, pages + 1
        return tuple(found)

    async def _from_tag(self, ref: Reference, digest: str) -> tuple[Descriptor, ...]:
        tag = referrers_tag(digest)
        manifest = await self._client.manifest(ref, tag, max_bytes=MAX_INDEX_BYTES)
        if manifest is None:
            return ()
        return parse_index(manifest.raw, f"the referrers tag {tag}")
