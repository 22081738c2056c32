"""The benchmark, one command: `make bench` (or `python bench/run.py`).

Signet (`signet serve`), Ratify (bench/ratify.py, v1.4.6 with its chart's settings) and a bare
Python server answering from memory (bench/baseline.py), side by side in one run on 127.0.0.1:
the same docker-registry (which counts the requests made to it), the same images signed in
cosign's classic format, the same mTLS client. Every shape runs over every target, alternating,
in `--rounds` rounds (the order reversed each round), and the rounds are merged:

1. RSS at rest of each target;
2. warm, 16 keys per request, 16 keep-alive connections, closed loop (vegeta, or
   bench/load.py when it gets more out of the bare server: `--generator`);
3. warm, 2 keys per request (a typical Pod);
4. a new TLS handshake per request (keep-alive off);
5. cold: new images by tag in sequence on one connection, on the running server and on a
   just-started one (its first request after the start against the median);
6. burst: 100 requests released at once on 100 open connections for one new image;
7. Gatekeeper's audit (bench/audit.py): 1,000 Pods over 100 images and 10,000 over 1,000, each
   on a just-started server: time, deadlines, verifications per digest, RSS before and after;
   then the next audit cycle of the 10,000 as Gatekeeper runs it with its response cache off
   (TTL 0s, the README's setting for a fast revocation): every Pod asks again.

The machine has 2 cores and is shared, so the ratios from one run are the figures. Results are
printed, with the issue's goals judged, and written to bench/results/latest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import shapes  # noqa: E402
from bench.audit import AuditCluster, AuditScale, audit_cluster, audit_images, run_audit  # noqa: E402
from bench.compare_generators import compare  # noqa: E402
from bench.fixtures import BenchImage, CountedRegistry, publish, run_counted_registry  # noqa: E402
from bench.report import judge, merge_rounds, render  # noqa: E402
from bench.targets import (  # noqa: E402
    BARE,
    RATIFY,
    SIGNET,
    Target,
    memory,
    ratify_unavailable,
    run_bare,
    run_ratify_target,
    run_signet,
    wait_idle,
)
from signet.crypto.keyfile import generate, public_pem  # noqa: E402
from signet.model.reference import parse  # noqa: E402
from signet.oci.client import RegistryClient  # noqa: E402
from signet.signing.bundle import sign_bundle  # noqa: E402
from signet.signing.classic import sign_image  # noqa: E402
from signet.trust.model import RegistrySettings, TrustConfig  # noqa: E402

WARM_KEYS = 16
TYPICAL_POD_KEYS = 2

Rounds = list[dict[str, dict[str, dict[str, Any]]]]  # shape -> target -> figures, per round


async def sign_all(host: str, images: list[str], key: Any, *, bundle: bool = False) -> None:
    """Sign `images` with Signet's own signer (bench/hostile.py uses it too)."""
    trust = TrustConfig((), (RegistrySettings(host, insecure=True),))
    client = RegistryClient(lambda: trust)
    try:
        for image in images:
            await (sign_bundle if bundle else sign_image)(client, parse(image), key)
    finally:
        await client.aclose()


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per pass")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before each pass")
    parser.add_argument("--rounds", type=int, default=2, help="at least 2: the order alternates")
    parser.add_argument("--cold-images", type=int, default=20)
    parser.add_argument("--audit-pods", type=int, default=10_000, help="the large audit's Pods")
    parser.add_argument("--audit-images", type=int, default=1_000, help="...and its images")
    parser.add_argument("--no-audit", action="store_true", help="skip the audit shape")
    parser.add_argument("--no-ratify", action="store_true", help="Signet and the bare server only")
    parser.add_argument(
        "--generator",
        choices=("auto", "vegeta", "python"),
        default="auto",
        help="load generator of the throughput shapes; auto: whichever gets more req/s out of "
        "the bare server at the start of the run (bench/compare_generators.py)",
    )
    parser.add_argument("--calibration-seconds", type=float, default=3.0)
    return parser.parse_args()


@dataclass
class Bench:
    """Everything one run measures with: the registry, the keys of each shape, the running
    targets and how to start a new one of each."""

    registry: CountedRegistry
    warm_keys: list[str]
    start_keys: list[str]  # new to every just-started server
    cold_keys: dict[tuple[int, str], list[str]]  # (round, target) -> new images
    burst_keys: dict[tuple[int, str], str]  # (round, target) -> a new image
    clusters: dict[str, AuditCluster]
    running: dict[str, Target] = field(default_factory=dict)
    start: dict[str, Callable[[Path], AbstractContextManager[Target]]] = field(default_factory=dict)
    rest: dict[str, dict[str, Any]] = field(default_factory=dict)


def prepare(
    stack: ExitStack, work: Path, args: argparse.Namespace, scales: list[AuditScale]
) -> Bench:
    registry = stack.enter_context(run_counted_registry(work / "registry"))
    key, stranger = generate("p256"), generate("p256")
    public_key = work / "ci.pub"
    public_key.write_bytes(public_pem(key))
    warm = [BenchImage("bench/warm", str(i)) for i in range(WARM_KEYS)]
    start = [BenchImage("bench/start", str(i)) for i in range(args.cold_images)]
    where = [(number, name) for number in range(args.rounds) for name in (SIGNET, RATIFY)]
    cold = {
        (number, name): [
            BenchImage("bench/cold", f"{number}-{name}-{i}") for i in range(args.cold_images)
        ]
        for number, name in where
    }
    bursts = {
        (number, name): BenchImage("bench/burst", f"{number}-{name}") for number, name in where
    }
    pools = {s.name: audit_images(f"audit-{s.images}", s.images) for s in scales}
    began = time.monotonic()
    everything = [*warm, *start, *(i for images in cold.values() for i in images)]
    everything += [*bursts.values(), *(i for pool in pools.values() for i in pool)]
    digests = publish(registry, everything, key, stranger)
    print(f"published {len(everything)} images in {time.monotonic() - began:.0f} s", flush=True)
    host = registry.host
    bench = Bench(
        registry,
        [image.key(host) for image in warm],
        [image.key(host) for image in start],
        {at: [image.key(host) for image in images] for at, images in cold.items()},
        {at: image.key(host) for at, image in bursts.items()},
        {s.name: audit_cluster(pools[s.name], digests, host, s.pods) for s in scales},
    )
    config = work / "trust.yaml"
    # What Ratify's cosign verifier looks for, Signet is told to look for: classic signatures
    # only (no attestations, no bundles), as a cluster signing that way configures it.
    config.write_text(
        "version: 1\nattestors:\n  - name: ci\n    keys:\n"
        f"      - file: {public_key}\n"
        f"registries:\n  - host: {host}\n    insecure: true\n"
        "evidence:\n  formats: [cosign-classic]\n  attestations: false\n"
    )
    signet = stack.enter_context(run_signet(config, work / "signet"))
    bench.rest[SIGNET] = _at_rest(signet)
    certs = signet.certs
    answers = {k: item["value"] for k, item in signet.ask(bench.warm_keys).items()}
    bare = stack.enter_context(run_bare(work, certs, answers))
    bench.rest[BARE] = _at_rest(bare)
    bench.running = {SIGNET: signet, BARE: bare}
    bench.start[SIGNET] = lambda where: run_signet(config, where)
    if args.ratify_skipped is None:
        try:
            ratify = stack.enter_context(
                run_ratify_target(work / "ratify", [host], public_key, certs)
            )
        except (RuntimeError, OSError) as error:  # not built, or it would not start
            args.ratify_skipped = f"it did not start: {error}"
        else:
            bench.rest[RATIFY] = _at_rest(ratify)
            bench.running[RATIFY] = ratify
            bench.start[RATIFY] = lambda where: run_ratify_target(where, [host], public_key, certs)
    if args.ratify_skipped is not None:
        print(f"Ratify is not measured: {args.ratify_skipped}")
    return bench


def run_round(
    bench: Bench, number: int, work: Path, args: argparse.Namespace, scales: list[AuditScale]
) -> dict[str, dict[str, dict[str, Any]]]:
    """Every shape over every target, in this round's order (reversed every other round)."""
    one: dict[str, dict[str, dict[str, Any]]] = {}
    order = [SIGNET, RATIFY, BARE] if number % 2 == 0 else [BARE, RATIFY, SIGNET]
    servers = [bench.running[name] for name in order if name in bench.running]
    throughput_shapes(one, servers, bench.warm_keys, args)
    counter = bench.registry.requests
    for server in servers:
        if server.name in bench.start:
            keys = bench.cold_keys[number, server.name]
            figures = shapes.cold_sequence(server, keys, counter)
            one.setdefault("cold", {})[server.name] = _noting_failures(server, figures)
    for server in servers:
        if server.name in bench.start:
            key = bench.burst_keys[number, server.name]
            one.setdefault("burst", {})[server.name] = shapes.burst(server, key, counter)

    def just_started(shape: str) -> Iterator[Target]:
        """Each target newly started for `shape` (its own work directory: nothing cached)."""
        for name in order:
            if name in bench.start:
                with bench.start[name](work / f"round{number}-{shape}-{name}") as server:
                    yield server

    for server in just_started("start"):
        wait_idle(server.pid)  # its start-up done: what is left is the first request's own
        figures = shapes.cold_sequence(server, bench.start_keys, counter)
        one.setdefault("start", {})[server.name] = _noting_failures(server, figures)
    for scale in [] if args.no_audit else scales:
        for server in just_started(scale.name):
            cluster = bench.clusters[scale.name]
            figures = _audit(server, cluster, bench.registry)
            one.setdefault(scale.name, {})[server.name] = _noting_failures(server, figures)
            if scale is scales[-1]:  # the next cycle, as Gatekeeper audits with TTL 0s
                again = run_audit(server, cluster, bench.registry.requests, gatekeeper_cache=False)
                one.setdefault(f"{scale.name}_ttl0", {})[server.name] = _noting_failures(
                    server, again
                )
    return one


def main() -> int:
    args = arguments()
    started = time.monotonic()
    args.ratify_skipped = "--no-ratify" if args.no_ratify else ratify_unavailable()
    scales = [
        AuditScale("audit1k", args.audit_pods // 10, args.audit_images // 10),
        AuditScale("audit10k", args.audit_pods, args.audit_images),
    ]
    rounds: Rounds = []
    choice: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory(prefix="signet-bench-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        bench = prepare(stack, work, args, scales)
        if args.generator == "auto":
            choice = compare(
                bench.running[BARE], bench.warm_keys, args.calibration_seconds, rounds=2
            )
            args.generator = choice["winner"]
            print(
                f"load generator: {args.generator} (against the bare server: vegeta "
                f"{choice['vegeta']['rps']:,.0f} req/s, python {choice['python']['rps']:,.0f})",
                flush=True,
            )
        else:
            print(f"load generator: {args.generator} (--generator)", flush=True)
        for number in range(args.rounds):
            print(f"round {number + 1} of {args.rounds} ...", flush=True)
            rounds.append(run_round(bench, number, work, args, scales))
        for name, server in bench.running.items():  # and at the end, for the record
            bench.rest[name]["rss_after_run_mib"] = memory(server.pid)["rss_mib"]
    merged = merge_rounds(rounds)
    merged["rest"] = bench.rest
    goals = judge(merged)
    minutes = round((time.monotonic() - started) / 60, 1)
    results: dict[str, Any] = {
        "setup": {
            "generator": args.generator,
            "generator_choice": choice,
            "seconds_per_pass": args.seconds,
            "warmup_seconds": args.warmup,
            "rounds": args.rounds,
            "connections": shapes.CONNECTIONS,
            "cold_images": args.cold_images,
            "audit": [] if args.no_audit else [vars(s) for s in scales],
            "ratify": args.ratify_skipped or "measured",
            "cpus": os.cpu_count(),
            "load_average_at_start": os.getloadavg(),
            "minutes": minutes,
        },
        "merged": merged,
        "goals": goals,
        "rounds": rounds,
    }
    print(render(merged, goals))
    print(f"\n({minutes} minutes; bench/results/latest.json)")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


def throughput_shapes(
    one: dict[str, dict[str, dict[str, Any]]],
    servers: list[Target],
    warm_keys: list[str],
    args: argparse.Namespace,
) -> None:
    passes = (
        ("warm16", warm_keys, True),
        ("warm2", warm_keys[:TYPICAL_POD_KEYS], True),
        ("handshake", warm_keys[:TYPICAL_POD_KEYS], False),
    )
    for shape, keys, keepalive in passes:
        for server in servers:
            one.setdefault(shape, {})[server.name] = shapes.throughput(
                server,
                keys,
                generator=args.generator,
                seconds=args.seconds,
                warmup=args.warmup,
                keepalive=keepalive,
            )


def _noting_failures(target: Target, figures: dict[str, Any]) -> dict[str, Any]:
    """A wrong answer is a finding: keep the server's last log lines with the figures."""
    answer = figures.get("first_unverified_answer") or figures.get("first_wrong_answer")
    if answer:
        figures["log_tail"] = target.log_tail()
        print(f"{target.name}: a wrong answer: {answer}\n{figures['log_tail']}", file=sys.stderr)
    return figures


def _at_rest(target: Target) -> dict[str, Any]:
    """Memory once the server is idle after its start (its workers up)."""
    waited = wait_idle(target.pid)
    return {**memory(target.pid), "idle_after_s": round(waited, 2)}


def _audit(target: Target, cluster: AuditCluster, registry: CountedRegistry) -> dict[str, Any]:
    rss_rest = _at_rest(target)["rss_mib"]
    figures = run_audit(target, cluster, registry.requests)
    figures["rss_rest_mib"] = rss_rest
    figures["rss_after_mib"] = memory(target.pid)["rss_mib"]
    return figures


if __name__ == "__main__":
    sys.exit(main())
