"""Finding cosign classic signatures: the `sha256-<hex>.sig` manifest and each layer's payload."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Final

from signet.formats.cosign_classic.attestations import (
    MAX_ATTESTATION_MANIFEST_SIZE,
    MAX_ENVELOPE_SIZE,
    FetchedEnvelope,
    attestation_layers,
    attestation_tag,
)
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


async def discover(
    discovery: Discovery, ref: Reference, digest: str, attestations: bool = True
) -> ClassicEvidence | None:
    """The `.sig` and (with `attestations`) `.att` manifests for `digest` and what they list
    (None: neither exists)."""
    (signatures, payloads), (envelopes, problems) = await asyncio.gather(
        _signatures(discovery, ref, digest),
        _attestations(discovery, ref, digest) if attestations else _nothing(),
    )
    if signatures is None and not envelopes and not problems:
        return None
    return ClassicEvidence(
        signatures or SignatureManifest((), ()), payloads, tuple(envelopes), tuple(problems)
    )


async def _signatures(
    discovery: Discovery, ref: Reference, digest: str
) -> tuple[SignatureManifest | None, dict[str, bytes | DeterministicFailure]]:
    registry = discovery.registry
    try:
        manifest = await registry.manifest(ref, signature_tag(digest), max_bytes=MAX_MANIFEST_SIZE)
        if manifest is None:
            return None, {}
        raw = manifest.raw
        if len(raw) <= _PARSE_INLINE_BYTES:
            parsed = parse_signature_manifest(raw)
        else:
            parsed = await discovery.cpu.run(
                len(raw) // _PARSE_BYTES, parse_signature_manifest, raw
            )
    except DeterministicFailure as failure:
        return SignatureManifest((), (failure,)), {}
    distinct = list(dict.fromkeys(layer.digest for layer in parsed.layers))
    payloads = await _blobs(discovery, ref, distinct, MAX_PAYLOAD_SIZE)
    return parsed, dict(zip(distinct, payloads, strict=True))


async def _attestations(
    discovery: Discovery, ref: Reference, digest: str
) -> tuple[list[FetchedEnvelope], list[DeterministicFailure]]:
    try:
        manifest = await discovery.registry.manifest(
            ref, attestation_tag(digest), max_bytes=MAX_ATTESTATION_MANIFEST_SIZE
        )
        if manifest is None:
            return [], []
        layers = attestation_layers(manifest.raw)
    except DeterministicFailure as failure:
        return [], [failure]
    contents = await _blobs(discovery, ref, [layer.digest for layer in layers], MAX_ENVELOPE_SIZE)
    return [
        FetchedEnvelope(layer.digest, content, layer.keyless)
        for layer, content in zip(layers, contents, strict=True)
    ], []


async def _nothing() -> tuple[list[FetchedEnvelope], list[DeterministicFailure]]:
    return [], []


async def _blobs(
    discovery: Discovery, ref: Reference, digests: list[str], max_bytes: int
) -> list[bytes | DeterministicFailure]:
    fetching = asyncio.Semaphore(discovery.fetch_concurrency)

    async def fetch(digest: str) -> bytes | DeterministicFailure:
        async with fetching:
            try:
                return await discovery.registry.blob(ref, digest, max_bytes=max_bytes)
            except DeterministicFailure as failure:
                return failure

    return list(await asyncio.gather(*(fetch(d) for d in digests)))
