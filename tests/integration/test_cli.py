"""`signet verify` exit codes, the contract a CI pipeline relies on: 0 holds, 1 does not,
2 bad usage or config, 3 transient."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import cosign
from tests.support.images import push_image
from tests.support.registry import Registry

from .helpers import signet_cli, write_trust

pytestmark = pytest.mark.integration


def signet_verify(*args: str) -> tuple[int, str, str]:
    return signet_cli("verify", *args)


@pytest.fixture(scope="module")
def setup(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, Path]:
    work = tmp_path_factory.mktemp("cli")
    digest = push_image(registry.url, "cli/app", "signed", seed="cli-signed")
    push_image(registry.url, "cli/app", "unsigned", seed="cli-unsigned")
    dev = cosign.generate_key_pair("v2.5.0", work / "dev")
    sec = cosign.generate_key_pair("v2.5.0", work / "sec")
    cosign.sign("v2.5.0", dev.private, f"{registry.host}/cli/app@{digest}")
    config = write_trust(work, {"dev": [dev.public], "sec": [sec.public]}, [registry.host])
    return f"{registry.host}/cli/app:signed", f"{registry.host}/cli/app:unsigned", config


def test_exit_codes(setup: tuple[str, str, Path], tmp_path: Path) -> None:
    signed, unsigned, config = setup
    cases = [
        ((signed, "--config", str(config)), 0),
        ((signed, "--config", str(config), "--require", "dev"), 0),
        ((signed, "--config", str(config), "--require", "dev", "--require", "sec"), 1),
        ((unsigned, "--config", str(config)), 1),
        ((signed, "--config", str(config), "--require", "nobody"), 2),
        ((signed, "--config", str(tmp_path / "missing.yaml")), 2),
        ((signed,), 2),
        (("127.0.0.1:9/down/app:v1", "--config", str(config), "--timeout", "5"), 3),
        (("not a reference!", "--config", str(config)), 2),  # bad usage, not "unsigned"
    ]
    for args, expected in cases:
        code, out, err = signet_verify(*args)
        assert code == expected, (args, out, err)


def test_a_quick_check_with_a_key_and_no_trust_config(
    setup: tuple[str, str, Path], tmp_path: Path
) -> None:
    """`signet verify IMAGE --key cosign.pub`, as cosign users expect."""
    signed, unsigned, config = setup
    dev = Path(str(config.parent / "dev" / "cosign.pub"))
    other = cosign.generate_key_pair("v2.5.0", tmp_path / "other").public
    flags = ["--insecure-registry"]
    assert signet_verify(signed, "--key", str(dev), *flags)[0] == 0
    assert signet_verify(signed, "--key", str(other), "--key", str(dev), *flags)[0] == 0
    code, out, _ = signet_verify(signed, "--key", str(other), *flags)
    assert code == 1 and json.loads(out)["failures"][0]["reason"] == "NOT_SIGNED_BY_ATTESTOR"
    assert signet_verify(unsigned, "--key", str(dev), *flags)[0] == 1
    code, _, err = signet_verify(signed, "--key", str(dev), "--config", str(config))
    assert code == 2 and "not allowed with argument" in err


def test_tls_to_a_plain_http_registry_hints_the_insecure_setting(
    setup: tuple[str, str, Path], tmp_path: Path
) -> None:
    signed, _, config = setup
    host = signed.split("/", 1)[0]
    strict = tmp_path / "strict.yaml"
    strict.write_text(
        config.read_text().replace(f"  - host: {host}\n    insecure: true", f"  - host: {host}")
    )
    assert "insecure" not in strict.read_text()
    code, out, _ = signet_verify(signed, "--config", str(strict), "--timeout", "10")
    assert code == 3
    assert "speak plain HTTP" in out and "insecure: true" in out


def test_the_report_is_printed(setup: tuple[str, str, Path]) -> None:
    signed, _, config = setup
    code, out, _ = signet_verify(signed, "--config", str(config), "--require", "sec")
    report = json.loads(out)
    assert code == 1
    assert report["verified"] == ["dev"]
    assert report["failures"][0]["attestor"] == "sec"
    assert report["failures"][0]["reason"] == "NOT_SIGNED_BY_ATTESTOR"


GATOR = Path(__file__).resolve().parents[2] / ".tools" / "gator-v3.23.1" / "gator"
TEMPLATE = (
    Path(__file__).resolve().parents[2] / "gatekeeper" / "signatures" / "gator" / "template.yaml"
)


def pinned(tag: str, config: Path) -> str:
    """`repo@digest` for a tag, as `signet verify` reports it."""
    report = json.loads(run_signet_report(tag, config))
    return f"{tag.rsplit(':', 1)[0]}@{report['digest']}"


def run_signet_report(image: str, config: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "signet.cli", "verify", image, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    return result.stdout


def test_recorded_answers_drive_a_gator_suite(setup: tuple[str, str, Path], tmp_path: Path) -> None:
    """`signet record` against the real registry, then the real gator on what it recorded."""
    signed_tag, unsigned_tag, config = setup
    assert GATOR.exists(), "gator is missing: run `make tools`"
    # As validation sees them once Signet's mutator pinned them (and one tag as written).
    signed, unsigned = (pinned(tag, config) for tag in (signed_tag, unsigned_tag))
    recorded = tmp_path / "recorded.yaml"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "signet.cli",
            "record",
            signed,
            unsigned,
            signed_tag,
            "--config",
            str(config),
            "--output",
            str(recorded),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (tmp_path / "template.yaml").write_text(TEMPLATE.read_text())
    (tmp_path / "constraint.yaml").write_text(
        "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: SignetImageSignatures\n"
        "metadata: {name: dev}\nspec:\n  match: {kinds: [{apiGroups: [''], kinds: [Pod]}]}\n"
        "  parameters: {requiredAttestors: [dev]}\n"
    )
    for name, image in (("allowed", signed), ("disallowed", unsigned), ("unpinned", signed_tag)):
        (tmp_path / f"{name}.yaml").write_text(
            f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: default}}\n"
            f"spec:\n  containers: [{{name: app, image: '{image}'}}]\n"
        )
    (tmp_path / "suite.yaml").write_text(
        "kind: Suite\napiVersion: test.gatekeeper.sh/v1alpha1\nmetadata: {name: recorded}\n"
        "tests:\n- name: dev\n  template: template.yaml\n  constraint: constraint.yaml\n  cases:\n"
        "  - {name: allowed, object: allowed.yaml, inventory: [recorded.yaml],"
        " assertions: [{violations: 'no'}]}\n"
        "  - {name: disallowed, object: disallowed.yaml, inventory: [recorded.yaml],"
        " assertions: [{violations: 1, message: 'not signed by <dev>: NO_SIGNATURE'}]}\n"
        "  - {name: unpinned, object: unpinned.yaml, inventory: [recorded.yaml],"
        f" assertions: [{{violations: 1, message: 'not pinned to a digest.*Write it as <{signed}>'}}]}}\n"
    )
    verdict = subprocess.run(
        [str(GATOR), "verify", str(tmp_path / "suite.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert verdict.returncode == 0, verdict.stdout + verdict.stderr
