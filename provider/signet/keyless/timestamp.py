"""RFC 3161 signed timestamps: when a trusted timestamp authority (TSA) saw a signature.

`verify_timestamp(signed_timestamp, signature, authorities)` returns the time that one of the
trusted root's timestamp authorities vouches it saw `signature` at, or raises
`DeterministicFailure(SIGNATURE_INVALID)` saying why not. `signed_timestamp` is a DER
`TimeStampResp` (RFC 3161 §2.4.2): what a bundle's `rfc3161Timestamps[].signedTimestamp` and
cosign's `dev.sigstore.cosign/rfc3161timestamp` annotation hold, and all that sigstore-python and
sigstore-go accept (a bare TimeStampToken is refused, with a message saying so).

1. Parse it (at most 64 KiB, with `der`): the status is "granted" (0); the token is CMS SignedData
   (RFC 5652) that encapsulates a TSTInfo and has exactly one SignerInfo, with signed attributes.
2. The SignerInfo names its certificate (issuer and serial number, or subject key identifier).
   The candidates are the authorities whose leaf, `chain[0]`, it names. The trusted root is
   authoritative: a certificate embedded in the token is never trusted for itself, but when the
   token embeds any, the candidate's leaf must be one of them, byte for byte.
3. The candidate's chain is fit for timestamping (checked once per authority): the leaf is not a
   CA and its extended key usage is critical and exactly id-kp-timeStamping; each certificate is
   issued (name and signature) by the next, which is a CA; an intermediate's extended key usage,
   if it has one, allows timestamping. A chain of the leaf alone is refused, as the Sigstore
   clients refuse it.
4. The signed attributes: content-type is id-ct-TSTInfo; message-digest is the digest of the
   TSTInfo under the SignerInfo's digest algorithm (SHA-256/384/512); an ESSCertID (SHA-1) or
   ESSCertIDv2 (its hash, SHA-256 by default), when present, names the leaf by the hash of its
   DER. The signature over the attributes' DER verifies under the leaf's key (ECDSA, or RSA
   PKCS#1 v1.5) with the digest algorithm's hash.
5. The TSTInfo's messageImprint is the hash of exactly `signature`, under the imprint's own
   algorithm (SHA-256/384/512).
6. The genTime lies within the validity of every certificate of the chain (judged at genTime,
   not now: an expired chain still vouches for what it signed while valid) and within the
   authority's `validity`, both ends included. It is returned, as an aware UTC datetime.

Whether that time suits the signing certificate is for the caller to decide.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from signet.keyless import der
from signet.keyless.certificate import name_of
from signet.keyless.root import Authority
from signet.reasons import DeterministicFailure, Reason

__all__ = ["MAX_TIMESTAMP_BYTES", "verify_timestamp"]

MAX_TIMESTAMP_BYTES: Final = 64 * 1024

_SIGNED_DATA: Final = "1.2.840.113549.1.7.2"
_TST_INFO: Final = "1.2.840.113549.1.9.16.1.4"
_CONTENT_TYPE: Final = "1.2.840.113549.1.9.3"
_MESSAGE_DIGEST: Final = "1.2.840.113549.1.9.4"
_SIGNING_CERTIFICATE: Final = "1.2.840.113549.1.9.16.2.12"
_SIGNING_CERTIFICATE_V2: Final = "1.2.840.113549.1.9.16.2.47"
_HASHES: Final[dict[str, type[hashes.HashAlgorithm]]] = {
    "2.16.840.1.101.3.4.2.1": hashes.SHA256,
    "2.16.840.1.101.3.4.2.2": hashes.SHA384,
    "2.16.840.1.101.3.4.2.3": hashes.SHA512,
}
# signatureAlgorithm -> the hash it names (None: the key's algorithm alone, the digest's hash).
_ECDSA: Final[dict[str, type[hashes.HashAlgorithm] | None]] = {
    "1.2.840.10045.2.1": None,
    "1.2.840.10045.4.3.2": hashes.SHA256,
    "1.2.840.10045.4.3.3": hashes.SHA384,
    "1.2.840.10045.4.3.4": hashes.SHA512,
}
_RSA_PKCS1: Final[dict[str, type[hashes.HashAlgorithm] | None]] = {
    "1.2.840.113549.1.1.1": None,
    "1.2.840.113549.1.1.11": hashes.SHA256,
    "1.2.840.113549.1.1.12": hashes.SHA384,
    "1.2.840.113549.1.1.13": hashes.SHA512,
}


@dataclass(frozen=True, slots=True)
class _SignerInfo:
    issuer: bytes | None  # DER Name, with `serial_number`; or else `key_identifier`
    serial_number: int | None
    key_identifier: bytes | None
    digest: type[hashes.HashAlgorithm]
    signature_algorithm: str
    signed_attributes: bytes  # the DER (a SET OF) that the signature covers
    attributes: dict[str, list[der.Element]]
    signature: bytes


@dataclass(frozen=True, slots=True)
class _Token:
    signer: _SignerInfo
    embedded_certificates: tuple[bytes, ...]
    tst_info: bytes
    imprint_hash: type[hashes.HashAlgorithm]
    imprint: bytes
    gen_time: datetime


@dataclass(frozen=True, slots=True)
class _TrustedSigner:
    """An authority's leaf as a SignerInfo names it, and why its chain cannot vouch (if so)."""

    certificate: bytes
    issuer: bytes
    serial_number: int
    key_identifier: bytes | None
    unfit: str | None


def verify_timestamp(
    signed_timestamp: bytes, signature: bytes, authorities: Sequence[Authority]
) -> datetime:
    """The genTime of a timestamp over `signature` that a trusted authority signed."""
    if len(signed_timestamp) > MAX_TIMESTAMP_BYTES:
        raise _invalid(
            f"the timestamp is {len(signed_timestamp)} bytes; the limit is {MAX_TIMESTAMP_BYTES}"
        )
    try:
        token = _parse_response(signed_timestamp)
        candidates = [a for a in authorities if _names(token.signer, _trusted_signer(a))]
        if not candidates:
            raise _invalid(
                "the timestamp was not issued by a trusted timestamp authority "
                f"({_describe_signer(token)} is none of the trusted root's "
                f"{len(authorities)} timestamp authorities)"
            )
        failures = []
        for authority in candidates:
            try:
                _verify_with(token, signature, authority)
            except DeterministicFailure as failure:
                failures.append(failure)
            else:
                return token.gen_time
        raise failures[0]
    except der.DerError as exc:
        raise _invalid(f"the timestamp is not a well-formed RFC 3161 response: {exc}") from None
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise _invalid(f"the timestamp cannot be verified: {exc}") from None


def _verify_with(token: _Token, signature: bytes, authority: Authority) -> None:
    """Steps 2 to 6 for one candidate authority."""
    trusted = _trusted_signer(authority)
    name = authority.name or authority.uri or "the timestamp authority"
    if trusted.unfit is not None:
        raise _invalid(f"{name} cannot vouch for timestamps: {trusted.unfit}")
    if token.embedded_certificates and trusted.certificate not in token.embedded_certificates:
        raise _invalid(f"the timestamp embeds certificates, but not {name}'s trusted one")
    _verify_signed_attributes(token, trusted.certificate)
    _verify_signature(token.signer, authority.chain[0], name)
    if _digest(token.imprint_hash, signature) != token.imprint:
        raise _invalid("the timestamp covers another signature (its message imprint differs)")
    moment = token.gen_time
    for certificate in authority.chain:
        start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
        if not start <= moment <= end:
            raise _invalid(
                f"the timestamp's time {_iso(moment)} is outside the validity of "
                f"{name_of(certificate)} ({_iso(start)} to {_iso(end)})"
            )
    if not authority.validity.contains(moment):
        end_text = _iso(authority.validity.end) if authority.validity.end else "open"
        raise _invalid(
            f"the timestamp's time {_iso(moment)} is outside {name}'s validity in the trusted "
            f"root ({_iso(authority.validity.start)} to {end_text})"
        )


def _verify_signed_attributes(token: _Token, leaf_der: bytes) -> None:
    content_type = _single_attribute(token.signer, _CONTENT_TYPE, "content-type")
    if content_type is None or content_type.oid("content-type") != _TST_INFO:
        raise _invalid("the timestamp's signed attributes do not say the content is a TSTInfo")
    message_digest = _single_attribute(token.signer, _MESSAGE_DIGEST, "message-digest")
    if message_digest is None:
        raise _invalid("the timestamp's signed attributes have no message digest")
    if message_digest.octets("message-digest") != _digest(token.signer.digest, token.tst_info):
        raise _invalid("the timestamp's signed message digest is not that of its TSTInfo")
    version_1 = _single_attribute(token.signer, _SIGNING_CERTIFICATE, "signingCertificate")
    if version_1 is not None:
        cert_id = _first_cert_id(version_1, "ESSCertID")
        # ESSCertID is defined with SHA-1; it names a certificate, the signature is checked apart.
        expected = hashlib.sha1(leaf_der, usedforsecurity=False).digest()
        if cert_id.take(der.OCTET_STRING, "ESSCertID.certHash").content != expected:
            raise _invalid("the timestamp's ESSCertID names another certificate than the signer")
    version_2 = _single_attribute(token.signer, _SIGNING_CERTIFICATE_V2, "signingCertificateV2")
    if version_2 is not None:
        cert_id = _first_cert_id(version_2, "ESSCertIDv2")
        algorithm = cert_id.optional(der.SEQUENCE)
        hash_type = hashes.SHA256 if algorithm is None else _hash_of(algorithm, "ESSCertIDv2")
        certificate_hash = cert_id.take(der.OCTET_STRING, "ESSCertIDv2.certHash").content
        if certificate_hash != _digest(hash_type, leaf_der):
            raise _invalid("the timestamp's ESSCertIDv2 names another certificate than the signer")


def _verify_signature(signer: _SignerInfo, leaf: x509.Certificate, name: str) -> None:
    algorithm, key = signer.signature_algorithm, leaf.public_key()
    named_hash = _ECDSA.get(algorithm, _RSA_PKCS1.get(algorithm))
    if named_hash is not None and named_hash is not signer.digest:
        raise _invalid(f"the timestamp's signature algorithm {algorithm} hashes unlike its digest")
    try:
        if algorithm in _ECDSA and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signer.signature, signer.signed_attributes, ec.ECDSA(signer.digest()))
        elif algorithm in _RSA_PKCS1 and isinstance(key, rsa.RSAPublicKey):
            key.verify(
                signer.signature, signer.signed_attributes, padding.PKCS1v15(), signer.digest()
            )
        else:
            # ECDSA for an EC key, RSA PKCS#1 v1.5 for an RSA key; nothing else is supported.
            raise _invalid(f"the timestamp's signature algorithm {algorithm} does not suit {name}")
    except InvalidSignature:
        raise _invalid(f"the timestamp's signature does not verify under {name}'s key") from None


def _parse_response(data: bytes) -> _Token:
    elements = der.decode(data).expect(der.SEQUENCE, "TimeStampResp").children()
    if elements and elements[0].tag == der.OBJECT_IDENTIFIER:
        raise _invalid("the timestamp is a bare TimeStampToken; Sigstore expects a TimeStampResp")
    response = der.Reader(elements)
    status_info = response.take(der.SEQUENCE, "PKIStatusInfo").reader()
    status = status_info.take(der.INTEGER, "PKIStatus").integer("PKIStatus")
    if status != 0:
        raise _invalid(f"the timestamp authority did not grant the timestamp (status {status})")
    content_info = response.take(der.SEQUENCE, "timeStampToken").reader()
    if content_info.take(der.OBJECT_IDENTIFIER, "contentType").oid("contentType") != _SIGNED_DATA:
        raise _invalid("the timestamp's token is not CMS SignedData")
    content = content_info.take(der.context(0), "content").reader()
    signed_data = content.take(der.SEQUENCE, "SignedData").reader()
    signed_data.take(der.INTEGER, "SignedData.version")
    signed_data.take(der.SET, "digestAlgorithms")
    encapsulated = signed_data.take(der.SEQUENCE, "encapContentInfo").reader()
    if encapsulated.take(der.OBJECT_IDENTIFIER, "eContentType").oid("eContentType") != _TST_INFO:
        raise _invalid("the timestamp's token does not hold a TSTInfo")
    e_content = encapsulated.take(der.context(0), "eContent").reader()
    tst_info = e_content.take(der.OCTET_STRING, "eContent").content
    certificates = signed_data.optional(der.context(0))
    signed_data.optional(der.context(1))  # revocation information, not used
    signer_infos = signed_data.take(der.SET, "signerInfos").children()
    if len(signer_infos) != 1:
        raise _invalid(f"the timestamp has {len(signer_infos)} signers; RFC 3161 allows one")
    # Only X.509 certificates (SEQUENCE) can be the signer's; other CertificateChoices are skipped.
    choices = certificates.children() if certificates else []
    embedded = tuple(c.encoding for c in choices if c.tag == der.SEQUENCE)
    return _Token(_parse_signer_info(signer_infos[0]), embedded, tst_info, *_parse_tst(tst_info))


def _parse_signer_info(element: der.Element) -> _SignerInfo:
    fields = element.expect(der.SEQUENCE, "SignerInfo").reader()
    fields.take(der.INTEGER, "SignerInfo.version")
    issuer_and_serial = fields.optional(der.SEQUENCE)
    issuer, serial_number, key_identifier = None, None, None
    if issuer_and_serial is not None:
        sid = issuer_and_serial.reader()
        issuer = sid.take(der.SEQUENCE, "sid.issuer").encoding
        serial_number = sid.take(der.INTEGER, "sid.serialNumber").integer("sid.serialNumber")
    else:
        key_identifier = fields.take(der.context(0, constructed=False), "sid").content
    digest = _hash_of(fields.take(der.SEQUENCE, "digestAlgorithm"), "the SignerInfo's digest")
    signed = fields.optional(der.context(0))
    if signed is None:
        raise _invalid("the timestamp's signature has no signed attributes")
    signature_algorithm = _algorithm(fields.take(der.SEQUENCE, "signatureAlgorithm"))
    signature = fields.take(der.OCTET_STRING, "signature").content
    attributes: dict[str, list[der.Element]] = {}
    for attribute in signed.children():
        parts = attribute.expect(der.SEQUENCE, "Attribute").reader()
        attribute_type = parts.take(der.OBJECT_IDENTIFIER, "attrType").oid("attrType")
        if attribute_type in attributes:
            raise der.DerError(f"the signed attribute {attribute_type} appears twice")
        attributes[attribute_type] = parts.take(der.SET, "attrValues").children()
    # The signature covers the attributes' DER as a SET OF, not as the [0] that carries them.
    signed_attributes = bytes([der.SET]) + signed.encoding[1:]
    return _SignerInfo(
        issuer,
        serial_number,
        key_identifier,
        digest,
        signature_algorithm,
        signed_attributes,
        attributes,
        signature,
    )


def _parse_tst(tst_info: bytes) -> tuple[type[hashes.HashAlgorithm], bytes, datetime]:
    fields = der.decode(tst_info).expect(der.SEQUENCE, "TSTInfo").reader()
    version = fields.take(der.INTEGER, "TSTInfo.version").integer("TSTInfo.version")
    if version != 1:
        raise der.DerError(f"TSTInfo version {version}; RFC 3161 defines 1")
    fields.take(der.OBJECT_IDENTIFIER, "TSTInfo.policy")
    imprint = fields.take(der.SEQUENCE, "messageImprint").reader()
    imprint_hash = _hash_of(imprint.take(der.SEQUENCE, "hashAlgorithm"), "the message imprint")
    imprint_value = imprint.take(der.OCTET_STRING, "hashedMessage").content
    fields.take(der.INTEGER, "TSTInfo.serialNumber")
    gen_time = fields.take(der.GENERALIZED_TIME, "genTime").generalized_time("genTime")
    return imprint_hash, imprint_value, gen_time


@functools.lru_cache(maxsize=32)
def _trusted_signer(authority: Authority) -> _TrustedSigner:
    leaf = authority.chain[0]
    leaf_der = leaf.public_bytes(Encoding.DER)
    tbs = der.tbs_certificate(leaf_der)
    try:
        ski = leaf.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        ski = None
    return _TrustedSigner(leaf_der, tbs.issuer, tbs.serial_number, ski, _unfit(authority.chain))


def _unfit(chain: tuple[x509.Certificate, ...]) -> str | None:
    """Why this chain cannot vouch for a timestamp (step 3), or None."""
    if len(chain) < 2:
        return "its chain is the signing certificate alone, with no issuer"
    leaf = chain[0]
    if _is_ca(leaf):
        return "its signing certificate is a CA"
    try:
        usage = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        return "its signing certificate has no extended key usage"
    if not usage.critical or list(usage.value) != [ExtendedKeyUsageOID.TIME_STAMPING]:
        return "its signing certificate's extended key usage is not critical and timeStamping only"
    for certificate, issuer in itertools.pairwise(chain):
        subject, issuer_subject = (name_of(c) for c in (certificate, issuer))
        if not _is_ca(issuer):
            return f"{issuer_subject}, which issued {subject}, is not a CA"
        try:
            certificate.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            return f"{subject} is not issued by {issuer_subject}"
    for intermediate in chain[1:-1]:
        try:
            usages = intermediate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            continue
        allowed = {ExtendedKeyUsageOID.TIME_STAMPING, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE}
        if not allowed.intersection(usages):
            return f"{name_of(intermediate)} does not allow timestamping"
    return None


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _names(signer: _SignerInfo, trusted: _TrustedSigner) -> bool:
    if signer.key_identifier is not None:
        return signer.key_identifier == trusted.key_identifier
    return signer.issuer == trusted.issuer and signer.serial_number == trusted.serial_number


def _describe_signer(token: _Token) -> str:
    """The signer as a person would know it: its subject, when the token embeds its certificate."""
    signer = token.signer
    for embedded in token.embedded_certificates:
        tbs = der.tbs_certificate(embedded)
        if (tbs.issuer, tbs.serial_number) == (signer.issuer, signer.serial_number):
            try:
                return f"its signer {name_of(x509.load_der_x509_certificate(embedded))}"
            except (ValueError, x509.InvalidVersion):
                return "its signer (an unreadable certificate)"
    if signer.key_identifier is not None:
        return f"its signer (key identifier {signer.key_identifier.hex()})"
    return f"its signer (serial number {signer.serial_number:#x})"


def _single_attribute(signer: _SignerInfo, oid: str, what: str) -> der.Element | None:
    values = signer.attributes.get(oid)
    if values is not None and len(values) != 1:
        raise der.DerError(f"the {what} attribute has {len(values)} values")
    return values[0] if values else None


def _first_cert_id(value: der.Element, what: str) -> der.Reader:
    """The first certificate identifier, which RFC 5035 says is the signer's."""
    certificates = value.expect(der.SEQUENCE, what).reader().take(der.SEQUENCE, f"{what}s")
    identifiers = certificates.children()
    if not identifiers:
        raise der.DerError(f"the signing certificate attribute lists no {what}")
    return identifiers[0].expect(der.SEQUENCE, what).reader()


def _algorithm(identifier: der.Element) -> str:
    return identifier.reader().take(der.OBJECT_IDENTIFIER, "algorithm").oid("algorithm")


def _hash_of(identifier: der.Element, what: str) -> type[hashes.HashAlgorithm]:
    algorithm = _algorithm(identifier)
    if algorithm not in _HASHES:
        raise _invalid(f"{what} uses hash {algorithm}, not SHA-256, SHA-384 or SHA-512")
    return _HASHES[algorithm]


def _digest(algorithm: type[hashes.HashAlgorithm], data: bytes) -> bytes:
    digest = hashes.Hash(algorithm())
    digest.update(data)
    return digest.finalize()


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _invalid(message: str) -> DeterministicFailure:
    return DeterministicFailure(Reason.SIGNATURE_INVALID, message)
