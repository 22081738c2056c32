"""Where connections may go (egress) and how names are resolved (dns): the address that is dialled
is the one checked, whatever the spelling of the host; a stalling name server holds up only its
own names."""

from __future__ import annotations

import asyncio
import ipaddress
import time

import pytest

from signet.model.reference import parse
from signet.oci.client import Limits, RegistryClient
from signet.oci.dns import Resolver, domain_of, numeric_address
from signet.oci.egress import Policy, forbidden
from signet.reasons import Reason, TransientFailure
from signet.trust.model import RegistrySettings, TrustConfig
from tests.unit.fakes import PUBLIC_ADDRESS, FakeRegistry, resolver_of
from tests.unit.network import Dial, MemoryNetwork

pytestmark = pytest.mark.anyio

METADATA = "169.254.169.254"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# -- the policy ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "named", "foreign"),
    [
        ("93.184.215.14", "", ""),
        ("2606:4700::1111", "", ""),
        ("10.1.2.3", "", "private"),  # a registry inside the cluster: fine when an image names it
        ("192.168.0.10", "", "private"),
        ("fd12::1", "", "private"),
        ("100.64.0.1", "", "not globally reachable"),
        ("127.0.0.1", "loopback", "loopback"),
        ("::1", "loopback", "loopback"),
        ("::ffff:127.0.0.1", "loopback", "loopback"),
        (METADATA, "link-local", "link-local"),
        ("fe80::1", "link-local", "link-local"),
        ("::ffff:169.254.169.254", "link-local", "link-local"),
        ("2002:a9fe:a9fe::", "link-local", "link-local"),  # 6to4 around 169.254.169.254
        ("100.100.100.200", "a cloud metadata address", "a cloud metadata address"),
        ("fd00:ec2::254", "a cloud metadata address", "a cloud metadata address"),
        ("0.0.0.0", "unspecified", "unspecified"),
        ("224.0.0.1", "multicast", "multicast"),
        ("240.0.0.1", "reserved", "reserved"),
    ],
)
def test_which_addresses_each_policy_refuses(address: str, named: str, foreign: str) -> None:
    parsed = ipaddress.ip_address(address)
    assert forbidden(parsed, Policy.NAMED) == named
    assert forbidden(parsed, Policy.FOREIGN) == foreign


@pytest.mark.parametrize(
    ("spelling", "address"),
    [
        ("169.254.169.254", METADATA),
        ("2852039166", METADATA),
        ("0xa9fea9fe", METADATA),
        ("0xa9.0xfe.0xa9.0xfe", METADATA),
        ("0251.0376.0251.0376", METADATA),
        ("169.254.43518", METADATA),
        ("[::ffff:a9fe:a9fe]", "::ffff:a9fe:a9fe"),
        ("0x7f000001", "127.0.0.1"),
        ("registry.example", None),
        ("cafe.de", None),
        ("deadbeef", None),
    ],
)
def test_numeric_spellings_are_read_as_the_address_the_c_library_would_dial(
    spelling: str, address: str | None
) -> None:
    found = numeric_address(spelling)
    assert (str(found) if found else None) == address


# -- the check on every connection, through the whole client ------------------------------------


def client(
    fake: FakeRegistry, trust: TrustConfig, names: dict[str, list[str]] | None = None
) -> tuple[RegistryClient, MemoryNetwork]:
    network = MemoryNetwork(fake.handle)
    registry = RegistryClient(
        lambda: trust,
        limits=Limits(request_timeout=1.0),
        network=network,
        resolver=resolver_of(names),
    )
    return registry, network


@pytest.mark.parametrize(
    "host",
    ["169.254.169.254", "2852039166", "0xa9fea9fe", "0xa9.0xfe.0xa9.0xfe", "metadata.evil.test"],
)
async def test_a_registry_named_by_an_image_is_refused_when_it_is_cloud_metadata(
    host: str,
) -> None:
    """However the pod spec spells it, the address dialled is checked; nothing is dialled. (With
    a port: a first component without "." or ":" would be a Docker Hub namespace.)"""
    fake = FakeRegistry(host=f"{host}:5000")
    fake.push_image("team/app", "v1", "a")
    registry, network = client(fake, TrustConfig(()), {"metadata.evil.test": [METADATA]})
    with pytest.raises(TransientFailure) as refused:
        await registry.resolve(parse(f"{host}:5000/team/app:v1"))
    assert refused.value.reason is Reason.REGISTRY_UNAVAILABLE
    assert f"refusing to contact {host}" in refused.value.message
    assert f"{METADATA}" in refused.value.message and "link-local" in refused.value.message
    assert network.dials == []


async def test_a_named_registry_on_loopback_is_refused_unless_configured() -> None:
    fake = FakeRegistry(host="localhost:5000")
    digest = fake.push_image("team/app", "v1", "a")
    names = {"localhost": ["127.0.0.1"]}
    registry, network = client(fake, TrustConfig(()), names)
    with pytest.raises(TransientFailure) as refused:
        await registry.resolve(parse("localhost:5000/team/app:v1"))
    assert "loopback" in refused.value.message
    assert network.dials == []

    listed = TrustConfig((), (RegistrySettings("localhost:5000"),))
    registry, network = client(fake, listed, names)
    assert await registry.resolve(parse("localhost:5000/team/app:v1")) == digest
    assert network.dials == [Dial("127.0.0.1", 5000, "localhost")]


async def test_a_registry_inside_the_cluster_may_be_named() -> None:
    fake = FakeRegistry(host="registry.internal")
    digest = fake.push_image("team/app", "v1", "a")
    registry, network = client(fake, TrustConfig(()), {"registry.internal": ["10.96.0.20"]})
    assert await registry.resolve(parse("registry.internal/team/app:v1")) == digest
    assert network.dials == [Dial("10.96.0.20", 443, "registry.internal")]


async def test_a_name_with_one_forbidden_address_among_others_is_refused() -> None:
    fake = FakeRegistry(host="half.evil.test")
    names = {"half.evil.test": [PUBLIC_ADDRESS, METADATA]}
    registry, network = client(fake, TrustConfig(()), names)
    with pytest.raises(TransientFailure):
        await registry.resolve(parse("half.evil.test/team/app:v1"))
    assert network.dials == []


async def test_the_next_address_is_tried_when_the_first_refuses_the_connection() -> None:
    fake = FakeRegistry(host="two.example")
    digest = fake.push_image("team/app", "v1", "a")
    registry, network = client(fake, TrustConfig(()), {"two.example": ["1.1.1.1", "8.8.8.8"]})
    network.refused.add("1.1.1.1")
    assert await registry.resolve(parse("two.example/team/app:v1")) == digest
    assert [d.address for d in network.dials] == ["1.1.1.1", "8.8.8.8"]


# -- name resolution ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "domain"),
    [
        ("registry.example.com", "example.com"),
        ("a.b.c.evil.example", "evil.example"),
        ("ghcr.io", "ghcr.io"),
        ("registry.example.co.uk", "example.co.uk"),
        ("x.evil.com.au", "evil.com.au"),
        ("localhost", "localhost"),
        ("Registry.Example.COM.", "example.com"),
    ],
)
def test_the_domain_a_name_is_counted_under(name: str, domain: str) -> None:
    assert domain_of(name) == domain


class NameServer:
    """Answers names of `healthy` at once; never answers names under `stalled`."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def lookup(self, name: str) -> list[str]:
        self.asked.append(name)
        if name.endswith("stall.test"):
            await asyncio.sleep(3600)
        return [PUBLIC_ADDRESS]


async def test_a_stalling_domain_holds_up_neither_other_names_nor_its_callers() -> None:
    server = NameServer()
    resolver = Resolver(lookup=server.lookup, per_domain=4, timeout=5.0)
    stalled = [
        asyncio.ensure_future(asyncio.wait_for(resolver.resolve(f"r{i}.stall.test"), 0.1))
        for i in range(4)
    ]
    await asyncio.sleep(0)
    started = time.monotonic()
    assert await resolver.resolve("registry.healthy.test") == (
        ipaddress.ip_address(PUBLIC_ADDRESS),
    )
    assert time.monotonic() - started < 0.05
    for waiter in stalled:
        with pytest.raises(TimeoutError):
            await waiter
    # Past `per_domain` lookups pending under one domain, a new one fails at once.
    with pytest.raises(TransientFailure) as refused:
        await resolver.resolve("r99.stall.test")
    assert "4 lookups under stall.test are already pending" in refused.value.message


async def test_a_lookup_is_bounded_by_the_resolver_timeout_even_with_nobody_waiting() -> None:
    server = NameServer()
    resolver = Resolver(lookup=server.lookup, per_domain=1, timeout=0.05)
    with pytest.raises(TransientFailure) as slow:
        await resolver.resolve("x.stall.test")
    assert "no DNS answer for x.stall.test within 0.05s" in slow.value.message
    await asyncio.sleep(0)
    assert await resolver.resolve("y.stall.test.other") == (ipaddress.ip_address(PUBLIC_ADDRESS),)
    with pytest.raises(TransientFailure):  # the domain's slot was given back
        await resolver.resolve("z.stall.test")


async def test_concurrent_lookups_of_one_name_are_one_and_the_answer_is_kept() -> None:
    server = NameServer()
    resolver = Resolver(lookup=server.lookup, cache_seconds=60)
    answers = await asyncio.gather(*(resolver.resolve("registry.example") for _ in range(50)))
    assert len(set(answers)) == 1
    await resolver.resolve("REGISTRY.example.")
    assert server.asked == ["registry.example"]


async def test_numeric_hosts_are_never_looked_up() -> None:
    server = NameServer()
    resolver = Resolver(lookup=server.lookup)
    assert await resolver.resolve("2852039166") == (ipaddress.ip_address(METADATA),)
    assert await resolver.resolve("::1") == (ipaddress.ip_address("::1"),)
    assert server.asked == []
