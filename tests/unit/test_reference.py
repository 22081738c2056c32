"""The distribution reference grammar, normalised the way Docker does it."""

from __future__ import annotations

import pytest

from signet.model.reference import (
    MAX_REFERENCE_LENGTH,
    InvalidReference,
    Reference,
    is_sha256_digest,
    parse,
)

D = "sha256:" + "0123456789abcdef" * 4
E = "sha256:" + "fedcba9876543210" * 4


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        # Docker Hub: the default registry, and `library/` for one-component names.
        ("nginx", "docker.io", "library/nginx", None, None),
        ("nginx:1.27", "docker.io", "library/nginx", "1.27", None),
        ("bitnami/redis", "docker.io", "bitnami/redis", None, None),
        ("docker.io/nginx", "docker.io", "library/nginx", None, None),
        ("docker.io/library/nginx", "docker.io", "library/nginx", None, None),
        ("index.docker.io/nginx", "docker.io", "library/nginx", None, None),
        ("index.docker.io/library/nginx:1", "docker.io", "library/nginx", "1", None),
        ("registry-1.docker.io/bitnami/redis", "docker.io", "bitnami/redis", None, None),
        # host[:port] versus tag: a ':' before the last '/' is a port.
        ("localhost/a", "localhost", "a", None, None),
        ("localhost:5000/a", "localhost:5000", "a", None, None),
        ("localhost:5000/a:5000", "localhost:5000", "a", "5000", None),
        ("127.0.0.1:5000/a/b:1.0", "127.0.0.1:5000", "a/b", "1.0", None),
        ("[::1]:5000/x", "[::1]:5000", "x", None, None),
        ("[::1]:5000/x:v2", "[::1]:5000", "x", "v2", None),
        ("[::1]/x", "[::1]", "x", None, None),
        # A lone `name:port`-looking text has no '/': Docker reads it as a Hub image and a tag.
        ("localhost:5000", "docker.io", "library/localhost", "5000", None),
        ("Registry.Example.com/a/b/c", "registry.example.com", "a/b/c", None, None),
        ("ghcr.io/o/a.b_c__d-e--f", "ghcr.io", "o/a.b_c__d-e--f", None, None),
        ("ghcr.io/o/r:_Tag.1-x", "ghcr.io", "o/r", "_Tag.1-x", None),
        ("ghcr.io/o/r:" + "t" * 128, "ghcr.io", "o/r", "t" * 128, None),
        # Digests: alone, and together with a tag.
        ("ghcr.io/o/r@" + D, "ghcr.io", "o/r", None, D),
        ("ghcr.io/o/r:1.2@" + D, "ghcr.io", "o/r", "1.2", D),
        ("nginx@" + D, "docker.io", "library/nginx", None, D),
        ("localhost:5000/a:1@" + D, "localhost:5000", "a", "1", D),
    ],
)
def test_valid(
    text: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    ref = parse(text)
    assert ref == Reference(registry, repository, tag, digest)
    assert ref.name == f"{registry}/{repository}"
    # The normalised text parses back to the same reference.
    assert parse(str(ref)) == ref


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("", ["empty"]),
        ("nginx ", ["'nginx '", "whitespace or control"]),
        (" nginx", ["' nginx'", "whitespace or control"]),
        ("ng\tinx", ["'ng\\tinx'", "whitespace or control"]),
        ("nginx\n", ["'nginx\\n'", "whitespace or control"]),
        ("ng\x00inx", ["'ng\\x00inx'", "whitespace or control"]),
        ("ng\x7finx", ["whitespace or control"]),
        ("a" * (MAX_REFERENCE_LENGTH + 1), ["513 characters", "limit is 512"]),
        # Upper case belongs in a host, never in a repository path.
        ("Nginx", ["'Nginx'", "path component"]),
        ("ghcr.io/Org/app", ["'Org'", "path component", "lower-case"]),
        ("ghcr.io/o/App:1", ["'App'", "path component"]),
        ("a//b", ["'a//b'", "path component ''"]),
        ("ghcr.io/o//r", ["path component ''"]),
        ("ghcr.io/o/r/", ["path component ''"]),
        ("ghcr.io/o/r_", ["'r_'", "path component"]),
        ("ghcr.io/o/-r", ["'-r'", "path component"]),
        # Tags.
        ("ghcr.io/o/r:", ["tag ''", "invalid"]),
        ("ghcr.io/o/r:.bad", ["tag '.bad'", "invalid"]),
        ("ghcr.io/o/r:-bad", ["tag '-bad'", "invalid"]),
        ("ghcr.io/o/r:" + "t" * 129, ["tag 't", "at most 128"]),
        ("ghcr.io/o/r:a+b", ["tag 'a+b'", "invalid"]),
        # Digests.
        ("ghcr.io/o/r@", ["'' is not a digest"]),
        ("ghcr.io/o/r@sha256:abc", ["'sha256:abc' is not a digest"]),
        ("ghcr.io/o/r@sha256", ["'sha256' is not a digest"]),
        ("ghcr.io/o/r@" + D[:-1], ["only sha256 digests with 64 lowercase hex"]),
        ("ghcr.io/o/r@" + D + "0", ["only sha256 digests with 64 lowercase hex"]),
        ("ghcr.io/o/r@sha512:" + "a" * 128, ["sha512:", "only sha256"]),
        ("ghcr.io/o/r@md5:" + "a" * 32, ["md5:", "only sha256"]),
        ("ghcr.io/o/r@" + D.upper(), ["only sha256"]),
        ("ghcr.io/o/r@sha256:" + "g" * 64, ["is not a digest"]),
        ("ghcr.io/o/r@" + D + "@" + E, ["is not a digest"]),
        ("ghcr.io/o/r@" + D + ":1", ["is not a digest"]),
        # Names.
        ("@" + D, ["no repository name"]),
        (":tag", ["no repository name"]),
        ("-bad.example/o/r", ["'-bad.example' is not a valid registry host"]),
        ("bad_host.example/o/r", ["'bad_host.example' is not a valid registry host"]),
        ("host.example:port/o/r", ["'host.example:port' is not a valid registry host"]),
        ("registry.example/" + "a" * 250 + "/b", ["longer than 255"]),
        ("bitnami/" + "a" * 250, ["longer than 255"]),
    ],
)
def test_invalid(text: str, fragments: list[str]) -> None:
    with pytest.raises(InvalidReference) as caught:
        parse(text)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, (fragment, message)


@pytest.mark.parametrize(
    "text",
    [
        "docker.io/library/nginx",
        "docker.io/library/nginx:1.27",
        f"docker.io/library/nginx@{D}",
        f"ghcr.io/o/r:1.2@{D}",
        "localhost:5000/a/b:1.0",
        "[::1]:5000/x",
    ],
)
def test_str_round_trips_the_canonical_form(text: str) -> None:
    assert str(parse(text)) == text


def test_short_forms_print_in_full() -> None:
    assert str(parse("nginx")) == "docker.io/library/nginx"
    assert str(parse("index.docker.io/nginx:1")) == "docker.io/library/nginx:1"
    assert str(parse("Registry.Example.com/a")) == "registry.example.com/a"


def test_with_digest() -> None:
    ref = parse("ghcr.io/o/r:1.2")
    pinned = ref.with_digest(D)
    assert pinned == Reference("ghcr.io", "o/r", None, D)
    assert str(pinned) == f"ghcr.io/o/r@{D}"
    assert str(ref.with_digest(D, keep_tag=True)) == f"ghcr.io/o/r:1.2@{D}"
    assert str(parse(f"ghcr.io/o/r@{D}").with_digest(E)) == f"ghcr.io/o/r@{E}"
    assert ref == parse("ghcr.io/o/r:1.2")  # unchanged: references are values


@pytest.mark.parametrize("digest", ["sha256:abc", D.upper(), D + "\n", "sha512:" + "a" * 128, ""])
def test_with_digest_refuses_a_bad_digest(digest: str) -> None:
    with pytest.raises(InvalidReference, match="is not sha256:<64 lowercase hex>"):
        parse("ghcr.io/o/r").with_digest(digest)


def test_registry_api_host_and_default_tag() -> None:
    assert parse("nginx").api_host == "registry-1.docker.io"
    assert parse("localhost:5000/a").api_host == "localhost:5000"
    assert parse("nginx").tag_or_latest == "latest"
    assert parse("nginx:1").tag_or_latest == "1"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (D, True),
        (E, True),
        (D + "\n", False),  # a regex `$` would let this through
        ("\n" + D, False),
        (D[:-1], False),
        (D + "0", False),
        (D.upper(), False),
        ("sha256-" + D[7:], False),
        ("sha512:" + "a" * 128, False),
    ],
)
def test_is_sha256_digest(text: str, expected: bool) -> None:
    assert is_sha256_digest(text) is expected


def test_a_host_known_only_by_its_capitals_is_written_back_with_them() -> None:
    """Found by fuzzing: `MyRegistry/app` names the registry `myregistry`, but written back in
    lower case it would name docker.io/myregistry/app (in a remediation, say)."""
    ref = parse("MyRegistry/team/app:1")
    assert (ref.registry, ref.repository) == ("myregistry", "team/app")
    assert str(ref) == "MyRegistry/team/app:1"
    assert parse(str(ref)) == ref
    assert ref.with_digest("sha256:" + "a" * 64).name == "MyRegistry/team/app"
    assert str(parse("Registry.Example.com/a")) == "registry.example.com/a"
