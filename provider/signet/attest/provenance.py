"""Facts from SLSA provenance predicates (v0.2 and v1) that a policy may require.

Only these are kept, each a string the policy compares exactly (a value longer than
`MAX_FACT_LENGTH` is left out, never cut: a cut value could equal an allowed one):

- `builderId` — v0.2 `builder.id`; v1 `runDetails.builder.id`
- `buildType` — v0.2 `buildType`; v1 `buildDefinition.buildType`
- `sourceRepository`, `sourceRef`, `sourceDigest` — where the build's source came from: v0.2
  `invocation.configSource` (`uri` as `git+<repository>@<ref>`, `digest`); v1 the GitHub-style
  `externalParameters.workflow` (`repository`, `ref`) or else the first
  `resolvedDependencies` entry (`uri`, `digest`). A `git+` prefix is dropped; a digest is written
  `<algorithm>:<value>`, `sha1` and `gitCommit` first.
- `configSource`, `configEntryPoint` — v0.2 `invocation.configSource.uri`/`entryPoint`; v1 the
  workflow's `path` as entry point.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["MAX_FACT_LENGTH", "SLSA_V02", "SLSA_V1", "provenance_facts"]

SLSA_V02: Final = "https://slsa.dev/provenance/v0.2"
SLSA_V1: Final = "https://slsa.dev/provenance/v1"
MAX_FACT_LENGTH: Final = 1024
_DIGEST_PREFERENCE: Final = ("sha1", "gitCommit", "sha256", "sha512")


def provenance_facts(predicate_type: str, predicate: Any) -> tuple[tuple[str, str], ...]:
    """The facts of a SLSA provenance predicate, or none for any other predicate type."""
    if not isinstance(predicate, dict):
        return ()
    if predicate_type == SLSA_V02:
        facts = _v02(predicate)
    elif predicate_type == SLSA_V1:
        facts = _v1(predicate)
    else:
        return ()
    return tuple(
        (name, value)
        for name, value in facts.items()
        if isinstance(value, str) and value and len(value) <= MAX_FACT_LENGTH
    )


def _v02(predicate: dict[str, Any]) -> dict[str, Any]:
    config = _object(_object(predicate, "invocation"), "configSource")
    repository, ref = _split_source(config.get("uri"))
    return {
        "builderId": _object(predicate, "builder").get("id"),
        "buildType": predicate.get("buildType"),
        "sourceRepository": repository,
        "sourceRef": ref,
        "sourceDigest": _digest(config.get("digest")),
        "configSource": config.get("uri"),
        "configEntryPoint": config.get("entryPoint"),
    }


def _v1(predicate: dict[str, Any]) -> dict[str, Any]:
    definition = _object(predicate, "buildDefinition")
    workflow = _object(_object(definition, "externalParameters"), "workflow")
    dependencies = definition.get("resolvedDependencies")
    first = dependencies[0] if isinstance(dependencies, list) and dependencies else {}
    first = first if isinstance(first, dict) else {}
    repository, ref = _split_source(first.get("uri"))
    if isinstance(workflow.get("repository"), str):
        repository, ref = workflow["repository"], workflow.get("ref")
    return {
        "builderId": _object(_object(predicate, "runDetails"), "builder").get("id"),
        "buildType": definition.get("buildType"),
        "sourceRepository": repository,
        "sourceRef": ref,
        "sourceDigest": _digest(first.get("digest")),
        "configEntryPoint": workflow.get("path"),
    }


def _object(parent: dict[str, Any], name: str) -> dict[str, Any]:
    value = parent.get(name)
    return value if isinstance(value, dict) else {}


def _split_source(uri: Any) -> tuple[str | None, str | None]:
    """`git+https://host/repo@refs/heads/main` → (`https://host/repo`, `refs/heads/main`).

    The ref starts at the first `@` of the path: one before it is user info
    (`ssh://git@host/repo`), and a ref may hold `@` itself."""
    if not isinstance(uri, str):
        return None, None
    uri = uri.removeprefix("git+")
    scheme, separator, rest = uri.partition("://")
    authority, _, path = rest.partition("/")
    if separator and "@" in path:
        location, _, ref = path.partition("@")
        return f"{scheme}://{authority}/{location}", ref
    return uri, None


def _digest(digests: Any) -> str | None:
    if not isinstance(digests, dict):
        return None
    for algorithm in _DIGEST_PREFERENCE:
        value = digests.get(algorithm)
        if isinstance(value, str) and value:
            return f"{algorithm}:{value}"
    return None
