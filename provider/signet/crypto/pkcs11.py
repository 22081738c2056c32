"""Keys held on a PKCS#11 token (an HSM, a smart card, SoftHSM2), named by cosign's URI form.

`pkcs11:token=LABEL;object=KEY?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=1234`
(RFC 7512), parsed as cosign parses it: path attributes `token` or `slot-id` (one is required;
`slot-id` wins), `object` (the key's label) and/or `id` (its CKA_ID, percent-encoded bytes) (one
is required), `type` (accepted, ignored); query attributes `module-path` (else
`COSIGN_PKCS11_MODULE_PATH`), `pin-value`, and — an RFC 7512 attribute cosign does not read —
`pin-source` (a file holding the PIN: a path or a `file:` URI). `;` and `&` both separate
attributes, values are percent-decoded (`+` is a space, as Go's url.ParseQuery has it). Other
attributes are refused rather than ignored: an ignored one would select a key less strictly
than the URI says. Where both `object` and `id` are given, the key must match both.

Signing (`open_signer`): the private key never leaves the token. As cosign does it (crypto11),
the message is hashed with SHA-256 here and the token signs the digest — CKM_ECDSA for EC keys
(the raw r‖s becomes DER), CKM_RSA_PKCS over the SHA-256 DigestInfo for RSA — so the schemes are
the ones `PrivateKey.sign` uses for key files. Each signature is checked against the public key
before it is used. The PIN is the URI's, else `COSIGN_PKCS11_PIN` (signing only, as cosign).

Verification (`read_public_key`): the token's public key object is read once, without logging
in unless the URI gives a PIN; it is then an ordinary `PublicKey`. The library is initialized
for each use and finalized after it, so a token plugged in later is seen by the next load.

The binding (python-pkcs11, the `pkcs11` extra) is imported only when a `pkcs11:` URI is used.
Every error is an `UnusableKey` naming the URI without its PIN (`Pkcs11Uri.shown`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote_to_bytes

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from signet.crypto.keys import PublicKey, UnusableKey, load_public_key_der

__all__ = ["SCHEME", "Pkcs11Uri", "TokenSigner", "is_pkcs11", "open_signer", "read_public_key"]

SCHEME: Final = "pkcs11:"
_PATH_ATTRIBUTES: Final = frozenset({"token", "slot-id", "object", "id", "type"})
_QUERY_ATTRIBUTES: Final = frozenset({"module-path", "pin-value", "pin-source"})
_MODULE_ENV: Final = "COSIGN_PKCS11_MODULE_PATH"
_PIN_ENV: Final = "COSIGN_PKCS11_PIN"
_MAX_PIN_FILE: Final = 4096
# DER ECParameters (a named curve's OID) -> the curve and its coordinate size in bytes.
_CURVES: Final = {
    bytes.fromhex("06082a8648ce3d030107"): (ec.SECP256R1(), 32),
    bytes.fromhex("06052b81040022"): (ec.SECP384R1(), 48),
    bytes.fromhex("06052b81040023"): (ec.SECP521R1(), 66),
}
_SHA256_DIGEST_INFO: Final = bytes.fromhex("3031300d060960864801650304020105000420")
# One thread uses the libraries at a time; each use initializes its module and the outermost one
# finalizes it (a use inside another, e.g. `signet sign --config` with a `pkcs11:` trust key,
# must not finalize the session it runs in).
_LOCK = threading.RLock()
_IN_USE: dict[str, int] = {}


def is_pkcs11(reference: str) -> bool:
    return reference.startswith(SCHEME)


def _pieces(text: str) -> list[str]:
    return [p for p in text.replace("&", ";").split(";") if p]


def _without_pin(text: str) -> list[str]:
    return [p for p in _pieces(text) if p.partition("=")[0] != "pin-value"]


def _attributes(shown: str, text: str, allowed: frozenset[str], part: str) -> dict[str, bytes]:
    """Each attribute's percent-decoded value; unknown and repeated attributes are refused."""
    values: dict[str, bytes] = {}
    for piece in _pieces(text):
        name, _, value = piece.partition("=")
        if name not in allowed:
            raise UnusableKey(
                f"{shown}: unsupported {part} attribute {name[:40]!r} "
                f"(supported: {', '.join(sorted(allowed))})"
            )
        if name in values:
            raise UnusableKey(f"{shown}: the {part} attribute {name!r} appears twice")
        if "%" in value and not _valid_escapes(value):
            raise UnusableKey(f"{shown}: the {part} attribute {name!r} has a bad %-escape")
        values[name] = unquote_to_bytes(value.replace("+", " "))
    return values


def _valid_escapes(value: str) -> bool:
    hex_digits = set("0123456789abcdefABCDEF")
    parts = value.split("%")[1:]
    return all(len(p) >= 2 and set(p[:2]) <= hex_digits for p in parts)


def _text(value: bytes | None, shown: str) -> str:
    if not value:
        return ""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise UnusableKey(f"{shown}: an attribute is not UTF-8 after %-decoding") from None


@dataclass(frozen=True, slots=True)
class Pkcs11Uri:
    """A parsed `pkcs11:` URI. `shown` is the URI as given less its `pin-value`."""

    shown: str
    module: str
    token: str | None = None
    slot_id: int | None = None
    label: str | None = None
    key_id: bytes | None = None
    pin_source: str | None = None
    _pin: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, text: str) -> Pkcs11Uri:
        if not is_pkcs11(text):
            raise UnusableKey(f"not a PKCS#11 URI (it starts with {SCHEME!r}): {text[:16]!r}")
        body = text[len(SCHEME) :].split("#", 1)[0]
        path, _, query = body.partition("?")
        shown = SCHEME + ";".join(_without_pin(path))
        kept = _without_pin(query)
        shown += "?" + "&".join(kept) if kept else ""
        path_values = _attributes(shown, path, _PATH_ATTRIBUTES, "path")
        query_values = _attributes(shown, query, _QUERY_ATTRIBUTES, "query")

        def fail(problem: str) -> UnusableKey:
            return UnusableKey(f"{shown}: {problem}")

        token = _text(path_values.get("token"), shown)
        slot_text = _text(path_values.get("slot-id"), shown)
        if not token and not slot_text:
            raise fail("invalid URI: one of token and slot-id must be set")
        slot_id = None
        if slot_text:
            if not slot_text.isdigit():
                raise fail(f"invalid URI: slot-id {slot_text!r} is not a number")
            slot_id = int(slot_text)
        label = _text(path_values.get("object"), shown)
        key_id = path_values.get("id") or None
        if not label and not key_id:
            raise fail("invalid URI: one of object and id must be set")
        module = _text(query_values.get("module-path"), shown) or os.environ.get(_MODULE_ENV, "")
        if not module:
            raise fail(f"invalid URI: module-path or {_MODULE_ENV} must name the PKCS#11 module")
        pin = _text(query_values.get("pin-value"), shown)
        pin_source = _text(query_values.get("pin-source"), shown)
        if pin and pin_source:
            raise fail("invalid URI: give pin-value or pin-source, not both")
        return cls(shown, module, token, slot_id, label, key_id, pin_source, pin)

    def describe_key(self) -> str:
        parts = [f"object={self.label!r}"] if self.label else []
        if self.key_id:
            parts.append(f"id={self.key_id.hex()}")
        return " ".join(parts)

    def describe_token(self) -> str:
        return f"slot {self.slot_id}" if self.slot_id is not None else f"token {self.token!r}"

    def pin(self, *, from_environment: bool) -> str | None:
        """The PIN: pin-value, the pin-source file, else (signing) COSIGN_PKCS11_PIN."""
        if self._pin:
            return self._pin
        if self.pin_source:
            source = self.pin_source
            location = source[len("file:") :] if source.startswith("file:") else source
            location = location.removeprefix("//") if location.startswith("///") else location
            try:
                with Path(location).open("rb") as handle:
                    raw = handle.read(_MAX_PIN_FILE + 1)
            except OSError as exc:
                raise UnusableKey(
                    f"{self.shown}: cannot read pin-source {location}: {exc.strerror}"
                ) from exc
            if len(raw) > _MAX_PIN_FILE:
                raise UnusableKey(f"{self.shown}: pin-source {location} is not a PIN file")
            try:
                return raw.decode("utf-8").rstrip("\r\n") or None
            except UnicodeDecodeError:
                raise UnusableKey(f"{self.shown}: pin-source {location} is not UTF-8") from None
        if from_environment:
            return os.environ.get(_PIN_ENV) or None
        return None


@dataclass(frozen=True, slots=True)
class TokenSigner:
    """A private key on a token, with the public key it pairs with; usable while open."""

    public: PublicKey
    _uri: Pkcs11Uri = field(repr=False)
    _key: Any = field(repr=False)  # pkcs11.PrivateKey, of the open session

    def sign(self, message: bytes) -> tuple[bytes, str]:
        """Sign `message` on the token; return the DER/PKCS#1 signature and the scheme name."""
        import pkcs11 as binding  # noqa: PLC0415 - the binding is optional

        digest = hashlib.sha256(message).digest()
        with _token_errors(self._uri, "sign"):
            if self.public.kind.startswith("ecdsa-"):
                raw = self._key.sign(digest, mechanism=binding.Mechanism.ECDSA)
                half = len(raw) // 2
                signature = encode_dss_signature(
                    int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")
                )
            else:
                signature = self._key.sign(
                    _SHA256_DIGEST_INFO + digest, mechanism=binding.Mechanism.RSA_PKCS
                )
        scheme = self.public.verify(message, bytes(signature))
        if scheme is None:
            raise UnusableKey(
                f"{self._uri.shown}: the token's signature does not verify under the public key "
                f"found for {self._uri.describe_key()}: the private and public objects differ"
            )
        return bytes(signature), scheme


@contextlib.contextmanager
def open_signer(reference: str) -> Iterator[TokenSigner]:
    """Log in to the token and find the private key the URI names (and its public key)."""
    uri = Pkcs11Uri.parse(reference)
    pin = uri.pin(from_environment=True)
    with _session(uri, pin) as (binding, session, token):
        if pin is None and binding.TokenFlag.LOGIN_REQUIRED in token.flags:
            raise UnusableKey(
                f"{uri.shown}: no PIN: give pin-value or pin-source in the URI, or set {_PIN_ENV}"
            )
        with _token_errors(uri, "find the key"):
            private = _one(uri, session, binding.ObjectClass.PRIVATE_KEY, "private key", pin)
            public = _public_of(uri, binding, session, private)
        yield TokenSigner(public, uri, private)


def read_public_key(reference: str) -> PublicKey:
    """The public key object the URI names, read from the token (for a trust config)."""
    uri = Pkcs11Uri.parse(reference)
    pin = uri.pin(from_environment=False)
    with _session(uri, pin) as (binding, session, _), _token_errors(uri, "read the public key"):
        public = _one(uri, session, binding.ObjectClass.PUBLIC_KEY, "public key", pin)
        return _public_key(uri, binding, public)


@contextlib.contextmanager
def _session(uri: Pkcs11Uri, pin: str | None) -> Iterator[tuple[Any, Any, Any]]:
    binding = _binding(uri)
    if not os.path.isabs(uri.module):
        raise UnusableKey(f"{uri.shown}: module-path {uri.module} is not an absolute path")
    if not Path(uri.module).is_file():
        raise UnusableKey(f"{uri.shown}: module-path {uri.module}: no such file")
    with _LOCK:
        try:
            library = binding.lib(uri.module)
        except binding.PKCS11Error as exc:
            detail = str(exc) or type(exc).__name__
            for prefix in (f"OS exception while loading {uri.module}: ", f"{uri.module}: "):
                detail = detail.removeprefix(prefix)
            raise UnusableKey(
                f"{uri.shown}: module-path {uri.module} is not a PKCS#11 module ({detail})"
            ) from None
        _IN_USE[uri.module] = _IN_USE.get(uri.module, 0) + 1
        try:
            with _token_errors(uri, "open the token"):
                token = _find_token(uri, library)
                session = token.open(user_pin=pin) if pin else token.open()
            try:
                yield binding, session, token
            finally:
                with contextlib.suppress(binding.PKCS11Error):
                    session.close()
        finally:
            _IN_USE[uri.module] -= 1
            if not _IN_USE[uri.module]:
                with contextlib.suppress(binding.PKCS11Error):
                    library.finalize()


def _binding(uri: Pkcs11Uri) -> Any:
    try:
        import pkcs11 as binding  # noqa: PLC0415 - optional, loaded for pkcs11: URIs only
    except ImportError:
        raise UnusableKey(
            f"{uri.shown}: PKCS#11 keys need python-pkcs11: pip install 'signet[pkcs11]'"
        ) from None
    return binding


def _find_token(uri: Pkcs11Uri, library: Any) -> Any:
    slots = library.get_slots(token_present=True)
    if uri.slot_id is not None:
        for slot in slots:
            if slot.slot_id == uri.slot_id:
                return slot.get_token()
        ids = ", ".join(str(s.slot_id) for s in slots) or "none"
        raise UnusableKey(
            f"{uri.shown}: no token in slot {uri.slot_id} of {uri.module} (slots with a "
            f"token: {ids})"
        )
    tokens = [slot.get_token() for slot in slots]
    found = [t for t in tokens if t.label == uri.token]
    if not found:
        labels = ", ".join(repr(t.label) for t in tokens if t.label) or "none"
        raise UnusableKey(
            f"{uri.shown}: no token labelled {uri.token!r} in {uri.module} (tokens: {labels})"
        )
    return found[0]  # cosign (crypto11) takes the first slot whose token has the label


def _one(uri: Pkcs11Uri, session: Any, object_class: Any, what: str, pin: str | None) -> Any:
    import pkcs11 as binding  # noqa: PLC0415 - the binding is optional

    template: dict[Any, Any] = {binding.Attribute.CLASS: object_class}
    if uri.label:
        template[binding.Attribute.LABEL] = uri.label
    if uri.key_id:
        template[binding.Attribute.ID] = uri.key_id
    found = list(session.get_objects(template))
    if not found:
        raise UnusableKey(
            f"{uri.shown}: no {what} with {uri.describe_key()} on {uri.describe_token()}"
            + ("" if pin else _login_hint(what))
        )
    if len(found) > 1:
        raise UnusableKey(
            f"{uri.shown}: {len(found)} {what}s match {uri.describe_key()} on "
            f"{uri.describe_token()}; name one by id"
        )
    return found[0]


def _login_hint(what: str) -> str:
    return " (without a PIN only public objects are visible)" if what == "private key" else ""


def _public_of(uri: Pkcs11Uri, binding: Any, session: Any, private: Any) -> PublicKey:
    """The public key object paired with `private`: the same CKA_ID (else the same label)."""
    key_id = bytes(private[binding.Attribute.ID] or b"")
    template: dict[Any, Any] = {binding.Attribute.CLASS: binding.ObjectClass.PUBLIC_KEY}
    if key_id:
        template[binding.Attribute.ID] = key_id
    else:
        template[binding.Attribute.LABEL] = private[binding.Attribute.LABEL]
    found = list(session.get_objects(template))
    if len(found) == 1:
        return _public_key(uri, binding, found[0])
    if private.key_type == binding.KeyType.RSA and not found:
        return _public_key(uri, binding, private)  # an RSA private key holds its public part
    _check_type(uri, binding, private)
    problem = "no public key object" if not found else f"{len(found)} public key objects"
    raise UnusableKey(
        f"{uri.shown}: {problem} with the private key's id on {uri.describe_token()}; "
        "signing needs exactly one"
    )


def _check_type(uri: Pkcs11Uri, binding: Any, key: Any) -> None:
    if key.key_type not in (binding.KeyType.EC, binding.KeyType.RSA):
        name = getattr(key.key_type, "name", str(key.key_type))
        raise UnusableKey(
            f"{uri.shown}: the key is of type {name}, which is not supported on a token "
            "(ECDSA P-256, P-384, P-521 or RSA, as cosign)"
        )


def _public_key(uri: Pkcs11Uri, binding: Any, key: Any) -> PublicKey:
    """A `PublicKey` from an EC or RSA key object's public attributes."""
    _check_type(uri, binding, key)
    attribute = binding.Attribute
    if key.key_type == binding.KeyType.RSA:
        numbers = rsa.RSAPublicNumbers(
            int.from_bytes(key[attribute.PUBLIC_EXPONENT], "big"),
            int.from_bytes(key[attribute.MODULUS], "big"),
        )
        return _loaded(uri, numbers.public_key())
    params = bytes(key[attribute.EC_PARAMS])
    if params not in _CURVES:
        raise UnusableKey(
            f"{uri.shown}: the EC key's curve (parameters {params.hex()}) is not supported "
            "(P-256, P-384, P-521)"
        )
    curve, size = _CURVES[params]
    point = bytes(key[attribute.EC_POINT])
    if len(point) != 1 + 2 * size:  # DER OCTET STRING around the point, as PKCS#11 says
        point = _octet_string(point)
    try:
        public = ec.EllipticCurvePublicKey.from_encoded_point(curve, point)
    except ValueError as exc:
        raise UnusableKey(f"{uri.shown}: the EC public key's point is invalid: {exc}") from None
    return _loaded(uri, public)


def _octet_string(der: bytes) -> bytes:
    if len(der) < 2 or der[0] != 0x04:
        return der
    length, start = der[1], 2
    if length & 0x80:
        octets = length & 0x7F
        length, start = int.from_bytes(der[2 : 2 + octets], "big"), 2 + octets
    return der[start : start + length]


def _loaded(uri: Pkcs11Uri, public: ec.EllipticCurvePublicKey | rsa.RSAPublicKey) -> PublicKey:
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    try:
        return load_public_key_der(der)
    except UnusableKey as exc:
        raise UnusableKey(f"{uri.shown}: {exc}") from None


@contextlib.contextmanager
def _token_errors(uri: Pkcs11Uri, doing: str) -> Iterator[None]:
    """The binding's exceptions as `UnusableKey`s a person can act on (never with the PIN)."""
    import pkcs11 as binding  # noqa: PLC0415 - the binding is optional

    try:
        yield
    except binding.PinIncorrect:
        raise UnusableKey(f"{uri.shown}: wrong PIN for {uri.describe_token()}") from None
    except binding.PinLocked:
        raise UnusableKey(
            f"{uri.shown}: the PIN of {uri.describe_token()} is locked (too many wrong PINs)"
        ) from None
    except (binding.PinInvalid, binding.PinLenRange):
        raise UnusableKey(
            f"{uri.shown}: the PIN is not one {uri.describe_token()} accepts"
        ) from None
    except (binding.TokenNotPresent, binding.DeviceRemoved):
        raise UnusableKey(f"{uri.shown}: {uri.describe_token()} is not present") from None
    except binding.UserPinNotInitialized:
        raise UnusableKey(f"{uri.shown}: {uri.describe_token()} has no user PIN set") from None
    except binding.PKCS11Error as exc:
        raise UnusableKey(
            f"{uri.shown}: could not {doing}: {type(exc).__name__}"
            + (f" ({exc})" if str(exc) else "")
        ) from None
