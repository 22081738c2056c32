"""RFC 3161 timestamps (keyless/timestamp.py): the sigstore-conformance tokens, read in place from
shared/vectors, and tokens made here by a test TSA for the checks no vector isolates."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from signet.keyless import der
from signet.keyless.root import Authority, Validity, parse_trusted_root
from signet.keyless.timestamp import MAX_TIMESTAMP_BYTES, verify_timestamp
from signet.reasons import DeterministicFailure, Reason

VECTORS = Path(__file__).resolve().parents[3] / "shared" / "vectors"
SUITE = VECTORS / "sigstore-conformance" / "bundle-verify"
PRODUCTION_ROOT = VECTORS / "sigstore-production-trusted_root.json"


@cache
def case(name: str) -> tuple[bytes, bytes, tuple[Authority, ...]]:
    """(the bundle's first signed timestamp, the signature it must cover, the TSAs trusted)."""
    directory = SUITE / name
    bundle: dict[str, Any] = json.loads((directory / "bundle.sigstore.json").read_bytes())
    material = bundle["verificationMaterial"]["timestampVerificationData"]
    token = base64.b64decode(material["rfc3161Timestamps"][0]["signedTimestamp"])
    if "messageSignature" in bundle:
        signature = base64.b64decode(bundle["messageSignature"]["signature"])
    else:
        signature = base64.b64decode(bundle["dsseEnvelope"]["signatures"][0]["sig"])
    root_file = directory / "trusted_root.json"
    root = parse_trusted_root((root_file if root_file.exists() else PRODUCTION_ROOT).read_bytes())
    return token, signature, root.timestamp_authorities


def refusal(token: bytes, signature: bytes, authorities: tuple[Authority, ...]) -> str:
    with pytest.raises(DeterministicFailure) as caught:
        verify_timestamp(token, signature, authorities)
    assert caught.value.reason is Reason.SIGNATURE_INVALID
    return caught.value.message


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# --- the conformance vectors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "gen_time"),
    [
        ("rekor2-happy-path", "2025-06-12T12:02:20"),
        ("rekor2-timestamp-with-embedded-cert", "2025-08-06T18:51:36"),
        ("rekor2-timestamp-without-embedded-cert", "2025-08-06T19:03:51"),
        # The chain expired minutes after the token was made: it is judged at genTime.
        ("rekor2-timestamp-with-expired-cert-chain", "2025-08-07T15:32:26"),
        # genTime equals the end of the authority's validity, which is included.
        ("trust-root-tsa-validity-end-inclusive", "2025-06-12T12:02:20"),
        ("rekor2-dsse-happy-path", "2026-05-13T19:23:33"),
        ("intoto-with-custom-trust-root", "2023-02-01T00:00:00"),
        ("bundle-with-sct-with-extensions", "2026-01-15T22:49:26"),
        # These fail elsewhere: genTime outside the signing certificate's validity is the caller's
        # check; the timestamp itself is sound.
        ("rekor2-timestamp-with-incorrect-time_fail", "2025-07-15T10:33:31"),
        ("intoto-tsa-timestamp-outside-cert-validity_fail", "2023-02-02T00:00:00"),
    ],
)
def test_a_sound_timestamp_gives_its_time(name: str, gen_time: str) -> None:
    moment = verify_timestamp(*case(name))
    assert moment == utc(gen_time)
    assert moment.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("rekor2-timestamp-payload-mismatch_fail", "the timestamp covers another signature"),
        (
            "rekor2-timestamp-untrusted-tsa-with-embedded-cert_fail",
            "not issued by a trusted timestamp authority (its signer ST=Bayern",
        ),
        (
            "rekor2-timestamp-untrusted-tsa-without-embedded-cert_fail",
            "not issued by a trusted timestamp authority (its signer (serial number 0xc1e9",
        ),
        (
            "rekor2-timestamp-outside-tsa-cert-validity_fail",
            "time 2025-08-07T15:38:32Z is outside the validity of CN=Test TSA Timestamping,O=local",
        ),
        (
            "rekor2-timestamp-outside-trust-root-tsa-validity_fail",
            "time 2025-06-12T12:02:20Z is outside sigstore.dev/sigstore-tsa-selfsigned's validity",
        ),
    ],
)
def test_a_failing_vector_is_refused_for_its_reason(name: str, message: str) -> None:
    assert message in refusal(*case(name))


def test_the_signature_must_be_exactly_the_one_stamped() -> None:
    token, signature, authorities = case("rekor2-happy-path")
    for other in (signature + b"\x00", signature[:-1], b"", case("rekor2-dsse-happy-path")[1]):
        assert "covers another signature" in refusal(token, other, authorities)


def test_no_authority_trusts_nothing() -> None:
    token, signature, _ = case("rekor2-happy-path")
    assert "not issued by a trusted timestamp authority" in refusal(token, signature, ())


def test_the_authority_must_be_valid_at_gen_time_both_ends_included() -> None:
    token, signature, (authority,) = case("rekor2-happy-path")
    gen_time = utc("2025-06-12T12:02:20")
    starts_then = dataclasses.replace(authority, validity=Validity(gen_time))
    assert verify_timestamp(token, signature, (starts_then,)) == gen_time
    later = dataclasses.replace(authority, validity=Validity(gen_time + timedelta(seconds=1)))
    assert "outside" in refusal(token, signature, (later,))
    ended = Validity(gen_time - timedelta(days=1), gen_time - timedelta(seconds=1))
    assert "outside" in refusal(token, signature, (dataclasses.replace(authority, validity=ended),))


def test_the_first_authority_that_vouches_is_enough() -> None:
    token, signature, (authority,) = case("rekor2-happy-path")
    (other,) = case("intoto-with-custom-trust-root")[2]
    assert verify_timestamp(token, signature, (other, authority)) == utc("2025-06-12T12:02:20")


def test_a_broken_trusted_chain_cannot_vouch() -> None:
    token, signature, (authority,) = case("rekor2-happy-path")
    (other,) = case("intoto-with-custom-trust-root")[2]
    alone = dataclasses.replace(authority, chain=authority.chain[:1])
    assert "the signing certificate alone" in refusal(token, signature, (alone,))
    foreign_root = dataclasses.replace(authority, chain=(authority.chain[0], other.chain[-1]))
    assert "is not issued by O=sigstore.mock,CN=tsa" in refusal(token, signature, (foreign_root,))


def test_an_embedded_certificate_must_be_the_trusted_one() -> None:
    # The token embeds the sigstore TSA leaf; trusting another leaf with the same issuer and
    # serial would need that CA's key, so this is checked with the test TSA below as well.
    token, signature, (authority,) = case("rekor2-timestamp-with-embedded-cert")
    (mock,) = case("intoto-with-custom-trust-root")[2]
    assert "not issued by" in refusal(token, signature, (mock,))
    assert verify_timestamp(token, signature, (authority,)) == utc("2025-08-06T18:51:36")


# --- mutations of a real token -------------------------------------------------------------------


def tst_info_span(token: bytes) -> tuple[int, int]:
    """Where the signed TSTInfo lies in a TimeStampResp."""
    content_info = der.decode(token).children()[1]
    signed_data = content_info.children()[1].children()[0]
    tst_info = signed_data.children()[2].children()[1].children()[0].content
    start = token.find(tst_info)
    return start, start + len(tst_info)


def test_every_flipped_byte_is_refused_or_harmless() -> None:
    token, signature, authorities = case("rekor2-happy-path")
    gen_time = verify_timestamp(token, signature, authorities)
    start, end = tst_info_span(token)
    harmless = []
    for position in range(len(token)):
        flipped = bytearray(token)
        flipped[position] ^= 0x01
        try:
            moment = verify_timestamp(bytes(flipped), signature, authorities)
        except DeterministicFailure as failure:
            assert failure.reason is Reason.SIGNATURE_INVALID
        else:
            assert moment == gen_time
            harmless.append(position)
    # What is not verified (versions, the unsigned list of digest algorithms) may change; the
    # TSTInfo may not, by one bit.
    assert not [p for p in harmless if start <= p < end]
    assert len(harmless) < len(token) // 20


def test_every_truncation_is_refused() -> None:
    token, signature, authorities = case("rekor2-timestamp-without-embedded-cert")
    for length in range(len(token)):
        assert refusal(token[:length], signature, authorities)


@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b"\x00",
        b"\x30",
        b"\x30\x80\x00\x00",  # BER indefinite length
        b"\x30\x85\x01\x00\x00\x00\x00",  # a 5-octet length
        b"\x30\x81\x05\x02\x01\x00\x02\x00",  # a length not in its shortest form
        b"\x1f\x81\x00",  # a multi-octet tag
        b"\x30" + b"\x84\xff\xff\xff\xff",  # claims 4 GiB
        b"\x30\x03\x30\x01\x02",
        b"\x30\x00",
        b"{}",
        bytes(random.Random(3161).randrange(256) for _ in range(2000)),
        b"\x30\x82\x10\x00" + b"\x30\x82\x0f\xfc" + b"\x30\x00" * 2046,  # many empty elements
    ],
)
def test_garbage_is_refused_as_an_invalid_signature(garbage: bytes) -> None:
    assert refusal(garbage, b"signature", case("rekor2-happy-path")[2])


def test_a_token_too_large_is_refused_before_parsing() -> None:
    token, signature, authorities = case("rekor2-happy-path")
    padded = token + b"\x00" * (MAX_TIMESTAMP_BYTES - len(token) + 1)
    assert "the limit is 65536" in refusal(padded, signature, authorities)


def test_trailing_bytes_are_refused() -> None:
    token, signature, authorities = case("rekor2-happy-path")
    assert "after the end" in refusal(token + b"\x00", signature, authorities)


def test_a_bare_token_is_not_a_response() -> None:
    token, signature, authorities = case("rekor2-happy-path")
    bare = der.decode(token).children()[1].encoding
    assert "bare TimeStampToken" in refusal(bare, signature, authorities)


# --- tokens from a test TSA ----------------------------------------------------------------------

SHA256, SHA384, SHA512 = (
    "2.16.840.1.101.3.4.2.1",
    "2.16.840.1.101.3.4.2.2",
    "2.16.840.1.101.3.4.2.3",
)
SHA1 = "1.3.14.3.2.26"
TST_INFO = "1.2.840.113549.1.9.16.1.4"
CONTENT_TYPE, MESSAGE_DIGEST = "1.2.840.113549.1.9.3", "1.2.840.113549.1.9.4"
ECDSA_SHA256 = "1.2.840.10045.4.3.2"
RSA_ENCRYPTION = "1.2.840.113549.1.1.1"
GEN_TIME = datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
SIGNATURE = b"the signature that was timestamped"


def tlv(tag: int, content: bytes) -> bytes:
    size = len(content)
    length = bytes([size]) if size < 0x80 else bytes([0x80 | ((size.bit_length() + 7) // 8)])
    if size >= 0x80:
        length += size.to_bytes(length[0] & 0x7F, "big")
    return bytes([tag]) + length + content


def seq(*parts: bytes) -> bytes:
    return tlv(0x30, b"".join(parts))


def set_of(*parts: bytes) -> bytes:
    return tlv(0x31, b"".join(sorted(parts)))


def integer(value: int) -> bytes:
    return tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True))


def oid(dotted: str) -> bytes:
    first, second, *rest = (int(a) for a in dotted.split("."))
    body = b""
    for arc in (40 * first + second, *rest):
        chunk = [arc & 0x7F]
        while arc := arc >> 7:
            chunk.insert(0, 0x80 | (arc & 0x7F))
        body += bytes(chunk)
    return tlv(0x06, body)


def algorithm(dotted: str) -> bytes:
    return seq(oid(dotted))


def digest(hash_oid: str, data: bytes) -> bytes:
    name = {SHA256: "sha256", SHA384: "sha384", SHA512: "sha512", SHA1: "sha1"}[hash_oid]
    return hashlib.new(name, data).digest()


SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclasses.dataclass
class Tsa:
    key: SigningKey
    leaf: x509.Certificate
    chain: tuple[x509.Certificate, ...]

    def authority(self, **changes: Any) -> Authority:
        fields: dict[str, Any] = {
            "name": "test/tsa",
            "uri": "https://tsa.test",
            "chain": self.chain,
            "validity": Validity(datetime(2024, 6, 1, tzinfo=UTC)),
        }
        return Authority(**(fields | changes))


def certificate(
    subject: str,
    key: SigningKey,
    issuer: tuple[str, SigningKey] | None = None,
    *,
    ca: bool = False,
    usages: list[x509.ObjectIdentifier] | None = None,
    usages_critical: bool = True,
    serial: int = 1000,
) -> x509.Certificate:
    issuer_name, issuer_key = issuer or (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(datetime(2024, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2026, 1, 1, tzinfo=UTC))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if usages is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=usages_critical)
    return builder.sign(issuer_key, hashes.SHA256())


@cache
def keys() -> tuple[ec.EllipticCurvePrivateKey, ...]:
    return tuple(ec.generate_private_key(ec.SECP256R1()) for _ in range(4))


def make_tsa(
    *,
    leaf_usages: list[x509.ObjectIdentifier] | None = None,
    leaf_usages_critical: bool = True,
    leaf_ca: bool = False,
    intermediate_usages: list[x509.ObjectIdentifier] | None = None,
    leaf_key: SigningKey | None = None,
) -> Tsa:
    root_key, intermediate_key, default_leaf_key, _ = keys()
    key = leaf_key or default_leaf_key
    root = certificate("Test Root", root_key, ca=True)
    intermediate = certificate(
        "Test Intermediate", intermediate_key, ("Test Root", root_key), ca=True,
        usages=intermediate_usages,
    )  # fmt: skip
    leaf = certificate(
        "Test TSA", key, ("Test Intermediate", intermediate_key), ca=leaf_ca,
        usages=[ExtendedKeyUsageOID.TIME_STAMPING] if leaf_usages is None else leaf_usages,
        usages_critical=leaf_usages_critical,
    )  # fmt: skip
    return Tsa(key, leaf, (leaf, intermediate, root))


def response(
    tsa: Tsa,
    *,
    stamped: bytes = SIGNATURE,
    imprint_hash: str = SHA256,
    digest_hash: str = SHA256,
    signature_algorithm: str | None = None,
    gen_time: bytes | None = None,
    status: int = 0,
    content_type: str = TST_INFO,
    message_digest: bytes | None = None,
    ess: str = "v2",
    ess_certificate: x509.Certificate | None = None,
    by_key_identifier: bool = False,
    embedded: tuple[x509.Certificate, ...] = (),
    signers: int = 1,
    signed_attributes: bool = True,
    tst_version: int = 1,
    omit_attribute: str | None = None,
    extra_attribute: bytes | None = None,
    content_info_type: str = "1.2.840.113549.1.7.2",
    e_content_type: str = TST_INFO,
) -> bytes:
    """A TimeStampResp as a TSA makes it, with one thing or another changed."""
    gen_time = gen_time or b"20250102030405.678Z"
    tst_info = seq(
        integer(tst_version), oid("1.2.3.4"), seq(algorithm(imprint_hash), tlv(0x04, digest(imprint_hash, stamped))),
        integer(42), tlv(0x18, gen_time),
    )  # fmt: skip
    named = (ess_certificate or tsa.leaf).public_bytes(Encoding.DER)
    attributes = [
        seq(oid(CONTENT_TYPE), set_of(oid(content_type))),
        seq(oid(MESSAGE_DIGEST), set_of(tlv(0x04, message_digest or digest(digest_hash, tst_info)))),
    ]  # fmt: skip
    if ess == "v2":
        cert_id = seq(tlv(0x04, digest(SHA256, named)))
        attributes.append(seq(oid("1.2.840.113549.1.9.16.2.47"), set_of(seq(seq(cert_id)))))
    elif ess == "v2-sha512":
        cert_id = seq(algorithm(SHA512), tlv(0x04, digest(SHA512, named)))
        attributes.append(seq(oid("1.2.840.113549.1.9.16.2.47"), set_of(seq(seq(cert_id)))))
    elif ess == "v2-second":  # the signer's identifier after another one
        other = seq(tlv(0x04, digest(SHA256, tsa.chain[1].public_bytes(Encoding.DER))))
        cert_id = seq(tlv(0x04, digest(SHA256, named)))
        attributes.append(seq(oid("1.2.840.113549.1.9.16.2.47"), set_of(seq(seq(other, cert_id)))))
    elif ess == "v1":
        cert_id = seq(tlv(0x04, digest(SHA1, named)))
        attributes.append(seq(oid("1.2.840.113549.1.9.16.2.12"), set_of(seq(seq(cert_id)))))
    attributes = [a for a in attributes if omit_attribute is None or oid(omit_attribute) not in a]
    signed = set_of(*attributes, *([extra_attribute] if extra_attribute else []))
    hash_algorithm: hashes.HashAlgorithm = {
        SHA256: hashes.SHA256(), SHA384: hashes.SHA384(), SHA512: hashes.SHA512()
    }[digest_hash]  # fmt: skip
    if isinstance(tsa.key, ec.EllipticCurvePrivateKey):
        signature = tsa.key.sign(signed, ec.ECDSA(hash_algorithm))
        signature_algorithm = signature_algorithm or "1.2.840.10045.2.1"
    else:
        signature = tsa.key.sign(signed, padding.PKCS1v15(), hash_algorithm)
        signature_algorithm = signature_algorithm or RSA_ENCRYPTION
    if by_key_identifier:
        ski = tsa.leaf.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        sid = tlv(0x80, ski)
    else:
        sid = seq(tsa.leaf.issuer.public_bytes(), integer(tsa.leaf.serial_number))
    signer_info = seq(
        integer(1), sid, algorithm(digest_hash),
        (tlv(0xA0, signed[2 if signed[1] < 0x80 else 2 + (signed[1] & 0x7F):]) if signed_attributes else b""),
        algorithm(signature_algorithm), tlv(0x04, signature),
    )  # fmt: skip
    certificates = b"".join(c.public_bytes(Encoding.DER) for c in embedded)
    signed_data = seq(
        integer(3), set_of(algorithm(digest_hash)),
        seq(oid(e_content_type), tlv(0xA0, tlv(0x04, tst_info))),
        tlv(0xA0, certificates) if embedded else b"",
        set_of(*[signer_info] * signers),
    )  # fmt: skip
    token = seq(oid(content_info_type), tlv(0xA0, signed_data))
    return seq(seq(integer(status)), token)


def test_a_test_tsa_token_verifies() -> None:
    tsa = make_tsa()
    assert verify_timestamp(response(tsa), SIGNATURE, (tsa.authority(),)) == GEN_TIME


@pytest.mark.parametrize(
    "variant",
    [
        {"imprint_hash": SHA384},
        {"imprint_hash": SHA512, "digest_hash": SHA384},
        {"digest_hash": SHA512, "signature_algorithm": "1.2.840.10045.4.3.4"},
        {"signature_algorithm": ECDSA_SHA256},
        {"ess": "v1"},
        {"ess": "v2-sha512"},
        {"ess": "none"},
        {"by_key_identifier": True},
        {"embedded": "chain"},
        {"gen_time": b"20250102030405.678123456Z"},
        {"gen_time": b"20260101000000Z"},  # the leaf's notAfter, which is included
    ],
    ids=str,
)
def test_what_a_tsa_may_choose(variant: dict[str, Any]) -> None:
    tsa = make_tsa()
    if variant.get("embedded") == "chain":
        variant = {"embedded": tsa.chain}
    expected = {
        b"20250102030405.678123456Z": GEN_TIME.replace(microsecond=678123),
        b"20260101000000Z": datetime(2026, 1, 1, tzinfo=UTC),
    }.get(variant.get("gen_time", b""), GEN_TIME)
    assert verify_timestamp(response(tsa, **variant), SIGNATURE, (tsa.authority(),)) == expected


def test_an_rsa_tsa_verifies() -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    tsa = make_tsa(leaf_key=rsa_key)
    for signature_algorithm in (RSA_ENCRYPTION, "1.2.840.113549.1.1.11"):
        token = response(tsa, signature_algorithm=signature_algorithm)
        assert verify_timestamp(token, SIGNATURE, (tsa.authority(),)) == GEN_TIME


Variant = dict[str, Any] | Callable[[Tsa], dict[str, Any]]


@pytest.mark.parametrize(
    ("variant", "message"),
    [
        ({"stamped": b"another signature"}, "covers another signature"),
        ({"imprint_hash": SHA1}, "the message imprint uses hash 1.3.14.3.2.26"),
        ({"status": 2}, "did not grant the timestamp (status 2)"),
        ({"content_type": "1.2.840.113549.1.7.1"}, "do not say the content is a TSTInfo"),
        ({"message_digest": b"\x00" * 32}, "signed message digest is not that of its TSTInfo"),
        ({"signature_algorithm": "1.2.840.10045.4.3.3"}, "hashes unlike its digest"),
        ({"signature_algorithm": "1.3.101.112"}, "1.3.101.112 does not suit test/tsa"),
        (
            {"signature_algorithm": RSA_ENCRYPTION},
            "1.2.840.113549.1.1.1 does not suit test/tsa",
        ),
        ({"signers": 2}, "has 2 signers"),
        ({"tst_version": 2}, "TSTInfo version 2; RFC 3161 defines 1"),
        (
            {"content_info_type": "1.2.840.113549.1.7.1"},
            "the timestamp's token is not CMS SignedData",
        ),
        (
            {"e_content_type": "1.2.840.113549.1.7.1"},
            "the timestamp's token does not hold a TSTInfo",
        ),
        ({"ess": "v2-second"}, "ESSCertIDv2 names another certificate"),
        ({"omit_attribute": CONTENT_TYPE}, "do not say the content is a TSTInfo"),
        ({"omit_attribute": MESSAGE_DIGEST}, "have no message digest"),
        (
            {"extra_attribute": seq(oid(CONTENT_TYPE), set_of(oid(TST_INFO)))},
            "the signed attribute 1.2.840.113549.1.9.3 appears twice",
        ),
        (
            {
                "omit_attribute": MESSAGE_DIGEST,
                "extra_attribute": seq(
                    oid(MESSAGE_DIGEST), set_of(tlv(0x04, b"a"), tlv(0x04, b"b"))
                ),
            },
            "the message-digest attribute has 2 values",
        ),
        ({"signed_attributes": False}, "has no signed attributes"),
        ({"gen_time": b"20250102030405+0100"}, "not a GeneralizedTime in UTC"),
        ({"gen_time": b"20251302030405Z"}, "is not a date"),
        ({"gen_time": b"20270102030405Z"}, "outside the validity of CN=Test TSA"),
        ({"gen_time": b"20240501000000Z"}, "outside test/tsa's validity in the trusted root"),
        (lambda tsa: {"ess_certificate": tsa.chain[1]}, "ESSCertIDv2 names another certificate"),
        (
            lambda tsa: {"ess": "v2-sha512", "ess_certificate": tsa.chain[2]},
            "ESSCertIDv2 names another certificate",
        ),
        (lambda tsa: {"ess": "v1", "ess_certificate": tsa.chain[1]}, "ESSCertID names another"),
        (
            lambda tsa: {"embedded": tsa.chain[1:]},
            "embeds certificates, but not test/tsa's trusted one",
        ),
    ],
)
def test_what_a_token_may_not_do(variant: Variant, message: str) -> None:
    tsa = make_tsa()
    changes = variant(tsa) if callable(variant) else variant
    assert message in refusal(response(tsa, **changes), SIGNATURE, (tsa.authority(),))


def test_an_embedded_impostor_with_the_trusted_name_is_refused() -> None:
    # Same issuer and serial number as the trusted leaf, another key: the token names the trusted
    # leaf, but what it embeds is not that leaf.
    tsa = make_tsa()
    impostor_key = keys()[3]
    impostor = certificate(
        "Test TSA", impostor_key, ("Test Intermediate", keys()[1]),
        usages=[ExtendedKeyUsageOID.TIME_STAMPING],
    )  # fmt: skip
    forged = response(Tsa(impostor_key, impostor, tsa.chain), embedded=(impostor,))
    assert "embeds certificates, but not test/tsa's trusted one" in refusal(
        forged, SIGNATURE, (tsa.authority(),)
    )
    # Without embedding anything, the signature is checked under the trusted leaf's key.
    bare = response(Tsa(impostor_key, impostor, tsa.chain), ess="none")
    assert "signature does not verify under test/tsa's key" in refusal(
        bare, SIGNATURE, (tsa.authority(),)
    )


@pytest.mark.parametrize(
    ("tsa_options", "message"),
    [
        (
            {"leaf_usages": [ExtendedKeyUsageOID.CODE_SIGNING]},
            "is not critical and timeStamping only",
        ),
        (
            {"leaf_usages": [ExtendedKeyUsageOID.TIME_STAMPING, ExtendedKeyUsageOID.CODE_SIGNING]},
            "is not critical and timeStamping only",
        ),
        ({"leaf_usages_critical": False}, "is not critical and timeStamping only"),
        ({"leaf_ca": True}, "its signing certificate is a CA"),
        (
            {"intermediate_usages": [ExtendedKeyUsageOID.CODE_SIGNING]},
            "CN=Test Intermediate does not allow timestamping",
        ),
    ],
)
def test_a_chain_unfit_for_timestamping_cannot_vouch(
    tsa_options: dict[str, Any], message: str
) -> None:
    tsa = make_tsa(**tsa_options)
    assert message in refusal(response(tsa), SIGNATURE, (tsa.authority(),))


def test_a_trusted_certificate_that_cannot_be_read_fails_as_a_refusal() -> None:
    # An empty extended key usage is not DER that cryptography reads.
    tsa = make_tsa(leaf_usages=[])
    assert "the timestamp cannot be verified" in refusal(
        response(tsa), SIGNATURE, (tsa.authority(),)
    )


def test_a_leaf_without_extended_key_usage_cannot_vouch() -> None:
    _, intermediate_key, leaf_key, _ = keys()
    tsa = make_tsa()
    leaf = certificate("Test TSA", leaf_key, ("Test Intermediate", intermediate_key))
    unfit = Tsa(leaf_key, leaf, (leaf, *tsa.chain[1:]))
    assert "has no extended key usage" in refusal(response(unfit), SIGNATURE, (unfit.authority(),))


def test_an_intermediate_that_is_not_a_ca_cannot_issue() -> None:
    root_key, intermediate_key, leaf_key, _ = keys()
    tsa = make_tsa()
    not_ca = certificate("Test Intermediate", intermediate_key, ("Test Root", root_key))
    broken = Tsa(leaf_key, tsa.leaf, (tsa.leaf, not_ca, tsa.chain[2]))
    assert "CN=Test Intermediate, which issued CN=Test TSA, is not a CA" in refusal(
        response(broken), SIGNATURE, (broken.authority(),)
    )


def test_a_signer_named_like_a_trusted_one_is_not_it() -> None:
    tsa = make_tsa()
    other_key = keys()[3]
    # The same serial number from another issuer; then the same key identifier lookup by SKI.
    other = certificate(
        "Test TSA", other_key, ("Other Intermediate", keys()[1]),
        usages=[ExtendedKeyUsageOID.TIME_STAMPING],
    )  # fmt: skip
    stranger = Tsa(other_key, other, tsa.chain)
    for token in (response(stranger), response(stranger, by_key_identifier=True)):
        assert "not issued by a trusted timestamp authority" in refusal(
            token, SIGNATURE, (tsa.authority(),)
        )


@pytest.mark.parametrize(
    ("encoding", "message"),
    [
        (b"\x30\x80\x00\x00", "an indefinite length"),
        (b"\x30\x85\x01\x00\x00\x00\x00", "a length of 5 octets"),
        (b"\x30\x81\x05\x02\x01\x00\x02\x00", "a length not in its shortest form"),
        (b"\x30\x82\x00\x85" + b"\x00" * 0x85, "a length not in its shortest form"),
        (b"\x1f\x81\x00", "a multi-octet tag"),
        (b"\x30\x05\x02\x01", "truncated"),
        (b"\x30\x84", "truncated inside a length"),
        (b"\x30\x00\x00", "1 octets after the end"),
    ],
)
def test_der_refuses_what_is_not_der(encoding: bytes, message: str) -> None:
    with pytest.raises(der.DerError, match=message):
        der.decode(encoding)


@pytest.mark.parametrize(
    ("encoding", "read", "message"),
    [
        (b"\x02\x02\x00\x05", "integer", "not in its shortest form"),
        (b"\x02\x02\xff\x85", "integer", "not in its shortest form"),
        (b"\x02\x00", "integer", "an integer of 0 octets"),
        (b"\x06\x02\x80\x01", "oid", "not in its shortest form"),
        (b"\x06\x01\x81", "oid", "a malformed object identifier"),
        (b"\x18\x0f" + b"20250102030405Z"[:-1] + b"+", "generalized_time", "not a GeneralizedTime"),
        (b"\x02\x01\x00", "children", "is primitive"),
    ],
)
def test_der_scalars_are_checked(encoding: bytes, read: str, message: str) -> None:
    with pytest.raises(der.DerError, match=message):
        element = der.decode(encoding)
        getattr(element, read)(*(() if read == "children" else ("field",)))


def test_der_caps_the_elements_of_one_structure() -> None:
    many = der.decode(b"\x30\x82\x02\x02" + b"\x05\x00" * 257)
    with pytest.raises(der.DerError, match="more than 256 elements"):
        many.children()
    assert len(der.decode(b"\x30\x82\x02\x00" + b"\x05\x00" * 256).children()) == 256


def test_der_reads_oids_integers_and_times() -> None:
    assert der.decode(oid(TST_INFO)).oid("x") == TST_INFO
    assert der.decode(oid("2.999.3")).oid("x") == "2.999.3"
    assert der.decode(integer(-129)).integer("x") == -129
    assert der.decode(integer(2**64)).integer("x") == 2**64
    moment = der.decode(tlv(0x18, b"20250102030405.5Z")).generalized_time("x")
    assert moment == datetime(2025, 1, 2, 3, 4, 5, 500000, tzinfo=UTC)
