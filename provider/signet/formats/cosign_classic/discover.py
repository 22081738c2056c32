"""Finding cosign classic signatures: the `sha256-<hex>.sig` manifest and each layer's payload."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Final

from signet.formats.cosign_classic.manifest import (
    MAX_MANIFEST_SIZE,
    MAX_PAYLOAD_SIZE,
    SignatureManifest,
    parse_signature_manifest,
    signature_tag,
)
from signet.formats.cosign_classic.verify import ClassicEvidence
from signet.model.reference import Reference
from signet.reasons import DeterministicFailure

if TYPE_CHECKING:
    from signet.formats.discover import Discovery

__all__ = ["discover"]

# Estimated cost units for the CPU queue: microseconds per this many bytes of manifest JSON.
_PARSE_BYTES: Final = 20
# A manifest this small is parsed on the loop (~0.1 ms): a trip to a worker would cost more.
_PARSE_INLINE_BYTES: Final = 16 * 1024


async def discover(discovery: Discovery, ref: Reference, digest: str) -> ClassicEvidence | None:
    """The `.sig` manifest for `digest` and each distinct payload it lists (None: no `.sig`)."""
    registry = discovery.registry
    try:
        manifest = await registry.manifest(ref, signature_tag(digest), max_bytes=MAX_MANIFEST_SIZE)
        if manifest is None:
            return None
        raw = manifest.raw
        if len(raw) <= _PARSE_INLINE_BYTES:
            parsed = parse_signature_manifest(raw)
        else:
            parsed = await discovery.cpu.run(
                len(raw) // _PARSE_BYTES, parse_signature_manifest, raw
            )
    except DeterministicFailure as failure:
        return ClassicEvidence(SignatureManifest((), (failure,)), {})
    fetching = asyncio.Semaphore(discovery.fetch_concurrency)

    async def fetch(layer_digest: str) -> bytes | DeterministicFailure:
        async with fetching:
            try:
                return await registry.blob(ref, layer_digest, max_bytes=MAX_PAYLOAD_SIZE)
            except DeterministicFailure as failure:
                return failure

    distinct = list(dict.fromkeys(layer.digest for layer in parsed.layers))
    payloads = await asyncio.gather(*(fetch(d) for d in distinct))
    return ClassicEvidence(parsed, dict(zip(distinct, payloads, strict=True)))
