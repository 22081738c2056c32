"""Crashes the fuzzers found in provider code that are not fixed yet: each with its reproducer and
a matcher that recognises exactly that crash (its exception type and where it is raised).

While a bug is listed, the property tests and the bounded atheris run in `make test` step over
that one crash (and only it), so they keep looking for others. Once fixed, an entry moves to
`FIXED`, whose reproducers `test_properties.py` runs as regression tests.
`python -m tests.fuzz.run --strict` (or SIGNET_FUZZ_STRICT=1) stops on known crashes too.
"""

from __future__ import annotations

import base64
import json
import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography.exceptions import UnsupportedAlgorithm

__all__ = ["FIXED", "KNOWN_BUGS", "KnownBug", "tolerating"]

STRICT_ENV = "SIGNET_FUZZ_STRICT"


@dataclass(frozen=True)
class KnownBug:
    name: str
    summary: str
    # The targets whose inputs can reach it; the reproducer is an input of the first.
    targets: tuple[str, ...]
    reproducer: bytes
    exception: type[Exception]
    # (file suffix, function or None for any) of the innermost frame the exception is raised in.
    raised_in: tuple[str, str | None]
    # A file suffix some frame of the traceback must be in (the provider code at fault).
    through: str

    def matches(self, exc: BaseException) -> bool:
        if not isinstance(exc, self.exception):
            return False
        frames = traceback.extract_tb(exc.__traceback__)
        if not frames:
            return False
        innermost = frames[-1]
        suffix, function = self.raised_in
        return (
            innermost.filename.endswith(suffix)
            and function in (None, innermost.name)
            and any(f.filename.endswith(self.through) for f in frames)
        )


def _bundle(**fields: object) -> bytes:
    document = {
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {"publicKey": {"hint": "x"}},
        **fields,
    }
    return json.dumps(document, separators=(",", ":")).encode()


_SUITE = Path(__file__).resolve().parents[3] / "shared" / "vectors" / "sigstore-conformance"
_EC_PUBLIC_KEY = bytes.fromhex("06072a8648ce3d0201")  # the OID 1.2.840.10045.2.1, DER
_UNKNOWN_KEY = bytes.fromhex("06072a8648ce3d0209")  # an OID no key type has


def _unknown_key_type_root() -> bytes:
    """The production trusted root with its first log key's algorithm OID made unknown."""
    root = json.loads((_SUITE.parent / "sigstore-production-trusted_root.json").read_bytes())
    key = root["tlogs"][0]["publicKey"]
    der = base64.b64decode(key["rawBytes"]).replace(_EC_PUBLIC_KEY, _UNKNOWN_KEY, 1)
    key["rawBytes"] = base64.b64encode(der).decode()
    return json.dumps(root).encode()


def _unknown_key_type_bundle() -> bytes:
    """A real keyless bundle whose certificate's key algorithm OID is unknown."""
    bundle = json.loads(
        (_SUITE / "bundle-verify/happy-path-v0.3/bundle.sigstore.json").read_bytes()
    )
    certificate = bundle["verificationMaterial"]["certificate"]
    der = base64.b64decode(certificate["rawBytes"]).replace(_EC_PUBLIC_KEY, _UNKNOWN_KEY, 1)
    certificate["rawBytes"] = base64.b64encode(der).decode()
    return json.dumps(bundle).encode()


def _unhashable_key_details_root() -> bytes:
    root = json.loads((_SUITE.parent / "sigstore-production-trusted_root.json").read_bytes())
    root["tlogs"][0]["publicKey"]["keyDetails"] = {}
    return json.dumps(root).encode()


_REPRODUCERS = Path(__file__).resolve().parent / "reproducers"


# Crashes found and fixed: their reproducers stay, as regression tests (test_properties.py).
FIXED: tuple[KnownBug, ...] = (
    KnownBug(
        name="bundle-unhashable-digest-algorithm",
        summary=(
            "parse_bundle raises TypeError (unhashable type) when a messageSignature's "
            "messageDigest.algorithm is a JSON array or object: _DIGEST_ALGORITHMS.get(<list>) "
            "in sigstore_bundle/bundle.py _message_signature; judge() raises it too"
        ),
        targets=("bundle", "judge"),
        reproducer=_bundle(messageSignature={"messageDigest": {"algorithm": []}}),
        exception=TypeError,
        raised_in=("signet/formats/sigstore_bundle/bundle.py", "_message_signature"),
        through="signet/formats/sigstore_bundle/bundle.py",
    ),
    KnownBug(
        name="envelope-payload-type-not-utf8",
        summary=(
            "parse_envelope accepts a payloadType holding a lone surrogate (JSON "
            '"\\ud800"), and Envelope.signed_bytes then raises UnicodeEncodeError in pae(); '
            "latent: both callers compute signed_bytes only for the in-toto payload type"
        ),
        targets=("dsse_envelope", "bundle"),
        reproducer=b'{"payloadType":"\\ud800","payload":"","signatures":[{"sig":"AA=="}]}',
        exception=UnicodeEncodeError,
        raised_in=("signet/attest/dsse.py", "pae"),
        through="signet/attest/dsse.py",
    ),
    KnownBug(
        name="registry-redirect-to-unparseable-url",
        summary=(
            "RegistryClient raises ValueError ('Invalid IPv6 URL', from urllib.parse.urlsplit) "
            "when a registry redirects to a Location such as '//[' (client.py _send: urljoin "
            "and _check_redirect; referrers_page has the same urljoin on a Link header)"
        ),
        targets=("registry_answer",),
        reproducer=b"\xcaLocation: //[\n\n",
        exception=ValueError,
        raised_in=("urllib/parse.py", None),
        through="signet/oci/client.py",
    ),
    KnownBug(
        name="referrers-next-page-invalid-url",
        summary=(
            "Referrers.list raises httpx.InvalidURL when a referrers page's Link header names a "
            "next page on the same host with a control character in its path: referrers_page "
            "keeps it as next_url, and _send's client.build_request (outside its try) rejects it"
        ),
        targets=("registry_answer",),
        reproducer=(
            b"\x64Content-Type: application/vnd.oci.image.index.v1+json\n"
            b'Link: </v2/team/\x04app/referrers/x>; rel="next"\n\n{"manifests":[]}'
        ),
        exception=httpx.InvalidURL,
        raised_in=("httpx/_urlparse.py", None),
        through="signet/oci/referrers.py",
    ),
    KnownBug(
        name="trusted-root-unknown-key-type",
        summary=(
            "parse_trusted_root raises cryptography's UnsupportedAlgorithm (not a TrustedRootError) "
            "for a log key whose SubjectPublicKeyInfo names an unknown algorithm"
        ),
        targets=("trusted_root",),
        reproducer=_unknown_key_type_root(),
        exception=UnsupportedAlgorithm,
        raised_in=("", None),
        through="signet/keyless/root.py",
    ),
    KnownBug(
        name="keyless-certificate-unknown-key-type",
        summary=(
            "keyless verify raises UnsupportedAlgorithm at leaf.public_key() when the bundle's "
            "certificate names an unknown key algorithm; SIGNATURE_INVALID now"
        ),
        targets=("keyless_bundle",),
        reproducer=_unknown_key_type_bundle(),
        exception=UnsupportedAlgorithm,
        raised_in=("", None),
        through="signet/keyless/verify.py",
    ),
    KnownBug(
        name="trusted-root-unhashable-key-details",
        summary="parse_trusted_root raises TypeError for a keyDetails that is a JSON object",
        targets=("trusted_root",),
        reproducer=_unhashable_key_details_root(),
        exception=TypeError,
        raised_in=("signet/keyless/root.py", "_log_key"),
        through="signet/keyless/root.py",
    ),
    KnownBug(
        name="timestamp-unreadable-signer-name",
        summary=(
            "verify_timestamp, describing an untrusted signer for its message, raises KeyError "
            "from cryptography's rfc4514_string for an embedded certificate whose name uses a "
            "string type cryptography does not know; certificate.name_of now says so instead"
        ),
        targets=("rfc3161_timestamp",),
        reproducer=(_REPRODUCERS / "rfc3161-unreadable-signer-name.der").read_bytes(),
        exception=KeyError,
        raised_in=("", None),
        through="signet/keyless/timestamp.py",
    ),
    KnownBug(
        name="keyless-certificate-invalid-x509-version",
        summary=(
            "load_certificate lets cryptography's x509.InvalidVersion (not a ValueError) escape "
            "for a bundle certificate whose version field is out of range"
        ),
        targets=("keyless_bundle",),
        reproducer=(_REPRODUCERS / "keyless-bundle-invalid-x509-version.json").read_bytes(),
        exception=Exception,
        raised_in=("", None),
        through="signet/keyless/certificate.py",
    ),
)


# Crashes found and not fixed yet (none now).
KNOWN_BUGS: tuple[KnownBug, ...] = ()


def tolerating(target: str, run: Callable[[bytes], None]) -> Callable[[bytes], None]:
    """`run`, stepping over the known crashes of `target` (unless SIGNET_FUZZ_STRICT is set)."""
    bugs = [bug for bug in KNOWN_BUGS if target in bug.targets]
    if not bugs or os.environ.get(STRICT_ENV):
        return run

    def guarded(data: bytes) -> None:
        try:
            run(data)
        except Exception as exc:
            if not any(bug.matches(exc) for bug in bugs):
                raise

    return guarded
