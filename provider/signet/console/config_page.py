"""The trust config page: the config in force (its files, its fingerprint) and a proposal."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from signet.console.html import Child, Html, tag
from signet.console.layout import csrf_field
from signet.console.proposal import Proposal
from signet.trust.model import TrustConfig

__all__ = ["in_force", "proposal_form", "proposal_result", "read_source"]

_MAX_SHOWN: Final = 256 * 1024


def in_force(config: TrustConfig) -> Html:
    files = [
        tag("section", tag("h3", tag("code", str(source))), tag("pre", read_source(source)))
        for source in config.sources
    ]
    keys = [tag("li", tag("code", str(path))) for path in config.key_files]
    return tag(
        "section",
        tag("h2", "In force"),
        tag("p", "Fingerprint: ", tag("code", config.fingerprint)),
        tag(
            "p",
            f"{len(config.attestors)} attestors, {len(config.registries)} registries, "
            f"{len(config.revocations.entries)} revocations.",
        ),
        files,
        tag("h3", "Key and CA files it refers to") if keys else None,
        tag("ul", keys) if keys else None,
    )


def proposal_form(csrf: str, text: str) -> Html:
    return tag(
        "section",
        tag("h2", "Propose a config"),
        tag(
            "p",
            "Validated here as `signet verify --config` would; nothing is written. Relative "
            "paths are resolved against the folder of the config in force. Commit the result "
            "to where the config is kept: policy as code stays the source of truth.",
            class_="note",
        ),
        tag(
            "form",
            csrf_field(csrf),
            tag("label", "Proposed trust config (YAML)", for_="proposal"),
            tag("textarea", text, id="proposal", name="config", rows=20, spellcheck="false"),
            tag("button", "Validate", type="submit"),
            method="post",
            action="/config/propose",
        ),
    )


def proposal_result(csrf: str, proposal: Proposal, current: TrustConfig) -> Html:
    if proposal.config is None:
        return tag(
            "section",
            tag("h2", "The proposal is invalid"),
            tag("pre", proposal.error, class_="error", id="proposal-error"),
        )
    config = proposal.config
    same = config.fingerprint == current.fingerprint
    parts: list[Child] = [
        tag("h2", "The proposal is valid"),
        tag("p", "Fingerprint: ", tag("code", config.fingerprint), class_="ok"),
        tag(
            "p",
            "The same attestors, keys and revocations as the config in force."
            if same
            else "It differs from the config in force.",
        ),
        tag("p", "Attestors: ", ", ".join(a.name for a in config.attestors)),
        tag(
            "form",
            csrf_field(csrf),
            tag("input", type="hidden", name="config", value=proposal.text),
            tag("button", "Download as YAML", type="submit"),
            method="post",
            action="/config/download",
        ),
    ]
    return tag("section", parts)


def read_source(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_SHOWN + 1)
    except OSError as exc:
        return f"(cannot read: {exc.strerror})"
    shown = data[:_MAX_SHOWN].decode("utf-8", errors="replace")
    return shown + ("\n… (cut)" if len(data) > _MAX_SHOWN else "")
