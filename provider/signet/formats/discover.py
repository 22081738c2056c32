"""Finding the evidence for one digest: every format's discovery, at once. All of it is I/O.

Each format's `discover` fetches only what its verification reads (manifests and blobs by digest,
each checked against its digest by the registry client) and turns a deterministic failure of its
own (an oversized signature manifest, a malformed index) into a problem of its evidence, so that
one format's junk does not hide another format's valid signature. A transient failure of any
format fails the whole discovery: an image is never judged on part of its evidence.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from signet.formats.cosign_classic import discover as classic
from signet.formats.judge import Evidence
from signet.formats.sigstore_bundle import discover as bundles
from signet.model.reference import Reference
from signet.oci.client import RegistryClient
from signet.oci.referrers import Referrers
from signet.service.workers import CpuPool
from signet.trust.model import EVERYTHING, EvidenceSettings

__all__ = ["Discovery", "discover"]


@dataclass(frozen=True, slots=True)
class Discovery:
    registry: RegistryClient
    referrers: Referrers
    cpu: CpuPool
    # Blobs of one image fetched at once.
    fetch_concurrency: int = 4


async def discover(
    discovery: Discovery, ref: Reference, digest: str, wanted: EvidenceSettings = EVERYTHING
) -> Evidence:
    """The evidence of the formats `wanted` names (attestations too, if it says so)."""
    found_classic, found_bundles = await asyncio.gather(
        classic.discover(discovery, ref, digest, wanted.attestations)
        if wanted.classic
        else _none(),
        bundles.discover(discovery, ref, digest, wanted.attestations)
        if wanted.bundles
        else _none(),
    )
    return Evidence(classic=found_classic, bundles=found_bundles)


async def _none() -> None:
    return None
