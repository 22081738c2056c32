"""`signet audit verify` and `signet audit query`: the decision log, from the command line.

Exit codes: 0 the log verifies (query: the query ran, whatever it found); 1 verification found
tampering (or, with `verify --strict`, unsealed records or a torn line); 2 bad usage or input
that cannot be read (a missing directory, a key file that is not a public key, a bad time).

Everything printed for a person passes through `_escape`: the image names in a log are written by
whoever creates pods, and a name with terminal escapes must not rewrite the screen.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path
from typing import Final, TextIO, TypeVar

from signet.audit.query import Filter, Match, parse_time, query
from signet.audit.verify import Verification, verify_log
from signet.crypto.keys import PublicKey, UnusableKey, load_public_key_pem

__all__ = ["add_parser", "main", "run"]

EXIT_OK, EXIT_TAMPERED, EXIT_USAGE = 0, 1, 2
_P = TypeVar("_P", bound=argparse.ArgumentParser)
_COLUMNS: Final = ("TIME", "REPLICA", "SEQ", "IMAGE", "DIGEST", "VERIFIED", "REASONS", "CACHED")


class _Usage(Exception):
    """Bad usage or unreadable input: exit 2 with this message."""


def add_parser(commands: argparse._SubParsersAction[_P]) -> _P:
    """Add `audit` (with `verify` and `query`) to a `signet` command's subcommands."""
    audit = commands.add_parser("audit", help="verify and query the decision log")
    _add_commands(audit)
    return audit


def main(argv: list[str] | None = None) -> int:
    """The `audit` commands on their own (`signet audit` is the same, through signet.cli)."""
    parser = argparse.ArgumentParser(prog="signet audit", description=__doc__.splitlines()[0])
    _add_commands(parser)
    return run(parser.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    command = args.audit_command
    try:
        return _verify(args) if command == "verify" else _query(args)
    except BrokenPipeError:  # `... | head`: the reader has all it wants
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # for the exit's flush
        return EXIT_OK
    except _Usage as exc:
        print(f"signet audit {command}: {_escape(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except (OSError, ValueError) as exc:  # a directory that is not there, or not a log
        text = str(exc)
        if isinstance(exc, OSError) and exc.strerror:
            text = f"{exc.filename or args.directory}: {exc.strerror}"
        print(f"signet audit {command}: {_escape(text)}", file=sys.stderr)
        return EXIT_USAGE


def _add_commands(audit: argparse.ArgumentParser) -> None:
    commands = audit.add_subparsers(dest="audit_command", required=True, parser_class=type(audit))
    verify = commands.add_parser("verify", help="verify every replica's chain and checkpoints")
    verify.add_argument("directory", type=Path, help="the log: one subdirectory per replica")
    _add_keys(verify, required=True)
    verify.add_argument("--json", action="store_true", help="print the result as JSON")
    verify.add_argument(
        "--strict",
        action="store_true",
        help="unsealed records and torn lines fail too (for a log whose writers closed it)",
    )
    search = commands.add_parser("query", help="find decisions, all replicas merged by time")
    search.add_argument("directory", type=Path, help="the log: one subdirectory per replica")
    _add_keys(search, required=False)
    search.add_argument("--digest", help="the image digest, exactly")
    search.add_argument("--image", help="a substring of the image as written (case-sensitive)")
    search.add_argument("--attestor", help="an attestor that verified")
    search.add_argument("--key-id", help='a signer\'s key id, exactly (or "keyless")')
    search.add_argument("--reason", help="a reason code, e.g. NO_SIGNATURE")
    for name, what in (("since", "from (inclusive)"), ("until", "up to (exclusive)")):
        search.add_argument(
            f"--{name}",
            metavar="TIME",
            help=f"decisions {what} TIME: RFC 3339 with a zone, Unix seconds, or 30m/1h/7d ago",
        )
    search.add_argument("--limit", type=int, help="print at most the oldest N matches")
    output = search.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="one JSON object per line")
    output.add_argument("--table", action="store_true", help="a table (the default)")


def _add_keys(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument(
        "--key",
        dest="keys",
        action="append",
        type=Path,
        required=required,
        metavar="PUB.pem",
        help="a public key checkpoints may be signed with (repeat for several)"
        + ("" if required else "; verifies the log before querying it"),
    )


def _load_keys(paths: list[Path]) -> list[PublicKey]:
    keys = []
    for path in paths:
        try:
            keys.append(load_public_key_pem(path.read_bytes()))
        except OSError as exc:
            raise _Usage(f"--key {path}: {exc.strerror or exc}") from None
        except UnusableKey as exc:
            raise _Usage(f"--key {path}: {exc}") from None
    return keys


def _verify(args: argparse.Namespace) -> int:
    verification = verify_log(args.directory, _load_keys(args.keys))
    strict_failure = args.strict and bool(verification.warnings)
    if args.json:
        document = verification.to_json()
        document["ok"] = document["ok"] and not strict_failure
        print(json.dumps(document, sort_keys=True, ensure_ascii=True))
    else:
        _summary(verification, sys.stdout)
        if strict_failure:
            print("--strict: the warnings above count as failures")
    return EXIT_TAMPERED if verification.failures or strict_failure else EXIT_OK


def _summary(verification: Verification, out: TextIO) -> None:
    for replica in verification.replicas:
        state = "ok" if replica.failure is None else "FAILED"
        print(
            _escape(
                f"replica {replica.replica}: {state}: {replica.segments} segments, "
                f"{replica.records} records (last seq {replica.last_seq}), "
                f"{replica.checkpoints} checkpoints (sealed to seq {replica.sealed_seq}), "
                f"head {replica.head}"
            ),
            file=out,
        )
        for warning in replica.warnings:
            print(f"  warning: {_escape(str(warning))}", file=out)
        if replica.failure is not None:
            print(f"  FAILED: {_escape(str(replica.failure))}", file=out)
    failed = len(verification.failures)
    total = len(verification.replicas)
    print(f"{total - failed} of {total} replicas verify", file=out)


def _query(args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit < 1:
        raise _Usage(f"--limit {args.limit}: expected a positive number")
    now = time.time()
    bounds = {}
    for name in ("since", "until"):
        text = getattr(args, name)
        try:
            bounds[name] = None if text is None else parse_time(text, now)
        except ValueError as exc:
            raise _Usage(f"--{name}: {exc}") from None
    where = Filter(
        digest=args.digest,
        image=args.image,
        attestor=args.attestor,
        key_id=args.key_id,
        reason=args.reason,
        since=bounds["since"],
        until=bounds["until"],
    )
    keys = None if args.keys is None else _load_keys(args.keys)
    result = query(args.directory, where, keys, args.limit)
    if result.verification is None:
        _warn("no --key given: these records are unverified (give --key to verify the log)")
        if result.skipped:
            _warn(f"{result.skipped} lines that are not records or checkpoints were skipped")
    else:
        for problem in result.verification.warnings:
            _warn(str(problem))
        if result.verification.failures:
            for problem in result.verification.failures:
                print(f"signet audit query: FAILED: {_escape(str(problem))}", file=sys.stderr)
            print("signet audit query: the log does not verify; nothing shown", file=sys.stderr)
            return EXIT_TAMPERED
    if args.json:
        for match in result.matches:
            print(json.dumps(match.to_json(), sort_keys=True, separators=(",", ":")))
    else:
        _table(result.matches, sys.stdout)
    return EXIT_OK


def _table(matches: tuple[Match, ...], out: TextIO) -> None:
    rows = [_COLUMNS, *(_row(match) for match in matches)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(),
            file=out,
        )


def _row(match: Match) -> tuple[str, ...]:
    decision = match.decision
    moment = datetime.datetime.fromtimestamp(decision.time, datetime.UTC)
    digest = decision.digest or "-"
    if len(digest) > 19:  # algorithm and 12 hex digits, as `docker images` shows them
        digest = digest[: digest.index(":") + 13]
    reasons = list(decision.reasons) + ([f"error: {decision.error}"] if decision.error else [])
    return tuple(
        _escape(cell)
        for cell in (
            moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            match.replica,
            str(match.seq),
            decision.key,
            digest,
            ",".join(decision.verified) or "-",
            ",".join(reasons) or "-",
            "yes" if decision.cached else "no",
        )
    )


def _warn(message: str) -> None:
    print(f"signet audit query: warning: {_escape(message)}", file=sys.stderr)


def _escape(text: str) -> str:
    """`text` with every character that is not printable (control characters, escapes, bidi
    overrides, zero-width ones) written as a Python-style escape, and `\\` doubled, so what is
    shown is unambiguous and inert."""
    out = []
    for char in text:
        if char == "\\":
            out.append("\\\\")
        elif char.isprintable():
            out.append(char)
        elif ord(char) < 0x100:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) < 0x10000:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    return "".join(out)
