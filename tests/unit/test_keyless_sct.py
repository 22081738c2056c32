"""Embedded SCTs (keyless/sct.py): the Fulcio certificates of the sigstore-conformance suite, read in
place from shared/vectors, and certificates made here with SCTs from a test CT log."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import struct
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID

from signet.keyless.root import LogKey, TrustedRoot, Validity, parse_trusted_root
from signet.keyless.sct import MAX_SCTS, verify_embedded_sct
from signet.reasons import DeterministicFailure, Reason

VECTORS = Path(__file__).resolve().parents[3] / "shared" / "vectors"
SUITE = VECTORS / "sigstore-conformance" / "bundle-verify"
PRODUCTION_ROOT = VECTORS / "sigstore-production-trusted_root.json"


@cache
def case(name: str) -> tuple[x509.Certificate, x509.Certificate, TrustedRoot]:
    """(the bundle's signing certificate, the trusted Fulcio certificate that issued it, the root)."""
    directory = SUITE / name
    bundle: dict[str, Any] = json.loads((directory / "bundle.sigstore.json").read_bytes())
    material = bundle["verificationMaterial"]
    raw = material.get("certificate") or material["x509CertificateChain"]["certificates"][0]
    leaf = x509.load_der_x509_certificate(base64.b64decode(raw["rawBytes"]))
    root_file = directory / "trusted_root.json"
    root = parse_trusted_root((root_file if root_file.exists() else PRODUCTION_ROOT).read_bytes())
    (issuer,) = {
        a.chain[0] for a in root.certificate_authorities if a.chain[0].subject == leaf.issuer
    }
    return leaf, issuer, root


def refusal(leaf: x509.Certificate, issuer: x509.Certificate, ctlogs: tuple[LogKey, ...]) -> str:
    with pytest.raises(DeterministicFailure) as caught:
        verify_embedded_sct(leaf, issuer, ctlogs)
    assert caught.value.reason is Reason.SIGNATURE_INVALID
    return caught.value.message


def sct_time(leaf: x509.Certificate) -> datetime:
    (sct,) = leaf.extensions.get_extension_for_class(
        x509.PrecertificateSignedCertificateTimestamps
    ).value
    moment: datetime = sct.timestamp
    return moment.replace(tzinfo=UTC)


# --- the conformance vectors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "happy-path-v0.3",  # production Fulcio and CT log
        "bundle-with-sct-with-extensions",  # a Static CT log: the extensions are signed too
        "rekor2-happy-path",  # staging
        "intoto-with-custom-trust-root",
    ],
)
def test_an_sct_from_a_trusted_log_verifies(name: str) -> None:
    leaf, issuer, root = case(name)
    verify_embedded_sct(leaf, issuer, root.ctlogs)


@pytest.mark.parametrize("name", ["invalid-ct-key_fail", "bundle-from-wrong-instance_fail"])
def test_an_sct_from_a_log_the_root_does_not_know_is_refused(name: str) -> None:
    leaf, issuer, root = case(name)
    (sct,) = leaf.extensions.get_extension_for_class(
        x509.PrecertificateSignedCertificateTimestamps
    ).value
    message = refusal(leaf, issuer, root.ctlogs)
    assert f"SCT 1 is from log {sct.log_id.hex()}, not a CT log of the trusted root" in message


def test_no_ct_log_trusts_nothing() -> None:
    leaf, issuer, _ = case("happy-path-v0.3")
    assert "not a CT log of the trusted root" in refusal(leaf, issuer, ())


def test_the_log_key_must_be_valid_at_the_sct_time_both_ends_included() -> None:
    leaf, issuer, root = case("happy-path-v0.3")
    log = root.ctlog(
        leaf.extensions.get_extension_for_class(x509.PrecertificateSignedCertificateTimestamps)
        .value[0]
        .log_id
    )
    assert log is not None
    moment = sct_time(leaf)
    for validity in (Validity(moment), Validity(moment - timedelta(days=1), moment)):
        verify_embedded_sct(leaf, issuer, (dataclasses.replace(log, validity=validity),))
    millisecond = timedelta(milliseconds=1)
    for validity in (
        Validity(moment + millisecond),
        Validity(moment - timedelta(days=1), moment - millisecond),
    ):
        message = refusal(leaf, issuer, (dataclasses.replace(log, validity=validity),))
        assert "outside the validity of https://ctfe.sigstore.dev/2022's key" in message


def test_the_log_s_own_key_must_verify() -> None:
    leaf, issuer, root = case("happy-path-v0.3")
    (sct,) = leaf.extensions.get_extension_for_class(
        x509.PrecertificateSignedCertificateTimestamps
    ).value
    other_key = next(
        k for k in root.ctlogs if k.log_id != sct.log_id and k.key_details.startswith("PKIX_ECDSA")
    )
    log = root.ctlog(sct.log_id)
    assert log is not None
    impostor = dataclasses.replace(other_key, log_id=sct.log_id, validity=log.validity)
    assert "SCT 1 does not verify under" in refusal(leaf, issuer, (impostor,))


def test_the_sct_binds_the_issuer_s_key() -> None:
    leaf, _, root = case("happy-path-v0.3")
    other_issuer = case("rekor2-happy-path")[1]
    assert "does not verify under https://ctfe.sigstore.dev/2022" in refusal(
        leaf, other_issuer, root.ctlogs
    )


def test_a_certificate_without_scts_is_refused() -> None:
    _, issuer, root = case("happy-path-v0.3")
    no_scts = case("rekor2-happy-path")[2].timestamp_authorities[0].chain[0]
    assert "has no embedded SCT" in refusal(no_scts, issuer, root.ctlogs)


# --- certificates with SCTs from a test CT log ---------------------------------------------------

SCT_LIST = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
SCT_TIME = datetime(2025, 3, 4, 5, 6, 7, 891000, tzinfo=UTC)
SHA256_ALGORITHM, SHA1_ALGORITHM, ECDSA_ALGORITHM, RSA_ALGORITHM = 4, 2, 3, 1


@dataclasses.dataclass(frozen=True)
class CtLog:
    key: ec.EllipticCurvePrivateKey

    @property
    def log_id(self) -> bytes:
        spki = self.key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        return hashlib.sha256(spki).digest()

    def trusted(self, **changes: Any) -> LogKey:
        fields: dict[str, Any] = {
            "base_url": "https://ct.test",
            "log_id": self.log_id,
            "key": self.key.public_key(),
            "key_details": "PKIX_ECDSA_P256_SHA_256",
            "validity": Validity(datetime(2025, 1, 1, tzinfo=UTC)),
        }
        return LogKey(**(fields | changes))

    def sct(
        self,
        precertificate: bytes,
        issuer_key_hash: bytes,
        *,
        extensions: bytes = b"",
        hash_algorithm: int = SHA256_ALGORITHM,
        signature_algorithm: int = ECDSA_ALGORITHM,
        signed_time: datetime = SCT_TIME,
        signed_extensions: bytes | None = None,
    ) -> bytes:
        """An SCT over the precertificate, signed as given (what is signed may differ from it)."""

        def milliseconds(moment: datetime) -> int:
            return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)

        signed = (
            struct.pack(">BBQH", 0, 0, milliseconds(signed_time), 1)
            + issuer_key_hash
            + len(precertificate).to_bytes(3, "big")
            + precertificate
            + struct.pack(">H", len(extensions if signed_extensions is None else signed_extensions))
            + (extensions if signed_extensions is None else signed_extensions)
        )
        signature = self.key.sign(signed, ec.ECDSA(hashes.SHA256()))
        return (
            b"\x00"
            + self.log_id
            + struct.pack(">QH", milliseconds(SCT_TIME), len(extensions))
            + extensions
            + bytes([hash_algorithm, signature_algorithm])
            + struct.pack(">H", len(signature))
            + signature
        )


@cache
def pki() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate, ec.EllipticCurvePrivateKey]:
    """(the CA's key, its certificate, the leaf's key)."""
    ca_key, leaf_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Fulcio")])
    ca = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(ca_key.public_key()).serial_number(1)
        .not_valid_before(datetime(2025, 1, 1, tzinfo=UTC)).not_valid_after(datetime(2026, 1, 1, tzinfo=UTC))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    return ca_key, ca, leaf_key


def leaf_with(extension_value: bytes) -> x509.Certificate:
    ca_key, ca, leaf_key = pki()
    leaf = (
        x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(ca.subject)
        .public_key(leaf_key.public_key()).serial_number(2)
        .not_valid_before(datetime(2025, 3, 4, tzinfo=UTC)).not_valid_after(datetime(2025, 3, 5, tzinfo=UTC))
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name("a@example.test")]), critical=True)
        .add_extension(x509.UnrecognizedExtension(SCT_LIST, extension_value), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    return x509.load_der_x509_certificate(leaf.public_bytes(Encoding.DER))


def sct_extension(*scts: bytes) -> bytes:
    body = b"".join(struct.pack(">H", len(s)) + s for s in scts)
    listed = struct.pack(">H", len(body)) + body
    size = len(listed)
    length = (
        bytes([size])
        if size < 0x80
        else bytes([0x81]) + bytes([size])
        if size < 0x100
        else b"\x82" + struct.pack(">H", size)
    )
    return b"\x04" + length + listed


def certificate_with(*make_scts: Any) -> x509.Certificate:
    """A leaf whose SCTs are made by `make_scts(precertificate, issuer_key_hash)`, each."""
    _, ca, _ = pki()
    placeholder = leaf_with(
        sct_extension(CtLog(ec.generate_private_key(ec.SECP256R1())).sct(b"", b""))
    )
    precertificate = placeholder.tbs_precertificate_bytes
    spki = ca.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    issuer_key_hash = hashlib.sha256(spki).digest()
    leaf = leaf_with(sct_extension(*(make(precertificate, issuer_key_hash) for make in make_scts)))
    assert leaf.tbs_precertificate_bytes == precertificate
    return leaf


@cache
def ct_logs() -> tuple[CtLog, CtLog]:
    return CtLog(ec.generate_private_key(ec.SECP256R1())), CtLog(
        ec.generate_private_key(ec.SECP256R1())
    )


@pytest.mark.parametrize("extensions", [b"", b"\x00\x00\x05\x00\x00\x00\x00\x07"])
def test_a_test_log_sct_verifies(extensions: bytes) -> None:
    log, _ = ct_logs()
    leaf = certificate_with(lambda p, h: log.sct(p, h, extensions=extensions))
    verify_embedded_sct(leaf, pki()[1], (log.trusted(),))
    assert sct_time(leaf) == SCT_TIME


def test_one_good_sct_is_enough() -> None:
    log, unknown = ct_logs()
    leaf = certificate_with(
        unknown.sct, lambda p, h: log.sct(p, h, signed_time=SCT_TIME - timedelta(1)), log.sct
    )
    verify_embedded_sct(leaf, pki()[1], (log.trusted(),))


def test_when_none_verifies_each_problem_is_named() -> None:
    log, unknown = ct_logs()
    leaf = certificate_with(
        unknown.sct, lambda p, h: log.sct(p, h, signed_time=SCT_TIME - timedelta(1))
    )
    message = refusal(leaf, pki()[1], (log.trusted(),))
    assert f"SCT 1 is from log {unknown.log_id.hex()}" in message
    assert "; SCT 2 does not verify under https://ct.test's key" in message


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"signed_time": SCT_TIME + timedelta(milliseconds=1)}, "does not verify"),
        (
            {"extensions": b"\x00\x00\x05\x00\x00\x00\x00\x07", "signed_extensions": b""},
            "does not verify",
        ),
        ({"signed_extensions": b"\x00\x00\x05\x00\x00\x00\x00\x07"}, "does not verify"),
        ({"hash_algorithm": SHA1_ALGORITHM}, "declares hash sha1; RFC 6962 requires SHA-256"),
        (
            {"signature_algorithm": RSA_ALGORITHM},
            "declares RSA, but https://ct.test signs otherwise",
        ),
    ],
)
def test_what_an_sct_may_not_do(options: dict[str, Any], message: str) -> None:
    log, _ = ct_logs()
    leaf = certificate_with(lambda p, h: log.sct(p, h, **options))
    assert message in refusal(leaf, pki()[1], (log.trusted(),))


def test_a_log_whose_key_is_not_ecdsa_or_rsa_cannot_vouch() -> None:
    log, _ = ct_logs()
    leaf = certificate_with(log.sct)
    edwards = log.trusted(
        key=ed25519.Ed25519PrivateKey.generate().public_key(), key_details="PKIX_ED25519"
    )
    assert "declares ECDSA, but https://ct.test signs otherwise" in refusal(
        leaf, pki()[1], (edwards,)
    )


def test_too_many_scts_are_refused() -> None:
    log, _ = ct_logs()
    leaf = certificate_with(*[log.sct] * (MAX_SCTS + 1))
    assert f"embeds {MAX_SCTS + 1} SCTs" in refusal(leaf, pki()[1], (log.trusted(),))


@pytest.mark.parametrize(
    "extension_value",
    [
        b"\x04\x03\x00\x05\x00",
        b"\x04\x00",
        b"garbage",
        b"\x04\x04\x00\x02\x00\x00",
    ],
)
def test_a_malformed_sct_list_is_refused(extension_value: bytes) -> None:
    log, _ = ct_logs()
    assert refusal(leaf_with(extension_value), pki()[1], (log.trusted(),))


def test_an_empty_sct_list_is_refused() -> None:
    log, _ = ct_logs()
    message = refusal(leaf_with(b"\x04\x02\x00\x00"), pki()[1], (log.trusted(),))
    assert "the certificate's SCT list is empty" in message


def test_a_precertificate_too_long_for_rfc_6962_is_refused() -> None:
    # 16 MiB and more cannot be framed with a 24-bit length (certificates are capped long before).
    log, _ = ct_logs()
    ca_key, ca, leaf_key = pki()
    filler = b"\x04\x84" + (1 << 24).to_bytes(4, "big") + bytes(1 << 24)
    leaf = (
        x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(ca.subject)
        .public_key(leaf_key.public_key()).serial_number(3)
        .not_valid_before(datetime(2025, 3, 4, tzinfo=UTC)).not_valid_after(datetime(2025, 3, 5, tzinfo=UTC))
        .add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier("1.2.3.4"), filler), critical=False)
        .add_extension(x509.UnrecognizedExtension(SCT_LIST, sct_extension(log.sct(b"", b""))), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    loaded = x509.load_der_x509_certificate(leaf.public_bytes(Encoding.DER))
    assert "too long for RFC 6962" in refusal(loaded, ca, (log.trusted(),))
