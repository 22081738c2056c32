"""The real cosign CLI (v2.5.0, v2.6.5 and v3.1.3, built by `make tools` into .tools/), run offline.

Signatures are written with no transparency log, so nothing leaves this machine. Classic `.sig`
format: v2.5.0 needs `--tlog-upload=false`; v3.1.3 also needs `--use-signing-config=false` (or it
refuses to skip the log) and `--new-bundle-format=false` (or it writes a Sigstore bundle instead).

Sigstore bundles (an OCI 1.1 referrer; on a registry without the referrers API, listed in an
image index under the tag `sha256-<hex>`) are written by `sign_bundle` and `attest(bundle=True)`:
v2.6.5 needs `--new-bundle-format=true --tlog-upload=false`; v3.1.3 writes bundles by default
and needs `--tlog-upload=false --use-signing-config=false`. v2.5.0 can bundle attestations only
(its `sign` has no `--new-bundle-format`).
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

ROOT = Path(__file__).resolve().parents[2]
COSIGN_VERSIONS = ("v2.5.0", "v2.6.5", "v3.1.3")
# The versions whose `sign` can write a Sigstore bundle (v2.6.0 added `--new-bundle-format`).
BUNDLE_VERSIONS = ("v2.6.5", "v3.1.3")
TIMEOUT = 120


@dataclass(frozen=True)
class KeyPair:
    private: Path
    public: Path


def cosign_path(version: str) -> Path:
    path = ROOT / ".tools" / f"cosign-{version}" / "cosign"
    if not path.exists():
        raise RuntimeError(f"{path} is missing: run `make tools`")
    return path


def _env(home: Path) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "COSIGN_PASSWORD": "",
        "TUF_ROOT": str(home / "tuf"),
        "SIGSTORE_NO_CACHE": "true",
        "COSIGN_EXPERIMENTAL": "0",
    }


def _run(
    version: str, args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(cosign_path(version)), *args],
        cwd=cwd,
        env={**_env(cwd / ".cosign-home"), **(env or {})},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def _checked(
    version: str, args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    result = _run(version, args, cwd, env)
    if result.returncode != 0:
        raise RuntimeError(f"cosign {version} {' '.join(args)} failed:\n{result.stderr}")
    return result


def trusted_root_create(version: str, fulcio_chain: Path, tsa_chain: Path, out: Path) -> None:
    """`cosign trusted-root create` for a Sigstore of a Fulcio and a TSA only (PEM chains)."""
    _checked(
        version,
        [
            "trusted-root",
            "create",
            f"--fulcio=url=http://fulcio.invalid,certificate-chain={fulcio_chain}",
            f"--tsa=url=http://tsa.invalid/api/v1/timestamp,certificate-chain={tsa_chain}",
            "--out",
            str(out),
        ],
        out.parent,
    )


def generate_key_pair(version: str, directory: Path) -> KeyPair:
    directory.mkdir(parents=True, exist_ok=True)
    _checked(version, ["generate-key-pair"], directory)
    return KeyPair(directory / "cosign.key", directory / "cosign.pub")


def import_key_pair(version: str, directory: Path, key_type: str) -> KeyPair:
    """A key of `key_type` made with `cryptography`, imported by `cosign import-key-pair`."""
    directory.mkdir(parents=True, exist_ok=True)
    key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
    if key_type in ("p256", "p384", "p521"):
        curve = {"p256": ec.SECP256R1(), "p384": ec.SECP384R1(), "p521": ec.SECP521R1()}[key_type]
        key = ec.generate_private_key(curve)
    elif key_type == "ed25519":
        key = ed25519.Ed25519PrivateKey.generate()
    elif key_type.startswith("rsa"):
        key = rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[3:]))
    else:
        raise ValueError(f"unknown key type {key_type}")
    pem = directory / f"{key_type}.pem"
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    prefix = f"imported-{key_type}"
    _checked(
        version, ["import-key-pair", "--key", str(pem), "--output-key-prefix", prefix], directory
    )
    return KeyPair(directory / f"{prefix}.key", directory / f"{prefix}.pub")


def sign(version: str, key: Path, image_ref: str) -> None:
    """Sign `image_ref` (pass it by digest) in the classic format, with no transparency log."""
    args = ["sign", "--key", str(key), "--tlog-upload=false", "--yes"]
    if version.startswith("v3"):
        args += ["--use-signing-config=false", "--new-bundle-format=false"]
    _checked(version, [*args, image_ref], key.parent)


def generate_kms_key(version: str, reference: str, env: dict[str, str], directory: Path) -> Path:
    """`cosign generate-key-pair --kms REFERENCE`: the key made in the KMS; its cosign.pub."""
    directory.mkdir(parents=True, exist_ok=True)
    _checked(version, ["generate-key-pair", "--kms", reference], directory, env)
    return directory / "cosign.pub"


def sign_kms(
    version: str, reference: str, image_ref: str, env: dict[str, str], cwd: Path, bundle: bool
) -> None:
    """`cosign sign --key hashivault://…` (classic or a bundle), no transparency log."""
    args = ["sign", "--key", reference, "--tlog-upload=false", "--yes"]
    args.append(f"--new-bundle-format={'true' if bundle else 'false'}")
    if version.startswith("v3"):
        args.append("--use-signing-config=false")
    _checked(version, [*args, image_ref], cwd, env)


def verify_kms(
    version: str, reference: str, image_ref: str, env: dict[str, str], cwd: Path, bundle: bool
) -> subprocess.CompletedProcess[str]:
    """`cosign verify --key hashivault://…`: cosign asks Vault to verify each signature."""
    args = ["verify", "--key", reference, "--insecure-ignore-tlog=true"]
    if bundle and version.startswith("v2"):  # as in verify_bundle
        args += ["--new-bundle-format=true", f"--trusted-root={_offline_trusted_root(cwd)}"]
    return _run(version, [*args, image_ref], cwd, env)


def verify(version: str, public: Path, image_ref: str) -> subprocess.CompletedProcess[str]:
    """`cosign verify --key` without the transparency log; the caller checks the result."""
    return _run(
        version,
        ["verify", "--key", str(public), "--insecure-ignore-tlog=true", image_ref],
        public.parent,
    )


def _offline_trusted_root(directory: Path) -> Path:
    """A trusted root with no authorities, logs or timestamping services at all.

    cosign v2.x refuses to check a bundle without trusted material ("trusted root is required
    when using new bundle format") and would otherwise fetch Sigstore's from TUF; with a key and
    `--insecure-ignore-tlog=true` this empty one is enough, and nothing leaves the machine.
    """
    path = directory / "offline-trusted-root.json"
    path.write_text(
        json.dumps({"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1"})
    )
    return path


def sign_bundle(version: str, key: Path, image_ref: str) -> None:
    """Sign `image_ref` (by digest) as a Sigstore bundle referrer, with no transparency log.

    The bundle holds a DSSE envelope of an in-toto Statement whose predicateType is
    `https://sigstore.dev/cosign/sign/v1`. v2.6.5 needs `--new-bundle-format=true` (its default is
    the classic format); v3.1.3 bundles by default (the flag is deprecated there, but still
    accepted) and needs `--use-signing-config=false` to skip the log.
    """
    if version not in BUNDLE_VERSIONS:
        raise ValueError(f"cosign {version} sign cannot write a Sigstore bundle")
    args = ["sign", "--key", str(key), "--tlog-upload=false", "--new-bundle-format=true", "--yes"]
    if version.startswith("v3"):
        args.append("--use-signing-config=false")
    _checked(version, [*args, image_ref], key.parent)


def attest(
    version: str,
    key: Path,
    image_ref: str,
    predicate_path: Path,
    predicate_type: str = "slsaprovenance",
    *,
    bundle: bool,
) -> None:
    """`cosign attest` a predicate file onto `image_ref` (by digest), with no transparency log.

    `predicate_type` is cosign's `--type`: `slsaprovenance` and `slsaprovenance02` make
    predicateType `https://slsa.dev/provenance/v0.2`, `slsaprovenance1` makes
    `https://slsa.dev/provenance/v1` (both re-encode the predicate through the SLSA schema,
    dropping unknown fields); a URI is used as the predicateType with the predicate verbatim.
    The Statement is in-toto v0.1 in every version and format. `bundle=False` writes the classic
    `.att` tag (v3.1.3 needs `--new-bundle-format=false` for it); `bundle=True` writes a bundle
    referrer (v2.5.0 and v2.6.5 need `--new-bundle-format=true`).
    """
    args = ["attest", "--key", str(key), "--type", predicate_type]
    args += ["--predicate", str(predicate_path), "--tlog-upload=false", "--yes"]
    if bundle or version.startswith("v3"):
        args.append(f"--new-bundle-format={'true' if bundle else 'false'}")
    if version.startswith("v3"):
        args.append("--use-signing-config=false")
    _checked(version, [*args, image_ref], key.parent)


def _digest_flag(digest_algorithm: str | None) -> list[str]:
    # cosign checks key signatures with SHA-256 unless told otherwise, but v2.6.5/v3.1.3 sign
    # with SHA-384 for P-384 and SHA-512 for P-521 keys (deprecated, still honoured, in v3.1.3).
    return [] if digest_algorithm is None else [f"--signature-digest-algorithm={digest_algorithm}"]


def verify_bundle(
    version: str, public: Path, image_ref: str, *, digest_algorithm: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`cosign verify --key` of the bundle referrers, offline; the caller checks the result.

    v3.1.3 needs only `--insecure-ignore-tlog=true` (without it, it fetches Sigstore's trusted
    root from TUF and fails offline) and falls back to the classic `.sig` tag when the image has
    no bundle. v2.6.5 needs some `--trusted-root` file, even for a key (an empty one does), and
    `--new-bundle-format=true` checks bundles only (it has no classic fallback then). P-384/P-521 bundles need `digest_algorithm` "sha384"/"sha512"; no
    cosign verifies the Ed25519ph bundles v2.6.5/v3.1.3 write. Beware: cosign accepts any
    verified bundle here, attestations included.
    """
    args = ["verify", "--key", str(public), "--insecure-ignore-tlog=true"]
    if version.startswith("v2"):
        args += [
            "--new-bundle-format=true",
            "--trusted-root",
            str(_offline_trusted_root(public.parent)),
        ]
    return _run(version, [*args, *_digest_flag(digest_algorithm), image_ref], public.parent)


def verify_attestation(
    version: str,
    public: Path,
    image_ref: str,
    predicate_type: str,
    *,
    bundle: bool,
    digest_algorithm: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """`cosign verify-attestation --key --type`, offline; the caller checks the result.

    `bundle=True` checks bundle referrers (v2.x with an empty `--trusted-root`, as
    `verify_bundle`); `bundle=False` the classic `.att` tag. v2.5.0 and v3.1.3 honour
    `--new-bundle-format=false`; v2.6.5 switches to bundles by itself whenever the image has any
    (and then fails, wanting a trusted root), so check classic attestations with v2.6.5 only on
    images without bundles; there it also tries Sigstore's TUF repository first (warns, goes on).
    """
    args = ["verify-attestation", "--key", str(public), "--type", predicate_type]
    args += ["--insecure-ignore-tlog=true", f"--new-bundle-format={'true' if bundle else 'false'}"]
    if bundle and version.startswith("v2"):
        args += ["--trusted-root", str(_offline_trusted_root(public.parent))]
    return _run(version, [*args, *_digest_flag(digest_algorithm), image_ref], public.parent)


def slsa_predicate(
    version: str, builder_id: str, repo: str, ref: str, digest: str
) -> dict[str, object]:
    """A small SLSA provenance predicate (`version` "0.2" or "1") for `cosign attest --predicate`.

    `repo` is the source repository URL, `ref` its git ref, `digest` the commit's SHA-1 hex. Use
    `--type slsaprovenance` (or `slsaprovenance02`) for "0.2", `slsaprovenance1` for "1". cosign
    re-encodes SLSA predicates through its schema: v3.1.3 drops unknown and `false` fields, v2.x
    adds the v0.2 `completeness`/`reproducible` booleans as `false` and renames
    `buildInvocationId`/`invocationId` to `...ID`. This predicate avoids all of those, so the
    statement's predicate equals it (key order aside) from v2.5.0, v2.6.5 and v3.1.3.
    """
    source = f"git+{repo}@{ref}"
    if version == "0.2":
        return {
            "builder": {"id": builder_id},
            "buildType": "https://github.com/slsa-framework/slsa-github-generator/container@v1",
            "invocation": {
                "configSource": {
                    "uri": source,
                    "digest": {"sha1": digest},
                    "entryPoint": ".github/workflows/release.yml",
                },
                "parameters": {},
                "environment": {"github_event_name": "push"},
            },
            "metadata": {
                "buildStartedOn": "2026-01-02T03:04:05Z",
                "buildFinishedOn": "2026-01-02T03:14:05Z",
                # v2.x writes these four booleans whatever the input, v3.1.3 drops `false` ones:
                # all `true` reads the same in both.
                "completeness": {"parameters": True, "environment": True, "materials": True},
                "reproducible": True,
            },
            "materials": [{"uri": source, "digest": {"sha1": digest}}],
        }
    if version == "1":
        return {
            "buildDefinition": {
                "buildType": "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1",
                "externalParameters": {
                    "workflow": {
                        "ref": ref,
                        "repository": repo,
                        "path": ".github/workflows/release.yml",
                    }
                },
                "internalParameters": {"github": {"event_name": "push"}},
                "resolvedDependencies": [{"uri": source, "digest": {"gitCommit": digest}}],
            },
            "runDetails": {
                "builder": {"id": builder_id},
                "metadata": {
                    "startedOn": "2026-01-02T03:04:05Z",
                    "finishedOn": "2026-01-02T03:14:05Z",
                },
            },
        }
    raise ValueError(f"unknown SLSA provenance version {version}")


def write_predicate(directory: Path, name: str, predicate: dict[str, object]) -> Path:
    """Write `predicate` as `directory/name`, for `attest(predicate_path=...)`."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(json.dumps(predicate, indent=2) + "\n")
    return path
