"""A registry's answers as the client reads them: bodies under a cap, statuses as failures."""

from __future__ import annotations

import urllib.parse

import httpx

from signet.reasons import DeterministicFailure, Reason, TransientFailure

__all__ = ["hint", "path_of", "read_capped", "status_failure"]


async def read_capped(response: httpx.Response, max_bytes: int, host: str, method: str) -> bytes:
    if method == "HEAD":
        # A HEAD answer has no body, but reading its end is what lets httpcore keep the
        # connection: closed unread, it is dropped and the next request connects again.
        async for _ in response.aiter_raw():
            pass
        return b""
    encoding = response.headers.get("Content-Encoding", "identity").lower()
    if encoding not in ("identity", ""):
        raise TransientFailure(
            Reason.REGISTRY_UNAVAILABLE, f"{host} sent a {encoding}-encoded body"
        )
    declared = response.headers.get("Content-Length")
    # ASCII digits only: str.isdigit() also accepts '¹', which int() refuses (found by fuzzing).
    if (
        declared is not None
        and declared.isascii()
        and declared.isdigit()
        and int(declared) > max_bytes
    ):
        _raise_oversized(response, max_bytes, host)
    chunks: list[bytes] = []
    total = 0
    async for chunk in response.aiter_raw():
        total += len(chunk)
        if total > max_bytes:
            _raise_oversized(response, max_bytes, host)
        chunks.append(chunk)
    return b"".join(chunks)


def _raise_oversized(response: httpx.Response, max_bytes: int, host: str) -> None:
    if response.status_code == 200:
        raise DeterministicFailure(
            Reason.LIMIT_EXCEEDED,
            f"{host} sent more than {max_bytes} bytes for {response.request.url.path}",
        )
    raise TransientFailure(
        Reason.REGISTRY_UNAVAILABLE, f"{host} sent an oversized {response.status_code} answer"
    )


def status_failure(
    host: str, method: str, url: str, status: int, headers: httpx.Headers
) -> TransientFailure:
    where = f"{host} answered {status} to {method} {path_of(url)}"
    if status == 429:
        retry = headers.get("Retry-After")
        return TransientFailure(
            Reason.REGISTRY_RATE_LIMITED, where + (f" (retry after {retry}s)" if retry else "")
        )
    if status in (401, 403):
        return TransientFailure(Reason.REGISTRY_AUTH_FAILED, where)
    return TransientFailure(Reason.REGISTRY_UNAVAILABLE, where)


def path_of(url: str) -> str:
    return urllib.parse.urlsplit(url).path


def hint(exc: Exception) -> str:
    """What to do about a TLS handshake that met a plain-HTTP server (OpenSSL's words for it)."""
    if "WRONG_VERSION_NUMBER" in str(exc):
        return (
            " (it seems to speak plain HTTP: if it must, list it in the trust config's "
            "registries with insecure: true)"
        )
    return ""
