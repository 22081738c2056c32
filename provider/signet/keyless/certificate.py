"""A Fulcio signing certificate: its chain to a trusted CA at a trusted time, and whose it is.

`verify_chain` judges the certificate at a moment the caller has already established (a signed
timestamp or a transparency log's signed integration time), never at "now": Fulcio certificates
live ten minutes, and a signature stays good long after. The trusted root's chain is the only
source of CA certificates; certificates the evidence carries beyond the leaf are never trusted.

1. The leaf is an end-entity code-signing certificate: not a CA, `digitalSignature` key usage,
   the `codeSigning` extended key usage.
2. Some CA of the trusted root issued it directly (name and signature), that CA was trusted at
   the moment (its `validFor`), and every certificate from the leaf to the CA's root was valid
   then.

`signing_identity` reads who Fulcio certified: the one subject alternative name (an e-mail
address, a URI such as a CI workflow, or Fulcio's username other-name), the OIDC issuer
(extension `1.3.6.1.4.1.57264.1.8`, or the deprecated `.1.1`), and the CI claims Fulcio copies
from the identity token (`.1.9`-`.1.22`, and the deprecated GitHub `.1.2`-`.1.6`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

from signet.keyless.root import Authority
from signet.reasons import DeterministicFailure, Reason

__all__ = [
    "CLAIMS",
    "Identity",
    "load_certificate",
    "name_of",
    "signing_identity",
    "verify_chain",
]

_FULCIO: Final = "1.3.6.1.4.1.57264.1."
_ISSUER_V1: Final = ObjectIdentifier(_FULCIO + "1")
_ISSUER_V2: Final = ObjectIdentifier(_FULCIO + "8")
_USERNAME: Final = ObjectIdentifier(_FULCIO + "7")
# Claim name -> (OID suffix, DER-encoded?). The names are Fulcio's (docs/oid-info.md).
CLAIMS: Final = {
    "githubWorkflowTrigger": ("2", False),
    "githubWorkflowSha": ("3", False),
    "githubWorkflowName": ("4", False),
    "githubWorkflowRepository": ("5", False),
    "githubWorkflowRef": ("6", False),
    "buildSignerURI": ("9", True),
    "buildSignerDigest": ("10", True),
    "runnerEnvironment": ("11", True),
    "sourceRepositoryURI": ("12", True),
    "sourceRepositoryDigest": ("13", True),
    "sourceRepositoryRef": ("14", True),
    "sourceRepositoryIdentifier": ("15", True),
    "sourceRepositoryOwnerURI": ("16", True),
    "sourceRepositoryOwnerIdentifier": ("17", True),
    "buildConfigURI": ("18", True),
    "buildConfigDigest": ("19", True),
    "buildTrigger": ("20", True),
    "runInvocationURI": ("21", True),
    "sourceRepositoryVisibilityAtSigning": ("22", True),
}
_MAX_CERTIFICATE_BYTES: Final = 32 * 1024
_UTF8_STRING: Final = 0x0C


@dataclass(frozen=True, slots=True)
class Identity:
    subject: str
    issuer: str
    claims: tuple[tuple[str, str], ...] = ()

    def claim(self, name: str) -> str | None:
        return dict(self.claims).get(name)


def load_certificate(der: bytes, what: str = "the signing certificate") -> x509.Certificate:
    if len(der) > _MAX_CERTIFICATE_BYTES:
        raise _invalid(f"{what} is {len(der)} bytes; the limit is {_MAX_CERTIFICATE_BYTES}")
    try:
        return x509.load_der_x509_certificate(der)
    except (ValueError, x509.InvalidVersion):
        raise _invalid(f"{what} is not a DER X.509 certificate") from None


def verify_chain(
    leaf: x509.Certificate, authorities: tuple[Authority, ...], moment: datetime
) -> Authority:
    """The trusted CA that issued `leaf`, all of it valid at `moment`. A certificate no trusted
    CA issued is NOT_SIGNED_BY_ATTESTOR; any other problem SIGNATURE_INVALID."""
    # Step 1.
    _require_code_signing(leaf)
    # Step 2.
    issued_by_untrusted_time: list[str] = []
    for authority in authorities:
        issuer = authority.chain[0]
        try:
            leaf.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            continue
        if not authority.validity.contains(moment):
            issued_by_untrusted_time.append(
                f"the CA {authority.uri or authority.name} is trusted from "
                f"{authority.validity.start.isoformat()} to "
                f"{authority.validity.end.isoformat() if authority.validity.end else 'now'}, "
                f"not at the signing time {moment.isoformat()}"
            )
            continue
        for certificate in (leaf, *authority.chain):
            if not _valid_at(certificate, moment):
                raise _invalid(
                    f"the certificate {name_of(certificate) or '(leaf)'} is "
                    f"valid from {certificate.not_valid_before_utc.isoformat()} to "
                    f"{certificate.not_valid_after_utc.isoformat()}, not at the signing time "
                    f"{moment.isoformat()} (expired or not yet valid when it signed)"
                )
        return authority
    if issued_by_untrusted_time:
        raise _invalid(issued_by_untrusted_time[0])
    raise DeterministicFailure(
        Reason.NOT_SIGNED_BY_ATTESTOR,
        f"the signing certificate (issuer {name_of(leaf, 'issuer')!r}) was not issued by a "
        "certificate authority of the trusted root",
    )


def signing_identity(leaf: x509.Certificate) -> Identity:
    """Who the certificate was issued to; SIGNATURE_INVALID when that cannot be read exactly."""
    try:
        names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise _invalid("the signing certificate names no identity (no SAN)") from None
    subjects: list[str] = []
    for name in names:
        if isinstance(name, (x509.RFC822Name, x509.UniformResourceIdentifier)):
            subjects.append(name.value)
        elif isinstance(name, x509.OtherName) and name.type_id == _USERNAME:
            subjects.append(_utf8(name.value, "the username SAN"))
    if len(subjects) != 1:
        raise _invalid(
            f"the signing certificate names {len(subjects)} identities; Fulcio names exactly one"
        )
    issuer = _issuer(leaf)
    claims = []
    for claim, (suffix, encoded) in CLAIMS.items():
        raw = _extension(leaf, ObjectIdentifier(_FULCIO + suffix))
        if raw is not None:
            claims.append((claim, _utf8(raw, claim) if encoded else _text(raw, claim)))
    return Identity(subjects[0], issuer, tuple(claims))


def _issuer(leaf: x509.Certificate) -> str:
    v2 = _extension(leaf, _ISSUER_V2)
    v1 = _extension(leaf, _ISSUER_V1)
    issuer_v2 = _utf8(v2, "the OIDC issuer") if v2 is not None else None
    issuer_v1 = _text(v1, "the OIDC issuer") if v1 is not None else None
    if issuer_v2 and issuer_v1 and issuer_v1 != issuer_v2:
        raise _invalid(
            f"the signing certificate names two OIDC issuers, {issuer_v2!r} and {issuer_v1!r}"
        )
    issuer = issuer_v2 or issuer_v1
    if not issuer:
        raise _invalid("the signing certificate names no OIDC issuer")
    return issuer


def _require_code_signing(leaf: x509.Certificate) -> None:
    extensions = leaf.extensions
    try:
        if extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            raise _invalid("the signing certificate is a CA certificate")
    except x509.ExtensionNotFound:
        pass
    try:
        usage = extensions.get_extension_for_class(x509.KeyUsage).value
        purposes = extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        raise _invalid("the signing certificate lacks key usage or extended key usage") from None
    if not usage.digital_signature or ExtendedKeyUsageOID.CODE_SIGNING not in purposes:
        raise _invalid("the signing certificate is not for code signing")


def name_of(certificate: x509.Certificate, which: str = "subject") -> str:
    """A certificate's subject or issuer, for a message; never an exception, whatever the DER."""
    # cryptography warns, when it reads the name, about a country name that is not two letters
    # (Fulcio's ephemeral CA says "USA"), and raises KeyError for a string type it does not know.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            name: x509.Name = getattr(certificate, which)
            return name.rfc4514_string()
        except (KeyError, ValueError, TypeError):
            return f"(an unreadable {which})"


def _valid_at(certificate: x509.Certificate, moment: datetime) -> bool:
    return certificate.not_valid_before_utc <= moment <= certificate.not_valid_after_utc


def _extension(leaf: x509.Certificate, oid: ObjectIdentifier) -> bytes | None:
    try:
        value = leaf.extensions.get_extension_for_oid(oid).value
    except x509.ExtensionNotFound:
        return None
    return value.value if isinstance(value, x509.UnrecognizedExtension) else None


def _utf8(der: bytes, what: str) -> str:
    """A DER UTF8String (how Fulcio's newer extensions and other-names are encoded)."""
    if len(der) < 2 or der[0] != _UTF8_STRING:
        raise _invalid(f"{what} in the signing certificate is not a UTF8String")
    length, offset = der[1], 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 2 or len(der) < 2 + count:
            raise _invalid(f"{what} in the signing certificate has a bad length")
        length, offset = int.from_bytes(der[2 : 2 + count], "big"), 2 + count
    if offset + length != len(der):
        raise _invalid(f"{what} in the signing certificate has a bad length")
    return _text(der[offset:], what)


def _text(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _invalid(f"{what} in the signing certificate is not UTF-8") from None


def _invalid(message: str) -> DeterministicFailure:
    return DeterministicFailure(Reason.SIGNATURE_INVALID, message)
