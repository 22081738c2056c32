"""What a person sees first from the CLI: every flag explained, errors that name the file or flag
and the problem, and bad usage as exit 2."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest

from signet.cli import _build_parser, main


def _actions(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.Action]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += [(f"{name} {n}", a) for n, a in _actions(sub)]
        elif not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            found.append((action.dest, action))
    return found


def test_every_flag_and_argument_has_help() -> None:
    missing = [name for name, action in _actions(_build_parser()) if not action.help]
    assert missing == []


def test_the_help_names_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("serve", "verify", "sign", "record", "keys"):
        assert command in out
    assert "serve, verify, sign, record, keys generate" in out


def test_serve_names_a_missing_certificate_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "trust.yaml"
    config.write_text("version: 1\n")
    cert, key = str(tmp_path / "tls.crt"), str(tmp_path / "tls.key")
    code = main(["serve", "--config", str(config), "--cert", cert, "--key", key])
    assert code == 2
    assert capsys.readouterr().err == f"signet serve: --cert {tmp_path / 'tls.crt'}: no such file\n"


@pytest.mark.parametrize(
    ("secret", "flags", "message"),
    [
        (
            None,
            ["--shared-cache", "redis://cache:6379/0"],
            "--shared-cache needs --shared-cache-secret FILE",
        ),
        (b"", None, "--shared-cache-secret {secret}: the file is empty"),
        (b"too short\n", None, "--shared-cache-secret {secret}: 9 bytes is too short"),
        (
            b"k" * 40,
            ["--shared-cache", "http://cache", "--shared-cache-secret", "{secret}"],
            "--shared-cache http://cache: expected redis://",
        ),
        (
            b"k" * 40,
            ["--shared-cache-secret", "{secret}"],
            "--shared-cache-secret needs --shared-cache URL",
        ),
    ],
)
def test_serve_refuses_a_shared_cache_without_a_usable_secret(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    secret: bytes | None,
    flags: list[str] | None,
    message: str,
) -> None:
    """Before anything starts: a replica that could not authenticate verdicts must not run."""
    path = tmp_path / "hmac-secret"
    if secret is not None:
        path.write_bytes(secret)
    for name in ("trust.yaml", "tls.crt", "tls.key"):
        (tmp_path / name).write_text("version: 1\n")
    if flags is None:
        flags = ["--shared-cache", "redis://cache:6379/0", "--shared-cache-secret", "{secret}"]
    code = main(
        [
            *("serve", "--config", str(tmp_path / "trust.yaml")),
            *("--cert", str(tmp_path / "tls.crt"), "--key", str(tmp_path / "tls.key")),
            *(flag.format(secret=path) for flag in flags),
        ]
    )
    assert code == 2
    assert capsys.readouterr().err.startswith(f"signet serve: {message.format(secret=path)}")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty; a trust config starts with `version: 1`"),
        (
            'version: 1\nattestors: [{name: a, keys: [{pem: "-----BEGIN PUBLIC KEY-----\\nab\\n'
            '-----END PUBLIC KEY-----\\n"}]}]\n',
            "attestor 'a' keys[0]: not a PEM public key: Unable to load PEM file\n",
        ),
    ],
    ids=["empty", "bad-pem"],
)
def test_trust_config_mistakes_are_named_without_library_links(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    config = tmp_path / "trust.yaml"
    config.write_text(text)
    assert main(["verify", "registry.example/app:1", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert message in err and "https://" not in err


def test_an_invalid_reference_is_bad_usage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "cosign.pub"
    key.write_text("irrelevant")
    assert main(["verify", "Not A Reference", "--key", str(key)]) == 2
    assert "signet verify: " in capsys.readouterr().err


def test_keys_generate_asks_for_a_password_or_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("COSIGN_PASSWORD", raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    prefix = str(tmp_path / "k")
    assert main(["keys", "generate", "--output-key-prefix", prefix]) == 2
    assert "set COSIGN_PASSWORD" in capsys.readouterr().err
    assert not (tmp_path / "k.key").exists()
    # In a terminal: asked twice, as cosign asks; a mismatch is refused.
    monkeypatch.setattr("sys.stdin.isatty", lambda: True, raising=False)
    answers = iter(["one", "two"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))
    assert main(["keys", "generate", "--output-key-prefix", prefix]) == 2
    assert "do not match" in capsys.readouterr().err
    answers = iter(["same", "same"])
    assert main(["keys", "generate", "--output-key-prefix", prefix]) == 0
    assert (tmp_path / "k.key").exists()
    # COSIGN_PASSWORD set, even empty, is used as cosign uses it.
    monkeypatch.setenv("COSIGN_PASSWORD", "")
    assert main(["keys", "generate", "--output-key-prefix", str(tmp_path / "e")]) == 0
