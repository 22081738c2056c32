"""The keyless benchmark: what one keyless verification costs beside a key-based one.

`make bench` runs it after the others (or: `python bench/keyless.py`). Pure CPU, on real
evidence from shared/vectors: a key-based bundle (the reference), a public-good keyless bundle
v0.3 (Rekor v1 SET + inclusion proof + signed checkpoint, SCT), a Rekor v2 bundle (inclusion
proof + checkpoint, RFC 3161 timestamp, SCT), and cosign's classic keyless `.sig` layer (SET,
SCT) judged as the engine does. The cases run interleaved, round after round, so a noisy
machine slows them alike; the figures are medians, and the ratios are to the key-based one.
Results are printed and written to bench/results/keyless.json.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "provider"))

from signet.crypto.keys import load_public_key_pem  # noqa: E402
from signet.formats.cosign_classic import manifest as classic  # noqa: E402
from signet.formats.cosign_classic.verify import ClassicEvidence  # noqa: E402
from signet.formats.judge import Evidence, judge  # noqa: E402
from signet.formats.sigstore_bundle.artifact import verify_artifact  # noqa: E402
from signet.keyless.root import parse_trusted_root  # noqa: E402
from signet.trust.model import Attestor, Keyless, KeylessIdentity, TrustConfig  # noqa: E402
from tests.support import vectors  # noqa: E402

SHARED = ROOT.parent / "shared" / "vectors"
SUITE = SHARED / "sigstore-conformance" / "bundle-verify"
BEACON = (
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
    ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
)
ACTIONS = "https://token.actions.githubusercontent.com"
ROUNDS, PER_ROUND = 15, 40


def _policy(root: Path, subject: str = BEACON, issuer: str = ACTIONS) -> Keyless:
    return Keyless(
        parse_trusted_root(root.read_bytes()), (KeylessIdentity(issuer, subject=subject),)
    )


def cases() -> dict[str, Callable[[], object]]:
    artifact = (SUITE / "a.txt").read_bytes()
    production = SHARED / "sigstore-production-trusted_root.json"
    keyed = (SUITE / "managed-key-happy-path" / "bundle.sigstore.json").read_bytes()
    key = load_public_key_pem((SUITE / "managed-key-happy-path" / "key.pub").read_bytes())
    v03 = (SUITE / "happy-path-v0.3" / "bundle.sigstore.json").read_bytes()
    rekor2 = (SUITE / "rekor2-happy-path" / "bundle.sigstore.json").read_bytes()
    public, staging = (
        _policy(production),
        _policy(SUITE / "rekor2-happy-path" / "trusted_root.json"),
    )

    name = "dir-img-cosign-fulcio-rekor-valid"
    layers = vectors.layers(name)
    manifest = classic.parse_signature_manifest(
        classic.signature_manifest({}, [layer.descriptor() for layer in layers])
    )
    evidence = Evidence(classic=ClassicEvidence(manifest, {x.digest: x.payload for x in layers}))
    trust = TrustConfig(
        (
            Attestor(
                "k",
                keyless=_policy(production, "mitr@redhat.com", "https://github.com/login/oauth"),
            ),
        )
    )
    digest = vectors.signed_digest(name)
    return {
        "key-based bundle": lambda: verify_artifact(keyed, artifact, (key,)),
        "keyless bundle v0.3 (Rekor v1, SCT)": lambda: verify_artifact(
            v03, artifact, keyless=public
        ),
        "keyless bundle (Rekor v2, TSA, SCT)": lambda: verify_artifact(
            rekor2, artifact, keyless=staging
        ),
        "classic keyless .sig (SET, SCT), judged": lambda: judge("img", digest, evidence, trust),
    }


def measure() -> dict[str, Any]:
    work = cases()
    for run in work.values():  # warm: every certificate and root parsed once
        run()
    samples: dict[str, list[float]] = {name: [] for name in work}
    for _ in range(ROUNDS):
        for name, run in work.items():
            started = time.perf_counter()
            for _ in range(PER_ROUND):
                run()
            samples[name].append((time.perf_counter() - started) / PER_ROUND)
    reference = statistics.median(samples["key-based bundle"])
    return {
        name: {
            "median_ms": round(statistics.median(times) * 1e3, 3),
            "ratio_to_key_based": round(statistics.median(times) / reference, 1),
        }
        for name, times in samples.items()
    }


def main() -> int:
    results = measure()
    print("\nKeyless verification, CPU per signature (median of interleaved rounds):")
    for name, figures in results.items():
        print(f"  {name:42} {figures['median_ms']:7.3f} ms  {figures['ratio_to_key_based']:5.1f}x")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "keyless.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
