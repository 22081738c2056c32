"""The trust config: what loads, and that every mistake is named with its file, attestor and problem."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from signet.crypto.keyfile import generate, public_pem
from signet.crypto.keys import load_public_key_pem
from signet.trust.config import load
from signet.trust.model import EvidenceSettings, TrustConfig, TrustConfigError

PEM = public_pem(generate("p256")).decode()
OTHER_PEM = public_pem(generate("ed25519")).decode()
THIRD_PEM = public_pem(generate("p384")).decode()
SHORT_ID = load_public_key_pem(PEM.encode()).short_id
ONE = "version: 1\nattestors: [{name: a, keys: [{file: k.pub}]}]\n"


def pem_of(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def write(directory: Path, text: str, name: str = "trust.yaml") -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def inline(pem: str, indent: int) -> str:
    return textwrap.indent(pem, " " * indent)


def refusal(path: Path) -> str:
    with pytest.raises(TrustConfigError) as caught:
        load(path)
    return str(caught.value)


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    (tmp_path / "k.pub").write_text(PEM)
    (tmp_path / "other.pub").write_text(OTHER_PEM)
    return tmp_path


# -- what loads -------------------------------------------------------------------------------


def test_a_file_with_inline_and_file_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_dir = tmp_path / "etc" / "signet"
    write(config_dir, THIRD_PEM, "keys/sec.pub")
    (tmp_path / "abs.pub").write_text(OTHER_PEM)
    body = (
        "version: 1\n"
        "attestors:\n"
        "  - name: dev-team\n"
        "    keys:\n"
        "      - id: dev-2026\n"
        "        pem: |\n"
        f"{inline(PEM, 10)}"
        "  - name: security-team\n"
        "    keys:\n"
        "      - file: keys/sec.pub\n"
        f"      - file: {tmp_path / 'abs.pub'}\n"
        "registries:\n"
        "  - host: 127.0.0.1:5000\n"
        "    insecure: true\n"
        "  - host: Registry.Example.com\n"
        "auth:\n"
        "  docker_config: docker/config.json\n"
    )
    path = write(config_dir, body)
    monkeypatch.chdir(tmp_path)  # relative paths are relative to the file, not the process
    config = load(path)

    dev, sec = config.attestors
    assert (dev.name, [k.id for k in dev.keys]) == ("dev-team", ["dev-2026"])
    assert dev.keys[0].key.kind == "ecdsa-p256"
    assert sec.name == "security-team"
    # Without an id, a key is named by the first 16 hex characters of its fingerprint.
    assert [k.id for k in sec.keys] == [k.key.fingerprint[:16] for k in sec.keys]
    assert all(len(k.id) == 16 and int(k.id, 16) >= 0 for k in sec.keys)
    assert sec.keys[0].key == load_public_key_pem(THIRD_PEM.encode())  # read from the file
    assert sec.keys[1].key.kind == "ed25519"

    local = config.registry("127.0.0.1:5000")
    assert local is not None and local.insecure
    remote = config.registry("registry.example.com")
    assert remote is not None and not remote.insecure
    assert config.registry("elsewhere.example") is None
    assert config.docker_config == config_dir / "docker" / "config.json"
    assert config.sources == (path,)
    assert config_dir / "keys" / "sec.pub" in config.key_files
    assert tmp_path / "abs.pub" in config.key_files


def test_a_folder_of_files(keys: Path) -> None:
    write(keys, "version: 1\nattestors: [{name: b, keys: [{file: k.pub}]}]\n", "b.yml")
    write(keys, "version: 1\nattestors: [{name: a, keys: [{file: other.pub}]}]\n", "a.yaml")
    write(keys, "registries: [{host: h}]\nversion: 1\n", "c.yaml")  # no attestors of its own
    write(keys, "not yaml at all: [", "ignored.txt")
    write(keys, "not yaml at all: [", "ignored.yaml.bak")
    (keys / "dir.yaml").mkdir()
    config = load(keys)
    assert [a.name for a in config.attestors] == ["a", "b"]  # by file name
    assert config.registry("h") is not None
    assert [p.name for p in config.sources] == ["a.yaml", "b.yml", "c.yaml"]


def test_the_same_key_in_two_attestors_is_refused(keys: Path) -> None:
    """Otherwise one signer meets an M-of-N sign-off meant for two teams."""
    path = write(
        keys,
        "version: 1\nattestors: [{name: dev, keys: [{file: k.pub, id: dev-1}]},"
        ' {name: sec, keys: [{file: other.pub}, {pem: "'
        + PEM.replace("\n", "\\n")
        + '", id: sec-2}]}]\n',
    )
    message = refusal(path)
    assert str(path) in message
    assert "'dev' and 'sec' share the key 'dev-1' (= 'sec-2'" in message
    assert SHORT_ID in message


def test_the_same_key_in_two_files_is_refused_naming_both(keys: Path) -> None:
    write(
        keys / "trust", "version: 1\nattestors: [{name: dev, keys: [{file: ../k.pub}]}]\n", "a.yaml"
    )
    second = write(
        keys / "trust", "version: 1\nattestors: [{name: sec, keys: [{file: ../k.pub}]}]\n", "b.yaml"
    )
    message = refusal(keys / "trust")
    assert message.startswith(
        f"{second}: attestors 'dev' (in {keys / 'trust' / 'a.yaml'}) and 'sec'"
    )


def test_the_same_key_twice_in_one_attestor_is_refused(keys: Path) -> None:
    message = refusal(
        write(
            keys,
            "version: 1\nattestors: [{name: a, keys: [{file: k.pub, id: x}, {file: k.pub, id: y}]}]\n",
        )
    )
    assert "attestor 'a': keys 'x' and 'y' are the same key" in message


# -- what is refused, and how it is named -----------------------------------------------------


def attestor_with(fields: str) -> str:
    return f"version: 1\nattestors:\n  - name: a\n{textwrap.indent(fields, '    ')}"


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        # Unknown fields, at every level.
        (
            ONE + "extra: 1\n",
            [
                "unknown field 'extra'",
                "allowed: attestors, auth, evidence, kms, registries, revoked, version",
            ],
        ),
        (
            "version: 1\nattestors: [{name: a, color: red, keys: [{file: k.pub}]}]\n",
            ["attestor 'a'", "unknown field 'color'"],
        ),
        (
            "version: 1\nattestors: [{name: a, keys: [{file: k.pub, why: x}]}]\n",
            ["attestor 'a' keys[0]", "unknown field 'why'"],
        ),
        (ONE + "registries: [{host: h, tls: x}]\n", ["registries[0]", "unknown field 'tls'"]),
        (ONE + "auth: {docker_config: x, token: y}\n", ["auth", "unknown field 'token'"]),
        # Duplicates.
        (
            "version: 1\nattestors: [{name: a, keys: [{file: k.pub}]}, {name: a, keys: [{file: other.pub}]}]\n",
            ["attestor name 'a' appears twice"],
        ),
        (ONE + "version: 1\n", ["duplicate key 'version'", "line 3"]),
        (
            "version: 1\nattestors:\n  - name: a\n    keys: [{file: k.pub}]\n    name: b\n",
            ["duplicate key 'name'", "line 5"],
        ),
        (
            "version: 1\nattestors: [{name: a, keys: [{file: k.pub, file: other.pub}]}]\n",
            ["duplicate key 'file'", "line 2"],
        ),
        (ONE + "registries: [{host: h}, {host: h}]\n", ["registry 'h' is listed twice"]),
        (
            "version: 1\nattestors: [{name: a, keys: [{file: k.pub, id: x}, {file: other.pub, id: x}]}]\n",
            ["attestor 'a'", "key id 'x' is used twice"],
        ),
        (
            attestor_with(f"keys:\n  - file: k.pub\n  - pem: |\n{inline(PEM, 8)}"),
            ["attestor 'a'", f"key id '{SHORT_ID}' is used twice"],
        ),
        # Keys.
        (
            "version: 1\nattestors: [{name: a, keys: [{file: k.pub, pem: x}]}]\n",
            [
                "attestor 'a' keys[0]",
                "exactly one of 'pem', 'file', 'pkcs11' (a token's public key) or 'kms'",
            ],
        ),
        (
            "version: 1\nattestors: [{name: a, keys: [{id: x}]}]\n",
            [
                "attestor 'a' keys[0]",
                "exactly one of 'pem', 'file', 'pkcs11' (a token's public key) or 'kms'",
            ],
        ),
        (
            "version: 1\nattestors: [{name: a, keys: [{file: k.pub}, {file: missing.pub}]}]\n",
            ["attestor 'a' keys[1]", "cannot read key file", "missing.pub"],
        ),
        (
            "version: 1\nattestors: [{name: a, keys: [{pem: nonsense}]}]\n",
            ["attestor 'a' keys[0]", "not a PEM public key"],
        ),
        (
            "version: 1\nattestors: [{name: a, keys: [{file: k1.pub}]}]\n",
            ["attestor 'a' keys[0]", "ECDSA curve secp256k1 is not supported"],
        ),
        (
            "version: 1\nattestors: [{name: a, keys: [{file: rsa1024.pub}]}]\n",
            ["attestor 'a' keys[0]", "not 1024"],
        ),
        (
            "version: 1\nattestors: [{name: a, keys: [{file: k.pub, id: ''}]}]\n",
            ["attestor 'a' keys[0].id", "non-empty string"],
        ),
        (attestor_with("keys: []\n"), ["attestor 'a'", "has no keys"]),
        (attestor_with("keys: {file: k.pub}\n"), ["attestor 'a' keys", "expected a list"]),
        ("version: 1\nattestors: [{name: a}]\n", ["attestor 'a'", "exactly one of 'keys'"]),
        # The version.
        (
            "version: 2\nattestors: [{name: a, keys: [{file: k.pub}]}]\n",
            ["version must be 1, not 2"],
        ),
        (
            "version: '1'\nattestors: [{name: a, keys: [{file: k.pub}]}]\n",
            ["version must be 1, not '1'"],
        ),
        (
            "version: true\nattestors: [{name: a, keys: [{file: k.pub}]}]\n",
            ["version must be 1, not True"],
        ),
        (
            "version: 1.0\nattestors: [{name: a, keys: [{file: k.pub}]}]\n",
            ["version must be 1, not 1.0"],
        ),
        ("attestors: [{name: a, keys: [{file: k.pub}]}]\n", ["version must be 1, not None"]),
        # No attestors.
        ("version: 1\nattestors: []\n", ["no attestors are configured"]),
        ("version: 1\n", ["no attestors are configured"]),
        ("version: 1\nattestors: {a: {}}\n", ["attestors", "expected a list"]),
        # Registries.
        (
            ONE + "registries: [{host: h, insecure: yes please}]\n",
            ["registries[0].insecure", "true or false"],
        ),
        (
            ONE + "registries: [{host: h, insecure: 'true'}]\n",
            ["registries[0].insecure", "true or false"],
        ),
        (
            ONE + "registries: [{host: h, insecure: 1}]\n",
            ["registries[0].insecure", "true or false"],
        ),
        (
            ONE + "registries: [{host: 'https://h'}]\n",
            ["registries[0].host", "without scheme or path"],
        ),
        (ONE + "registries: [{insecure: true}]\n", ["registries[0].host", "non-empty string"]),
        (
            ONE + "registries: [{host: h, ca_file: nope.pem}]\n",
            ["registries[0].ca_file", "nope.pem"],
        ),
        (
            ONE + "registries: [{host: h, ca_file: k.pub}]\n",
            ["registries[0].ca_file", "holds no PEM certificate"],
        ),
        # Attestor names.
        (
            "version: 1\nattestors: [{name: Dev, keys: [{file: k.pub}]}]\n",
            ["'Dev'", "lower-case letters"],
        ),
        (
            "version: 1\nattestors: [{name: 'dev team', keys: [{file: k.pub}]}]\n",
            ["'dev team'", "lower-case"],
        ),
        (
            "version: 1\nattestors: [{name: 7, keys: [{file: k.pub}]}]\n",
            ["attestors[0].name", "non-empty string"],
        ),
        (
            "version: 1\nattestors: [{keys: [{file: k.pub}]}]\n",
            ["attestors[0].name", "non-empty string"],
        ),
        ("version: 1\nattestors: [a]\n", ["attestors[0]", "expected a mapping"]),
        # Not a config at all.
        ("", ["the file is empty"]),
        ("- 1\n", ["expected a mapping, found list"]),
        ("[1, 2", ["not valid YAML"]),
        ("version: 1\n---\nversion: 1\n", ["not valid YAML"]),
        ("version: 1\n? [a]\n: 1\n", ["not valid YAML", "a list cannot be a mapping key"]),
    ],
)
def test_each_mistake_is_named(keys: Path, body: str, fragments: list[str]) -> None:
    (keys / "k1.pub").write_text(pem_of(ec.generate_private_key(ec.SECP256K1())))
    (keys / "rsa1024.pub").write_text(pem_of(rsa.generate_private_key(65537, 1024)))
    path = write(keys, body)
    message = refusal(path)
    assert message.startswith(f"{path}: "), message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_an_attestor_defined_in_two_files_of_a_folder(keys: Path) -> None:
    first = write(keys, ONE, "1.yaml")
    second = write(
        keys, "version: 1\nattestors: [{name: a, keys: [{file: other.pub}]}]\n", "2.yaml"
    )
    message = refusal(keys)
    assert message.startswith(f"{second}: ")
    assert f"attestor 'a' is already defined in {first}" in message


def test_a_mistake_in_one_file_of_a_folder_names_that_file(keys: Path) -> None:
    write(keys, ONE, "1.yaml")
    broken = write(keys, "version: 1\nattestors: [{name: b, keys: [{file: gone.pub}]}]\n", "2.yaml")
    message = refusal(keys)
    assert message.startswith(f"{broken}: attestor 'b' keys[0]: cannot read key file")


@pytest.mark.parametrize(
    ("files", "problem"),
    [
        ({}, "holds no .yaml or .yml file"),
        ({"a.yaml": "registries: [{host: h}]\nversion: 1\n"}, "no attestors are configured"),
        (
            {
                "a.yaml": ONE + "auth: {docker_config: x}\n",
                "b.yaml": "version: 1\nauth: {docker_config: y}\n",
            },
            "auth is set in more than one file",
        ),
        (
            {
                "a.yaml": ONE + "registries: [{host: h}]\n",
                "b.yaml": "version: 1\nregistries: [{host: h}]\n",
            },
            "registry 'h' is listed twice",
        ),
    ],
)
def test_folder_level_mistakes(keys: Path, files: dict[str, str], problem: str) -> None:
    for name, body in files.items():
        write(keys, body, name)
    assert problem in refusal(keys)


def test_a_missing_path(tmp_path: Path) -> None:
    assert refusal(tmp_path / "nope.yaml") == f"{tmp_path / 'nope.yaml'}: no such file or folder"


# -- the fingerprint --------------------------------------------------------------------------


def fingerprint(directory: Path, body: str, name: str = "trust.yaml") -> str:
    return load(write(directory, body, name)).fingerprint


def test_the_same_content_has_the_same_fingerprint(keys: Path) -> None:
    base = fingerprint(keys, ONE)
    assert len(base) == 64
    assert fingerprint(keys, ONE) == base
    # Layout, comments, file name, inline-or-file and registries do not change a verdict.
    assert (
        fingerprint(
            keys, "# a comment\nversion: 1\nattestors:\n- keys: [{file: k.pub}]\n  name: a\n"
        )
        == base
    )
    assert fingerprint(keys, ONE, "renamed.yaml") == base
    assert fingerprint(keys, ONE + "registries: [{host: h, insecure: true}]\n") == base
    assert fingerprint(keys, attestor_with(f"keys:\n  - pem: |\n{inline(PEM, 8)}")) == base
    sub = keys / "sub"
    sub.mkdir()
    (sub / "k.pub").write_text(PEM)
    assert fingerprint(sub, ONE) == base


@pytest.mark.parametrize(
    "changed",
    [
        "version: 1\nattestors: [{name: a, keys: [{file: k.pub}, {file: other.pub}]}]\n",  # added
        "version: 1\nattestors: [{name: a, keys: [{file: other.pub}]}]\n",  # replaced
        "version: 1\nattestors: [{name: a, keys: [{file: k.pub, id: mine}]}]\n",  # renamed key
        "version: 1\nattestors: [{name: b, keys: [{file: k.pub}]}]\n",  # renamed attestor
        ONE.replace("]}]", "]}, {name: b, keys: [{file: other.pub}]}]"),  # another attestor
    ],
    ids=["key-added", "key-replaced", "key-id", "attestor-renamed", "attestor-added"],
)
def test_a_change_to_the_keys_changes_the_fingerprint(keys: Path, changed: str) -> None:
    base = fingerprint(keys, ONE)
    assert fingerprint(keys, changed) != base


def test_removing_a_key_changes_the_fingerprint(keys: Path) -> None:
    two = "version: 1\nattestors: [{name: a, keys: [{file: k.pub}, {file: other.pub}]}]\n"
    assert fingerprint(keys, two) != fingerprint(keys, ONE)


def test_a_key_file_replaced_in_place_changes_the_fingerprint(keys: Path) -> None:
    base = fingerprint(keys, ONE)
    (keys / "k.pub").write_text(OTHER_PEM)
    assert fingerprint(keys, ONE) != base


def test_a_config_built_in_code_refuses_duplicate_names(keys: Path) -> None:
    (attestor,) = load(write(keys, ONE)).attestors
    with pytest.raises(TrustConfigError, match="unique"):
        TrustConfig((attestor, attestor))


# -- which evidence is looked for --------------------------------------------------------------


def test_evidence_settings_load_and_change_the_fingerprint(keys: Path) -> None:
    base = load(write(keys, ONE))
    assert base.evidence == EvidenceSettings()
    everything = "evidence: {formats: [cosign-classic, sigstore-bundle], attestations: true}\n"
    assert fingerprint(keys, ONE + everything) == base.fingerprint  # the defaults, spelt out
    classic = load(
        write(keys, ONE + "evidence: {formats: [cosign-classic], attestations: false}\n")
    )
    assert classic.evidence == EvidenceSettings(bundles=False, attestations=False)
    assert classic.fingerprint != base.fingerprint
    bundles_only = load(write(keys, ONE + "evidence: {formats: [sigstore-bundle]}\n"))
    assert bundles_only.evidence == EvidenceSettings(classic=False)


@pytest.mark.parametrize(
    ("evidence", "problem"),
    [
        (
            "{formats: [notation]}",
            "evidence.formats: unknown format 'notation' (known: cosign-classic",
        ),
        ("{formats: []}", "evidence.formats: is empty: nothing would ever be found"),
        ("{attestations: no-thanks}", "evidence.attestations: must be true or false"),
        ("{signatures: false}", "evidence: unknown field 'signatures'"),
    ],
)
def test_evidence_mistakes(keys: Path, evidence: str, problem: str) -> None:
    assert problem in refusal(write(keys, ONE + f"evidence: {evidence}\n"))


def test_evidence_is_set_in_one_file(keys: Path) -> None:
    first = write(keys, ONE + "evidence: {attestations: false}\n", "1.yaml")
    write(keys, "version: 1\nevidence: {attestations: false}\n", "2.yaml")
    assert f"2.yaml: evidence is set in {first} already" in refusal(keys)
