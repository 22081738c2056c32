"""`signet serve`: its arguments, and the server options they make (see http.serve)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from signet.alerts import AlertSettings
from signet.console import ConsoleSettings, read_token_file
from signet.crypto.keyfile import load_private_key
from signet.http.app import AppSettings
from signet.http.console_server import ConsoleOptions
from signet.http.serve import DecisionLogSettings, ServeOptions, serve
from signet.observe.logs import configure_logging
from signet.oci.breaker import BreakerSettings
from signet.oci.budget import BudgetSettings
from signet.oci.client import Limits
from signet.service.engine import EngineSettings
from signet.service.last_good import DEFAULT_MAX_AGE, LastKnownGoodSettings
from signet.service.shared import load as load_shared_cache
from signet.trust.kube import SERVICE_ACCOUNT, KubeSource

__all__ = ["add_parser", "run"]


def add_parser(commands: Any) -> None:
    """Add `serve` to the `signet` command's subparsers."""
    serve = commands.add_parser("serve", help="serve Gatekeeper's external-data requests over mTLS")
    serve.add_argument("--config", type=Path, required=True, help="trust config file or folder")
    serve.add_argument(
        "--host",
        default="0.0.0.0",  # noqa: S104 - a Pod listens on its own address
        help="address to listen on (default %(default)s)",
    )
    serve.add_argument(
        "--port", type=int, default=8443, help="HTTPS port Gatekeeper calls (default %(default)s)"
    )
    serve.add_argument(
        "--health-port",
        type=int,
        help="also serve /healthz, /readyz and /metrics over plain HTTP on this port",
    )
    serve.add_argument("--cert", type=Path, required=True, help="server certificate (PEM)")
    serve.add_argument("--key", type=Path, required=True, help="server private key (PEM)")
    serve.add_argument(
        "--client-ca", type=Path, help="CA of Gatekeeper's client certificate (ca.crt)"
    )
    serve.add_argument(
        "--no-client-auth",
        action="store_true",
        help="accept clients without a certificate (never in production)",
    )
    serve.add_argument(
        "--deadline",
        type=float,
        default=2.5,
        help="seconds per request; keep below the Provider's timeout (default %(default)s)",
    )
    serve.add_argument(
        "--mutate-deadline",
        type=float,
        default=0.8,
        help="seconds per /mutate request; keep below the mutation Provider's timeout "
        "(default %(default)s, for timeout: 1)",
    )
    serve.add_argument(
        "--registry-timeout",
        type=float,
        default=2.0,
        help="seconds per registry request (default %(default)s)",
    )
    serve.add_argument(
        "--registry-breaker-failures",
        type=int,
        default=BreakerSettings().failures,
        help="registry outages in a row (refused, timed out, 5xx, 429) after which calls to "
        "that host fail at once until a probe succeeds; 0 turns the breaker off "
        "(default %(default)s)",
    )
    serve.add_argument(
        "--registry-rate",
        type=float,
        default=BudgetSettings().rate,
        help="calls per second Signet makes to one registry host on average, with bursts of "
        "--registry-burst; past that a call waits at most 0.25 s, then fails at once "
        "(transient); 0 turns the budget off (default %(default)s)",
    )
    serve.add_argument(
        "--registry-burst",
        type=int,
        default=BudgetSettings().burst,
        help="calls one registry host may get at once (default %(default)s)",
    )
    serve.add_argument(
        "--pin-mode",
        choices=("digest", "tag-digest"),
        default="digest",
        help="/mutate answers repo@sha256:… or repo:tag@sha256:…",
    )
    serve.add_argument(
        "--max-keys", type=int, default=1000, help="images per request (default %(default)s)"
    )
    serve.add_argument(
        "--max-body-bytes",
        type=int,
        default=1024 * 1024,
        help="request body limit (default %(default)s)",
    )
    serve.add_argument(
        "--shared-cache",
        metavar="URL",
        help="share verdicts with the other replicas through Redis or Valkey: "
        "redis://[:PASSWORD@]HOST[:PORT][/DB] or rediss://… (default: each caches alone)",
    )
    serve.add_argument(
        "--shared-cache-secret",
        type=Path,
        metavar="FILE",
        help="with --shared-cache (required): the replicas' secret (>= 32 bytes) that "
        "authenticates every shared verdict (HMAC-SHA256)",
    )
    serve.add_argument(
        "--shared-cache-password-file",
        type=Path,
        metavar="FILE",
        help="with --shared-cache: the store's password, instead of in the URL",
    )
    serve.add_argument(
        "--last-known-good",
        type=Path,
        metavar="FILE",
        help="keep this replica's verdicts in this SQLite file and, while a registry is down, "
        "answer a digest verified under the same trust config from its last verdict, marked "
        "stale for the policy to admit or deny (outageGraceSeconds); default: off",
    )
    serve.add_argument(
        "--last-known-good-max-age",
        type=float,
        metavar="SECONDS",
        default=DEFAULT_MAX_AGE,
        help="with --last-known-good: never answer from a verdict older than this "
        "(default %(default)s)",
    )
    serve.add_argument(
        "--decision-log",
        type=Path,
        metavar="DIR",
        help="also append every decision to a hash-chained log in DIR/<replica>/, sealed by "
        "checkpoints signed with --decision-log-key (check it: signet audit verify DIR)",
    )
    serve.add_argument(
        "--decision-log-key",
        type=Path,
        metavar="FILE",
        help="with --decision-log (required): the private key that signs its checkpoints "
        "(a cosign key file or a PEM key; a key for nothing else)",
    )
    serve.add_argument(
        "--decision-log-key-password-file",
        type=Path,
        metavar="FILE",
        help="with --decision-log: the key's password (default: none)",
    )
    serve.add_argument(
        "--decision-log-replica",
        metavar="NAME",
        help="with --decision-log: this replica's folder name (default: the host name)",
    )
    serve.add_argument(
        "--trust-configmap",
        metavar="NAMESPACE/NAME",
        help="watch the trust config's ConfigMap through the Kubernetes API (in a Pod, with its "
        "service account) and load each change at once, rather than when the kubelet syncs "
        "the volume; --config is its mounted copy, used until the API answers",
    )
    serve.add_argument(
        "--trust-mirror",
        type=Path,
        metavar="DIR",
        default=Path("/var/run/signet/trust"),
        help="with --trust-configmap: the writable folder the ConfigMap is mirrored into "
        "(default %(default)s)",
    )
    serve.add_argument(
        "--kube-service-account",
        type=Path,
        metavar="DIR",
        default=SERVICE_ACCOUNT,
        help="with --trust-configmap: the service account's token and ca.crt (default %(default)s)",
    )
    serve.add_argument(
        "--kms-refresh",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="read KMS-held public keys (hashivault:// in the trust config) again this often, "
        "off the admission path; while the KMS is down the keys read last stay in force "
        "(default %(default)s)",
    )
    serve.add_argument(
        "--console-port",
        type=int,
        metavar="PORT",
        help="serve the web console (HTTPS with --cert, a token login) on this port",
    )
    serve.add_argument(
        "--console-token-file",
        type=Path,
        metavar="FILE",
        help="with --console-port (required): the login token (at least 16 bytes), e.g. a Secret",
    )
    serve.add_argument(
        "--console-allow-checks",
        action="store_true",
        help="with --console-port: allow 'check an image now' (it calls registries and is "
        "logged as a decision); without it the console only reads",
    )
    serve.add_argument(
        "--alertmanager",
        metavar="URL",
        help="send alerts on anomalies (denial spikes, revoked or expired keys used, a new "
        "signer for a repository, a registry down for minutes, failing trust reloads) to this "
        "Alertmanager (its API v2: URL/api/v2/alerts)",
    )
    serve.add_argument(
        "--alert-webhook",
        metavar="URL",
        help="and/or POST them as JSON to this URL",
    )
    serve.add_argument(
        "--alert-signers-file",
        type=Path,
        metavar="FILE",
        help="with alerts: keep the signers learnt per repository in this file across restarts",
    )
    serve.add_argument(
        "--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR (default %(default)s)"
    )


def run(args: argparse.Namespace) -> int:
    for flag, path in (("--cert", args.cert), ("--key", args.key), ("--client-ca", args.client_ca)):
        if path is not None and not path.is_file():
            raise ValueError(f"{flag} {path}: no such file")
    shared_cache = load_shared_cache(
        args.shared_cache, args.shared_cache_secret, args.shared_cache_password_file
    )
    decision_log = _decision_log(args)
    configure_logging(args.log_level)
    options = ServeOptions(
        config=args.config,
        host=args.host,
        port=args.port,
        cert=args.cert,
        key=args.key,
        client_ca=args.client_ca,
        require_client_cert=not args.no_client_auth,
        engine=EngineSettings(
            deadline=args.deadline, mutate_deadline=args.mutate_deadline, pin_mode=args.pin_mode
        ),
        app=AppSettings(max_body_bytes=args.max_body_bytes, max_keys=args.max_keys),
        limits=Limits(
            request_timeout=args.registry_timeout,
            breaker=BreakerSettings(failures=args.registry_breaker_failures),
            budget=BudgetSettings(rate=args.registry_rate, burst=args.registry_burst),
        ),
        health_port=args.health_port,
        shared_cache=shared_cache,
        last_good=None
        if args.last_known_good is None
        else LastKnownGoodSettings(args.last_known_good, max_age=args.last_known_good_max_age),
        decision_log=decision_log,
        trust_configmap=None
        if args.trust_configmap is None
        else KubeSource.in_cluster(args.trust_configmap, args.kube_service_account),
        trust_mirror=args.trust_mirror,
        kms_refresh=_positive(args.kms_refresh, "--kms-refresh"),
        console=_console(args),
        alerts=_alerts(args),
    )
    serve(options)
    return 0


def _positive(seconds: float, flag: str) -> float:
    if not seconds >= 1.0:  # also refuses nan
        raise ValueError(f"{flag} must be at least 1 second, not {seconds}")
    return seconds


def _decision_log(args: argparse.Namespace) -> DecisionLogSettings | None:
    if args.decision_log is None:
        for flag in ("decision_log_key", "decision_log_key_password_file", "decision_log_replica"):
            if getattr(args, flag) is not None:
                raise ValueError(f"--{flag.replace('_', '-')} needs --decision-log")
        return None
    if args.decision_log_key is None:
        raise ValueError(
            "--decision-log needs --decision-log-key: the key that signs its checkpoints"
        )
    password = b""
    if args.decision_log_key_password_file is not None:
        password = args.decision_log_key_password_file.read_bytes().rstrip(b"\r\n")
    signer = load_private_key(args.decision_log_key.read_bytes(), password)
    return DecisionLogSettings(args.decision_log, signer, args.decision_log_replica)


def _console(args: argparse.Namespace) -> ConsoleOptions | None:
    if args.console_port is None:
        if args.console_token_file is not None or args.console_allow_checks:
            raise ValueError("--console-token-file and --console-allow-checks need --console-port")
        return None
    if args.console_token_file is None:
        raise ValueError("--console-port needs --console-token-file (the login token)")
    settings = ConsoleSettings(
        read_token_file(args.console_token_file),
        decision_log=args.decision_log,
        read_only=not args.console_allow_checks,
    )
    return ConsoleOptions(args.console_port, settings)


def _alerts(args: argparse.Namespace) -> AlertSettings | None:
    if args.alertmanager is None and args.alert_webhook is None:
        if args.alert_signers_file is not None:
            raise ValueError("--alert-signers-file needs --alertmanager or --alert-webhook")
        return None
    return AlertSettings(
        alertmanager_url=args.alertmanager,
        webhook_url=args.alert_webhook,
        signers_file=args.alert_signers_file,
    )
