"""DSSE envelopes, in-toto statements and SLSA provenance facts (signet.attest): pure parsing."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from signet.attest.dsse import IN_TOTO_PAYLOAD_TYPE, Envelope, decode_base64, pae, parse_envelope
from signet.attest.provenance import MAX_FACT_LENGTH, SLSA_V02, SLSA_V1, provenance_facts
from signet.attest.statement import COSIGN_SIGN_PREDICATE, STATEMENT_TYPES, parse_statement
from signet.reasons import DeterministicFailure, Reason

HEX1, HEX2 = "1" * 64, "2" * 64
D1, D2 = f"sha256:{HEX1}", f"sha256:{HEX2}"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def refused(reason: Reason) -> Any:
    """`pytest.raises` for a DeterministicFailure with exactly `reason`."""
    return pytest.raises(DeterministicFailure, check=lambda e: e.reason is reason)


# -- DSSE: the PAE, base64, envelopes ---------------------------------------------------------------


def test_pae_matches_the_dsse_protocol_test_vector() -> None:
    assert (
        pae("http://example.com/HelloWorld", b"hello world")
        == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_pae_counts_bytes_not_characters_and_keeps_the_body_verbatim() -> None:
    body = "é\n".encode()  # 3 bytes, 2 characters
    assert pae("t/é", body) == b"DSSEv1 4 t/\xc3\xa9 3 \xc3\xa9\n"
    assert pae("", b"") == b"DSSEv1 0  0 "


def test_an_envelope_signs_the_pae_of_its_decoded_payload() -> None:
    envelope = parse_envelope(
        {"payloadType": IN_TOTO_PAYLOAD_TYPE, "payload": b64(b"{}"), "signatures": [{"sig": "AA"}]},
        max_payload=100,
    )
    assert envelope == Envelope(IN_TOTO_PAYLOAD_TYPE, b"{}", (b"\x00",))
    assert envelope.signed_bytes == b"DSSEv1 28 application/vnd.in-toto+json 2 {}"


# Bytes whose encodings differ between the two alphabets (0xfb 0xff -> "+/" vs "-_").
RAW = bytes([0xFB, 0xFF, 0xBF, 0x00, 0x01])


@pytest.mark.parametrize(
    "text",
    [
        base64.b64encode(RAW).decode(),
        base64.urlsafe_b64encode(RAW).decode(),
        base64.b64encode(RAW).decode().rstrip("="),
        base64.urlsafe_b64encode(RAW).decode().rstrip("="),
    ],
    ids=["standard", "url-safe", "standard-unpadded", "url-safe-unpadded"],
)
def test_standard_and_url_safe_base64_are_both_accepted(text: str) -> None:
    assert "=" in base64.b64encode(RAW).decode()  # the unpadded cases are really unpadded
    assert decode_base64(text, "x") == RAW


@pytest.mark.parametrize(
    "junk",
    [
        "not base64!",
        "AAAA AAAA",
        "AA\nAA",
        "A",
        "AB=C",
        "AAA===",
        "====",
        "Zm9v\x00",
        12,
        None,
        b"AA",
    ],
)
def test_junk_base64_is_signature_invalid(junk: Any) -> None:
    with refused(Reason.SIGNATURE_INVALID) as caught:
        decode_base64(junk, "the thing")
    assert "the thing" in caught.value.message


def envelope(**fields: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "payloadType": IN_TOTO_PAYLOAD_TYPE,
        "payload": b64(b"payload"),
        "signatures": [{"sig": b64(b"s" * 64)}],
    }
    document.update(fields)
    return {k: v for k, v in document.items() if v is not ...}


@pytest.mark.parametrize(
    "document",
    [
        [],
        "envelope",
        envelope(payloadType=...),
        envelope(payloadType=""),
        envelope(payloadType=7),
        envelope(payload=...),
        envelope(payload="%%%"),
        envelope(signatures=...),
        envelope(signatures=[]),
        envelope(signatures={"sig": "AA"}),
        envelope(signatures=["AA"]),
        envelope(signatures=[{"keyid": "k"}]),
        envelope(signatures=[{"sig": ""}]),
        envelope(signatures=[{"sig": 5}]),
        envelope(signatures=[{"sig": "A" * 4100}]),
        envelope(signatures=[{"sig": "AA"}, {"sig": "not base64!"}]),
    ],
    ids=lambda d: json.dumps(d, default=str)[:60],
)
def test_a_malformed_envelope_is_signature_invalid(document: Any) -> None:
    with refused(Reason.SIGNATURE_INVALID):
        parse_envelope(document, max_payload=1024)


def test_the_payload_is_capped() -> None:
    limit = 300
    assert parse_envelope(envelope(payload=b64(b"x" * limit)), max_payload=limit).payload == (
        b"x" * limit
    )
    for size in (limit + 1, limit + 3, 10 * limit):
        with refused(Reason.LIMIT_EXCEEDED):
            parse_envelope(envelope(payload=b64(b"x" * size)), max_payload=limit)


def test_the_payload_cap_applies_before_decoding_junk() -> None:
    # A huge string is refused for its size, without being inspected character by character.
    with refused(Reason.LIMIT_EXCEEDED):
        parse_envelope(envelope(payload="!" * 10_000), max_payload=100)


def test_the_signatures_are_capped_and_deduplicated() -> None:
    eight = [{"sig": b64(bytes([i]) * 8)} for i in range(8)]
    assert len(parse_envelope(envelope(signatures=eight), max_payload=100).signatures) == 8
    with refused(Reason.LIMIT_EXCEEDED):
        parse_envelope(envelope(signatures=[*eight, {"sig": "AA"}]), max_payload=100)
    same = [{"sig": "AAEC"}, {"sig": "AAEC", "keyid": ""}, {"sig": "AAEC"}]
    assert parse_envelope(envelope(signatures=same), max_payload=100).signatures == (
        b"\x00\x01\x02",
    )


def test_a_keyid_is_ignored() -> None:
    with_keyid = parse_envelope(envelope(signatures=[{"sig": "AA", "keyid": "x"}]), max_payload=9)
    without = parse_envelope(envelope(signatures=[{"sig": "AA"}]), max_payload=9)
    assert with_keyid == without


# -- in-toto statements -----------------------------------------------------------------------------


def statement(**fields: Any) -> bytes:
    document: dict[str, Any] = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"digest": {"sha256": HEX1}}],
        "predicateType": COSIGN_SIGN_PREDICATE,
        "predicate": {},
    }
    document.update(fields)
    return json.dumps({k: v for k, v in document.items() if v is not ...}).encode()


@pytest.mark.parametrize("statement_type", STATEMENT_TYPES)
def test_statements_v01_and_v1_are_read(statement_type: str) -> None:
    parsed = parse_statement(
        statement(
            _type=statement_type,
            subject=[{"name": "registry.example/app", "digest": {"sha256": HEX1, "sha512": "ab"}}],
            predicateType=SLSA_V1,
            predicate={"x": 1},
        )
    )
    assert parsed.statement_type == statement_type
    assert parsed.subject_digests == (D1,)
    assert parsed.predicate_type == SLSA_V1
    assert parsed.predicate == {"x": 1}
    assert not parsed.is_signature


def test_a_cosign_sign_statement_is_a_signature_and_names_its_digests() -> None:
    parsed = parse_statement(
        statement(subject=[{"digest": {"sha256": HEX1}}, {"digest": {"sha256": HEX2}}])
    )
    assert parsed.is_signature
    assert parsed.names(D1) and parsed.names(D2)
    assert not parsed.names("sha256:" + "3" * 64)
    assert not parsed.names(HEX1)  # only the full "sha256:<hex>" form is a digest


def test_v265_spacing_and_no_predicate_parse() -> None:
    raw = (
        b'{"_type":"https://in-toto.io/Statement/v1", "subject":[{"digest":{"sha256":"'
        + HEX1.encode()
        + b'"}}], "predicateType":"https://sigstore.dev/cosign/sign/v1"}'
    )
    parsed = parse_statement(raw)
    assert parsed.is_signature and parsed.names(D1) and parsed.predicate is None


@pytest.mark.parametrize(
    "subject",
    [
        {"digest": {"sha256": "AB" * 32}},  # the same digest as "ab" * 32, in upper case
        {"digest": {"sha256": f"sha256:{HEX1}"}},
        {"digest": {"sha256": HEX1[:-1]}},
        {"digest": {"sha256": HEX1 + "0"}},
        {"digest": {"sha256": "g" * 64}},
        {"digest": {"sha256": 1}},
        {"digest": {"sha512": "1" * 128}},
        {"digest": {"SHA256": HEX1}},
        {"digest": [HEX1]},
        {"name": D1},
        D1,
    ],
    ids=repr,
)
def test_only_an_exact_lowercase_sha256_subject_binds(subject: Any) -> None:
    parsed = parse_statement(statement(subject=[subject]))
    assert parsed.subject_digests == ()
    assert not parsed.names(D1)
    assert not parsed.names("sha256:" + "ab" * 32)


def test_subject_digests_are_distinct_and_in_order() -> None:
    subjects = [{"digest": {"sha256": h}} for h in (HEX2, HEX1, HEX2)]
    assert parse_statement(statement(subject=subjects)).subject_digests == (D2, D1)


@pytest.mark.parametrize(
    "statement_type",
    [
        ...,
        None,
        "",
        "https://in-toto.io/Statement/v0.2",
        "https://in-toto.io/Statement/v1/",
        "HTTPS://in-toto.io/Statement/v1",
        "https://example.com/Statement/v1",
        ["https://in-toto.io/Statement/v1"],
    ],
    ids=repr,
)
def test_an_unknown_statement_type_is_unsupported_format(statement_type: Any) -> None:
    with refused(Reason.UNSUPPORTED_FORMAT):
        parse_statement(statement(_type=statement_type))


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"[]",
        b'"statement"',
        b"[" * 100_000,
        statement(predicateType=...),
        statement(predicateType=""),
        statement(predicateType=5),
        statement(subject=...),
        statement(subject=[]),
        statement(subject={"digest": {"sha256": HEX1}}),
    ],
    ids=lambda r: r[:40].decode(),
)
def test_a_statement_that_cannot_name_a_digest_is_signature_invalid(raw: bytes) -> None:
    with refused(Reason.SIGNATURE_INVALID):
        parse_statement(raw)


def test_the_subjects_are_capped() -> None:
    many = [{"digest": {"sha256": f"{i:064x}"}} for i in range(1025)]
    with refused(Reason.LIMIT_EXCEEDED):
        parse_statement(statement(subject=many))
    assert len(parse_statement(statement(subject=many[:1024])).subject_digests) == 1024


# -- SLSA provenance facts --------------------------------------------------------------------------

BUILDER = "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/builder.yml"
SOURCE = "https://github.com/example/app"
COMMIT = "a" * 40


def v02(**config_source: Any) -> dict[str, Any]:
    return {
        "builder": {"id": BUILDER},
        "buildType": "https://github.com/slsa-framework/slsa-github-generator/generic@v1",
        "invocation": {
            "configSource": {
                "uri": f"git+{SOURCE}@refs/heads/main",
                "digest": {"sha1": COMMIT},
                "entryPoint": ".github/workflows/release.yml",
                **config_source,
            },
            "parameters": {},
        },
        "materials": [{"uri": f"git+{SOURCE}@refs/heads/main", "digest": {"sha1": COMMIT}}],
    }


def v1(workflow: dict[str, Any] | None = None, **dependency: Any) -> dict[str, Any]:
    external: dict[str, Any] = {}
    if workflow is not None:
        external["workflow"] = workflow
    return {
        "buildDefinition": {
            "buildType": "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1",
            "externalParameters": external,
            "resolvedDependencies": [
                {
                    "uri": f"git+{SOURCE}@refs/heads/main",
                    "digest": {"gitCommit": COMMIT},
                    **dependency,
                }
            ],
        },
        "runDetails": {"builder": {"id": "https://github.com/actions/runner/github-hosted"}},
    }


def test_slsa_v02_facts() -> None:
    assert dict(provenance_facts(SLSA_V02, v02())) == {
        "builderId": BUILDER,
        "buildType": "https://github.com/slsa-framework/slsa-github-generator/generic@v1",
        "sourceRepository": SOURCE,
        "sourceRef": "refs/heads/main",
        "sourceDigest": f"sha1:{COMMIT}",
        "configSource": f"git+{SOURCE}@refs/heads/main",
        "configEntryPoint": ".github/workflows/release.yml",
    }


def test_slsa_v1_facts_from_the_github_workflow() -> None:
    workflow = {"repository": SOURCE, "ref": "refs/tags/v1.2.3", "path": ".github/workflows/r.yml"}
    assert dict(provenance_facts(SLSA_V1, v1(workflow))) == {
        "builderId": "https://github.com/actions/runner/github-hosted",
        "buildType": "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1",
        "sourceRepository": SOURCE,
        "sourceRef": "refs/tags/v1.2.3",
        "sourceDigest": f"gitCommit:{COMMIT}",
        "configEntryPoint": ".github/workflows/r.yml",
    }


def test_slsa_v1_facts_from_the_first_resolved_dependency() -> None:
    facts = dict(provenance_facts(SLSA_V1, v1()))
    assert facts["sourceRepository"] == SOURCE
    assert facts["sourceRef"] == "refs/heads/main"
    assert facts["sourceDigest"] == f"gitCommit:{COMMIT}"
    assert "configEntryPoint" not in facts


@pytest.mark.parametrize(
    ("uri", "repository", "ref"),
    [
        (f"git+{SOURCE}@refs/heads/main", SOURCE, "refs/heads/main"),
        (f"git+{SOURCE}.git@refs/tags/v1", f"{SOURCE}.git", "refs/tags/v1"),
        (f"git+{SOURCE}@{COMMIT}", SOURCE, COMMIT),
        (f"git+{SOURCE}", SOURCE, None),
        (f"git+{SOURCE}@refs/heads/fix@2", SOURCE, "refs/heads/fix@2"),
        (f"{SOURCE}@main", SOURCE, "main"),
        (
            "git+ssh://git@github.com/example/app@refs/heads/main",
            "ssh://git@github.com/example/app",
            "refs/heads/main",
        ),
        ("git+ssh://git@github.com/example/app", "ssh://git@github.com/example/app", None),
        ("git+https://user@host.example/app", "https://user@host.example/app", None),
        ("pkg:npm/app@1.0", "pkg:npm/app@1.0", None),
    ],
)
def test_a_git_uri_is_split_into_repository_and_ref(
    uri: str, repository: str, ref: str | None
) -> None:
    facts = dict(provenance_facts(SLSA_V02, v02(uri=uri)))
    assert facts["sourceRepository"] == repository
    assert facts.get("sourceRef") == ref
    assert facts["configSource"] == uri  # the configSource itself is kept as written


@pytest.mark.parametrize(
    ("digest", "expected"),
    [
        ({"sha256": "b" * 64, "sha1": COMMIT}, f"sha1:{COMMIT}"),
        ({"sha512": "c" * 128, "gitCommit": COMMIT, "sha256": "b" * 64}, f"gitCommit:{COMMIT}"),
        ({"sha512": "c" * 128, "sha256": "b" * 64}, "sha256:" + "b" * 64),
        ({"sha512": "c" * 128}, "sha512:" + "c" * 128),
        ({"sha1": "", "sha256": "b" * 64}, "sha256:" + "b" * 64),
        ({"sha1": 5, "sha256": "b" * 64}, "sha256:" + "b" * 64),
        ({"md5": "d" * 32}, None),
        ({}, None),
        ("sha1:" + COMMIT, None),
    ],
)
def test_the_source_digest_prefers_commit_ids(digest: Any, expected: str | None) -> None:
    assert dict(provenance_facts(SLSA_V02, v02(digest=digest))).get("sourceDigest") == expected
    assert dict(provenance_facts(SLSA_V1, v1(digest=digest))).get("sourceDigest") == expected


def test_a_value_over_max_fact_length_is_left_out_never_cut() -> None:
    at_limit = "https://builder.example/" + "x" * (MAX_FACT_LENGTH - 24)
    over = at_limit + "y"
    assert len(at_limit) == MAX_FACT_LENGTH
    facts = dict(provenance_facts(SLSA_V02, {**v02(), "builder": {"id": at_limit}}))
    assert facts["builderId"] == at_limit
    facts = dict(provenance_facts(SLSA_V02, {**v02(), "builder": {"id": over}}))
    assert "builderId" not in facts
    assert facts["sourceRepository"] == SOURCE  # the other facts stay
    assert all(len(value) <= MAX_FACT_LENGTH for _, value in facts.items())


def test_non_string_and_empty_values_are_left_out() -> None:
    predicate = {
        **v02(),
        "builder": {"id": ["x"]},
        "buildType": "",
        "invocation": {"configSource": {"uri": 7, "entryPoint": {"a": 1}}},
    }
    assert provenance_facts(SLSA_V02, predicate) == ()
    assert provenance_facts(SLSA_V1, {"buildDefinition": [], "runDetails": "x"}) == ()


@pytest.mark.parametrize(
    ("predicate_type", "predicate"),
    [
        (COSIGN_SIGN_PREDICATE, v02()),
        ("https://slsa.dev/provenance/v0.1", v02()),
        ("https://slsa.dev/provenance/v1.1", v1()),
        ("https://spdx.dev/Document", v02()),
        ("https://cosign.sigstore.dev/attestation/v1", {"Data": "x", "Timestamp": "y"}),
        (SLSA_V02, None),
        (SLSA_V02, [v02()]),
        (SLSA_V1, "predicate"),
    ],
)
def test_a_non_slsa_predicate_has_no_facts(predicate_type: str, predicate: Any) -> None:
    assert provenance_facts(predicate_type, predicate) == ()


def test_the_predicate_types_do_not_cross() -> None:
    """A v1 predicate read as v0.2 (or the reverse) gives only what that version defines."""
    assert dict(provenance_facts(SLSA_V02, v1())) == {}
    assert dict(provenance_facts(SLSA_V1, v02())) == {}
