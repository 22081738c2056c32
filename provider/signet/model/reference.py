"""Image references: the distribution reference grammar, normalised the way Docker does it.

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [ domain "/" ] path-component [ "/" path-component ]*
    domain     := host [ ":" port ]
    tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
    digest     := algorithm ":" hex

A first component is a registry host when it contains "." or ":" or is "localhost" (or has
upper-case letters, which a repository path may not); otherwise the image is on Docker Hub, and a
one-component Docker Hub name gets "library/".
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

__all__ = ["DOCKER_HUB", "InvalidReference", "Reference", "parse"]

DOCKER_HUB = "docker.io"
_DOCKER_HUB_API = "registry-1.docker.io"
_LEGACY_HUB_NAMES = frozenset({"index.docker.io", "registry-1.docker.io"})

MAX_REFERENCE_LENGTH = 512
_MAX_NAME_LENGTH = 255

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9A-Fa-f:.]+\])"
_DOMAIN_RE = re.compile(rf"^{_HOST}(?::[0-9]+)?$")
_PATH_COMPONENT_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$", re.ASCII)
_DIGEST_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$")
_SHA256_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_SPACE_RE = re.compile(r"\s")


class InvalidReference(ValueError):
    """The text is not an image reference this provider accepts; the message says why."""


@dataclass(frozen=True, slots=True)
class Reference:
    """A parsed, normalised image reference. `registry` is `docker.io` for Docker Hub."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None
    # The host as written, when that differs from `registry` (which is lower-cased): a host that
    # is one only because of its capitals (`MyRegistry/app`) must be written so again, or it
    # would read as a Docker Hub namespace.
    spelled: str | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.digest is not None and not is_sha256_digest(self.digest):
            raise InvalidReference(f"digest {self.digest!r} is not sha256:<64 lowercase hex>")

    @property
    def name(self) -> str:
        """`registry/repository`: what cosign writes as the signed `docker-reference`."""
        return f"{self.spelled or self.registry}/{self.repository}"

    @property
    def api_host(self) -> str:
        """The host:port the registry API is served on."""
        return _DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def tag_or_latest(self) -> str:
        return self.tag or "latest"

    def with_digest(self, digest: str, *, keep_tag: bool = False) -> Reference:
        """The digest-pinned form; the tag is kept only when asked (`repo:tag@sha256:…`)."""
        return Reference(
            self.registry, self.repository, self.tag if keep_tag else None, digest, self.spelled
        )

    def __str__(self) -> str:
        text = self.name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text


def is_sha256_digest(text: str) -> bool:
    # fullmatch, not match: `$` would also accept a trailing newline.
    return _SHA256_RE.fullmatch(text) is not None


@functools.lru_cache(maxsize=4096)
def parse(text: str) -> Reference:
    """Parse `text` as written in a pod spec. Raises InvalidReference naming the problem."""
    if not isinstance(text, str):
        raise InvalidReference("an image reference must be a string")
    if not text:
        raise InvalidReference("the image reference is empty")
    if len(text) > MAX_REFERENCE_LENGTH:
        raise InvalidReference(
            f"the image reference is {len(text)} characters; the limit is {MAX_REFERENCE_LENGTH}"
        )
    if not text.isprintable() or _SPACE_RE.search(text):
        raise InvalidReference(f"{text!r} contains whitespace or control characters")

    remainder, digest = _split_digest(text)
    name, tag = _split_tag(remainder)
    registry, repository = _split_domain(name)
    # Kept only where the lower-cased host would read as a Docker Hub namespace.
    spelled = name.partition("/")[0]
    kept = spelled if registry == spelled.lower() and not _names_a_host(registry) else None

    if len(f"{registry}/{repository}") > _MAX_NAME_LENGTH and registry != DOCKER_HUB:
        raise InvalidReference(f"{text!r}: the repository name is longer than 255 characters")
    if len(repository) > _MAX_NAME_LENGTH:
        raise InvalidReference(f"{text!r}: the repository name is longer than 255 characters")
    return Reference(registry, repository, tag, digest, kept)


def _split_digest(text: str) -> tuple[str, str | None]:
    if "@" not in text:
        return text, None
    remainder, _, digest = text.partition("@")
    if not _DIGEST_RE.match(digest):
        raise InvalidReference(f"{text!r}: {digest!r} is not a digest (expected sha256:<hex>)")
    if not is_sha256_digest(digest):
        raise InvalidReference(
            f"{text!r}: only sha256 digests with 64 lowercase hex characters are supported"
        )
    return remainder, digest


def _split_tag(text: str) -> tuple[str, str | None]:
    # A ':' after the last '/' is a tag separator; one before it belongs to a host:port.
    slash = text.rfind("/")
    colon = text.rfind(":")
    if colon <= slash:
        return text, None
    name, tag = text[:colon], text[colon + 1 :]
    if not _TAG_RE.match(tag):
        raise InvalidReference(
            f"{text!r}: tag {tag!r} is invalid (letters, digits, '_', '.', '-'; at most 128)"
        )
    return name, tag


def _names_a_host(first: str) -> bool:
    """Whether a lower-case first component is a registry host rather than a path component."""
    return "." in first or ":" in first or first == "localhost"


def _split_domain(name: str) -> tuple[str, str]:
    if not name:
        raise InvalidReference("the image reference has no repository name")
    first, sep, rest = name.partition("/")
    is_domain = sep and (_names_a_host(first) or first.lower() != first)
    if is_domain:
        if not _DOMAIN_RE.match(first):
            raise InvalidReference(f"{name!r}: {first!r} is not a valid registry host[:port]")
        registry, path = first.lower(), rest
    else:
        registry, path = DOCKER_HUB, name
    if registry in _LEGACY_HUB_NAMES:
        registry = DOCKER_HUB
    components = path.split("/")
    for component in components:
        if not _PATH_COMPONENT_RE.match(component):
            raise InvalidReference(
                f"{name!r}: repository path component {component!r} is invalid "
                "(lower-case letters, digits and single separators '.', '_', '__', '-')"
            )
    if registry == DOCKER_HUB and len(components) == 1:
        path = f"library/{path}"
    return registry, path
