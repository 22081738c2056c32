"""The policy pack's folders, as `kubectl apply -f <folder>` (not recursive) reads them: applying a
policy's folder, a gatekeeper-library habit, installs its live template and never the gator
variant, which defines the same ConstraintTemplate with Rego that reads recorded answers."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

PACK = Path(__file__).resolve().parents[2] / "gatekeeper"
POLICIES = sorted(p for p in PACK.iterdir() if (p / "template.yaml").exists())


def applied(folder: Path) -> list[dict[str, object]]:
    """The objects `kubectl apply -f folder` would send: every .yaml/.yml/.json file directly in it."""
    documents: list[dict[str, object]] = []
    for file in sorted(folder.iterdir()):
        if file.is_file() and file.suffix in (".yaml", ".yml", ".json"):
            documents += [d for d in yaml.safe_load_all(file.read_text()) if d]
    return documents


def test_there_are_policies() -> None:
    assert [p.name for p in POLICIES] == ["signatures"]


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name)
def test_applying_a_policy_folder_installs_only_the_live_template(policy: Path) -> None:
    templates = [d for d in applied(policy) if d.get("kind") == "ConstraintTemplate"]
    assert len(templates) == 1
    (live,) = templates
    assert live == yaml.safe_load((policy / "template.yaml").read_text())
    assert "external_data" in str(live), "the live template calls the provider"
    gator = policy / "gator" / "template.yaml"
    if gator.exists():
        assert "external_data(" not in gator.read_text().replace("# ", "")


def test_the_pack_applies_no_placeholder() -> None:
    for file in PACK.rglob("*.yaml"):
        if "chart" not in file.parts:
            assert "REPLACE_WITH" not in file.read_text(), file


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name)
def test_every_parameter_is_described(policy: Path) -> None:
    template = yaml.safe_load((policy / "template.yaml").read_text())
    schema = template["spec"]["crd"]["spec"]["validation"]["openAPIV3Schema"]
    undescribed: list[str] = []

    def walk(node: dict[str, object], path: str) -> None:
        properties = node.get("properties")
        for name, child in (properties if isinstance(properties, dict) else {}).items():
            if not child.get("description"):
                undescribed.append(path + name)
            walk(child, f"{path}{name}.")
            if isinstance(child.get("items"), dict):
                walk(child["items"], f"{path}{name}[].")

    walk(schema, "")
    assert undescribed == []


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name)
def test_samples_come_in_pairs(policy: Path) -> None:
    """Each sample shows what it allows and what it refuses."""
    for sample in sorted((policy / "samples").iterdir()):
        if not sample.is_dir():
            continue
        names = [f.name for f in sample.iterdir()]
        assert any("allowed" in n and "disallowed" not in n for n in names), sample
        assert any("disallowed" in n for n in names), sample
