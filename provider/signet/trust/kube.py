"""The trust config's ConfigMap, watched through the Kubernetes API and mirrored into a folder.

A mounted ConfigMap reaches a Pod only when the kubelet syncs it (a minute or more), so a
revocation edited into it would wait that long. With `--trust-configmap NAMESPACE/NAME`, the
provider lists and watches that one ConfigMap (`fieldSelector=metadata.name=NAME`, so a Role
with `resourceNames: [NAME]` and verbs `list`, `watch` is all it needs) and writes each version
into its mirror folder the way the kubelet writes a volume — files under a `..<generation>`
folder, `..data` swapped atomically, one link per key — where the store's change notification
loads it at once (`trust.store`, `trust.notify`).

At start the mirror is seeded from the kubelet's copy (`--config`), so a provider that cannot
reach the API still starts with the config it was deployed with; a version from the API replaces
it. A deleted ConfigMap keeps the last version (like a bad edit: never fall back to trusting
nothing, nor to nothing being trusted without anyone asking). Every wait is bounded: each list
and each watch has a timeout, a broken watch is listed again after a backoff (1 s doubling to
30 s), and a version larger than `_MAX_BYTES` is refused.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import os
import re
import shutil
import ssl
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

__all__ = ["SERVICE_ACCOUNT", "ConfigMapMirror", "KubeSource"]

log = logging.getLogger("signet.trust")

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
_MAX_BYTES = 4 * 1024 * 1024  # a ConfigMap holds at most 1 MiB; one event line is bounded by this
_WATCH_SECONDS = 300  # the API server ends each watch after this; it is then resumed
_KEY = re.compile(r"[-._a-zA-Z0-9]+")  # what Kubernetes allows as a ConfigMap key


@dataclass(frozen=True, slots=True)
class KubeSource:
    """Where the ConfigMap is, and how to reach the API: the in-cluster service account's files
    (`token`, `ca.crt`) and the API server the kubelet names in the environment."""

    namespace: str
    name: str
    server: str
    account: Path = SERVICE_ACCOUNT

    @classmethod
    def in_cluster(cls, reference: str, account: Path = SERVICE_ACCOUNT) -> KubeSource:
        namespace, _, name = reference.partition("/")
        if not namespace or not name or "/" in name:
            raise ValueError(f"--trust-configmap {reference!r}: expected NAMESPACE/NAME")
        host = os.environ.get("KUBERNETES_SERVICE_HOST")
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        if not host:
            raise ValueError(
                "--trust-configmap: KUBERNETES_SERVICE_HOST is not set (not running in a Pod?)"
            )
        if not (account / "token").is_file() or not (account / "ca.crt").is_file():
            raise ValueError(
                f"--trust-configmap: no service account token and ca.crt in {account} "
                "(is automountServiceAccountToken off?)"
            )
        authority = f"[{host}]" if ":" in host else host
        return cls(namespace, name, f"https://{authority}:{port}", account)

    @property
    def path(self) -> str:
        return f"/api/v1/namespaces/{self.namespace}/configmaps"


class ConfigMapMirror:
    def __init__(
        self,
        source: KubeSource,
        folder: Path,
        *,
        transport: httpx.AsyncBaseTransport | None = None,  # tests: no API server
        first_backoff: float = 1.0,
    ) -> None:
        self.source = source
        self.folder = folder
        self._transport = transport
        self._first_backoff = first_backoff
        self.version = ""  # the resourceVersion mirrored last ("" while it is the seed)
        self._generation = 0

    def seed(self, mounted: Path) -> None:
        """Start the mirror with the kubelet's copy of the ConfigMap (a folder of files)."""
        files = {
            path.name: path.read_bytes()
            for path in sorted(mounted.iterdir())
            if not path.name.startswith("..") and path.is_file()
        }
        self._write(files)

    async def run(self) -> None:
        """List, then watch; write every new version; start over after any failure."""
        backoff = self._first_backoff
        while True:
            try:
                async with self._client() as client:
                    version = await self._list(client)
                    backoff = self._first_backoff
                    async for kind, item in self._watch(client, version):
                        if kind in ("ADDED", "MODIFIED"):
                            self._apply(item)
                        elif kind == "DELETED":
                            log.error(
                                "trust ConfigMap %s/%s was deleted; keeping the last version",
                                self.source.namespace,
                                self.source.name,
                            )
            except asyncio.CancelledError:
                raise
            except (httpx.HTTPError, OSError, ValueError, _Relist) as exc:
                log.warning("watching the trust ConfigMap: %s; again in %.0f s", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(30.0, backoff * 2)

    # -- the API --------------------------------------------------------------------------------

    def _client(self) -> httpx.AsyncClient:
        context = ssl.create_default_context(cafile=str(self.source.account / "ca.crt"))
        token = (self.source.account / "token").read_text().strip()  # rotated: read each time
        return httpx.AsyncClient(
            base_url=self.source.server,
            verify=context,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=httpx.Timeout(10.0, read=_WATCH_SECONDS + 30.0),
            follow_redirects=False,
            trust_env=False,
            transport=self._transport,
        )

    def _selector(self) -> dict[str, str]:
        return {"fieldSelector": f"metadata.name={self.source.name}"}

    async def _list(self, client: httpx.AsyncClient) -> str:
        async with asyncio.timeout(15):
            answer = await client.get(self.source.path, params=self._selector())
        if answer.status_code != 200:
            raise ValueError(
                f"listing the ConfigMap: HTTP {answer.status_code}: {answer.text[:200]}"
            )
        if len(answer.content) > _MAX_BYTES:
            raise ValueError("the ConfigMap list is larger than 4 MiB")
        listing = answer.json()
        for item in listing.get("items", []):
            self._apply(item)
        if not listing.get("items"):
            log.error(
                "trust ConfigMap %s/%s does not exist; keeping the last version",
                self.source.namespace,
                self.source.name,
            )
        version = listing.get("metadata", {}).get("resourceVersion")
        if not isinstance(version, str):
            raise ValueError("the ConfigMap list has no resourceVersion")
        return version

    async def _watch(
        self, client: httpx.AsyncClient, version: str
    ) -> AsyncIterator[tuple[str, Mapping[str, Any]]]:
        params = {
            **self._selector(),
            "watch": "true",
            "resourceVersion": version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(_WATCH_SECONDS),
        }
        async with client.stream("GET", self.source.path, params=params) as answer:
            if answer.status_code != 200:
                raise ValueError(f"watching the ConfigMap: HTTP {answer.status_code}")
            buffer = b""
            async for chunk in answer.aiter_bytes():
                buffer += chunk
                if len(buffer) > _MAX_BYTES:
                    raise ValueError("a watch event is larger than 4 MiB")
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        yield _event(json.loads(line))
        raise _Relist("the watch ended")  # the API server's timeout: resume with a new list

    # -- the folder -----------------------------------------------------------------------------

    def _apply(self, item: Mapping[str, Any]) -> None:
        metadata = item.get("metadata", {})
        version = metadata.get("resourceVersion", "")
        if metadata.get("name") != self.source.name or version == self.version:
            return
        files: dict[str, bytes] = {}
        for key, value in (item.get("data") or {}).items():
            files[_checked(key)] = str(value).encode()
        for key, value in (item.get("binaryData") or {}).items():
            try:
                files[_checked(key)] = base64.b64decode(str(value), validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ValueError(f"binaryData {key!r} is not base64") from exc
        self._write(files)
        self.version = version
        log.info("trust ConfigMap version %s mirrored into %s", version, self.folder)

    def _write(self, files: Mapping[str, bytes]) -> None:
        """As the kubelet does: the new files in their own folder, then one atomic rename."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._generation += 1
        generation = self.folder / f"..{time.time_ns()}.{self._generation}"
        generation.mkdir()
        for name, content in files.items():
            (generation / name).write_bytes(content)
        link = self.folder / "..data_tmp"
        with contextlib.suppress(FileNotFoundError):
            link.unlink()
        link.symlink_to(generation.name)
        old = (self.folder / "..data").resolve() if (self.folder / "..data").exists() else None
        link.rename(self.folder / "..data")
        for name in files:
            entry = self.folder / name
            if not entry.is_symlink():
                entry.symlink_to(f"..data/{name}")
        for entry in self.folder.iterdir():  # keys that are gone
            if entry.is_symlink() and not entry.name.startswith("..") and entry.name not in files:
                entry.unlink()
        if old is not None and old.parent == self.folder.resolve():
            shutil.rmtree(old, ignore_errors=True)


class _Relist(Exception):
    pass


def _event(document: object) -> tuple[str, Mapping[str, Any]]:
    if not isinstance(document, dict) or not isinstance(document.get("object"), dict):
        raise ValueError("a watch event is not an object with an object")
    kind = document.get("type")
    if kind == "ERROR":  # e.g. 410 Gone: the version is too old to resume from
        raise _Relist(f"the watch said {document['object'].get('message', 'error')}")
    if kind not in ("ADDED", "MODIFIED", "DELETED", "BOOKMARK"):
        raise ValueError(f"unknown watch event type {kind!r}")
    return kind, document["object"]


def _checked(key: str) -> str:
    if not _KEY.fullmatch(key) or key.startswith(".."):
        raise ValueError(f"ConfigMap key {key!r} is not a file name")
    return key
