"""The registry client against a misbehaving registry: every fault is a clear, specific failure.

The fake registry is the environment; what is asserted is what the client did with it (what it
sent where, what it returned, how fast it gave up).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from signet.model.reference import parse
from signet.observe.metrics import Metrics
from signet.oci.auth import load_docker_config
from signet.oci.client import Limits, RegistryClient
from signet.oci.dns import Resolver
from signet.oci.media import MANIFEST_ACCEPT
from signet.reasons import DeterministicFailure, Reason, TransientFailure
from signet.trust.model import RegistrySettings, TrustConfig
from tests.unit.fakes import (
    HOST,
    PUBLIC_ADDRESS,
    FakeRegistry,
    basic,
    digest_of,
    gzipped,
    host_of,
    once,
    oversized,
    redirect,
    refuse,
    resolver_of,
    serving,
    stall,
    status,
    trickle,
    without_digest_header,
    write_docker_config,
)
from tests.unit.network import Dial, MemoryNetwork

pytestmark = pytest.mark.anyio

DIGEST = "sha256:" + "ab" * 32
IMAGE = f"{HOST}/team/app"
MAX_MANIFEST = 1024
TIMEOUT = 0.3


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def client(
    fake: FakeRegistry,
    trust: TrustConfig | None = None,
    *,
    timeout: float = TIMEOUT,
    resolver: dict[str, list[str]] | None = None,
    metrics: Metrics | None = None,
    network: MemoryNetwork | None = None,
) -> RegistryClient:
    """A client whose connections (resolution, address checks, HTTP) reach `fake` in memory."""
    config = trust or TrustConfig(())
    return RegistryClient(
        lambda: config,
        limits=Limits(request_timeout=timeout, max_manifest_bytes=MAX_MANIFEST),
        metrics=metrics,
        network=network or MemoryNetwork(fake.handle),
        resolver=resolver_of(resolver),
    )


async def failure_of(work: Awaitable[Any]) -> TransientFailure | DeterministicFailure:
    with pytest.raises((TransientFailure, DeterministicFailure)) as caught:
        await work
    failure = caught.value
    assert isinstance(failure, TransientFailure | DeterministicFailure)
    return failure


async def transient(work: Awaitable[Any]) -> TransientFailure:
    failure = await failure_of(work)
    assert isinstance(failure, TransientFailure), failure
    return failure


async def deterministic(work: Awaitable[Any]) -> DeterministicFailure:
    failure = await failure_of(work)
    assert isinstance(failure, DeterministicFailure), failure
    return failure


def blob_with_content(fake: FakeRegistry, content: bytes) -> str:
    digest = digest_of(content)
    fake.blobs[digest] = content
    return digest


# -- resolving tags and checking what was served ---------------------------------------------------


async def test_a_tag_resolves_with_one_index_aware_head() -> None:
    fake = FakeRegistry()
    digest = fake.push_image("team/app", "1.0", "x")

    assert await client(fake).resolve(parse(f"{IMAGE}:1.0")) == digest

    (head,) = fake.seen
    assert head.method == "HEAD"
    assert head.url.path == "/v2/team/app/manifests/1.0"
    accepted = [media_type.strip() for media_type in head.headers["Accept"].split(",")]
    assert accepted == [media_type.strip() for media_type in MANIFEST_ACCEPT.split(",")]
    assert "application/vnd.oci.image.index.v1+json" in accepted
    assert "application/vnd.docker.distribution.manifest.list.v2+json" in accepted


async def test_a_large_index_resolves_by_head_whatever_its_length() -> None:
    fake = FakeRegistry()
    manifests = [{"digest": f"sha256:{i:064x}", "size": 1, "mediaType": "m"} for i in range(100)]
    raw = json.dumps({"schemaVersion": 2, "manifests": manifests}).encode()
    assert len(raw) > 8 * 1024
    digest = fake.put_manifest("team/app", "1.0", raw, "application/vnd.oci.image.index.v1+json")

    assert await client(fake).resolve(parse(f"{IMAGE}:1.0")) == digest

    (head,) = fake.seen
    assert head.method == "HEAD"


async def test_a_digest_reference_is_its_own_answer_without_a_request() -> None:
    fake = FakeRegistry()
    assert await client(fake).resolve(parse(f"{IMAGE}@{DIGEST}")) == DIGEST
    assert fake.seen == []


async def test_a_head_without_a_digest_header_falls_back_to_get_and_hash() -> None:
    fake = FakeRegistry()
    digest = fake.push_image("team/app", "1.0", "x")
    fake.faults["/manifests/"] = without_digest_header(fake)

    assert await client(fake).resolve(parse(f"{IMAGE}:1.0")) == digest

    assert [r.method for r in fake.seen] == ["HEAD", "GET"]
    assert fake.seen[1].headers["Accept"] == MANIFEST_ACCEPT


async def test_a_missing_tag_is_image_not_found() -> None:
    failure = await deterministic(client(FakeRegistry()).resolve(parse(f"{IMAGE}:nope")))
    assert failure.reason is Reason.IMAGE_NOT_FOUND
    assert f"{IMAGE}:nope" in failure.message


async def test_a_missing_manifest_is_none_not_an_error() -> None:
    assert await client(FakeRegistry()).manifest(parse(IMAGE), DIGEST) is None


async def test_a_manifest_that_is_not_what_its_digest_names() -> None:
    fake = FakeRegistry()
    fake.manifests[f"team/app:{DIGEST}"] = (b"{}", "application/vnd.oci.image.manifest.v1+json")
    failure = await deterministic(client(fake).manifest(parse(IMAGE), DIGEST))
    assert failure.reason is Reason.DIGEST_MISMATCH
    assert DIGEST in failure.message
    assert digest_of(b"{}") in failure.message


async def test_a_manifest_whose_digest_header_lies() -> None:
    fake = FakeRegistry()
    fake.faults["/manifests/"] = serving(b"{}", {"Docker-Content-Digest": DIGEST})
    failure = await deterministic(client(fake).manifest(parse(IMAGE), "1.0"))
    assert failure.reason is Reason.DIGEST_MISMATCH


async def test_a_blob_is_returned_when_it_is_what_its_digest_names() -> None:
    fake = FakeRegistry()
    digest = blob_with_content(fake, b"payload")
    assert await client(fake).blob(parse(IMAGE), digest, max_bytes=100) == b"payload"


async def test_a_blob_that_is_not_what_its_digest_names() -> None:
    fake = FakeRegistry()
    fake.blobs[DIGEST] = b"something else"
    failure = await deterministic(client(fake).blob(parse(IMAGE), DIGEST, max_bytes=100))
    assert failure.reason is Reason.SIGNATURE_INVALID
    assert digest_of(b"something else") in failure.message


async def test_a_missing_blob_is_a_bad_signature() -> None:
    failure = await deterministic(client(FakeRegistry()).blob(parse(IMAGE), DIGEST, max_bytes=9))
    assert failure.reason is Reason.SIGNATURE_INVALID


# -- statuses, refusals and time ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (500, Reason.REGISTRY_UNAVAILABLE),
        (502, Reason.REGISTRY_UNAVAILABLE),
        (503, Reason.REGISTRY_UNAVAILABLE),
        (504, Reason.REGISTRY_UNAVAILABLE),
        (429, Reason.REGISTRY_RATE_LIMITED),
        (403, Reason.REGISTRY_AUTH_FAILED),
    ],
)
async def test_error_statuses_are_transient(code: int, reason: Reason) -> None:
    fake = FakeRegistry(faults={"/manifests/": status(code, {"Retry-After": "7"})})
    failure = await transient(client(fake).resolve(parse(f"{IMAGE}:1.0")))
    assert failure.reason is reason
    assert str(code) in failure.message
    assert HOST in failure.message
    if code == 429:
        assert "retry after 7s" in failure.message


async def test_a_401_after_authenticating_is_an_auth_failure() -> None:
    fake = FakeRegistry(token="t0ken")
    fake.push_image("team/app", "1.0", "x")

    async def token_refused(request: httpx.Request) -> httpx.Response | None:
        if "Authorization" not in request.headers:
            return None  # the normal challenge
        return httpx.Response(401, headers={"WWW-Authenticate": fake.challenge()})

    fake.faults["/v2/"] = token_refused
    failure = await transient(client(fake).resolve(parse(f"{IMAGE}:1.0")))

    assert failure.reason is Reason.REGISTRY_AUTH_FAILED
    assert "401" in failure.message
    assert len(fake.requests_to("/token")) == 1
    assert fake.seen[-1].headers["Authorization"] == "Bearer t0ken", "it did send the token"


async def test_a_401_without_a_usable_challenge_is_an_auth_failure() -> None:
    fake = FakeRegistry(faults={"/manifests/": status(401, {"WWW-Authenticate": "Negotiate"})})
    failure = await transient(client(fake).resolve(parse(f"{IMAGE}:1.0")))
    assert failure.reason is Reason.REGISTRY_AUTH_FAILED


async def test_a_refused_connection_is_registry_unavailable() -> None:
    fake = FakeRegistry(faults={"/v2/": refuse()})
    failure = await transient(client(fake).resolve(parse(f"{IMAGE}:1.0")))
    assert failure.reason is Reason.REGISTRY_UNAVAILABLE
    assert HOST in failure.message
    assert "refused" in failure.message


async def test_a_slow_registry_times_out_on_time() -> None:
    fake = FakeRegistry(faults={"/manifests/": stall(5)})
    fake.push_image("team/app", "1.0", "x")
    started = time.monotonic()
    failure = await transient(client(fake).resolve(parse(f"{IMAGE}:1.0")))
    assert failure.reason is Reason.REGISTRY_TIMEOUT
    assert time.monotonic() - started < TIMEOUT + 0.5


async def test_a_trickling_body_times_out_on_time() -> None:
    slowloris = trickle(b" ", every=0.02, count=10_000)
    fake = FakeRegistry(faults={"/manifests/": slowloris})
    started = time.monotonic()
    failure = await transient(client(fake).manifest(parse(IMAGE), DIGEST))
    assert failure.reason is Reason.REGISTRY_TIMEOUT
    assert time.monotonic() - started < TIMEOUT + 0.5
    assert 0 < slowloris.sent < slowloris.count


async def test_a_slow_token_service_times_out_on_time() -> None:
    fake = FakeRegistry(token="t0ken", faults={"/token": stall(5)})
    fake.push_image("team/app", "1.0", "x")
    started = time.monotonic()
    failure = await transient(client(fake).resolve(parse(f"{IMAGE}:1.0")))
    assert failure.reason is Reason.REGISTRY_TIMEOUT
    assert time.monotonic() - started < TIMEOUT + 0.5


async def test_an_oversized_manifest_is_refused_by_its_declared_length() -> None:
    huge = oversized(50 * MAX_MANIFEST)
    fake = FakeRegistry(faults={"/manifests/": huge})
    failure = await deterministic(client(fake).manifest(parse(IMAGE), DIGEST))
    assert failure.reason is Reason.LIMIT_EXCEEDED
    assert f"{MAX_MANIFEST} bytes" in failure.message
    assert huge.sent == 0, "the body must not be read when its length already says too much"


async def test_an_oversized_undeclared_manifest_is_refused_without_reading_it_all() -> None:
    endless = trickle(b"x" * 512, every=0, count=100_000)
    fake = FakeRegistry(faults={"/manifests/": endless})
    failure = await deterministic(client(fake, timeout=5).manifest(parse(IMAGE), DIGEST))
    assert failure.reason is Reason.LIMIT_EXCEEDED
    assert f"{MAX_MANIFEST} bytes" in failure.message
    assert endless.sent <= MAX_MANIFEST // 512 + 1


async def test_an_oversized_blob_is_refused() -> None:
    fake = FakeRegistry(faults={"/blobs/": trickle(b"x" * 64, every=0, count=1000)})
    failure = await deterministic(client(fake).blob(parse(IMAGE), DIGEST, max_bytes=100))
    assert failure.reason is Reason.LIMIT_EXCEEDED


@pytest.mark.parametrize("declared", ["999\u00b99999", "\u0661\u0662", "-1", "1e9", ""])
async def test_a_content_length_that_is_not_ascii_digits_is_no_crash(declared: str) -> None:
    """Found by fuzzing: '999¹9999'.isdigit() is true, and int() of it raises ValueError."""

    async def lying(_: httpx.Request) -> httpx.Response:
        async def body() -> AsyncIterator[bytes]:
            yield b"{}"

        return httpx.Response(200, headers=[(b"Content-Length", declared.encode())], content=body())

    fake = FakeRegistry(faults={"/manifests/": lying})
    registry = RegistryClient(
        lambda: TrustConfig(()), limits=Limits(request_timeout=TIMEOUT), transport=fake.transport()
    )
    outcome = await registry.manifest(parse(IMAGE), "v1")
    assert outcome is not None and outcome.raw == b"{}"


async def test_a_compressed_body_is_refused() -> None:
    fake = FakeRegistry(faults={"/manifests/": gzipped()})
    failure = await failure_of(client(fake).manifest(parse(IMAGE), DIGEST))
    assert "gzip" in failure.message
    assert fake.seen[0].headers["Accept-Encoding"] == "identity"


# -- redirects ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "named", "kind"),
    [
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254", "plain HTTP"),
        ("https://169.254.169.254/latest/meta-data/", "169.254.169.254", "link-local"),
        ("https://127.0.0.1/x", "127.0.0.1", "loopback"),
        ("https://127.0.0.1:6443/api", "127.0.0.1", "loopback"),
        ("https://10.0.0.1/x", "10.0.0.1", "private"),
        ("https://192.168.1.1/x", "192.168.1.1", "private"),
        ("https://[::ffff:169.254.169.254]/x", "169.254.169.254", "link-local"),
        ("https://[::ffff:127.0.0.1]/x", "127.0.0.1", "loopback"),
        ("https://[::1]/x", "::1", "loopback"),
        ("https://[fd00:ec2::254]/x", "fd00:ec2::254", "metadata"),
        ("https://0.0.0.0/x", "0.0.0.0", "unspecified"),
        ("https://100.100.100.200/latest/meta-data/", "100.100.100.200", "metadata"),
        ("https://100.64.0.1/x", "100.64.0.1", "not globally"),
        ("https://2852039166/latest/", "169.254.169.254", "link-local"),
        ("https://0xa9fea9fe/latest/", "169.254.169.254", "link-local"),
        ("https://0xa9.0xfe.0xa9.0xfe/latest/", "169.254.169.254", "link-local"),
        ("https://169.254.43518/latest/", "169.254.169.254", "link-local"),
        ("https://metadata.rebind.test/x", "169.254.169.254", "link-local"),
        ("https://half.rebind.test/x", "10.0.0.1", "private"),
    ],
)
async def test_redirects_to_private_addresses_are_refused(
    location: str, named: str, kind: str
) -> None:
    fake = FakeRegistry(faults={"/blobs/": redirect(location)})
    network = MemoryNetwork(fake.handle)
    registry = client(
        fake,
        resolver={
            "metadata.rebind.test": ["169.254.169.254"],
            "half.rebind.test": [PUBLIC_ADDRESS, "10.0.0.1"],
        },
        network=network,
    )
    failure = await transient(registry.blob(parse(IMAGE), DIGEST, max_bytes=100))
    assert "refusing" in failure.message
    assert named in failure.message
    assert kind in failure.message
    assert len(fake.seen) == 1, "nothing may be sent to the redirect target"
    assert [d.address for d in network.dials] == [PUBLIC_ADDRESS], "only the registry was dialled"


async def test_a_plain_http_registry_may_not_redirect_to_metadata_either() -> None:
    fake = FakeRegistry(faults={"/blobs/": redirect("http://169.254.169.254/latest/")})
    trust = TrustConfig((), (RegistrySettings(HOST, insecure=True),))
    failure = await transient(client(fake, trust).blob(parse(IMAGE), DIGEST, max_bytes=100))
    assert "169.254.169.254" in failure.message
    assert "link-local" in failure.message
    assert len(fake.seen) == 1
    assert fake.seen[0].url.scheme == "http"


@pytest.mark.parametrize("scheme", ["bearer", "basic"])
async def test_a_redirect_to_a_public_host_is_followed_without_credentials(
    tmp_path: Path, scheme: str
) -> None:
    fake = FakeRegistry(token="t0ken" if scheme == "bearer" else None)
    digest = blob_with_content(fake, b"the payload")
    fake.elsewhere["storage.example"] = b"the payload"
    to_storage = redirect("https://storage.example/blob?sig=1")

    async def after_auth(request: httpx.Request) -> httpx.Response | None:
        # Like a real registry: authenticate first, then send the client to the blob store.
        if "Authorization" in request.headers:
            return await to_storage(request)
        if fake.token:
            return None  # the fake's own Bearer challenge
        return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'})

    fake.faults["/blobs/"] = after_auth
    credentials = write_docker_config(tmp_path / "config.json", {HOST: ("ci", "secret")})
    trust = TrustConfig((), (), credentials)
    network = MemoryNetwork(fake.handle)
    registry = client(fake, trust, network=network)

    assert await registry.blob(parse(IMAGE), digest, max_bytes=100) == b"the payload"

    authorized = [r for r in fake.requests_to("/blobs/") if "Authorization" in r.headers]
    expected = "Bearer t0ken" if scheme == "bearer" else basic("ci", "secret")
    assert authorized[-1].headers["Authorization"] == expected, "the registry got credentials"
    (hop,) = fake.requests_to("storage.example")
    assert "Authorization" not in hop.headers
    assert hop.url.path == "/blob"
    assert Dial(PUBLIC_ADDRESS, 443, "storage.example") in network.dials, (
        "the connection goes to the address that was checked, TLS verifies the host name"
    )


async def test_a_stalling_dns_lookup_is_bounded_by_the_timeout() -> None:
    fake = FakeRegistry(faults={"/blobs/": redirect("https://slow-dns.example/x")})
    fake.elsewhere["slow-dns.example"] = b"blob"

    async def stalling(_: str) -> list[str]:
        await anyio.sleep(5.0)  # an attacker's name server that takes its time
        return [PUBLIC_ADDRESS]

    registry = RegistryClient(
        lambda: TrustConfig(()),
        limits=Limits(request_timeout=TIMEOUT),
        network=MemoryNetwork(fake.handle),
        resolver=Resolver(lookup=stalling, timeout=10.0),
    )
    started = time.monotonic()
    failure = await transient(registry.blob(parse(IMAGE), digest_of(b"blob"), max_bytes=100))
    assert failure.reason is Reason.REGISTRY_TIMEOUT
    assert time.monotonic() - started < TIMEOUT + 0.4
    assert fake.requests_to("slow-dns.example") == []


@pytest.mark.parametrize(
    "location",
    ["file:///etc/passwd", "ftp://storage.example/blob", "gopher://x:70/_"],
)
async def test_redirects_to_other_schemes_are_refused(location: str) -> None:
    fake = FakeRegistry(faults={"/blobs/": redirect(location)})
    failure = await transient(client(fake).blob(parse(IMAGE), DIGEST, max_bytes=100))
    assert "refusing redirect" in failure.message
    assert len(fake.seen) == 1


async def test_an_https_to_http_downgrade_is_refused() -> None:
    fake = FakeRegistry(faults={"/blobs/": redirect("http://storage.example/blob")})
    failure = await transient(client(fake).blob(parse(IMAGE), DIGEST, max_bytes=100))
    assert "plain HTTP" in failure.message
    assert "storage.example" in failure.message
    assert fake.requests_to("storage.example") == []


def redirect_chain(fake: FakeRegistry, hops: int) -> None:
    """The registry sends blob GETs through `hops` redirects to a host that serves the blob."""
    fake.faults["/blobs/"] = redirect("https://hop1.example/h1")
    for n in range(1, hops):
        fake.faults[f"/h{n}"] = redirect(
            f"https://hop{n + 1}.example/h{n + 1}", only_from=f"hop{n}.example"
        )
    fake.elsewhere[f"hop{hops}.example"] = b"blob"


async def test_three_redirects_are_followed() -> None:
    fake = FakeRegistry()
    redirect_chain(fake, 3)
    got = await client(fake).blob(parse(IMAGE), digest_of(b"blob"), max_bytes=100)
    assert got == b"blob"
    assert [host_of(r) for r in fake.seen] == [HOST, "hop1.example", "hop2.example", "hop3.example"]


async def test_more_than_three_redirects_are_refused() -> None:
    fake = FakeRegistry()
    redirect_chain(fake, 4)
    failure = await transient(client(fake).blob(parse(IMAGE), digest_of(b"blob"), max_bytes=100))
    assert "more than 3 redirects" in failure.message
    assert fake.requests_to("hop4.example") == []


async def test_a_redirect_loop_is_refused() -> None:
    fake = FakeRegistry(faults={"/blobs/": redirect(f"https://{HOST}/v2/team/app/blobs/{DIGEST}")})
    failure = await transient(client(fake).blob(parse(IMAGE), DIGEST, max_bytes=100))
    assert "redirects" in failure.message
    assert len(fake.seen) == 4


async def test_a_configured_private_host_may_be_redirected_to() -> None:
    fake = FakeRegistry(faults={"/blobs/": redirect("https://10.0.0.5:9000/b")})
    fake.elsewhere["10.0.0.5:9000"] = b"blob"
    trust = TrustConfig((), (RegistrySettings("10.0.0.5:9000"),))
    got = await client(fake, trust).blob(parse(IMAGE), digest_of(b"blob"), max_bytes=100)
    assert got == b"blob"
    (hop,) = fake.requests_to("10.0.0.5")
    assert hop.url.path == "/b"


# -- token auth and credentials -------------------------------------------------------------------


async def test_the_token_flow_asks_for_the_pull_scope_once() -> None:
    fake = FakeRegistry(token="t0ken")
    digest = fake.push_image("team/app", "1.0", "x")
    registry = client(fake)

    for _ in range(3):
        assert await registry.resolve(parse(f"{IMAGE}:1.0")) == digest

    (token_request,) = fake.requests_to("/token")
    assert token_request.url.params["scope"] == "repository:team/app:pull"
    assert token_request.url.params["service"] == HOST
    assert "Authorization" not in token_request.headers, "no credentials are configured"
    heads = [r for r in fake.seen if r.method == "HEAD"]
    assert [r.headers.get("Authorization") for r in heads] == [None, *["Bearer t0ken"] * 3]


async def test_each_repository_gets_its_own_scope() -> None:
    fake = FakeRegistry(token="t0ken")
    fake.push_image("team/app", "1.0", "x")
    fake.push_image("team/other", "1.0", "y")
    registry = client(fake)
    await registry.resolve(parse(f"{IMAGE}:1.0"))
    await registry.resolve(parse(f"{HOST}/team/other:1.0"))
    scopes = [r.url.params["scope"] for r in fake.requests_to("/token")]
    assert scopes == ["repository:team/app:pull", "repository:team/other:pull"]


async def test_credentials_go_to_the_registrys_own_realm(tmp_path: Path) -> None:
    fake = FakeRegistry(token="t0ken")
    digest = fake.push_image("team/app", "1.0", "x")
    config = write_docker_config(tmp_path / "config.json", {HOST: ("ci", "secret")})
    assert await client(fake, TrustConfig((), (), config)).resolve(parse(f"{IMAGE}:1.0")) == digest
    (token_request,) = fake.requests_to("/token")
    assert token_request.headers["Authorization"] == basic("ci", "secret")


async def test_credentials_never_go_to_a_foreign_realm(tmp_path: Path) -> None:
    fake = FakeRegistry(token="t0ken", realm="https://auth.elsewhere.example/token")
    digest = fake.push_image("team/app", "1.0", "x")
    config = write_docker_config(tmp_path / "config.json", {HOST: ("ci", "secret")})

    assert await client(fake, TrustConfig((), (), config)).resolve(parse(f"{IMAGE}:1.0")) == digest

    (token_request,) = fake.requests_to("/token")
    assert host_of(token_request) == "auth.elsewhere.example"
    assert "Authorization" not in token_request.headers, "the token is requested anonymously"


async def test_a_realm_named_in_the_registry_settings_gets_the_credentials(tmp_path: Path) -> None:
    fake = FakeRegistry(token="t0ken", realm="https://auth.elsewhere.example/token")
    fake.push_image("team/app", "1.0", "x")
    trust = TrustConfig(
        (),
        (RegistrySettings(HOST, realms=("auth.elsewhere.example",)),),
        write_docker_config(tmp_path / "config.json", {HOST: ("ci", "secret")}),
    )
    await client(fake, trust).resolve(parse(f"{IMAGE}:1.0"))
    (token_request,) = fake.requests_to("/token")
    assert token_request.headers["Authorization"] == basic("ci", "secret")


async def test_a_realm_that_redirects_does_not_pass_the_credentials_on(tmp_path: Path) -> None:
    fake = FakeRegistry(token="t0ken")
    fake.faults["/token"] = redirect("https://auth.elsewhere.example/token")
    fake.push_image("team/app", "1.0", "x")
    config = write_docker_config(tmp_path / "config.json", {HOST: ("ci", "secret")})

    await client(fake, TrustConfig((), (), config)).resolve(parse(f"{IMAGE}:1.0"))

    first, hop = fake.requests_to("/token")
    assert first.headers["Authorization"] == basic("ci", "secret")
    assert host_of(hop) == "auth.elsewhere.example"
    assert "Authorization" not in hop.headers


@pytest.mark.parametrize(
    ("realm", "named"),
    [
        ("https://169.254.169.254/token", "169.254.169.254"),
        ("https://127.0.0.1:5001/token", "127.0.0.1"),
        ("https://10.0.0.1/token", "10.0.0.1"),
        ("https://[::ffff:169.254.169.254]/token", "169.254.169.254"),
        ("https://100.100.100.200/token", "100.100.100.200"),
        ("https://auth.rebind.test/token", "169.254.169.254"),
        ("http://auth.example/token", "plain HTTP"),
        ("ftp://auth.example/token", "unusable"),
    ],
)
async def test_unsafe_token_realms_are_refused(realm: str, named: str, tmp_path: Path) -> None:
    fake = FakeRegistry(token="t0ken", realm=realm)
    fake.push_image("team/app", "1.0", "x")
    config = write_docker_config(tmp_path / "config.json", {HOST: ("ci", "secret")})
    registry = client(
        fake, TrustConfig((), (), config), resolver={"auth.rebind.test": ["169.254.169.254"]}
    )
    failure = await transient(registry.resolve(parse(f"{IMAGE}:1.0")))
    assert named in failure.message
    assert fake.requests_to("/token") == [], "nothing may be sent to the realm"
    assert len(fake.seen) == 1


async def test_credentials_for_one_registry_never_reach_another(tmp_path: Path) -> None:
    other = "other.test"
    config = write_docker_config(tmp_path / "config.json", {HOST: ("ci", "secret")})

    bearer = FakeRegistry(host=other, token="t0ken", realm=f"https://{other}/token")
    digest = bearer.push_image("team/app", "1.0", "x")
    assert (
        await client(bearer, TrustConfig((), (), config)).resolve(parse(f"{other}/team/app:1.0"))
        == digest
    )
    assert len(bearer.requests_to("/token")) == 1
    assert not [r for r in bearer.seen if r.headers.get("Authorization", "").startswith("Basic")]

    basic_only = FakeRegistry(
        host=other, faults={"/v2/": status(401, {"WWW-Authenticate": 'Basic realm="r"'})}
    )
    failure = await transient(
        client(basic_only, TrustConfig((), (), config)).resolve(parse(f"{other}/team/app:1.0"))
    )
    assert failure.reason is Reason.REGISTRY_AUTH_FAILED
    assert "none are configured" in failure.message
    assert all("Authorization" not in r.headers for r in basic_only.seen)


async def test_a_transient_token_failure_is_retried_on_the_next_call() -> None:
    fake = FakeRegistry(token="t0ken", faults={"/token": once(status(503))})
    digest = fake.push_image("team/app", "1.0", "x")
    registry = client(fake)
    failure = await transient(registry.resolve(parse(f"{IMAGE}:1.0")))
    assert failure.reason is Reason.REGISTRY_AUTH_FAILED
    assert await registry.resolve(parse(f"{IMAGE}:1.0")) == digest


def test_docker_config_forms(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(
        '{"auths": {"https://index.docker.io/v1/": {"auth": "aHViOnB3"},'
        ' "Registry.Test": {"username": "u", "password": "p"},'
        ' "broken.test": {"auth": "!!!"}, "empty.test": {}}}'
    )
    found = load_docker_config(path)
    assert set(found) == {"docker.io", "registry.test"}
    assert (found["docker.io"].username, found["docker.io"].password) == ("hub", "pw")
    assert (found["registry.test"].username, found["registry.test"].password) == ("u", "p")


def registry_call_counts(metrics: Metrics) -> dict[tuple[str, str], float]:
    return {
        (sample.labels["host"], sample.labels["code"]): sample.value
        for metric in metrics.registry.collect()
        if metric.name == "signet_registry_requests"
        for sample in metric.samples
        if sample.name.endswith("_total")
    }


async def test_calls_that_got_no_answer_are_counted_too() -> None:
    """An unreachable or silent registry leaves a series, not nothing."""
    metrics = Metrics()
    refused = FakeRegistry(faults={"/v2/": refuse()})
    await transient(client(refused, metrics=metrics).resolve(parse(f"{IMAGE}:1.0")))
    assert registry_call_counts(metrics).get((HOST, "connection_error"), 0) >= 1
    slow = FakeRegistry(faults={"/manifests/": stall(5)})
    slow.push_image("team/app", "1.0", "x")
    await transient(client(slow, metrics=metrics).resolve(parse(f"{IMAGE}:1.0")))
    assert registry_call_counts(metrics).get((HOST, "timeout"), 0) >= 1


async def test_metric_labels_stay_bounded_whatever_hosts_images_name() -> None:
    metrics = Metrics()
    fake = FakeRegistry()
    registry = client(fake, metrics=metrics)
    for i in range(100):
        await registry.resolve(parse(f"host{i}.example/a/b:1"))
    hosts = {
        sample.labels["host"]
        for metric in metrics.registry.collect()
        if metric.name == "signet_registry_requests"
        for sample in metric.samples
    }
    assert len(hosts) <= 65
    assert "other" in hosts
