"""The registry client against a misbehaving registry: every fault is a clear, specific failure."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import httpx
import pytest

from signet.reasons import DeterministicFailure, Reason, TransientFailure
from signet.reference import parse
from signet.registry import MANIFEST_ACCEPT, Limits, RegistryClient
from signet.trust import RegistrySettings, TrustConfig
from tests.unit.fakes import HOST, FakeRegistry, redirect, stall, status, trickle

pytestmark = pytest.mark.anyio

DIGEST = "sha256:" + "ab" * 32


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def client(
    fake: FakeRegistry,
    trust: TrustConfig | None = None,
    *,
    timeout: float = 0.5,
    resolver: dict[str, list[str]] | None = None,
) -> RegistryClient:
    config = trust or TrustConfig(())
    names = resolver or {}
    return RegistryClient(
        lambda: config,
        limits=Limits(request_timeout=timeout, max_manifest_bytes=1024),
        transport=fake.transport(),
        resolver=lambda name: names.get(name, ["93.184.215.14"]),
    )


async def failure_of(coroutine: object) -> TransientFailure | DeterministicFailure:
    with pytest.raises((TransientFailure, DeterministicFailure)) as caught:
        await coroutine  # type: ignore[misc]
    failure = caught.value
    assert isinstance(failure, TransientFailure | DeterministicFailure)
    return failure


async def test_tag_resolves_with_an_index_aware_head() -> None:
    fake = FakeRegistry()
    digest = fake.push_image("team/app", "1.0", "x")
    assert await client(fake).resolve(parse(f"{HOST}/team/app:1.0")) == digest
    (head,) = fake.seen
    assert head.method == "HEAD"
    assert head.headers["Accept"] == MANIFEST_ACCEPT
    assert "application/vnd.oci.image.index.v1+json" in MANIFEST_ACCEPT


async def test_a_missing_tag_is_image_not_found() -> None:
    failure = await failure_of(client(FakeRegistry()).resolve(parse(f"{HOST}/team/app:nope")))
    assert failure.reason is Reason.IMAGE_NOT_FOUND


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (500, Reason.REGISTRY_UNAVAILABLE),
        (503, Reason.REGISTRY_UNAVAILABLE),
        (429, Reason.REGISTRY_RATE_LIMITED),
        (403, Reason.REGISTRY_AUTH_FAILED),
    ],
)
async def test_error_statuses_are_transient(code: int, reason: Reason) -> None:
    fake = FakeRegistry(faults={"/manifests/": status(code, {"Retry-After": "7"})})
    failure = await failure_of(client(fake).resolve(parse(f"{HOST}/team/app:1.0")))
    assert isinstance(failure, TransientFailure)
    assert failure.reason is reason
    assert str(code) in failure.message
    if code == 429:
        assert "retry after 7s" in failure.message


async def test_a_slow_registry_times_out() -> None:
    fake = FakeRegistry(faults={"/manifests/": stall(5)})
    failure = await failure_of(client(fake, timeout=0.2).resolve(parse(f"{HOST}/team/app:1.0")))
    assert failure.reason is Reason.REGISTRY_TIMEOUT


async def test_a_trickling_body_times_out() -> None:
    fake = FakeRegistry(faults={"/manifests/": trickle(b" ", every=0.05, count=1000)})
    failure = await failure_of(client(fake, timeout=0.3).manifest(parse(f"{HOST}/a/b"), DIGEST))
    assert failure.reason is Reason.REGISTRY_TIMEOUT


async def test_an_oversized_manifest_is_refused_by_its_declared_length() -> None:
    async def huge(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"x" * 5000)

    fake = FakeRegistry(faults={"/manifests/": huge})
    failure = await failure_of(client(fake).manifest(parse(f"{HOST}/a/b"), DIGEST))
    assert failure.reason is Reason.LIMIT_EXCEEDED


async def test_an_oversized_streamed_manifest_is_refused_without_reading_it_all() -> None:
    fake = FakeRegistry(faults={"/manifests/": trickle(b"x" * 512, every=0, count=100_000)})
    failure = await failure_of(client(fake, timeout=5).manifest(parse(f"{HOST}/a/b"), DIGEST))
    assert failure.reason is Reason.LIMIT_EXCEEDED
    assert "1024 bytes" in failure.message


async def test_a_compressed_body_is_refused() -> None:
    async def gzipped(_: httpx.Request) -> httpx.Response:
        body = gzip.compress(b"{}")
        return httpx.Response(200, content=body, headers={"Content-Encoding": "gzip"})

    fake = FakeRegistry(faults={"/manifests/": gzipped})
    failure = await failure_of(client(fake).manifest(parse(f"{HOST}/a/b"), DIGEST))
    assert "gzip" in failure.message


async def test_a_manifest_that_is_not_what_its_digest_names() -> None:
    fake = FakeRegistry()
    fake.manifests[f"a/b:{DIGEST}"] = (b"{}", "application/vnd.oci.image.manifest.v1+json")
    failure = await failure_of(client(fake).manifest(parse(f"{HOST}/a/b"), DIGEST))
    assert failure.reason is Reason.DIGEST_MISMATCH


async def test_a_blob_that_is_not_what_its_digest_names() -> None:
    fake = FakeRegistry()
    fake.blobs[DIGEST] = b"something else"
    failure = await failure_of(client(fake).blob(parse(f"{HOST}/a/b"), DIGEST, max_bytes=100))
    assert failure.reason is Reason.SIGNATURE_INVALID


@pytest.mark.parametrize(
    "location",
    [
        "http://169.254.169.254/latest/meta-data/",
        "https://169.254.169.254/latest/meta-data/",
        "https://127.0.0.1/x",
        "https://10.0.0.1/x",
        "https://[::ffff:169.254.169.254]/x",
        "https://[::1]/x",
        "https://metadata.rebind.test/x",
        "https://100.100.100.200/latest/meta-data/",
    ],
)
async def test_redirects_to_private_addresses_are_refused(location: str) -> None:
    fake = FakeRegistry(faults={"/blobs/": redirect(location)})
    registry = client(fake, resolver={"metadata.rebind.test": ["169.254.169.254"]})
    failure = await failure_of(registry.blob(parse(f"{HOST}/a/b"), DIGEST, max_bytes=100))
    assert isinstance(failure, TransientFailure)
    assert "refusing" in failure.message
    assert len(fake.seen) == 1, "nothing may be sent to the redirect target"


async def test_a_redirect_to_a_public_host_is_followed_without_credentials(tmp_path: Path) -> None:
    fake = FakeRegistry(token="t0ken", realm=f"https://{HOST}/token")
    fake.blobs[DIGEST] = b"x"
    to_storage = redirect("https://storage.example/blob?sig=1")

    async def once_authorized(request: httpx.Request) -> httpx.Response | None:
        # Like a real registry: authenticate first, then send the client to the blob store.
        return await to_storage(request) if "Authorization" in request.headers else None

    fake.faults["/blobs/"] = once_authorized
    registry = client(fake)
    with pytest.raises(DeterministicFailure):  # the storage host serves other bytes
        await registry.blob(parse(f"{HOST}/a/b"), DIGEST, max_bytes=100)
    (hop,) = fake.requests_to("storage")
    assert hop.headers["Host"] == "storage.example"
    assert hop.url.host == "93.184.215.14", "the connection goes to the address that was checked"
    assert "Authorization" not in hop.headers


async def test_an_https_to_http_downgrade_is_refused() -> None:
    fake = FakeRegistry(faults={"/blobs/": redirect("http://storage.example/blob")})
    failure = await failure_of(client(fake).blob(parse(f"{HOST}/a/b"), DIGEST, max_bytes=100))
    assert "plain HTTP" in failure.message


async def test_endless_redirects_are_refused() -> None:
    fake = FakeRegistry(faults={"/blobs/": redirect(f"https://{HOST}/v2/a/b/blobs/{DIGEST}")})
    failure = await failure_of(client(fake).blob(parse(f"{HOST}/a/b"), DIGEST, max_bytes=100))
    assert "redirects" in failure.message


async def test_a_configured_private_host_may_be_redirected_to() -> None:
    fake = FakeRegistry(faults={"/blobs/": redirect("https://10.0.0.5:9000/b")})
    trust = TrustConfig((), (RegistrySettings("10.0.0.5:9000"),))
    with pytest.raises(DeterministicFailure):  # reached, and then its bytes are checked
        await client(fake, trust).blob(parse(f"{HOST}/a/b"), DIGEST, max_bytes=100)
    assert fake.requests_to("10.0.0.5")


def docker_config(path: Path, host: str) -> Path:
    path.write_text(json.dumps({"auths": {host: {"auth": "Y2k6c2VjcmV0"}}}))  # ci:secret
    return path


async def test_token_flow_caches_the_token_and_sends_credentials_to_its_own_realm(
    tmp_path: Path,
) -> None:
    fake = FakeRegistry(token="t0ken")
    digest = fake.push_image("team/app", "1.0", "x")
    trust = TrustConfig((), (), docker_config(tmp_path / "config.json", HOST))
    registry = client(fake, trust)
    for _ in range(3):
        assert await registry.resolve(parse(f"{HOST}/team/app:1.0")) == digest
    (token_request,) = fake.requests_to("/token")
    assert token_request.url.params["scope"] == "repository:team/app:pull"
    assert token_request.url.params["service"] == HOST
    assert token_request.headers["Authorization"] == "Basic Y2k6c2VjcmV0"


async def test_credentials_never_go_to_a_foreign_realm(tmp_path: Path) -> None:
    fake = FakeRegistry(token="t0ken", realm="https://auth.elsewhere.example/token")
    fake.push_image("team/app", "1.0", "x")
    trust = TrustConfig((), (), docker_config(tmp_path / "config.json", HOST))
    await client(fake, trust).resolve(parse(f"{HOST}/team/app:1.0"))
    (token_request,) = fake.requests_to("/token")
    assert "Authorization" not in token_request.headers


async def test_a_named_realm_gets_the_credentials(tmp_path: Path) -> None:
    fake = FakeRegistry(token="t0ken", realm="https://auth.elsewhere.example/token")
    fake.push_image("team/app", "1.0", "x")
    trust = TrustConfig(
        (),
        (RegistrySettings(HOST, realms=("auth.elsewhere.example",)),),
        docker_config(tmp_path / "config.json", HOST),
    )
    await client(fake, trust).resolve(parse(f"{HOST}/team/app:1.0"))
    (token_request,) = fake.requests_to("/token")
    assert token_request.headers["Authorization"] == "Basic Y2k6c2VjcmV0"


async def test_credentials_for_one_registry_never_reach_another(tmp_path: Path) -> None:
    fake = FakeRegistry(host="other.test", token="t0ken", realm="https://other.test/token")
    fake.push_image("team/app", "1.0", "x")
    trust = TrustConfig((), (), docker_config(tmp_path / "config.json", HOST))
    await client(fake, trust).resolve(parse("other.test/team/app:1.0"))
    assert all(
        "Authorization" not in r.headers or "Bearer" in r.headers["Authorization"]
        for r in fake.seen
    )


@pytest.mark.parametrize(
    "realm",
    ["https://169.254.169.254/token", "https://127.0.0.1:5001/token", "http://auth.example/token"],
)
async def test_unsafe_token_realms_are_refused(realm: str) -> None:
    fake = FakeRegistry(token="t0ken", realm=realm)
    fake.push_image("team/app", "1.0", "x")
    failure = await failure_of(client(fake).resolve(parse(f"{HOST}/team/app:1.0")))
    assert failure.reason is Reason.REGISTRY_AUTH_FAILED or "refusing" in failure.message
    assert fake.requests_to("/token") == []


async def test_metric_labels_stay_bounded_whatever_hosts_images_name() -> None:
    from signet.metrics import Metrics

    metrics = Metrics()
    fake = FakeRegistry()
    registry = RegistryClient(
        lambda: TrustConfig(()),
        limits=Limits(request_timeout=0.5),
        metrics=metrics,
        transport=fake.transport(),
    )
    for i in range(100):
        await registry.resolve(parse(f"host{i}.example/a/b:1"))
    hosts = {
        sample.labels["host"]
        for metric in metrics.registry.collect()
        if metric.name == "signet_registry_calls"
        for sample in metric.samples
    }
    assert len(hosts) <= 65
    assert "other" in hosts
