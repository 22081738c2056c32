"""The `signet` command: serve, verify, sign, record, keys generate, audit.

Exit codes (contract v1): 0 the requirement holds; 1 it does not (unsigned, wrong signer, bad
signature, ...); 2 bad usage or an invalid trust config; 3 a transient failure (registry down,
timeout, rate limit, auth) — so a pipeline can tell "unsigned" from "registry down".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import yaml

from signet import __version__
from signet.audit import command as audit_command
from signet.crypto import hashivault, pkcs11
from signet.crypto.keyfile import (
    KEY_TYPES,
    Signer,
    encrypt_cosign_key,
    generate,
    load_private_key,
    password_from_env,
    public_pem,
)
from signet.crypto.keys import UnusableKey, load_public_key_pem
from signet.http import serve_command
from signet.http.wire import response
from signet.model.reference import InvalidReference, Reference, parse
from signet.model.report import Report
from signet.oci.client import Limits, RegistryClient
from signet.reasons import DeterministicFailure, TransientFailure
from signet.service.engine import Answer, EngineSettings, Outcome
from signet.service.runtime import running
from signet.signing.bundle import describe_bundle, sign_bundle
from signet.signing.classic import describe, sign_image
from signet.trust.config import load
from signet.trust.model import (
    Attestor,
    RegistrySettings,
    TrustConfig,
    TrustConfigError,
    TrustedKey,
)

__all__ = ["main"]

EXIT_OK, EXIT_DENIED, EXIT_USAGE, EXIT_TRANSIENT = 0, 1, 2, 3


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def main(argv: list[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    handler = {
        "serve": serve_command.run,
        "audit": audit_command.run,
        "verify": _verify,
        "sign": _sign,
        "record": _record,
        "keys": _keys,
    }[args.command]
    try:
        return handler(args)
    except (TrustConfigError, UnusableKey, InvalidReference, ValueError) as exc:
        print(f"signet {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # an unreadable key file, an unwritable output, ...
        print(
            f"signet {args.command}: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr
        )
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="signet", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--version", action="version", version=f"signet {__version__}")
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)

    serve_command.add_parser(commands)
    audit_command.add_parser(commands)

    verify = commands.add_parser("verify", help="verify one image and print its report")
    verify.add_argument("image", help="the image reference, e.g. registry.example.com/app:1.2")
    trusted = verify.add_mutually_exclusive_group(required=True)
    trusted.add_argument("--config", type=Path, help="trust config file or folder")
    trusted.add_argument(
        "--key",
        action="append",
        help="a public key (cosign.pub, a pkcs11: URI of a token's public key, or a "
        "hashivault:// Transit key, reached as cosign reaches it: VAULT_ADDR, VAULT_TOKEN) to "
        "verify with, instead of a trust config (repeatable)",
    )
    verify.add_argument(
        "--insecure-registry",
        action="store_true",
        help="with --key: talk plain HTTP to the image's registry",
    )
    verify.add_argument(
        "--require",
        action="append",
        default=[],
        metavar="ATTESTOR",
        help="an attestor that must have signed (repeatable); default: any one",
    )
    verify.add_argument(
        "--timeout", type=float, default=30.0, help="seconds in all (default %(default)s)"
    )

    sign = commands.add_parser(
        "sign", help="sign an image's digest as cosign does (a Sigstore bundle, or classic)"
    )
    sign.add_argument("image", help="the image reference; its digest is what gets signed")
    sign.add_argument(
        "--format",
        choices=("bundle", "classic"),
        default="bundle",
        help="bundle: a Sigstore bundle referrer, cosign v3's default (verified by cosign >= "
        "v2.6); classic: the sha256-<hex>.sig tag (verified by every cosign)",
    )
    sign.add_argument(
        "--key",
        required=True,
        help="cosign key file (password in COSIGN_PASSWORD), PEM private key, a key on a "
        "PKCS#11 token: pkcs11:token=…;object=…?module-path=…&pin-value=…, or a Vault Transit "
        "key: hashivault://NAME with VAULT_ADDR and VAULT_TOKEN (as cosign)",
    )
    sign.add_argument("--config", type=Path, help="trust config, for its registries and auth")
    sign.add_argument(
        "--insecure-registry", action="store_true", help="talk plain HTTP to the image's registry"
    )

    record = commands.add_parser(
        "record",
        help="record the provider's answer for images as a ConfigMap, for gator suites",
    )
    record.add_argument("images", nargs="+", help="image references, as Pods name them")
    record.add_argument("--config", type=Path, required=True, help="trust config file or folder")
    record.add_argument("--output", type=Path, help="file to write (default: standard output)")
    record.add_argument(
        "--namespace", default="gatekeeper-system", help="the ConfigMap's (default %(default)s)"
    )
    record.add_argument(
        "--timeout", type=float, default=30.0, help="seconds in all (default %(default)s)"
    )

    keys = commands.add_parser("keys", help="key management")
    key_commands = keys.add_subparsers(dest="keys_command", required=True, parser_class=_Parser)
    generate_parser = key_commands.add_parser(
        "generate", help="write PREFIX.key (cosign format, COSIGN_PASSWORD) and PREFIX.pub"
    )
    generate_parser.add_argument(
        "--type", choices=KEY_TYPES, default="p256", help="key type (default %(default)s)"
    )
    generate_parser.add_argument(
        "--output-key-prefix",
        default="cosign",
        help="write PREFIX.key and PREFIX.pub (default %(default)s)",
    )
    return parser


def _verify(args: argparse.Namespace) -> int:
    parse(args.image)  # an invalid reference is bad usage (2), not an unsigned image (1)
    trust = load(args.config) if args.config else _trust_of_keys(args)
    known = {a.name for a in trust.attestors}
    unknown = [name for name in args.require if name not in known]
    if unknown:
        raise ValueError(f"--require {unknown[0]!r}: no such attestor in {args.config}")
    settings = EngineSettings(deadline=args.timeout, flight_deadline=args.timeout)

    async def run() -> Report | TransientFailure:
        limits = Limits(request_timeout=min(10.0, args.timeout))
        async with running(lambda: trust, settings=settings, limits=limits) as runtime:
            (outcome,) = await runtime.engine.check_many([args.image])
            return outcome if isinstance(outcome, TransientFailure) else outcome.report

    outcome = asyncio.run(run())
    if isinstance(outcome, TransientFailure):
        print(
            json.dumps(
                {"image": args.image, "error": str(outcome.reason), "message": outcome.message},
                indent=2,
            )
        )
        return EXIT_TRANSIENT
    print(json.dumps(outcome.to_json(), indent=2))
    required = set(args.require)
    holds = required <= set(outcome.verified) if required else bool(outcome.verified)
    return EXIT_OK if holds else EXIT_DENIED


def _record(args: argparse.Namespace) -> int:
    """The exact ProviderResponse /validate would give, wrapped in the ConfigMap the gator
    variant of the template reads (gatekeeper/<policy>/gator/template.yaml)."""
    trust = load(args.config)
    settings = EngineSettings(deadline=args.timeout, flight_deadline=args.timeout)
    keys = list(dict.fromkeys(args.images))

    async def run() -> list[Outcome]:
        limits = Limits(request_timeout=min(10.0, args.timeout))
        async with running(lambda: trust, settings=settings, limits=limits) as runtime:
            return await runtime.engine.check_many(keys)

    outcomes = asyncio.run(run())
    items = [o.item for o in outcomes if isinstance(o, Answer)]
    transient = [
        f"{k}: {o}" for k, o in zip(keys, outcomes, strict=True) if not isinstance(o, Answer)
    ]
    answer = json.loads(response(items, "; ".join(transient)))
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "signet-recorded-answers", "namespace": args.namespace},
        "data": {"answers.json": json.dumps(answer, indent=2, sort_keys=True)},
    }
    text = yaml.safe_dump(config_map, sort_keys=False, width=1000)
    if args.output:
        args.output.write_text(text)
    else:
        print(text, end="")
    for line in transient:
        print(f"signet record: not recorded: {line}", file=sys.stderr)
    return EXIT_TRANSIENT if transient else EXIT_OK


def _sign(args: argparse.Namespace) -> int:
    ref = parse(args.image)
    with _signer(args.key) as key:
        return _sign_with(args, ref, key)


@contextlib.contextmanager
def _signer(reference: str) -> Iterator[Signer]:
    """A key on a PKCS#11 token (open while signing), in Vault, or a key file."""
    if hashivault.is_hashivault(reference):
        yield hashivault.VaultSigner.open(reference, hashivault.VaultSettings.from_environment())
    elif pkcs11.is_pkcs11(reference):
        with pkcs11.open_signer(reference) as token_key:
            yield token_key
    else:
        yield load_private_key(Path(reference).read_bytes(), password_from_env())


def _sign_with(args: argparse.Namespace, ref: Reference, key: Signer) -> int:
    trust = load(args.config) if args.config else TrustConfig(attestors=())
    if args.insecure_registry:
        trust = TrustConfig(
            trust.attestors,
            (
                *[r for r in trust.registries if r.host != ref.api_host],
                RegistrySettings(ref.api_host, insecure=True),
            ),
            trust.docker_config,
        )

    async def run() -> str:
        registry = RegistryClient(lambda: trust, limits=Limits(request_timeout=30.0))
        try:
            if args.format == "classic":
                return describe(await sign_image(registry, ref, key), ref)
            return describe_bundle(await sign_bundle(registry, ref, key), ref)
        finally:
            await registry.aclose()

    try:
        print(asyncio.run(run()))
    except TransientFailure as failure:
        print(f"signet sign: {failure}", file=sys.stderr)
        return EXIT_TRANSIENT
    except DeterministicFailure as failure:
        print(f"signet sign: {failure}", file=sys.stderr)
        return EXIT_DENIED
    return EXIT_OK


def _trust_of_keys(args: argparse.Namespace) -> TrustConfig:
    """`--key` files as one attestor, `key` (as `cosign verify --key` has no trust config)."""
    keys = tuple(trusted for key in args.key for trusted in _keys_of(key))
    registries: tuple[RegistrySettings, ...] = ()
    if args.insecure_registry:
        registries = (RegistrySettings(parse(args.image).api_host, insecure=True),)
    return TrustConfig((Attestor("key", keys),), registries)


def _keys_of(key: str) -> list[TrustedKey]:
    if hashivault.is_hashivault(key):
        versions = hashivault.read_public_keys(key, hashivault.VaultSettings.from_environment())
        return [TrustedKey(f"{key}@v{v.version}", v.key) for v in versions]
    if pkcs11.is_pkcs11(key):
        return [TrustedKey(pkcs11.Pkcs11Uri.parse(key).shown, pkcs11.read_public_key(key))]
    return [TrustedKey(key, load_public_key_pem(Path(key).read_bytes()))]


def _new_key_password() -> bytes:
    """COSIGN_PASSWORD when set (empty is a choice), else asked twice, as cosign asks."""
    if "COSIGN_PASSWORD" in os.environ:
        return password_from_env()
    if not sys.stdin.isatty():
        raise ValueError(
            "no password: set COSIGN_PASSWORD (an empty value for none), or run in a terminal"
        )
    password = getpass.getpass("Enter password for private key: ")
    if getpass.getpass("Enter password for private key again: ") != password:
        raise ValueError("the passwords do not match")
    return password.encode()


def _keys(args: argparse.Namespace) -> int:
    prefix = Path(args.output_key_prefix)
    private_path, public_path = (
        prefix.with_name(prefix.name + ".key"),
        prefix.with_name(prefix.name + ".pub"),
    )
    for path in (private_path, public_path):
        if path.exists():
            raise ValueError(f"{path} exists; refusing to overwrite it")
    key = generate(args.type)
    private_path.write_bytes(encrypt_cosign_key(key, _new_key_password()))
    private_path.chmod(0o600)
    public_path.write_bytes(public_pem(key))
    print(f"Private key written to {private_path}\nPublic key written to {public_path}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
