"""What attackers write, fed to what parses it: one function per target, shared by the property
tests (Hypothesis) and the coverage-guided fuzzer (atheris).

Every target takes bytes and checks the one property that matters: the input ends in a valid
result or in the documented failure type for that parser — any other exception is a bug, and so
is an image verified on evidence that cannot be genuine. (Hangs are caught by the runners'
deadlines.)
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import json
import os
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

import httpx
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from signet.attest import dsse, provenance
from signet.attest import statement as statements
from signet.crypto import keyfile
from signet.crypto.keys import load_public_key_pem
from signet.formats.cosign_classic import manifest as cosign
from signet.formats.cosign_classic.verify import ClassicEvidence
from signet.formats.judge import Evidence, judge
from signet.formats.sigstore_bundle import bundle as bundles
from signet.formats.sigstore_bundle import referrer as referrers
from signet.formats.sigstore_bundle.verify import BundleEvidence, FetchedBundle
from signet.http.app import create_app
from signet.http.wire import BadRequest, parse_request
from signet.model.reference import InvalidReference, Reference, is_sha256_digest, parse
from signet.model.report import Report
from signet.oci import referrers as oci_referrers
from signet.oci.client import Limits, RegistryClient
from signet.oci.media import OCI_INDEX
from signet.reasons import DeterministicFailure, Reason, TransientFailure
from signet.service import runtime
from signet.service.engine import EngineSettings
from signet.trust.model import Attestor, TrustConfig, TrustedKey
from tests.fuzz import keyless_targets
from tests.support import vectors

T = TypeVar("T")

# The digest no genuine signature names: nothing may ever verify for it.
NOBODYS_DIGEST = "sha256:" + "f" * 64
VECTOR = "dir-img-cosign-valid"
TRUST: TrustConfig = vectors.trust()
# One event loop for every input, so what the targets keep (the app, its caches) stays usable.
_LOOP = asyncio.new_event_loop()


def _run(work: Coroutine[Any, Any, T]) -> T:
    return _LOOP.run_until_complete(work)


def reference(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    try:
        ref = parse(text)
    except InvalidReference:
        return
    assert isinstance(ref, Reference)
    assert parse(str(ref)) == ref, f"{text!r} does not round-trip: {ref}"


def provider_request(data: bytes) -> None:
    try:
        keys = parse_request(data, max_keys=1000)
    except BadRequest:
        return
    assert all(isinstance(k, str) for k in keys)
    assert len(set(keys)) == len(keys)


def signature_manifest(data: bytes) -> None:
    try:
        parsed = cosign.parse_signature_manifest(data)
    except DeterministicFailure:
        return
    assert len(parsed.layers) + len(parsed.problems) <= cosign.MAX_SIGNATURES


def payload(data: bytes) -> None:
    try:
        cosign.parse_payload(data)
    except DeterministicFailure:
        return


def _evidence(data: bytes) -> Evidence:
    """A `.sig` manifest from the first part of `data` and every layer's payload from the rest;
    the real vector's payloads stay available, so the fuzzer can reach the signature checks."""
    manifest, _, rest = data.partition(b"\n--\n")
    try:
        parsed = cosign.parse_signature_manifest(manifest)
    except DeterministicFailure:
        return Evidence()
    known = {layer.digest: layer.payload for layer in vectors.layers(VECTOR)}
    payloads: dict[str, bytes | DeterministicFailure] = {
        layer.digest: known.get(layer.digest, rest) for layer in parsed.layers
    }
    return Evidence(classic=ClassicEvidence(parsed, payloads))


def verification(data: bytes) -> None:
    found = _evidence(data)
    report = judge("registry.example/fuzz@" + NOBODYS_DIGEST, NOBODYS_DIGEST, found, TRUST)
    assert isinstance(report, Report)
    assert report.verified == (), f"verified on forged evidence: {report}"
    genuine = vectors.signed_digest(VECTOR)
    report = judge("registry.example/fuzz@" + genuine, genuine, found, TRUST)
    assert set(report.verified) <= {"a"}


def registry_answer(data: bytes) -> None:
    """A registry answering every call with the fuzzed status, headers and body."""
    status = 100 + data[0] % 500 if data else 200
    header_block, _, body = data[1:].partition(b"\n\n")
    headers = []
    for line in header_block.split(b"\n")[:16]:
        name, _, value = line.partition(b":")
        if name.strip():
            headers.append((name.strip(), value.strip()))

    async def stream() -> AsyncIterator[bytes]:
        yield body  # as a network would: a stream, read (or refused) by the client

    def answer(request: httpx.Request) -> httpx.Response:
        try:
            return httpx.Response(status, headers=headers, content=stream(), request=request)
        except (ValueError, TypeError, UnicodeError):  # not a response httpx can even build
            return httpx.Response(502, request=request)

    trust = TrustConfig(())
    client = RegistryClient(
        lambda: trust, limits=Limits(request_timeout=1.0), transport=httpx.MockTransport(answer)
    )
    ref = parse("registry.example/team/app:1")
    listing = oci_referrers.Referrers(client)
    calls: list[Callable[[], Any]] = [
        lambda: client.resolve(ref),
        lambda: client.manifest(ref, NOBODYS_DIGEST),
        lambda: client.blob(ref, NOBODYS_DIGEST, max_bytes=64 * 1024),
        # The referrers API (its Link pages), then the referrers tag: an index parsed either way.
        lambda: listing.list(ref, NOBODYS_DIGEST),
    ]

    async def run() -> None:
        try:
            for call in calls:
                with contextlib.suppress(DeterministicFailure, TransientFailure):
                    await call()
        finally:
            await client.aclose()

    _run(run())


class _Provider:
    """The whole app, in process, over a fake registry that holds an image with a copied (so
    invalid here) signature: whatever the request, nothing may verify."""

    def __init__(self) -> None:
        from tests.unit.fakes import FakeRegistry

        self.fake = FakeRegistry()
        digest = self.fake.push_image("team/app", "v1", "fuzz")
        layers = [layer.descriptor() for layer in vectors.layers(VECTOR)]
        for layer in vectors.layers(VECTOR):
            self.fake.put_blob(layer.payload)
        self.fake.put_manifest(
            "team/app",
            cosign.signature_tag(digest),
            cosign.signature_manifest({}, layers),
            cosign.OCI_MANIFEST,
        )
        self.parts = runtime.build(
            lambda: TRUST,
            settings=EngineSettings(deadline=1.0),
            limits=Limits(request_timeout=0.5),
            transport=self.fake.transport(),
        )
        self.app = create_app(self.parts.engine, self.parts.metrics)

    async def post(self, body: bytes) -> dict[str, Any]:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="https://signet"
        ) as client:
            answer = await client.post("/validate", content=body)
        assert answer.status_code == 200, answer.text
        document: dict[str, Any] = json.loads(answer.content)
        return document


_PROVIDER: _Provider | None = None


def validate(data: bytes) -> None:
    global _PROVIDER  # noqa: PLW0603 - built once: the fake registry is the slow part
    if _PROVIDER is None:
        _PROVIDER = _Provider()
    document = _run(_PROVIDER.post(data))
    assert document["kind"] == "ProviderResponse"
    response = document["response"]
    assert isinstance(response["systemError"], str)
    for item in response["items"]:
        assert isinstance(item["key"], str)
        value = item.get("value")
        if isinstance(value, dict):
            assert value["verified"] == [], f"verified {item['key']} on a copied signature"


# -- Sigstore bundles, referrers and attestations ------------------------------------------

SEEDS = Path(__file__).resolve().parent / "seeds"
# Real cosign output and the sigstore-conformance bundles, read when present (see seeds/README.md).
OBSERVED = Path("/tmp/observe")
CONFORMANCE = vectors.VECTORS.parent / "sigstore-conformance" / "bundle-verify"
IN_TOTO = dsse.IN_TOTO_PAYLOAD_TYPE
SIGN = statements.COSIGN_SIGN_PREDICATE
BUNDLE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
# The referrer the judged bundle was fetched from (its digest is not checked by `judge`).
REFERRER = "sha256:" + "0" * 64
# What the fuzz key signed: a signature about SIGNED_DIGEST, an attestation about it, and a
# signature about OTHER_DIGEST. Nothing else verifies under it.
SIGNED_DIGEST = "sha256:" + hashlib.sha256(b"the image the fuzz key signed").hexdigest()
OTHER_DIGEST = "sha256:" + hashlib.sha256(b"another image the fuzz key signed").hexdigest()
OBSERVED_DIGEST = (SEEDS / "v3.1.3-p256.image.digest").read_text().strip()
ENVELOPE_MAX_PAYLOAD = 4096
# The judge target's signing key and the signatures it made, shared with the fuzzer's child
# processes (which judge what the parent wrote into their corpus: ECDSA signatures differ each
# time, so they must know which ones were made) through the environment, as JSON
# {"key": PEM, "signatures": {sha256(payload): base64}}; `run.py` keeps it as `signer.json`
# beside the corpus and the artifacts, so a crash reproduces.
SIGNER_ENV: Final = "SIGNET_FUZZ_SIGNER"
_P256_ORDER: Final = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_FACT_NAMES: Final = {
    "builderId",
    "buildType",
    "sourceRepository",
    "sourceRef",
    "sourceDigest",
    "configSource",
    "configEntryPoint",
}


def signer_pem(key: keyfile.PrivateKey) -> str:
    body = base64.encodebytes(key.pkcs8_der()).decode()
    return f"-----BEGIN PRIVATE KEY-----\n{body}-----END PRIVATE KEY-----\n"


def _signer() -> tuple[keyfile.PrivateKey, dict[str, str]]:
    kept = os.environ.get(SIGNER_ENV)
    if kept:
        document = json.loads(kept)
        return keyfile.load_private_key(document["key"].encode(), b""), document["signatures"]
    return keyfile.generate("p256"), {}


SIGNER, _SIGNATURES = _signer()


def key_hint(der: bytes) -> str:
    """cosign's `publicKey.hint`: base64 of the SHA-256 of the DER SubjectPublicKeyInfo."""
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1's pre-authentication encoding, written out here rather than taken from Signet."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def in_toto(digest: str, predicate_type: str, predicate: Any) -> bytes:
    """An in-toto v1 statement about `digest`, as cosign writes it."""
    document = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [
            {"name": "registry.example/fuzz", "digest": {"sha256": digest.removeprefix("sha256:")}}
        ],
        "predicateType": predicate_type,
        "predicate": predicate,
    }
    return json.dumps(document, separators=(",", ":")).encode()


def bundle_json(
    payload: bytes, signature: bytes, *, hint: str | None, payload_type: str = IN_TOTO
) -> bytes:
    """A key-based bundle v0.3 holding one DSSE envelope, as cosign v3 writes it."""
    document = {
        "mediaType": BUNDLE_V03,
        "verificationMaterial": {"publicKey": {"hint": hint} if hint else {}},
        "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode(),
            "payloadType": payload_type,
            "signatures": [{"sig": base64.b64encode(signature).decode()}],
        },
    }
    return json.dumps(document, separators=(",", ":")).encode()


def twin(signature: bytes) -> bytes:
    """The other valid P-256 ECDSA signature over the same message: (r, n - s)."""
    r, s = decode_dss_signature(signature)
    return encode_dss_signature(r, _P256_ORDER - s)


@dataclass(frozen=True)
class Genuine:
    """An envelope an attestor really signed: the only bytes its signature verifies for."""

    attestor: str
    payload: bytes
    signatures: frozenset[bytes]

    @property
    def statement(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.payload)
        return document

    def names(self, digest: str) -> bool:
        return any(
            s["digest"]["sha256"] == digest.removeprefix("sha256:")
            for s in self.statement["subject"]
        )


def _signed(payload: bytes) -> tuple[bytes, Genuine]:
    name = hashlib.sha256(payload).hexdigest()
    if name not in _SIGNATURES:
        _SIGNATURES[name] = base64.b64encode(SIGNER.sign(pae(IN_TOTO, payload))[0]).decode()
    signature = base64.b64decode(_SIGNATURES[name])
    genuine = Genuine("fuzz", payload, frozenset({signature, twin(signature)}))
    return bundle_json(payload, signature, hint=key_hint(SIGNER.public.der)), genuine


SLSA_V1_PREDICATE: Final = {
    "buildDefinition": {
        "buildType": "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1",
        "externalParameters": {
            "workflow": {
                "repository": "https://github.com/example/app",
                "ref": "refs/heads/main",
                "path": ".github/workflows/release.yml",
            }
        },
        "resolvedDependencies": [
            {
                "uri": "git+https://github.com/example/app@refs/heads/main",
                "digest": {"sha1": "0" * 40},
            }
        ],
    },
    "runDetails": {"builder": {"id": "https://github.com/actions/runner"}},
}
SIGNED_BUNDLE, _SIGNED = _signed(in_toto(SIGNED_DIGEST, SIGN, {}))
ATTESTED_BUNDLE, _ATTESTED = _signed(in_toto(SIGNED_DIGEST, provenance.SLSA_V1, SLSA_V1_PREDICATE))
OTHER_BUNDLE, _OTHER = _signed(in_toto(OTHER_DIGEST, SIGN, {}))
os.environ[SIGNER_ENV] = json.dumps({"key": signer_pem(SIGNER), "signatures": _SIGNATURES})
_OBSERVED_KEY = load_public_key_pem((SEEDS / "v3.1.3-p256.key.pub").read_bytes())
BUNDLE_TRUST = TrustConfig(
    (
        Attestor("fuzz", (TrustedKey("fuzz", SIGNER.public),)),
        Attestor("observed", (TrustedKey("observed", _OBSERVED_KEY),)),
        *TRUST.attestors,  # "a" and "b": they signed no bundle
        Attestor("ed", (TrustedKey("ed", keyfile.generate("ed25519").public),)),  # signed nothing
    )
)
JUDGED = (NOBODYS_DIGEST, SIGNED_DIGEST, OBSERVED_DIGEST)


def _files(*patterns: tuple[Path, str]) -> list[bytes]:
    found: dict[bytes, None] = {}
    for folder, pattern in patterns:
        for path in sorted(folder.glob(pattern)) if folder.is_dir() else []:
            found.setdefault(path.read_bytes())
    return list(found)


@functools.cache
def bundle_files() -> tuple[bytes, ...]:
    return tuple(
        _files(
            (SEEDS, "*.bundle.json"),
            (OBSERVED, "*/*/referrer-*.layer0.bundle.json"),
            (CONFORMANCE, "*/bundle.sigstore.json"),
        )
    )


def _envelope_of(raw: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(raw)
        envelope = document["dsseEnvelope"]
    except (ValueError, KeyError, TypeError):
        return None
    return envelope if isinstance(envelope, dict) else None


def _decoded(envelope: dict[str, Any]) -> tuple[bytes, list[bytes]] | None:
    try:
        payload = base64.b64decode(envelope["payload"])
        signatures = [base64.b64decode(s["sig"]) for s in envelope["signatures"]]
    except (ValueError, KeyError, TypeError):
        return None
    return payload, signatures


@functools.cache
def genuine() -> tuple[Genuine, ...]:
    """Every envelope a trusted attestor really signed: the fuzz key's, and real cosign's under
    the observed key (told by the hint: these are real files, not fuzzed ones)."""
    found = [_SIGNED, _ATTESTED, _OTHER]
    observed_hint = key_hint(_OBSERVED_KEY.der)
    for raw in bundle_files():
        envelope = _envelope_of(raw)
        decoded = _decoded(envelope) if envelope is not None else None
        if decoded is not None and observed_hint.encode() in raw:
            payload, signatures = decoded
            twins = [twin(s) for s in signatures]
            found.append(Genuine("observed", payload, frozenset(signatures + twins)))
    return tuple(found)


def _check_envelope(envelope: dsse.Envelope, max_payload: int) -> None:
    assert isinstance(envelope.payload_type, str) and envelope.payload_type
    assert isinstance(envelope.payload, bytes) and len(envelope.payload) <= max_payload
    assert 1 <= len(envelope.signatures) <= 8
    assert len(set(envelope.signatures)) == len(envelope.signatures)
    assert all(isinstance(s, bytes) and s for s in envelope.signatures)
    assert envelope.signed_bytes == pae(envelope.payload_type, envelope.payload)


def bundle(data: bytes) -> None:
    try:
        parsed = bundles.parse_bundle(data)
    except DeterministicFailure as failure:
        assert failure.reason in {
            Reason.SIGNATURE_INVALID,
            Reason.UNSUPPORTED_FORMAT,
            Reason.LIMIT_EXCEEDED,
        }, failure
        return
    assert parsed.version in set(bundles.BUNDLE_MEDIA_TYPES.values())
    assert (parsed.envelope is None) != (parsed.message is None)
    assert parsed.key_hint is None or not parsed.has_certificate
    assert len(parsed.tlog_entries) <= 8 and len(parsed.timestamps) <= 8
    assert parsed.has_certificate or not (parsed.chain or parsed.certificate)
    if parsed.envelope is not None:
        assert len(parsed.envelope.signatures) == 1
        _check_envelope(parsed.envelope, bundles.MAX_BUNDLE_SIZE)
    if parsed.message is not None:
        assert parsed.message.algorithm in {"sha256", "sha384", "sha512"}
        assert isinstance(parsed.message.digest, bytes)
        assert isinstance(parsed.message.signature, bytes)


def referrer(data: bytes) -> None:
    try:
        parsed = referrers.parse_referrer(data)
    except DeterministicFailure as failure:
        assert failure.reason == Reason.SIGNATURE_INVALID, failure
        return
    document = json.loads(data)  # it parsed, so it is a JSON object
    if parsed.subject is not None:
        assert is_sha256_digest(parsed.subject)
        assert parsed.subject == document["subject"]["digest"]
    assert parsed.predicate_hint is None or isinstance(parsed.predicate_hint, str)
    if parsed.layer is not None:
        digest, size = parsed.layer
        assert is_sha256_digest(digest)
        assert isinstance(size, int) and not isinstance(size, bool) and size >= 0
        assert any(
            isinstance(layer, dict)
            and layer.get("digest") == digest
            and layer.get("size") == size
            and bundles.is_bundle_media_type(layer.get("mediaType"))
            for layer in document["layers"]
        ), f"{parsed.layer} is not a bundle layer of the manifest"


def referrers_index(data: bytes) -> None:
    try:
        listed = oci_referrers.parse_index(data, "the fuzzed index")
    except DeterministicFailure as failure:
        assert failure.reason in {Reason.UNSUPPORTED_FORMAT, Reason.LIMIT_EXCEEDED}, failure
        return
    assert len(listed) <= oci_referrers.MAX_DESCRIPTORS
    for descriptor in listed:
        assert isinstance(descriptor.media_type, str)
        assert is_sha256_digest(descriptor.digest)
        assert isinstance(descriptor.size, int) and not isinstance(descriptor.size, bool)
        assert descriptor.artifact_type is None or isinstance(descriptor.artifact_type, str)
        assert all(
            isinstance(k, str) and isinstance(v, str) for k, v in descriptor.annotations.items()
        )
        assert isinstance(
            referrers.may_hold_bundle(descriptor.media_type, descriptor.artifact_type), bool
        )


def _json(data: bytes) -> tuple[Any] | None:
    """The JSON value of `data` (in a 1-tuple: it may be null), or None if it is not JSON."""
    try:
        return (json.loads(data),)
    except (ValueError, RecursionError):
        return None


def dsse_envelope(data: bytes) -> None:
    value = _json(data)
    if value is None:
        return
    try:
        envelope = dsse.parse_envelope(value[0], max_payload=ENVELOPE_MAX_PAYLOAD)
    except DeterministicFailure as failure:
        assert failure.reason in {Reason.SIGNATURE_INVALID, Reason.LIMIT_EXCEEDED}, failure
        return
    _check_envelope(envelope, ENVELOPE_MAX_PAYLOAD)


def statement(data: bytes) -> None:
    try:
        parsed = statements.parse_statement(data)
    except DeterministicFailure as failure:
        assert failure.reason in {
            Reason.SIGNATURE_INVALID,
            Reason.UNSUPPORTED_FORMAT,
            Reason.LIMIT_EXCEEDED,
        }, failure
        return
    assert parsed.statement_type in statements.STATEMENT_TYPES
    assert isinstance(parsed.predicate_type, str) and parsed.predicate_type
    assert parsed.is_signature == (parsed.predicate_type == SIGN)
    assert len(set(parsed.subject_digests)) == len(parsed.subject_digests) <= 1024
    for digest in parsed.subject_digests:
        assert is_sha256_digest(digest) and digest == digest.lower()
        assert parsed.names(digest)


def _check_facts(predicate_type: str, predicate: Any) -> None:
    facts = provenance.provenance_facts(predicate_type, predicate)
    assert isinstance(facts, tuple)
    if predicate_type not in (provenance.SLSA_V02, provenance.SLSA_V1):
        assert facts == ()
    names = [name for name, _ in facts]
    assert len(set(names)) == len(names) and set(names) <= _FACT_NAMES
    for _, value in facts:
        assert isinstance(value, str) and 0 < len(value) <= provenance.MAX_FACT_LENGTH
    builder = predicate.get("builder") if isinstance(predicate, dict) else None
    builder_id = builder.get("id") if isinstance(builder, dict) else None
    if predicate_type == provenance.SLSA_V02 and isinstance(builder_id, str):
        expected = builder_id if 0 < len(builder_id) <= provenance.MAX_FACT_LENGTH else None
        assert dict(facts).get("builderId") == expected


def provenance_predicate(data: bytes) -> None:
    """A statement's predicate under its own type and both SLSA types (or the whole document as
    a predicate, like cosign's `--predicate` input files)."""
    value = _json(data)
    if value is None:
        return
    document = value[0]
    predicate_type = document.get("predicateType") if isinstance(document, dict) else None
    predicate = document.get("predicate") if isinstance(document, dict) else None
    for kind in (predicate_type, provenance.SLSA_V02, provenance.SLSA_V1):
        if isinstance(kind, str):
            _check_facts(kind, predicate)
            _check_facts(kind, document)


def _verified_envelope(data: bytes, attestor: str, digest: str, *, signature: bool) -> None:
    """What verified for `attestor` must be an envelope it signed, unchanged, about `digest`."""
    parsed = bundles.parse_bundle(data).envelope
    assert parsed is not None and parsed.payload_type == IN_TOTO, f"{attestor}: {parsed}"
    matches = [
        g
        for g in genuine()
        if g.attestor == attestor
        and g.payload == parsed.payload
        and set(parsed.signatures) <= g.signatures
    ]
    assert matches, f"{attestor} verified on bytes it never signed: {parsed}"
    found = matches[0]
    assert found.names(digest), f"{attestor}'s envelope is not about {digest}"
    assert (found.statement["predicateType"] == SIGN) == signature


def judge_bundle(data: bytes) -> None:
    """The whole pure judgement of one fetched bundle: whatever it holds, a report; nothing
    verifies for a digest nobody signed, and only an envelope an attestor really signed (its
    payload and signature bytes unchanged) verifies, for that attestor and its subject."""
    evidence = Evidence(bundles=BundleEvidence((FetchedBundle(REFERRER, data),)))
    for digest in JUDGED:
        report = judge("registry.example/fuzz@" + digest, digest, evidence, BUNDLE_TRUST)
        assert isinstance(report, Report)
        json.dumps(report.to_json())  # what the wire sends
        if digest == NOBODYS_DIGEST:
            assert report.verified == () and report.attestations == (), f"forged: {report}"
        allowed = {SIGNED_DIGEST: {"fuzz"}, OBSERVED_DIGEST: {"observed"}}.get(digest, set())
        assert set(report.verified) <= allowed, f"verified on forged evidence: {report}"
        assert {a.attestor for a in report.attestations} <= allowed, report
        for name in report.verified:
            _verified_envelope(data, name, digest, signature=True)
        for fact in report.attestations:
            _verified_envelope(data, fact.attestor, digest, signature=False)
            assert fact.predicate_type != SIGN


TARGETS: dict[str, Callable[[bytes], None]] = {
    "reference": reference,
    "provider_request": provider_request,
    "signature_manifest": signature_manifest,
    "payload": payload,
    "verification": verification,
    "registry_answer": registry_answer,
    "validate": validate,
    "bundle": bundle,
    "referrer": referrer,
    "referrers_index": referrers_index,
    "dsse_envelope": dsse_envelope,
    "statement": statement,
    "provenance": provenance_predicate,
    "judge": judge_bundle,
    **keyless_targets.TARGETS,
}


def _envelopes() -> list[bytes]:
    """The DSSE envelopes of the real bundles (and the fuzz key's), as JSON of their own."""
    found = [_envelope_of(raw) for raw in [SIGNED_BUNDLE, *bundle_files()]]
    return list(dict.fromkeys(json.dumps(e).encode() for e in found if e is not None))


def _statements() -> list[bytes]:
    """The statements those envelopes sign (cosign's signatures and SLSA v0.2 and v1)."""
    found: dict[bytes, None] = {}
    for raw in [SIGNED_BUNDLE, ATTESTED_BUNDLE, *bundle_files()]:
        envelope = _envelope_of(raw)
        decoded = _decoded(envelope) if envelope is not None else None
        if decoded is not None:
            found.setdefault(decoded[0])
    return list(found)


def _seeds() -> dict[str, Callable[[], Iterable[bytes]]]:
    layers = vectors.layers(VECTOR)
    manifest = cosign.signature_manifest({}, [layer.descriptor() for layer in layers])
    request = json.dumps(
        {
            "apiVersion": "externaldata.gatekeeper.sh/v1beta1",
            "kind": "ProviderRequest",
            "request": {"keys": ["registry.test/team/app:v1", "nginx", "a/b@" + NOBODYS_DIGEST]},
        }
    ).encode()
    index = _files((SEEDS, "*.index.json"))[0]
    return {
        "reference": lambda: [
            b"nginx",
            b"registry.example.com:5000/team/app:1.2@" + NOBODYS_DIGEST.encode(),
            b"[::1]:5000/a/b:c",
            b"docker.io/library/busybox:1.36",
        ],
        "provider_request": lambda: [request],
        "signature_manifest": lambda: [manifest],
        "payload": lambda: [layer.payload for layer in layers],
        "verification": lambda: [manifest + b"\n--\n" + layers[0].payload],
        "registry_answer": lambda: [
            b"\xc8Docker-Content-Digest: " + NOBODYS_DIGEST.encode() + b"\n\n{}",
            b'\x2dWWW-Authenticate: Bearer realm="https://auth.example/token"\n\n',
            b"\xc8Content-Length: 99999999\n\nxx",
            b"\x64Content-Type: " + OCI_INDEX.encode() + b"\n"
            b'Link: </v2/team/app/referrers/x?n=2>; rel="next"\n\n' + index,
        ],
        "validate": lambda: [request],
        "bundle": lambda: [SIGNED_BUNDLE, ATTESTED_BUNDLE, *bundle_files()],
        "referrer": lambda: _files(
            (SEEDS, "*.referrer.json"), (OBSERVED, "*/*/referrer-*.manifest.json")
        ),
        "referrers_index": lambda: _files(
            (SEEDS, "*.index.json"),
            (OBSERVED, "*/*/index*.json"),
            (OBSERVED, "*/*/referrers-api-response.txt"),
        ),
        "dsse_envelope": _envelopes,
        "statement": _statements,
        "provenance": lambda: [*_statements(), *_files((OBSERVED, "*/*/predicate-input.*.json"))],
        "judge": lambda: [
            SIGNED_BUNDLE,
            ATTESTED_BUNDLE,
            OTHER_BUNDLE,
            # The signature under another key's hint, and a payload that is not what was signed.
            SIGNED_BUNDLE.replace(key_hint(SIGNER.public.der).encode(), b"x"),
            SIGNED_BUNDLE.replace(
                base64.b64encode(_SIGNED.payload), base64.b64encode(_OTHER.payload)
            ),
            *bundle_files(),
        ],
    }


def seeds(target: str) -> list[bytes]:
    """Inputs to start from, made from the real vectors, real cosign bundles and what Gatekeeper
    really sends."""
    made = {**_seeds(), **keyless_targets.SEEDS}
    return list(dict.fromkeys(made[target]()))
