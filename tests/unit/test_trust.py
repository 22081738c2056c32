"""The trust config: what loads, and that every mistake is named with file, attestor, problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from signet.keyfile import generate, public_pem
from signet.trust import TrustConfigError, load

PEM = public_pem(generate("p256")).decode()
INDENTED = "\n".join("          " + line for line in PEM.splitlines())


def write(directory: Path, text: str, name: str = "trust.yaml") -> Path:
    path = directory / name
    path.write_text(text)
    return path


def test_file_and_inline_keys(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "sec.pub").write_text(PEM)
    config = load(
        write(
            tmp_path,
            f"""
version: 1
attestors:
  - name: dev-team
    keys:
      - id: dev-2026
        pem: |
{INDENTED}
  - name: security-team
    keys:
      - file: keys/sec.pub
registries:
  - host: 127.0.0.1:5000
    insecure: true
""",
        )
    )
    dev, sec = config.attestors
    assert (dev.name, dev.keys[0].id) == ("dev-team", "dev-2026")
    assert sec.keys[0].id == sec.keys[0].key.fingerprint[:16]
    assert config.registry("127.0.0.1:5000") is not None
    assert config.registry("127.0.0.1:5000").insecure  # type: ignore[union-attr]
    assert tmp_path / "keys" / "sec.pub" in config.key_files


def test_a_folder_of_files(tmp_path: Path) -> None:
    (tmp_path / "k.pub").write_text(PEM)
    write(tmp_path, "version: 1\nattestors: [{name: a, keys: [{file: k.pub}]}]\n", "a.yaml")
    write(tmp_path, "version: 1\nattestors: [{name: b, keys: [{file: k.pub}]}]\n", "b.yml")
    write(tmp_path, "not yaml at all: [", "ignored.txt")
    assert [a.name for a in load(tmp_path).attestors] == ["a", "b"]


@pytest.mark.parametrize(
    ("body", "problems"),
    [
        (
            "version: 1\nattestors: [{name: a, keys: [{file: k.pub}]}]\nextra: 1\n",
            ["unknown field 'extra'"],
        ),
        (
            "version: 1\nattestors: [{name: a, color: red, keys: [{file: k.pub}]}]\n",
            ["attestors[0]", "unknown field 'color'"],
        ),
        (
            "version: 1\nattestors: [{name: a, keys: [{file: k.pub, why: x}]}]\n",
            ["attestor 'a' keys[0]", "unknown field 'why'"],
        ),
        (
            "version: 1\nattestors: [{name: a, keys: [{file: k.pub}]}]\nregistries: [{host: h, tls: x}]\n",
            ["registries[0]", "unknown field 'tls'"],
        ),
        (
            "version: 1\nattestors: [{name: a, keys: [{file: k.pub}]}, {name: a, keys: [{file: k.pub}]}]\n",
            ["'a' appears twice"],
        ),
        ("version: 1\nversion: 1\nattestors: []\n", ["duplicate key 'version'"]),
        (
            "version: 1\nattestors: [{name: a, keys: [{file: k.pub, pem: x}]}]\n",
            ["attestor 'a' keys[0]", "exactly one of"],
        ),
        (
            "version: 1\nattestors: [{name: a, keys: [{file: missing.pub}]}]\n",
            ["attestor 'a' keys[0]", "cannot read key file"],
        ),
        (
            "version: 1\nattestors: [{name: a, keys: [{pem: nonsense}]}]\n",
            ["attestor 'a' keys[0]", "not a PEM public key"],
        ),
        ("version: 2\nattestors: [{name: a, keys: [{file: k.pub}]}]\n", ["version must be 1"]),
        ("version: 1\nattestors: []\n", ["no attestors"]),
        ("version: 1\nattestors: [{name: a, keys: []}]\n", ["attestor 'a'", "has no keys"]),
        ("version: 1\nattestors: [{name: Dev, keys: [{file: k.pub}]}]\n", ["'Dev'", "lower-case"]),
        (
            "version: 1\nattestors: [{name: a, keys: [{file: k.pub}]}]\nregistries: [{host: h, insecure: yes please}]\n",
            ["registries[0].insecure", "true or false"],
        ),
        (
            "version: 1\nattestors: [{name: a, keys: [{file: k.pub, id: x}, {file: k.pub, id: x}]}]\n",
            ["key id 'x' is used twice"],
        ),
        ("[1, 2", ["not valid YAML"]),
    ],
)
def test_each_mistake_is_named(tmp_path: Path, body: str, problems: list[str]) -> None:
    (tmp_path / "k.pub").write_text(PEM)
    path = write(tmp_path, body)
    with pytest.raises(TrustConfigError) as caught:
        load(path)
    message = str(caught.value)
    assert message.startswith(str(path))
    for problem in problems:
        assert problem in message


def test_an_attestor_defined_in_two_files(tmp_path: Path) -> None:
    (tmp_path / "k.pub").write_text(PEM)
    write(tmp_path, "version: 1\nattestors: [{name: a, keys: [{file: k.pub}]}]\n", "1.yaml")
    write(tmp_path, "version: 1\nattestors: [{name: a, keys: [{file: k.pub}]}]\n", "2.yaml")
    with pytest.raises(TrustConfigError, match=r"'a' is already defined in .*1\.yaml"):
        load(tmp_path)


def test_the_fingerprint_follows_the_keys(tmp_path: Path) -> None:
    (tmp_path / "k.pub").write_text(PEM)
    (tmp_path / "other.pub").write_text(public_pem(generate("p256")).decode())
    one = "version: 1\nattestors: [{name: a, keys: [{file: k.pub}]}]\n"
    base = load(write(tmp_path, one)).fingerprint
    assert load(write(tmp_path, one + "registries: [{host: h}]\n")).fingerprint == base
    changed = [
        "version: 1\nattestors: [{name: a, keys: [{file: other.pub}]}]\n",
        "version: 1\nattestors: [{name: a, keys: [{file: k.pub}, {file: other.pub}]}]\n",
        "version: 1\nattestors: [{name: b, keys: [{file: k.pub}]}]\n",
    ]
    for text in changed:
        assert load(write(tmp_path, text)).fingerprint != base
