"""Finding Sigstore bundles: the referrers of the digest, each referrer manifest, its bundle blob.

Round trips after the tag is resolved: the referrers list (on a registry without the API, its
404 once per host, then the `sha256-<hex>` tag), the referrer manifests, their bundle blobs —
each step's requests at once. A referrer whose `subject` is not the digest is not fetched further;
it is reported as what it is (a referrer of another image listed here).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Final

from signet.attest.statement import COSIGN_SIGN_PREDICATE
from signet.formats.sigstore_bundle.bundle import MAX_BUNDLE_SIZE
from signet.formats.sigstore_bundle.referrer import (
    MAX_REFERRER_MANIFEST_SIZE,
    may_hold_bundle,
    parse_referrer,
)
from signet.formats.sigstore_bundle.verify import BundleEvidence, FetchedBundle
from signet.model.reference import Reference
from signet.reasons import DeterministicFailure, Reason

if TYPE_CHECKING:
    from signet.formats.discover import Discovery

__all__ = ["MAX_BUNDLES", "discover"]

# Referrer manifests fetched per image (cosign's own cap on signatures is 100; a bundle is one
# signature or attestation each).
MAX_BUNDLES: Final = 32


async def discover(
    discovery: Discovery, ref: Reference, digest: str, attestations: bool = True
) -> BundleEvidence | None:
    """The bundles among the digest's referrers; without `attestations`, those whose manifest
    says they hold one are not fetched (the annotation only spares a fetch: a bundle fetched is
    judged by its content)."""
    try:
        listed = await discovery.referrers.list(ref, digest)
    except DeterministicFailure as failure:
        return BundleEvidence(problems=(failure,))
    candidates = list(
        dict.fromkeys(d.digest for d in listed if may_hold_bundle(d.media_type, d.artifact_type))
    )
    if not candidates:
        return None
    problems: list[DeterministicFailure] = []
    if len(candidates) > MAX_BUNDLES:
        problems.append(
            DeterministicFailure(
                Reason.LIMIT_EXCEEDED,
                f"{digest} lists {len(candidates)} possible bundles; the first {MAX_BUNDLES} "
                "were read",
            )
        )
        candidates = candidates[:MAX_BUNDLES]
    fetching = asyncio.Semaphore(discovery.fetch_concurrency)
    found = await asyncio.gather(
        *(_fetch(discovery, fetching, ref, digest, c, attestations) for c in candidates)
    )
    bundles = tuple(f for f in found if isinstance(f, FetchedBundle))
    foreign = tuple(dict.fromkeys(f for f in found if isinstance(f, str)))
    if not (bundles or foreign or problems):
        return None
    return BundleEvidence(bundles, foreign, tuple(problems))


async def _fetch(
    discovery: Discovery,
    fetching: asyncio.Semaphore,
    ref: Reference,
    digest: str,
    referrer: str,
    attestations: bool,
) -> FetchedBundle | str | None:
    """The referrer's bundle; or the other digest it is about; or None (not a bundle, gone)."""
    registry = discovery.registry
    async with fetching:
        try:
            manifest = await registry.manifest(ref, referrer, max_bytes=MAX_REFERRER_MANIFEST_SIZE)
            if manifest is None:
                return None  # listed but deleted since
            parsed = parse_referrer(manifest.raw)
        except DeterministicFailure as failure:
            return FetchedBundle(referrer, failure)
        if parsed.subject is not None and parsed.subject != digest:
            return parsed.subject
        if parsed.layer is None or parsed.subject is None:
            return None
        if not attestations and parsed.predicate_hint not in (None, COSIGN_SIGN_PREDICATE):
            return None
        layer_digest, size = parsed.layer
        if size > MAX_BUNDLE_SIZE:
            too_big = DeterministicFailure(
                Reason.LIMIT_EXCEEDED,
                f"its bundle is {size} bytes; the limit is {MAX_BUNDLE_SIZE}",
            )
            return FetchedBundle(referrer, too_big, parsed.predicate_hint)
        try:
            content: bytes | DeterministicFailure = await registry.blob(
                ref, layer_digest, max_bytes=MAX_BUNDLE_SIZE
            )
        except DeterministicFailure as failure:
            content = failure
        return FetchedBundle(referrer, content, parsed.predicate_hint)
