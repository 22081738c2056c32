"""Produce keyless-signed test images with the real cosign v3.1.3 and a private Sigstore stack.

Run it inside a fresh network namespace, as root (the `keyless_stack` fixture does):

    unshare --net --pid --fork --kill-child python -m tests.support.keyless.sign OUTDIR --registry-port P

It brings up the loopback, starts there a docker-registry on 127.0.0.1:P storing into
OUTDIR/registry, the OIDC issuers, two Fulcios (the trusted one and a rogue one) and a timestamp
authority; pushes and signs the images of `scenarios.IMAGES` with cosign and those of
`scenarios.HANDMADE` by hand (`handmade`); runs the cosign oracle on them;
stops everything and writes OUTDIR/stack.json, OUTDIR/trusted_root.json and
OUTDIR/rogue_trusted_root.json. Serving OUTDIR/registry again from another namespace on the same
port gives the same images at the same references.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.cosign import cosign_path, slsa_predicate, write_predicate
from tests.support.images import push_image
from tests.support.registry import run_registry

from .handmade import Handmade, check_like_cosign
from .inspect import copy_artifacts, describe
from .oidc import GITHUB_REPOSITORY, GITHUB_SHA, IssuerServer, run_issuers
from .scenarios import HANDMADE, IMAGES, ISSUERS, Check, HandmadeSpec, ImageSpec, Step
from .services import (
    Authority,
    require_binaries,
    run_fulcio,
    run_timestamp_authority,
    write_trusted_root,
)

COSIGN_VERSION = "v3.1.3"
TIMEOUT = 120
IMAGE_TAG = "v1"
# Inside the namespace every port is free: fixed ones keep the logs readable.
OIDC_PORT = 8080
FULCIO_PORTS = {"trusted": (5555, 5554, 2113), "rogue": (5565, 5564, 2114)}  # http, grpc, metrics
TSA_PORT = 3000  # its metrics listener is :2112
# How long after a hand-made timestamp its certificate is asked for, when the timestamp comes
# first: Fulcio's notBefore and the TSA's genTime are both truncated to the second.
BACKDATE_GAP = 2.5


@dataclass(frozen=True)
class Stack:
    work: Path
    registry: str  # host:port
    issuers: IssuerServer
    fulcio: dict[str, Authority]  # "trusted", "rogue"
    tsa: Authority
    roots: dict[str, Path]  # "trusted", "rogue"


def cosign(stack: Stack, args: list[str]) -> subprocess.CompletedProcess[str]:
    home = stack.work / "cosign-home"
    home.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "TUF_ROOT": str(home / "tuf"),
        "SIGSTORE_NO_CACHE": "true",
        "COSIGN_EXPERIMENTAL": "0",
    }
    return subprocess.run(
        [str(cosign_path(COSIGN_VERSION)), *args],
        cwd=stack.work,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def _token(stack: Stack, issuer: str, identity: str) -> str:
    if ISSUERS[issuer] == "github-workflow":
        return stack.issuers[issuer].github_token()
    return stack.issuers[issuer].email_token(identity)


def _predicate(stack: Stack) -> Path:
    path = stack.work / "provenance.json"
    if not path.exists():
        predicate = slsa_predicate(
            "1",
            "https://github.com/team/app/.github/workflows/release.yml@refs/heads/main",
            f"https://github.com/{GITHUB_REPOSITORY}",
            "refs/heads/main",
            GITHUB_SHA,
        )
        write_predicate(stack.work, path.name, predicate)
    return path


def run_step(stack: Stack, spec: ImageSpec, step: Step, reference: str) -> list[str]:
    """Sign or attest `reference` as `step` says; return the cosign command (token elided)."""
    args = [step.action, "--yes", "--use-signing-config=false", "--tlog-upload=false"]
    args += ["--fulcio-url", stack.fulcio[step.fulcio].url]
    args += ["--trusted-root", str(stack.roots[step.fulcio])]
    if step.timestamp:
        args += ["--timestamp-server-url", stack.tsa.url]
    args.append(f"--new-bundle-format={'true' if step.bundle else 'false'}")
    if step.action == "attest":
        args += ["--type", "slsaprovenance1", "--predicate", str(_predicate(stack))]
    token = _token(stack, step.issuer or spec.issuer, step.identity or spec.identity)
    result = cosign(stack, [*args, "--identity-token", token, reference])
    if result.returncode != 0:
        raise RuntimeError(f"cosign {' '.join(args)} {reference} failed:\n{result.stderr}")
    return [*args, "--identity-token", "JWT", reference]


def run_check(stack: Stack, spec: ImageSpec, check: Check, reference: str) -> dict[str, Any]:
    """The oracle: `cosign verify` / `verify-attestation` with the reference's offline flags."""
    issuer = check.issuer or spec.issuer
    identity = check.identity or spec.identity
    args = [check.command, "--trusted-root", str(stack.roots[check.root])]
    args += ["--insecure-ignore-tlog=true", "--insecure-ignore-sct=true"]
    args += ["--use-signed-timestamps=true", "--certificate-identity", identity]
    args += ["--certificate-oidc-issuer", stack.issuers[issuer].url]
    if ISSUERS[issuer] == "github-workflow":
        args += ["--certificate-github-workflow-repository", GITHUB_REPOSITORY]
    if check.bundle is not None:
        args.append(f"--new-bundle-format={'true' if check.bundle else 'false'}")
    if check.command == "verify-attestation":
        args += ["--type", "slsaprovenance1"]
    result = cosign(stack, [*args, reference])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    return {
        "check": check.label,
        "command": ["cosign", *args, reference],
        "expected": check.expected,
        "accepted": result.returncode == 0,
        "output": lines[-1] if lines else "",
    }


def _entry(stack: Stack, spec: ImageSpec, digest: str, commands: list[list[str]]) -> dict[str, Any]:
    return {
        "repository": spec.name,
        "tag": IMAGE_TAG,
        "digest": digest,
        "reference": f"{stack.registry}/{spec.name}@{digest}",
        "identity": spec.identity,
        "issuer": stack.issuers[spec.issuer].url,
        "issuer_type": ISSUERS[spec.issuer],
        "about": spec.about,
        "commands": commands,
    }


def start_handmade(stack: Stack, url: str, spec: HandmadeSpec) -> Handmade:
    """Push the image and sign it; a timestamp that comes first is requested now."""
    digest = push_image(url, spec.image.name, IMAGE_TAG, seed=f"keyless {spec.image.name}")
    made = Handmade.start(spec.image.name, stack.registry, digest)
    if spec.timestamp_first:
        made.stamp(stack.tsa.url)
    return made


def finish_handmade(stack: Stack, url: str, spec: HandmadeSpec, made: Handmade) -> dict[str, Any]:
    """Certify the key (at least BACKDATE_GAP after a timestamp that came first), timestamp it
    if not done yet, push the `.sig`; the stack.json entry, with genTime and notBefore."""
    image = spec.image
    fulcio = stack.fulcio["trusted"].url
    if made.timestamp is not None:
        time.sleep(max(0.0, made.stamped_at + BACKDATE_GAP - time.monotonic()))
    made.certify(fulcio, _token(stack, image.issuer, image.identity), image.identity)
    if made.timestamp is None:
        made.stamp(stack.tsa.url)
    tag = made.push(url)
    facts = made.facts()
    if made.backdated != spec.timestamp_first:
        raise RuntimeError(f"{image.name}: genTime and notBefore out of order: {facts}")
    steps = [["timestamp", stack.tsa.url], ["certificate", f"{fulcio}/api/v2/signingCert"]]
    steps = steps if spec.timestamp_first else steps[::-1]
    entry = _entry(stack, image, made.digest, [*steps, ["push", tag]])
    return {**entry, "handmade": {"timestamp_first": spec.timestamp_first, **facts}}


def produce(stack: Stack, url: str) -> dict[str, Any]:
    # Hand-made timestamps that must predate their certificates are taken first: cosign's
    # signing below fills the wait before those certificates are asked for.
    pending = [(spec, start_handmade(stack, url, spec)) for spec in HANDMADE]
    images: dict[str, Any] = {}
    for spec in IMAGES:
        digest = push_image(url, spec.name, IMAGE_TAG, seed=f"keyless {spec.name}")
        reference = f"{stack.registry}/{spec.name}@{digest}"
        commands = [run_step(stack, spec, step, reference) for step in spec.steps]
        for source, suffix in spec.copy_from:
            source_digest = images[source]["digest"]
            copy_artifacts(url, source, source_digest, spec.name, digest, suffix)
            commands.append(["copy", f"{source}:{source_digest.replace(':', '-')}{suffix}"])
        images[spec.name] = _entry(stack, spec, digest, commands)
    # What the hand-made layers copy, checked against what cosign wrote.
    check_like_cosign(url, stack.registry, "classic-email", images["classic-email"]["digest"])
    for handmade, made in pending:
        images[handmade.image.name] = finish_handmade(stack, url, handmade, made)
    # The oracle runs after all signing, so every check sees the final registry content.
    for spec in (*IMAGES, *(handmade.image for handmade in HANDMADE)):
        entry = images[spec.name]
        entry["oracle"] = [
            run_check(stack, spec, check, entry["reference"]) for check in spec.checks
        ]
        entry["artifacts"] = describe(url, spec.name, IMAGE_TAG)
    return images


@contextlib.contextmanager
def running_stack(work: Path, registry_port: int) -> Iterator[tuple[Stack, str]]:
    require_binaries()
    with contextlib.ExitStack() as stack:
        issuers = stack.enter_context(run_issuers(ISSUERS, port=OIDC_PORT))
        fulcio: dict[str, Authority] = {}
        for name, (port, grpc_port, metrics_port) in FULCIO_PORTS.items():
            trusted = {issuer.url: issuer.kind for issuer in issuers.issuers.values()}
            if name == "rogue":
                trusted = {issuers["email"].url: "email"}
            fulcio[name] = stack.enter_context(
                run_fulcio(
                    work / f"fulcio-{name}",
                    trusted,
                    port=port,
                    grpc_port=grpc_port,
                    metrics_port=metrics_port,
                )
            )
        tsa = stack.enter_context(run_timestamp_authority(work / "tsa", port=TSA_PORT))
        roots = {
            "trusted": write_trusted_root(work / "trusted_root.json", [fulcio["trusted"]], [tsa]),
            "rogue": write_trusted_root(work / "rogue_trusted_root.json", [fulcio["rogue"]], [tsa]),
        }
        registry = stack.enter_context(run_registry(work / "registry", port=registry_port))
        yield Stack(work, registry.host, issuers, fulcio, tsa, roots), registry.url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--registry-port", type=int, default=5000)
    options = parser.parse_args(argv)
    work: Path = options.outdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True, capture_output=True)
    started = time.monotonic()
    signed_at = datetime.datetime.now(datetime.UTC)
    with running_stack(work, options.registry_port) as (stack, url):
        images = produce(stack, url)
        description: dict[str, Any] = {
            "signed_at": signed_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "registry": stack.registry,
            "storage": "registry",
            "trusted_root": stack.roots["trusted"].name,
            "rogue_trusted_root": stack.roots["rogue"].name,
            "issuers": {path: issuer.url for path, issuer in stack.issuers.issuers.items()},
            "fulcio": {name: ca.url for name, ca in stack.fulcio.items()},
            "timestamp_authority": stack.tsa.url,
            "cosign": COSIGN_VERSION,
            "images": images,
        }
    description["signing_seconds"] = round(time.monotonic() - started, 1)
    (work / "stack.json").write_text(json.dumps(description, indent=2) + "\n")
    print(
        json.dumps({"stack": str(work / "stack.json"), "seconds": description["signing_seconds"]})
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
