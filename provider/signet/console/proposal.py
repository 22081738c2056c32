"""Validate a proposed trust config exactly as `signet verify --config` would, writing nothing.

The proposal is one whole config file (it would replace the config in force). Its relative
paths (`file:`, `ca_file:`) are resolved against the folder of the config in force, where the
file would go: the proposal is written to a temporary folder that links to everything in that
folder except its YAML files. Messages name the proposal `proposed.yaml` and other files by
their path relative to that folder. PKCS#11 keys are refused rather than checked: checking one
would load the shared library the proposal names into this process.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from signet.trust.config import load
from signet.trust.model import TrustConfig, TrustConfigError

__all__ = ["PROPOSED", "Proposal", "config_folder", "validate"]

PROPOSED: Final = "proposed.yaml"
_CLI: Final = "signet verify"
_ELSEWHERE: Final = "check this config with `signet verify --config`"


@dataclass(frozen=True, slots=True)
class Proposal:
    text: str
    config: TrustConfig | None  # None when invalid
    error: str = ""  # the CLI's message: "signet verify: proposed.yaml: ..."


def config_folder(config_path: Path) -> Path:
    return config_path if config_path.is_dir() else config_path.parent


def validate(text: str, base: Path) -> Proposal:
    text = text.replace("\r\n", "\n")  # a textarea posts CRLF line ends
    refused = _refusal(text)
    if refused:
        return Proposal(text, None, f"{_CLI}: {PROPOSED}: {refused}")
    with tempfile.TemporaryDirectory(prefix="signet-proposal-") as scratch:
        folder = Path(scratch)
        for entry in sorted(base.iterdir()) if base.is_dir() else ():
            if entry.suffix not in (".yaml", ".yml") and entry.name != PROPOSED:
                (folder / entry.name).symlink_to(entry.resolve())
        (folder / PROPOSED).write_text(text, encoding="utf-8")
        try:
            return Proposal(text, load(folder / PROPOSED))
        except TrustConfigError as exc:
            message = str(exc).replace(f"{folder}/", "").replace(str(folder), ".")
            return Proposal(text, None, f"{_CLI}: {message}")


def _refusal(text: str) -> str:
    """Keys the console does not load: a proposal must not make the provider load a library
    or call a server it names."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError:
        return ""  # the loader names the YAML error
    if isinstance(document, dict) and "kms" in document:
        return f"kms: not checked here (that would call the server it names); {_ELSEWHERE}"
    for attestor in _items(document.get("attestors") if isinstance(document, dict) else None):
        name = attestor.get("name")
        for key in _items(attestor.get("keys")):
            if "pkcs11" in key:
                return (
                    f"attestor {name!r}: a pkcs11 key is not checked here (that would load the "
                    f"module it names); {_ELSEWHERE}"
                )
            if "kms" in key:
                return (
                    f"attestor {name!r}: a kms key is not checked here (that would call the "
                    f"server holding it); {_ELSEWHERE}"
                )
    return ""


def _items(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
