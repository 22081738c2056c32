"""The `pkcs11:` URI as cosign parses it (pkg/cosign/pkcs11key/util.go), and the PIN kept out of
every message."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from signet.crypto.keys import UnusableKey
from signet.crypto.pkcs11 import Pkcs11Uri
from signet.trust.config import load
from signet.trust.model import TrustConfigError

MODULE = "/usr/lib/softhsm/libsofthsm2.so"


def test_cosigns_own_form() -> None:
    # What `cosign pkcs11-tool list-keys-uris` prints (Pkcs11UriConfig.Construct).
    uri = Pkcs11Uri.parse(
        f"pkcs11:token=My%20Token;slot-id=7;id=%01%ab;object=release-key?module-path={MODULE}"
        "&pin-value=12%2634"
    )
    assert (uri.token, uri.slot_id, uri.key_id, uri.label) == (
        "My Token",
        7,
        b"\x01\xab",
        "release-key",
    )
    assert uri.module == MODULE
    assert uri.pin(from_environment=False) == "12&34"
    assert uri.shown == (
        f"pkcs11:token=My%20Token;slot-id=7;id=%01%ab;object=release-key?module-path={MODULE}"
    )
    assert "12&34" not in repr(uri)
    assert "12%2634" not in repr(uri)


def test_separators_and_plus_as_go_reads_them() -> None:
    # cosign replaces ";" with "&" and uses url.ParseQuery: both separate, "+" is a space.
    uri = Pkcs11Uri.parse(
        f"pkcs11:token=a+b&object=k;type=private?pin-value=1;module-path={MODULE}"
    )
    assert (uri.token, uri.label, uri.module) == ("a b", "k", MODULE)
    assert "pin-value" not in uri.shown


def test_environment_fallbacks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COSIGN_PKCS11_MODULE_PATH", MODULE)
    monkeypatch.setenv("COSIGN_PKCS11_PIN", "from-env")
    uri = Pkcs11Uri.parse("pkcs11:token=t;object=k")
    assert uri.module == MODULE
    assert uri.pin(from_environment=True) == "from-env"  # signing, as cosign
    assert uri.pin(from_environment=False) is None  # a trust config reads only the URI's


def test_pin_source(tmp_path: Path) -> None:
    pin = tmp_path / "pin"
    pin.write_text("4321\n")
    for source in (str(pin), f"file:{pin}", f"file://{pin}"):
        uri = Pkcs11Uri.parse(f"pkcs11:token=t;object=k?module-path={MODULE}&pin-source={source}")
        assert uri.pin(from_environment=False) == "4321"
        assert "pin-source" in uri.shown  # a path is no secret
    missing = Pkcs11Uri.parse(f"pkcs11:token=t;object=k?module-path={MODULE}&pin-source=/none")
    with pytest.raises(UnusableKey, match="cannot read pin-source /none: No such file"):
        missing.pin(from_environment=False)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (f"pkcs11:object=k?module-path={MODULE}", "one of token and slot-id must be set"),
        (f"pkcs11:token=t?module-path={MODULE}", "one of object and id must be set"),
        (f"pkcs11:slot-id=x;object=k?module-path={MODULE}", "slot-id 'x' is not a number"),
        ("pkcs11:token=t;object=k", "module-path or COSIGN_PKCS11_MODULE_PATH must name"),
        (f"pkcs11:token=t;serial=1;object=k?module-path={MODULE}", "unsupported path attribute"),
        (f"pkcs11:token=t;object=k?module-path={MODULE}&x=1", "unsupported query attribute"),
        (f"pkcs11:token=t;token=u;object=k?module-path={MODULE}", "'token' appears twice"),
        (f"pkcs11:token=t%zz;object=k?module-path={MODULE}", "'token' has a bad %-escape"),
        (
            f"pkcs11:token=t;object=k?module-path={MODULE}&pin-value=9&pin-source=/p",
            "give pin-value or pin-source, not both",
        ),
    ],
)
def test_invalid_uris_are_refused_by_name(
    text: str, problem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COSIGN_PKCS11_MODULE_PATH", raising=False)
    with pytest.raises(UnusableKey) as raised:
        Pkcs11Uri.parse(text)
    message = str(raised.value)
    assert problem in message
    assert message.startswith("pkcs11:")
    assert "pin-value=9" not in message


def test_the_binding_is_imported_only_for_a_pkcs11_uri() -> None:
    code = (
        "import sys, signet.cli, signet.trust.config, signet.crypto.pkcs11;"
        "print('pkcs11' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        (
            f'{{pkcs11: "pkcs11:token=t;object=k?module-path={MODULE}", file: k.pub}}',
            "give exactly one of 'pem', 'file', 'pkcs11' (a token's public key) or 'kms'",
        ),
        (
            '{pkcs11: "pkcs11:object=k?pin-value=9"}',
            "pkcs11:object=k: invalid URI: one of token and slot-id must be set",
        ),
        (
            '{pkcs11: "pkcs11:token=t;object=k?module-path=lib.so&pin-value=9"}',
            "pkcs11:token=t;object=k?module-path=lib.so: module-path lib.so is not an absolute",
        ),
    ],
)
def test_trust_config_pkcs11_keys_are_checked_at_load(
    tmp_path: Path, key: str, problem: str
) -> None:
    config = tmp_path / "trust.yaml"
    config.write_text(f"version: 1\nattestors:\n  - name: hsm\n    keys:\n      - {key}\n")
    with pytest.raises(TrustConfigError) as raised:
        load(config)
    assert str(raised.value).startswith(f"{config}: attestor 'hsm' keys[0]: {problem}")
    assert "pin-value=9" not in str(raised.value)
