"""Shared pieces of the keyless integration tests: a trust config for the private Sigstore's
identities, and the engine's report for one of its images."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from signet.model.report import Report
from signet.reasons import Reason
from tests.support.keyless import ALICE, KeylessStack
from tests.support.keyless.oidc import GITHUB_IDENTITY

from .helpers import check

REPOSITORY_URI = "https://github.com/team/app"


def trust_config(
    stack: KeylessStack,
    directory: Path,
    *,
    alice: dict[str, Any] | None = None,
    release: dict[str, Any] | None = None,
    root: Path | None = None,
    private: bool = True,
) -> Path:
    """Attestors `alice` (the e-mail identity) and `release` (the GitHub workflow)."""
    flags = {"transparencyLog": False, "certificateTransparency": False} if private else {}

    def attestor(name: str, identity: dict[str, Any]) -> dict[str, Any]:
        keyless = {"trustedRoot": str(root or stack.trusted_root), "identities": [identity]}
        return {"name": name, "keyless": {**keyless, **flags}}

    config = {
        "version": 1,
        "attestors": [
            attestor("alice", alice or {"issuer": stack.issuers["email"], "subject": ALICE}),
            attestor(
                "release",
                release
                or {
                    "issuer": stack.issuers["github"],
                    "subject": GITHUB_IDENTITY,
                    "claims": {"sourceRepositoryURI": REPOSITORY_URI, "buildTrigger": "push"},
                },
            ),
        ],
        "registries": [{"host": stack.registry, "insecure": True}],
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "trust.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


def report_for(stack: KeylessStack, config: Path, image: str) -> Report:
    (outcome,) = check(config, stack[image].reference)
    assert isinstance(outcome, Report), outcome
    return outcome


def failure(report: Report, attestor: str) -> tuple[Reason, str]:
    (found,) = [f for f in report.failures if f.attestor == attestor]
    return found.reason, found.detail
