"""Keyless attestors in the trust config: what loads, what changes the fingerprint, and that every
mistake is named with its file, attestor and problem."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from signet.keyless.certificate import Identity
from signet.trust.config import load
from signet.trust.model import TrustConfigError

VECTORS = Path(__file__).resolve().parents[3] / "shared" / "vectors"
PRODUCTION = VECTORS / "sigstore-production-trusted_root.json"
ISSUER = "https://token.actions.githubusercontent.com"
WORKFLOW = "https://github.com/team/app/.github/workflows/release.yml@refs/heads/main"


def identity(**fields: Any) -> dict[str, Any]:
    return {"issuer": ISSUER, "subject": WORKFLOW, **fields}


def config(
    directory: Path, *attestors: dict[str, Any], root: Path = PRODUCTION, **keyless: Any
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(root, directory / "root.json")
    entries = attestors or (
        {"name": "release", "keyless": {"trustedRoot": "root.json", "identities": [identity()]}},
    )
    for entry in entries:
        entry.setdefault("keyless", {}).update(keyless)
    path = directory / "trust.yaml"
    path.write_text(json.dumps({"version": 1, "attestors": list(entries)}))
    return path


def refusal(path: Path) -> str:
    with pytest.raises(TrustConfigError) as caught:
        load(path)
    return str(caught.value)


def test_a_keyless_attestor_loads_and_its_root_is_watched(tmp_path: Path) -> None:
    path = config(tmp_path)
    trust = load(path)
    (attestor,) = trust.attestors
    assert attestor.keys == ()
    assert attestor.keyless is not None
    assert attestor.keyless.transparency_log and attestor.keyless.certificate_transparency
    assert tmp_path / "root.json" in trust.key_files  # reloaded when it changes


def test_the_fingerprint_covers_the_root_the_identities_and_the_flags(tmp_path: Path) -> None:
    base = load(config(tmp_path / "a")).fingerprint
    other_identity = {
        "name": "release",
        "keyless": {"trustedRoot": "root.json", "identities": [identity(subject=WORKFLOW + "x")]},
    }
    assert load(config(tmp_path / "b", other_identity)).fingerprint != base
    claims = {
        "name": "release",
        "keyless": {
            "trustedRoot": "root.json",
            "identities": [identity(claims={"buildTrigger": "push"})],
        },
    }
    assert load(config(tmp_path / "c", claims)).fingerprint != base
    assert load(config(tmp_path / "d", certificateTransparency=False)).fingerprint != base
    staging = VECTORS / "sigstore-conformance/bundle-verify/rekor2-happy-path/trusted_root.json"
    assert load(config(tmp_path / "e", root=staging)).fingerprint != base
    assert load(config(tmp_path / "f")).fingerprint == base


@pytest.mark.parametrize(
    ("fields", "fragments"),
    [
        ({"identities": []}, ["attestor 'release' keyless", "has no identities"]),
        (
            {"identities": [{"issuer": ISSUER}]},
            ["identities[0]", "exactly one of 'subject' (exact) or 'subjectRegExp'"],
        ),
        (
            {"identities": [identity(subjectRegExp=".*")]},
            ["identities[0]", "exactly one of 'subject'"],
        ),
        (
            {"identities": [{"issuer": ISSUER, "subjectRegExp": "(unclosed"}]},
            ["identities[0].subjectRegExp", "not a regular expression"],
        ),
        (
            {"identities": [{"issuer": ISSUER, "subjectRegExp": "a" * 1025}]},
            ["subjectRegExp", "longer than 1024"],
        ),
        (
            {"identities": [identity(claims={"workflowColour": "blue"})]},
            ["identities[0].claims", "unknown field 'workflowColour'"],
        ),
        (
            {"identities": [identity(claims={"buildTrigger": 1})]},
            ["claims.buildTrigger", "non-empty string"],
        ),
        ({"identities": [identity(issuer="")]}, ["identities[0].issuer", "non-empty string"]),
        (
            {"identities": [identity(issuerRegExp=".*")]},
            ["identities[0]", "exactly one of 'issuer' (exact) or 'issuerRegExp'"],
        ),
        (
            {"identities": [{"issuerRegExp": "[", "subject": WORKFLOW}]},
            ["identities[0].issuerRegExp", "not a regular expression"],
        ),
        ({"transparencyLog": "no"}, ["transparencyLog", "true or false"]),
        ({"trustedRoot": "missing.json"}, ["trustedRoot", "cannot read", "missing.json"]),
        ({"colour": 1}, ["keyless", "unknown field 'colour'"]),
    ],
)
def test_each_keyless_mistake_is_named(
    tmp_path: Path, fields: dict[str, Any], fragments: list[str]
) -> None:
    message = refusal(config(tmp_path, **fields))
    assert message.startswith(f"{tmp_path / 'trust.yaml'}: "), message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_keys_and_keyless_together_are_refused(tmp_path: Path) -> None:
    both = {"name": "release", "keys": [], "keyless": {"trustedRoot": "root.json"}}
    assert "exactly one of 'keys'" in refusal(config(tmp_path, both))


def test_an_unusable_trusted_root_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
                "tlogs": [{}],
            }
        )
    )
    message = refusal(config(tmp_path / "c", root=bad))
    assert "root.json: tlogs[0]" in message and "baseUrl is missing" in message


def test_a_private_sigstore_is_never_the_default(tmp_path: Path) -> None:
    root = json.loads(PRODUCTION.read_bytes())
    root["tlogs"], root["ctlogs"] = [], []
    private = tmp_path / "private.json"
    private.write_text(json.dumps(root))
    assert "set transparencyLog: false" in refusal(config(tmp_path / "a", root=private))
    message = refusal(config(tmp_path / "b", root=private, transparencyLog=False))
    assert "set certificateTransparency: false" in message
    trust = load(
        config(tmp_path / "c", root=private, transparencyLog=False, certificateTransparency=False)
    )
    assert trust.attestors[0].keyless is not None
    root["timestampAuthorities"] = []
    private.write_text(json.dumps(root))
    message = refusal(
        config(tmp_path / "d", root=private, transparencyLog=False, certificateTransparency=False)
    )
    assert "no signing time could ever be trusted" in message


def test_one_identity_under_two_attestors_is_refused(tmp_path: Path) -> None:
    def attestor(name: str) -> dict[str, Any]:
        return {"name": name, "keyless": {"trustedRoot": "root.json", "identities": [identity()]}}

    message = refusal(config(tmp_path, attestor("release"), attestor("qa")))
    assert "'release' and 'qa' both accept the keyless identity" in message


def test_an_issuer_may_be_a_pattern_matched_against_the_whole_issuer(tmp_path: Path) -> None:
    pattern = {"issuerRegExp": r"https://gitlab\.[a-z]+\.example", "subject": WORKFLOW}
    entry = {"name": "release", "keyless": {"trustedRoot": "root.json", "identities": [pattern]}}
    (attestor,) = load(config(tmp_path, entry)).attestors
    assert attestor.keyless is not None
    (accepted,) = attestor.keyless.identities
    assert accepted.matches(Identity(WORKFLOW, "https://gitlab.team.example"))
    assert not accepted.matches(Identity(WORKFLOW, "https://gitlab.team.example.evil"))
    assert not accepted.matches(Identity(WORKFLOW, "https://evil/https://gitlab.team.example"))
    assert "/https://gitlab" in accepted.describe()
