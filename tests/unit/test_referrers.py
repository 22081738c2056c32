"""The referrers of a digest (oci/referrers.py) from a fake registry behind httpx.MockTransport:
the API, the `sha256-<hex>` tag when there is none, what is remembered per host, pages, caps. And
which referrer manifests may hold a Sigstore bundle (formats/sigstore_bundle/referrer.py)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from signet.attest.statement import COSIGN_SIGN_PREDICATE
from signet.formats.sigstore_bundle.referrer import (
    EMPTY_MEDIA_TYPE,
    BundleReferrer,
    may_hold_bundle,
    parse_referrer,
)
from signet.model.reference import Reference, parse
from signet.oci.client import Limits, RegistryClient
from signet.oci.media import OCI_INDEX, OCI_MANIFEST
from signet.oci.referrers import MAX_DESCRIPTORS, MAX_PAGES, Descriptor, Referrers
from signet.reasons import DeterministicFailure, Reason, TransientFailure
from signet.trust.model import TrustConfig
from tests.unit.fakes import HOST, FakeRegistry, host_of, status

pytestmark = pytest.mark.anyio

OTHER_HOST = "other.test"
EVIL_HOST = "evil.test"
REPO = "team/app"
D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
TAG1 = "sha256-" + "1" * 64
BUNDLE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
DATA = Path(__file__).resolve().parent / "data" / "bundles"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# -- the registry -----------------------------------------------------------------------------------


def entry(n: int, **fields: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "mediaType": OCI_MANIFEST,
        "size": 800 + n,
        "digest": f"sha256:{n:064x}",
        "artifactType": BUNDLE_V03,
    }
    document.update(fields)
    return {k: v for k, v in document.items() if v is not ...}


def descriptor(n: int, **fields: Any) -> Descriptor:
    return Descriptor(OCI_MANIFEST, f"sha256:{n:064x}", 800 + n, BUNDLE_V03, **fields)


def index(*entries: Any) -> bytes:
    return json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": list(entries)},
        separators=(",", ":"),
    ).encode()


Page = tuple[bytes, str | None]  # an index body and its `Link` header (None: the last page)


def api(
    *pages: Page, content_type: str = OCI_INDEX
) -> Callable[[httpx.Request], Awaitable[httpx.Response]]:
    """A referrers API answering `pages[i]` to a request with `?page=i` (the first without)."""

    async def fault(request: httpx.Request) -> httpx.Response:
        number = int(request.url.params.get("page", "0"))
        body, link = pages[number]
        headers = {"Content-Type": content_type}
        if link is not None:
            headers["Link"] = link
        return httpx.Response(200, headers=headers, content=body)

    return fault


def next_page(number: int, host: str = HOST, scheme: str = "https", digest: str = D1) -> str:
    return f'<{scheme}://{host}/v2/{REPO}/referrers/{digest}?page={number}>; rel="next"'


def client(*fakes: FakeRegistry) -> RegistryClient:
    """A client whose every request reaches the fake for its host."""
    by_host = {fake.host: fake for fake in fakes}

    async def route(request: httpx.Request) -> httpx.Response:
        fake = by_host.get(host_of(request), fakes[0])
        return await fake.handle(request)

    return RegistryClient(
        lambda: TrustConfig(()),
        limits=Limits(request_timeout=2.0),
        transport=httpx.MockTransport(route),
    )


def ref(host: str = HOST, repo: str = REPO) -> Reference:
    return parse(f"{host}/{repo}:1.0")


def api_calls(fake: FakeRegistry) -> list[httpx.Request]:
    return [r for r in fake.seen if "/referrers/" in r.url.path]


def tag_calls(fake: FakeRegistry, tag: str = TAG1) -> list[httpx.Request]:
    return [r for r in fake.seen if r.url.path.endswith(f"/manifests/{tag}")]


def with_tag(fake: FakeRegistry, body: bytes, digest: str = D1, repo: str = REPO) -> FakeRegistry:
    fake.put_manifest(repo, digest.replace(":", "-"), body, OCI_INDEX)
    return fake


async def refused(work: Awaitable[Any], reason: Reason) -> DeterministicFailure:
    with pytest.raises(DeterministicFailure) as caught:
        await work
    assert caught.value.reason is reason, caught.value
    return caught.value


# -- the referrers API --------------------------------------------------------------------------


async def test_the_api_answers_the_descriptors_it_lists() -> None:
    annotated = entry(2, annotations={"dev.sigstore.bundle.predicateType": COSIGN_SIGN_PREDICATE})
    fake = FakeRegistry(faults={"/referrers/": api((index(entry(1), annotated), None))})
    listed = await Referrers(client(fake)).list(ref(), D1)
    assert listed == (
        descriptor(1),
        descriptor(2, annotations={"dev.sigstore.bundle.predicateType": COSIGN_SIGN_PREDICATE}),
    )
    (call,) = fake.seen  # the API only: no fallback tag is read
    assert call.method == "GET"
    assert call.url.path == f"/v2/{REPO}/referrers/{D1}"
    assert call.headers["Accept"] == OCI_INDEX


async def test_an_empty_index_from_the_api_is_no_referrers_and_the_tag_is_not_read() -> None:
    fake = with_tag(FakeRegistry(faults={"/referrers/": api((index(), None))}), index(entry(1)))
    assert await Referrers(client(fake)).list(ref(), D1) == ()
    assert tag_calls(fake) == []


async def test_an_index_with_content_type_parameters_is_an_index() -> None:
    answer = api((index(entry(1)), None), content_type=f"{OCI_INDEX}; charset=utf-8")
    fake = with_tag(FakeRegistry(faults={"/referrers/": answer}), index(entry(9)))
    assert await Referrers(client(fake)).list(ref(), D1) == (descriptor(1),)


NO_API = {
    "404": status(404),
    "400": status(400),
    "406": status(406),
    "200-text-plain": api((b"404 page not found", None), content_type="text/plain"),
    "200-json": api((index(entry(7)), None), content_type="application/json"),
    "200-manifest": api((index(entry(7)), None), content_type=OCI_MANIFEST),
}


@pytest.mark.parametrize("answer", list(NO_API.values()), ids=list(NO_API))
async def test_a_registry_without_the_api_falls_back_to_the_referrers_tag(answer: Any) -> None:
    fake = with_tag(FakeRegistry(faults={"/referrers/": answer}), index(entry(1), entry(2)))
    referrers = Referrers(client(fake))
    assert await referrers.list(ref(), D1) == (descriptor(1), descriptor(2))
    assert len(api_calls(fake)) == 1
    assert len(tag_calls(fake)) == 1
    assert referrers.knows_no_api(HOST)


async def test_the_default_404_of_a_registry_without_the_api_falls_back() -> None:
    """What Debian's docker-registry does: the fake answers 404 to any path it does not know."""
    fake = with_tag(FakeRegistry(), index(entry(1)))
    assert await Referrers(client(fake)).list(ref(), D1) == (descriptor(1),)


async def test_no_api_and_no_tag_is_no_referrers() -> None:
    fake = FakeRegistry()
    assert await Referrers(client(fake)).list(ref(), D1) == ()
    assert len(tag_calls(fake)) == 1


async def test_the_tag_read_is_the_digests_own() -> None:
    fake = with_tag(with_tag(FakeRegistry(), index(entry(1))), index(entry(2)), digest=D2)
    referrers = Referrers(client(fake))
    assert await referrers.list(ref(), D2) == (descriptor(2),)
    assert await referrers.list(ref(), D1) == (descriptor(1),)
    assert await referrers.list(ref(repo="team/other"), D1) == ()


@pytest.mark.parametrize(
    ("code", "failure"),
    [
        (500, Reason.REGISTRY_UNAVAILABLE),
        (503, Reason.REGISTRY_UNAVAILABLE),
        (429, Reason.REGISTRY_RATE_LIMITED),
        (403, Reason.REGISTRY_AUTH_FAILED),
    ],
)
async def test_a_failing_api_is_transient_and_not_taken_for_a_missing_one(
    code: int, failure: Reason
) -> None:
    fake = with_tag(FakeRegistry(faults={"/referrers/": status(code)}), index(entry(1)))
    referrers = Referrers(client(fake))
    with pytest.raises(TransientFailure) as caught:
        await referrers.list(ref(), D1)
    assert caught.value.reason is failure
    assert not referrers.knows_no_api(HOST)
    assert tag_calls(fake) == []  # an outage never reads as "no API, so use the tag"


# -- what is remembered per host ----------------------------------------------------------------


async def test_a_host_without_the_api_is_asked_once() -> None:
    fake = with_tag(with_tag(FakeRegistry(), index(entry(1))), index(entry(2)), D2, "team/other")
    referrers = Referrers(client(fake))
    assert await referrers.list(ref(), D1) == (descriptor(1),)
    assert len(api_calls(fake)) == 1

    # Another image on the same host: straight to its tag, no referrers-API call.
    assert await referrers.list(ref(repo="team/other"), D2) == (descriptor(2),)
    assert len(api_calls(fake)) == 1
    assert len(tag_calls(fake, D2.replace(":", "-"))) == 1


async def test_what_is_remembered_is_per_host() -> None:
    without = with_tag(FakeRegistry(), index(entry(1)))
    other = FakeRegistry(host=OTHER_HOST, faults={"/referrers/": api((index(entry(3)), None))})
    referrers = Referrers(client(without, other))
    assert await referrers.list(ref(), D1) == (descriptor(1),)
    assert await referrers.list(ref(OTHER_HOST), D1) == (descriptor(3),)
    assert await referrers.list(ref(OTHER_HOST), D1) == (descriptor(3),)
    assert len(api_calls(other)) == 2  # a host with the API is asked every time
    assert tag_calls(other) == []
    assert referrers.knows_no_api(HOST) and not referrers.knows_no_api(OTHER_HOST)


async def test_the_memory_of_a_missing_api_expires() -> None:
    now = [1000.0]
    fake = with_tag(FakeRegistry(), index(entry(1)))
    referrers = Referrers(client(fake), remember_for=60, clock=lambda: now[0])
    await referrers.list(ref(), D1)
    now[0] += 59
    await referrers.list(ref(), D1)
    assert len(api_calls(fake)) == 1
    now[0] += 2  # 61 s after it was learnt
    assert not referrers.knows_no_api(HOST)
    await referrers.list(ref(), D1)
    assert len(api_calls(fake)) == 2
    assert len(tag_calls(fake)) == 3


async def test_a_registry_that_gains_the_api_is_asked_again_after_the_memory_expires() -> None:
    now = [0.0]
    fake = with_tag(FakeRegistry(), index(entry(1)))
    referrers = Referrers(client(fake), remember_for=60, clock=lambda: now[0])
    assert await referrers.list(ref(), D1) == (descriptor(1),)
    fake.faults["/referrers/"] = api((index(entry(2)), None))  # upgraded
    assert await referrers.list(ref(), D1) == (descriptor(1),)
    now[0] += 61
    assert await referrers.list(ref(), D1) == (descriptor(2),)


# -- pages ------------------------------------------------------------------------------------------


async def test_pages_are_followed_on_the_same_host() -> None:
    pages = [
        (index(entry(1), entry(2)), next_page(1)),
        (index(entry(3)), f'</v2/{REPO}/referrers/{D1}?page=2>; rel="next"'),  # relative
        (index(entry(4)), None),
    ]
    fake = FakeRegistry(faults={"/referrers/": api(*pages)})
    listed = await Referrers(client(fake)).list(ref(), D1)
    assert listed == tuple(descriptor(n) for n in (1, 2, 3, 4))
    assert [r.url.params.get("page") for r in api_calls(fake)] == [None, "1", "2"]
    assert {host_of(r) for r in fake.seen} == {HOST}


async def test_pages_stop_at_max_pages() -> None:
    endless = [(index(entry(n)), next_page(n + 1)) for n in range(MAX_PAGES + 5)]
    fake = FakeRegistry(faults={"/referrers/": api(*endless)})
    listed = await Referrers(client(fake)).list(ref(), D1)
    assert len(api_calls(fake)) == MAX_PAGES
    assert listed == tuple(descriptor(n) for n in range(MAX_PAGES))


@pytest.mark.parametrize(
    "link",
    [
        next_page(1, host=EVIL_HOST),
        next_page(1, host=f"{HOST}.{EVIL_HOST}"),
        next_page(1, host=f"{HOST}:444"),
        next_page(1, scheme="http"),
        f'<//{EVIL_HOST}/v2/{REPO}/referrers/{D1}?page=1>; rel="next"',
    ],
    ids=["other-host", "suffix-host", "other-port", "plain-http", "scheme-relative"],
)
async def test_a_page_elsewhere_is_not_followed(link: str) -> None:
    pages = [(index(entry(1)), link), (index(entry(2)), None)]
    fake = FakeRegistry(faults={"/referrers/": api(*pages)})
    evil = FakeRegistry(host=EVIL_HOST, faults={"/referrers/": api(*pages)})
    listed = await Referrers(client(fake, evil)).list(ref(), D1)
    assert listed == (descriptor(1),)
    assert evil.seen == []
    assert [(host_of(r), r.url.scheme) for r in fake.seen] == [(HOST, "https")]


async def test_a_later_page_that_is_not_an_index_ends_the_list() -> None:
    pages = [(index(entry(1)), next_page(1)), (b"oops", None)]
    answer = api(*pages)

    async def second_is_text(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("page") == "1":
            return httpx.Response(200, headers={"Content-Type": "text/plain"}, content=b"oops")
        return await answer(request)

    fake = with_tag(FakeRegistry(faults={"/referrers/": second_is_text}), index(entry(9)))
    referrers = Referrers(client(fake))
    assert await referrers.list(ref(), D1) == (descriptor(1),)
    assert tag_calls(fake) == []
    assert not referrers.knows_no_api(HOST)


# -- caps and malformed indexes -------------------------------------------------------------------


async def test_more_than_max_descriptors_in_one_index_is_limit_exceeded() -> None:
    at_limit = index(*(entry(n) for n in range(MAX_DESCRIPTORS)))
    over = index(*(entry(n) for n in range(MAX_DESCRIPTORS + 1)))
    fake = FakeRegistry(faults={"/referrers/": api((at_limit, None))})
    assert len(await Referrers(client(fake)).list(ref(), D1)) == MAX_DESCRIPTORS
    fake = FakeRegistry(faults={"/referrers/": api((over, None))})
    await refused(Referrers(client(fake)).list(ref(), D1), Reason.LIMIT_EXCEEDED)
    fake = with_tag(FakeRegistry(), over)
    await refused(Referrers(client(fake)).list(ref(), D1), Reason.LIMIT_EXCEEDED)


async def test_more_than_max_descriptors_over_pages_is_limit_exceeded() -> None:
    half = MAX_DESCRIPTORS // 2 + 1
    pages = [
        (index(*(entry(n) for n in range(half))), next_page(1)),
        (index(*(entry(half + n) for n in range(half))), None),
    ]
    fake = FakeRegistry(faults={"/referrers/": api(*pages)})
    failure = await refused(Referrers(client(fake)).list(ref(), D1), Reason.LIMIT_EXCEEDED)
    assert str(MAX_DESCRIPTORS) in failure.message


MALFORMED = {
    "not-json": b"{not json",
    "a-list": b"[]",
    "a-string": b'"index"',
    "no-manifests": json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX}).encode(),
    "manifests-an-object": json.dumps({"manifests": {"a": 1}}).encode(),
    "manifests-a-string": json.dumps({"manifests": "x"}).encode(),
    "deep": b"[" * 100_000,
}


@pytest.mark.parametrize("body", list(MALFORMED.values()), ids=list(MALFORMED))
async def test_a_malformed_index_is_unsupported_format(body: bytes) -> None:
    fake = FakeRegistry(faults={"/referrers/": api((body, None))})
    await refused(Referrers(client(fake)).list(ref(), D1), Reason.UNSUPPORTED_FORMAT)
    fake = with_tag(FakeRegistry(), body)
    await refused(Referrers(client(fake)).list(ref(), D1), Reason.UNSUPPORTED_FORMAT)


async def test_descriptors_that_are_not_well_formed_are_skipped() -> None:
    entries = [
        entry(1),
        "sha256:" + "3" * 64,
        None,
        entry(2, digest="sha256:" + "A" * 64),
        entry(2, digest="sha256:" + "a" * 63),
        entry(2, digest="sha512:" + "a" * 128),
        entry(2, digest="a" * 64),
        entry(2, digest=None),
        entry(2, digest=...),
        entry(2, mediaType=...),
        entry(2, mediaType=7),
        entry(2, size="802"),
        entry(2, size=True),
        entry(2, size=...),
        entry(4, artifactType=5),
        entry(5, annotations={"ok": "yes", "number": 1, "list": ["x"]}),
        entry(6, annotations=["not", "a", "map"]),
        entry(7, artifactType=..., mediaType=OCI_INDEX),
    ]
    fake = FakeRegistry(faults={"/referrers/": api((index(*entries), None))})
    listed = await Referrers(client(fake)).list(ref(), D1)
    assert listed == (
        descriptor(1),
        Descriptor(OCI_MANIFEST, f"sha256:{4:064x}", 804, None),
        descriptor(5, annotations={"ok": "yes"}),
        descriptor(6),
        Descriptor(OCI_INDEX, f"sha256:{7:064x}", 807, None),
    )


async def test_the_index_body_is_capped() -> None:
    huge = index(*(entry(n, annotations={"pad": "x" * 1000}) for n in range(600)))
    assert len(huge) > 512 * 1024
    fake = FakeRegistry(faults={"/referrers/": api((huge, None))})
    await refused(Referrers(client(fake)).list(ref(), D1), Reason.LIMIT_EXCEEDED)


# -- which referrers may hold a bundle, and what their manifest says --------------------------------


@pytest.mark.parametrize(
    ("media_type", "artifact_type", "expected"),
    [
        (OCI_MANIFEST, BUNDLE_V03, True),  # cosign v3.1 index entries
        (OCI_MANIFEST, EMPTY_MEDIA_TYPE, True),  # cosign v2.6 index entries
        (OCI_MANIFEST, None, True),  # registries that leave it out
        (OCI_MANIFEST, "", True),
        (OCI_MANIFEST, "application/vnd.dev.sigstore.bundle+json;version=0.2", True),
        (OCI_MANIFEST, "application/vnd.cncf.notary.signature", False),
        (OCI_MANIFEST, "application/spdx+json", False),
        (OCI_MANIFEST, "application/vnd.dev.cosign.artifact.sig.v1+json", False),
        (OCI_INDEX, BUNDLE_V03, False),
        ("application/vnd.docker.distribution.manifest.v2+json", BUNDLE_V03, False),
        ("", None, False),
    ],
)
def test_which_index_entries_may_hold_a_bundle(
    media_type: str, artifact_type: str | None, expected: bool
) -> None:
    assert may_hold_bundle(media_type, artifact_type) is expected


@pytest.mark.parametrize("name", ["v3.1.3-p256", "v2.6.5-p256"])
def test_a_real_cosign_referrer_manifest_names_its_bundle_and_subject(name: str) -> None:
    directory = DATA / name
    bundle = (directory / "sign.bundle.json").read_bytes()
    parsed = parse_referrer((directory / "sign.referrer.json").read_bytes())
    assert parsed == BundleReferrer(
        subject=(directory / "image.digest").read_text().strip(),
        layer=("sha256:" + hashlib.sha256(bundle).hexdigest(), len(bundle)),
        predicate_hint=COSIGN_SIGN_PREDICATE,
    )


LAYER = {"mediaType": BUNDLE_V03, "size": 659, "digest": D2}


def referrer(**fields: Any) -> bytes:
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": EMPTY_MEDIA_TYPE, "size": 2, "digest": "sha256:" + "4" * 64},
        "layers": [LAYER],
        "annotations": {"dev.sigstore.bundle.predicateType": "https://slsa.dev/provenance/v1"},
        "subject": {"mediaType": OCI_MANIFEST, "size": 413, "digest": D1},
        "artifactType": BUNDLE_V03,
    }
    document.update(fields)
    return json.dumps({k: v for k, v in document.items() if v is not ...}).encode()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (referrer(), BundleReferrer(D1, (D2, 659), "https://slsa.dev/provenance/v1")),
        (
            referrer(artifactType=...),
            BundleReferrer(D1, (D2, 659), "https://slsa.dev/provenance/v1"),
        ),
        (
            referrer(artifactType=..., config={"mediaType": BUNDLE_V03}),
            BundleReferrer(D1, (D2, 659), "https://slsa.dev/provenance/v1"),
        ),
        (
            referrer(artifactType="application/vnd.cncf.notary.signature"),
            BundleReferrer(D1, None, "https://slsa.dev/provenance/v1"),
        ),
        (referrer(annotations=...), BundleReferrer(D1, (D2, 659), None)),
        (
            referrer(annotations={"dev.sigstore.bundle.predicateType": 5}),
            BundleReferrer(D1, (D2, 659), None),
        ),
        (referrer(subject=...), BundleReferrer(None, (D2, 659), "https://slsa.dev/provenance/v1")),
        (
            referrer(subject={"digest": "sha256:xyz"}),
            BundleReferrer(None, (D2, 659), "https://slsa.dev/provenance/v1"),
        ),
        (referrer(subject=D1), BundleReferrer(None, (D2, 659), "https://slsa.dev/provenance/v1")),
        (referrer(layers=...), BundleReferrer(D1, None, "https://slsa.dev/provenance/v1")),
        (referrer(layers=LAYER), BundleReferrer(D1, None, "https://slsa.dev/provenance/v1")),
        (
            referrer(
                layers=[
                    {"mediaType": "application/octet-stream", "size": 1, "digest": D1},
                    {**LAYER, "digest": "sha256:bad"},
                    {**LAYER, "size": -1},
                    {**LAYER, "size": True},
                    {**LAYER, "size": "659"},
                    "layer",
                    {**LAYER, "digest": "sha256:" + "5" * 64, "size": 5},
                    LAYER,
                ]
            ),
            BundleReferrer(D1, ("sha256:" + "5" * 64, 5), "https://slsa.dev/provenance/v1"),
        ),
        (
            referrer(layers=[{"mediaType": "application/octet-stream", "size": 1, "digest": D2}]),
            BundleReferrer(D1, None, "https://slsa.dev/provenance/v1"),
        ),
    ],
    ids=[
        "cosign",
        "no-artifact-type",
        "bundle-config",
        "another-artifact-type",
        "no-annotations",
        "annotation-not-a-string",
        "no-subject",
        "subject-bad-digest",
        "subject-not-an-object",
        "no-layers",
        "layers-not-a-list",
        "first-usable-bundle-layer",
        "no-bundle-layer",
    ],
)
def test_what_a_referrer_manifest_says(raw: bytes, expected: BundleReferrer) -> None:
    assert parse_referrer(raw) == expected


@pytest.mark.parametrize("raw", [b"", b"{not json", b"[]", b"null", b"[" * 100_000])
def test_a_referrer_that_is_not_a_json_object_is_signature_invalid(raw: bytes) -> None:
    with pytest.raises(DeterministicFailure) as caught:
        parse_referrer(raw)
    assert caught.value.reason is Reason.SIGNATURE_INVALID
