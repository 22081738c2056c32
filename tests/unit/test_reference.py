"""The distribution reference grammar, normalised as Docker does it."""

from __future__ import annotations

import pytest

from signet.reference import InvalidReference, Reference, parse

D = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("nginx", "docker.io", "library/nginx", None, None),
        ("nginx:1.27", "docker.io", "library/nginx", "1.27", None),
        ("bitnami/redis", "docker.io", "bitnami/redis", None, None),
        ("docker.io/nginx", "docker.io", "library/nginx", None, None),
        ("index.docker.io/library/nginx:1", "docker.io", "library/nginx", "1", None),
        ("localhost/app", "localhost", "app", None, None),
        ("localhost:5000/app:v1", "localhost:5000", "app", "v1", None),
        ("127.0.0.1:5000/team/app:v1", "127.0.0.1:5000", "team/app", "v1", None),
        ("[::1]:5000/app", "[::1]:5000", "app", None, None),
        ("Registry.Example.com/a/b/c", "registry.example.com", "a/b/c", None, None),
        ("ghcr.io/o/r@" + D, "ghcr.io", "o/r", None, D),
        ("ghcr.io/o/r:1.2@" + D, "ghcr.io", "o/r", "1.2", D),
        ("ghcr.io/o/a.b_c__d-e--f", "ghcr.io", "o/a.b_c__d-e--f", None, None),
        ("ghcr.io/o/r:_Tag.1-x", "ghcr.io", "o/r", "_Tag.1-x", None),
    ],
)
def test_valid(
    text: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    assert parse(text) == Reference(registry, repository, tag, digest)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty"),
        ("nginx ", "whitespace"),
        ("ng\tinx", "whitespace"),
        ("ng\x00inx", "control"),
        ("a" * 513, "limit is 512"),
        ("Nginx", "path component"),
        ("ghcr.io/Org/app", "path component"),
        ("ghcr.io/o//r", "path component"),
        ("ghcr.io/o/r:", "tag"),
        ("ghcr.io/o/r:.bad", "tag"),
        ("ghcr.io/o/r:" + "t" * 129, "tag"),
        ("ghcr.io/o/r@", "not a digest"),
        ("ghcr.io/o/r@sha256:abc", "not a digest"),
        ("ghcr.io/o/r@sha512:" + "a" * 128, "only sha256"),
        ("ghcr.io/o/r@sha256:" + "A" * 64, "only sha256"),
        ("-bad.example/o/r", "registry host"),
        ("ghcr.io/o/r_", "path component"),
        ("registry.example/" + "a" * 250 + "/b", "longer than 255"),
    ],
)
def test_invalid(text: str, problem: str) -> None:
    with pytest.raises(InvalidReference) as caught:
        parse(text)
    assert problem in str(caught.value)


def test_round_trip_and_pinning() -> None:
    ref = parse("ghcr.io/o/r:1.2")
    assert str(ref) == "ghcr.io/o/r:1.2"
    assert str(ref.with_digest(D)) == f"ghcr.io/o/r@{D}"
    assert str(ref.with_digest(D, keep_tag=True)) == f"ghcr.io/o/r:1.2@{D}"
    assert ref.name == "ghcr.io/o/r"
    assert parse("nginx").api_host == "registry-1.docker.io"
    assert parse("nginx").tag_or_latest == "latest"
