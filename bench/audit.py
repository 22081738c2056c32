"""The Gatekeeper-audit shape: a cluster's Pods reviewed the way Gatekeeper's audit reviews them.

What Gatekeeper does (gatekeeper pkg/audit/manager.go `reviewObjects`, and frameworks
constraint/pkg/client/drivers/rego/builtin.go `externalDataBuiltin`, read at their current
commits): audit lists the Pods in chunks of 500 (`--audit-chunk-size`, a List option only) and
then reviews them **one at a time, in one goroutine** — `am.opa.Review` per object, no
concurrency. Each review calls the provider **once**, with that Pod's images (the template
collects the containers, init containers and ephemeral containers into one `keys` list,
de-duplicated), **less the keys already in Gatekeeper's provider response cache** (3 minutes by
default; every item is cached, errors too); when every key is cached, no request is sent. Each
request is bounded by Provider.spec.timeout. So the bench sends, for each Pod in turn, one
request with its uncached keys, on one keep-alive connection (Gatekeeper's client pools them),
waiting for each answer before the next Pod, and keeps the cache Gatekeeper would.

The images: mostly signed, some unsigned, and a few invalid (a tag that does not exist, a
signature that is not one, a signature by an untrusted key). Some Pods name an image by digest
(or tag@digest) that others name by tag, so one digest arrives under several keys: it should be
verified once.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.fixtures import (
    MALFORMED,
    MISSING,
    SIGNED,
    UNSIGNED,
    WRONG_KEY,
    BenchImage,
    RequestCounter,
)
from bench.load import http_post, read_response
from bench.shapes import percentile
from bench.targets import Target

IMAGES_PER_REPOSITORY = 10
CONTAINERS_PER_POD = (1, 2, 3, 4)
CONTAINER_WEIGHTS = (60, 25, 10, 5)  # most Pods run one container, a few run sidecars
BY_DIGEST = 0.15  # of the containers naming an existing image: by digest (or tag@digest)


@dataclass(frozen=True)
class AuditScale:
    name: str
    pods: int
    images: int


def audit_images(prefix: str, count: int) -> list[BenchImage]:
    """`count` distinct images in repositories of IMAGES_PER_REPOSITORY: per 200, 4 tags that do
    not exist, 1 malformed signature, 1 untrusted signer, 16 unsigned, the rest signed."""
    kinds = [MISSING] * 4 + [MALFORMED] + [WRONG_KEY] + [UNSIGNED] * 16
    kinds += [SIGNED] * (200 - len(kinds))
    random.Random(f"kinds-{prefix}-{count}").shuffle(kinds)
    return [
        BenchImage(
            f"{prefix}/team-{i // IMAGES_PER_REPOSITORY}/app",
            f"v{i % IMAGES_PER_REPOSITORY}",
            kinds[i % len(kinds)],
        )
        for i in range(count)
    ]


def audit_pods(
    images: Sequence[BenchImage], digests: dict[BenchImage, str | None], host: str, pods: int
) -> tuple[list[list[str]], dict[str, bool]]:
    """`pods` Pods' keys (each image in at least one Pod, the rest by a long-tailed popularity),
    and for every key whether a correct answer says it verified."""
    rng = random.Random(f"pods-{pods}-{len(images)}")
    popularity = list(itertools.accumulate(1 / (rank + 1) ** 0.8 for rank in range(len(images))))
    order = list(images)
    rng.shuffle(order)
    unseen = list(order)
    expected: dict[str, bool] = {}

    def spell(image: BenchImage) -> str:
        key = image.key(host)
        digest = digests.get(image)
        if digest is not None and rng.random() < BY_DIGEST:
            name = key.rsplit(":", 1)[0]
            key = rng.choice((f"{name}@{digest}", f"{key}@{digest}"))
        expected[key] = image.should_verify
        return key

    result = []
    for _ in range(pods):
        count = rng.choices(CONTAINERS_PER_POD, CONTAINER_WEIGHTS)[0]
        chosen = [
            unseen.pop() if unseen else rng.choices(order, cum_weights=popularity)[0]
            for _ in range(count)
        ]
        keys = list(dict.fromkeys(spell(image) for image in chosen))
        result.append(keys)
    if unseen:
        raise ValueError(f"{len(unseen)} images in no Pod: more Pods needed")
    return result, expected


@dataclass(frozen=True)
class AuditCluster:
    images: int  # distinct images named by the Pods
    digests: int  # distinct digests among them (the images that exist)
    pods: list[list[str]]
    expected: dict[str, bool]  # every key: does a correct answer say it verified?


def audit_cluster(
    images: Sequence[BenchImage], digests: dict[BenchImage, str | None], host: str, pods: int
) -> AuditCluster:
    keys, expected = audit_pods(images, digests, host, pods)
    present = {digests[image] for image in images if digests.get(image) is not None}
    return AuditCluster(len(images), len(present), keys, expected)


def run_audit(
    target: Target, cluster: AuditCluster, registry: RequestCounter, gatekeeper_cache: bool = True
) -> dict[str, Any]:
    """One audit of the cluster's Pods against `target`, from an empty Gatekeeper cache; or,
    without `gatekeeper_cache`, as Gatekeeper audits with its response cache off (the README's
    `externaldataProviderResponseCacheTTL: 0s`): every Pod sends all its keys, every cycle."""
    pods, expected = cluster.pods, cluster.expected
    verifications_before = target.metric("signet_verifications_total")
    calls_before = registry.settled()
    deadline_ms = 1000 * target.provider_timeout

    async def run() -> dict[str, Any]:
        cache: dict[str, Any] = {}
        latencies: list[float] = []
        keys_sent = wrong = unanswered = 0
        odd: list[str] = []
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", target.port, ssl=target.context()
        )
        began_all = time.perf_counter()
        try:
            for pod in pods:
                keys = [key for key in pod if not gatekeeper_cache or key not in cache]
                if not keys:
                    continue
                began = time.perf_counter()
                writer.write(http_post(target.path, "127.0.0.1", target.body(keys)))
                _, raw = await read_response(reader)
                latencies.append(1000 * (time.perf_counter() - began))
                keys_sent += len(keys)
                items = {item["key"]: item for item in _items(raw)}
                for key in keys:
                    item = items.get(key)
                    if item is None:
                        unanswered += 1
                    else:
                        cache[key] = item
                        wrong += target.item_verified(item) != expected[key]
                    if (item is None or target.item_verified(item) != expected[key]) and not odd:
                        odd.append(f"{key}: {raw[:400].decode(errors='replace')}")
        finally:
            writer.close()
        return {
            "pods": len(pods),
            "requests": len(latencies),
            "keys_sent": keys_sent,
            "total_s": round(time.perf_counter() - began_all, 2),
            "p50_ms": round(statistics.median(latencies), 2),
            "p99_ms": round(percentile(latencies, 99), 2),
            "max_ms": round(max(latencies), 2),
            "over_deadline": sum(latency > deadline_ms for latency in latencies),
            "deadline_ms": deadline_ms,
            "wrong_answers": wrong,
            "unanswered_keys": unanswered,
            "first_wrong_answer": odd[0] if odd else None,
        }

    figures = asyncio.run(run())
    calls = registry.settled() - calls_before
    figures.update(
        images=cluster.images,
        distinct_digests=cluster.digests,
        distinct_keys=len(expected),
        registry_requests=calls,
        registry_requests_per_image=round(calls / cluster.images, 2),
    )
    after = target.metric("signet_verifications_total")
    if verifications_before is not None and after is not None:
        figures["verifications"] = after - verifications_before
        figures["verifications_per_digest"] = round(figures["verifications"] / cluster.digests, 3)
    return figures


def _items(raw: bytes) -> list[Any]:
    items: list[Any] = json.loads(raw)["response"]["items"]
    return items
