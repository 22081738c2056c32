"""Coverage-guided fuzzing with atheris (libFuzzer), one target at a time, seeded from the vectors.

    python -m tests.fuzz.run TARGET [--runs N | --seconds S] [--corpus DIR]
    python -m tests.fuzz.run --all --seconds 60        # what `make fuzz` runs

Each target runs in a process of its own (libFuzzer owns it). A crash — any exception the
target's property does not allow — stops the run, writes the input to `crash-<hash>` in the
artifacts folder and exits non-zero; rerun the target with that file to reproduce it:

    python -m tests.fuzz.run --child TARGET fuzz-artifacts/TARGET-crash-<hash>

The crashes listed in `known_bugs.py` are stepped over unless `--strict` is given. The `judge`
target verifies bundles signed by a key made for the run (and the signatures it made,
SIGNET_FUZZ_SIGNER); they are kept as `signer.json` in the artifacts folder (and the corpus) and
used again from there, so a crash reproduces with
`SIGNET_FUZZ_SIGNER="$(cat fuzz-artifacts/signer.json)"` set.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SIGNER_ENV = "SIGNET_FUZZ_SIGNER"  # harness.SIGNER_ENV, read before the harness is imported


def _fuzz(target: str, libfuzzer_args: list[str]) -> None:
    import atheris

    with atheris.instrument_imports(include=["signet"]):
        from tests.fuzz import harness
    from tests.fuzz.known_bugs import tolerating

    run = tolerating(target, harness.TARGETS[target])
    atheris.Setup([sys.argv[0], *libfuzzer_args], run)
    atheris.Fuzz()


def _spawn(target: str, args: argparse.Namespace, artifacts: Path) -> int:
    from tests.fuzz import harness

    corpus = Path(args.corpus) / target if args.corpus else Path(tempfile.mkdtemp()) / target
    corpus.mkdir(parents=True, exist_ok=True)
    for seed in harness.seeds(target):
        (corpus / hashlib.sha256(seed).hexdigest()[:16]).write_bytes(seed)
    bound = f"-runs={args.runs}" if args.runs else f"-max_total_time={args.seconds}"
    artifacts.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "tests.fuzz.run",
        "--child",
        target,
        bound,
        "-timeout=10",  # seconds per input: longer is a hang
        "-rss_limit_mb=2048",
        "-max_len=65536",
        f"-artifact_prefix={artifacts}/{target}-",
        "-print_final_stats=1",
        str(corpus),
    ]
    print(f"fuzz {target}: {bound}", flush=True)
    return subprocess.run(command, cwd=ROOT, check=False).returncode


def _keep_signer(folders: list[Path]) -> None:
    """Use the judge target's key kept in one of `folders` (else the harness makes one, on
    import), and keep it in all of them."""
    kept = [f / "signer.json" for f in folders if (f / "signer.json").is_file()]
    if kept and not os.environ.get(SIGNER_ENV):
        os.environ[SIGNER_ENV] = kept[0].read_text()
    from tests.fuzz import harness

    assert harness.SIGNER_ENV == SIGNER_ENV
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "signer.json").write_text(os.environ[SIGNER_ENV])


def main() -> int:
    if sys.argv[1:2] == ["--child"]:  # libFuzzer's own arguments follow the target's name
        _fuzz(sys.argv[2], sys.argv[3:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("target", nargs="?")
    parser.add_argument("--all", action="store_true")
    parser.add_argument("--runs", type=int, default=0)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--corpus", help="keep the corpus here (default: a temporary folder)")
    parser.add_argument("--artifacts", default=str(ROOT / "fuzz-artifacts"))
    parser.add_argument(
        "--strict", action="store_true", help="stop on the crashes known_bugs.py lists too"
    )
    args = parser.parse_args()
    if args.strict:
        os.environ["SIGNET_FUZZ_STRICT"] = "1"
    _keep_signer([Path(args.artifacts), *([Path(args.corpus)] if args.corpus else [])])
    from tests.fuzz import harness

    targets = sorted(harness.TARGETS) if args.all else [args.target]
    if targets == [None] or any(t not in harness.TARGETS for t in targets):
        parser.error(f"name a target ({', '.join(sorted(harness.TARGETS))}) or --all")
    failed = [t for t in targets if _spawn(str(t), args, Path(args.artifacts)) != 0]
    if failed:
        print(f"fuzzing found crashes in: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
