"""Crashes the fuzzers found in provider code that are not fixed yet: each with its reproducer and
a matcher that recognises exactly that crash (its exception type and where it is raised).

While a bug is listed, the property tests and the bounded atheris run in `make test` step over
that one crash (and only it), so they keep looking for others. Once fixed, an entry moves to
`FIXED`, whose reproducers `test_properties.py` runs as regression tests.
`python -m tests.fuzz.run --strict` (or SIGNET_FUZZ_STRICT=1) stops on known crashes too.
"""

from __future__ import annotations

import json
import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import httpx

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
