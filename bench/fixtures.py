"""What every target is measured against: one docker-registry that counts the requests made to it,
and the bench's images on it, published in bulk.

Registry requests are counted at the registry, from docker-registry's own access log (one line
per request, written when the answer is sent), so they are counted the same way for every
server measured, whatever that server reports about itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from signet.crypto.keyfile import PrivateKey
from signet.formats.cosign_classic import manifest as cosign
from signet.model.reference import parse
from tests.support.procs import free_port, stop, wait_for_http
from tests.support.registry import REGISTRY_BINARY

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
ACCESS_LINE = re.compile(rb'"(?:GET|HEAD|POST|PUT|PATCH|DELETE) /v2/')

# What an image in the bench is, and so what a correct answer about it says.
SIGNED = "signed"  # a classic cosign signature by the trusted key
UNSIGNED = "unsigned"  # no signature at all
WRONG_KEY = "wrong-key"  # a valid signature by a key nobody trusts
MALFORMED = "malformed"  # a `.sig` manifest whose signature is not one
MISSING = "missing"  # a tag that does not exist
KINDS = (SIGNED, UNSIGNED, WRONG_KEY, MALFORMED, MISSING)


@dataclass(frozen=True)
class BenchImage:
    repository: str
    tag: str
    kind: str = SIGNED

    def key(self, host: str) -> str:
        return f"{host}/{self.repository}:{self.tag}"

    @property
    def should_verify(self) -> bool:
        return self.kind == SIGNED


class RequestCounter:
    """Requests the registry has answered so far, read from its access log as it grows."""

    def __init__(self, log: Path) -> None:
        self._log = log
        self._offset = 0
        self._partial = b""
        self._count = 0

    def count(self) -> int:
        with self._log.open("rb") as handle:
            handle.seek(self._offset)
            chunk = handle.read()
        self._offset += len(chunk)
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()
        self._count += sum(1 for line in lines if ACCESS_LINE.search(line))
        return self._count

    def settled(self, quiet: float = 0.02, limit: float = 1.0) -> int:
        """The count once no request has been logged for `quiet` seconds (a server may still be
        finishing a request after it answered; the registry logs a request when it answers)."""
        deadline = time.monotonic() + limit
        last = self.count()
        while time.monotonic() < deadline:
            time.sleep(quiet)
            now = self.count()
            if now == last:
                return now
            last = now
        return last


@dataclass(frozen=True)
class CountedRegistry:
    host: str  # 127.0.0.1:PORT
    url: str  # http://127.0.0.1:PORT
    log: Path
    requests: RequestCounter
    storage: Path  # its filesystem storage's root directory


@contextlib.contextmanager
def run_counted_registry(directory: Path) -> Iterator[CountedRegistry]:
    """Debian's docker-registry (distribution 2.8) on 127.0.0.1, as tests/support/registry.py
    runs it but with its access log on, into `directory`/registry.log."""
    binary = shutil.which("docker-registry") or REGISTRY_BINARY
    if not Path(binary).exists():
        raise RuntimeError("docker-registry is not installed: run `make tools`")
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = directory / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n  accesslog:\n    disabled: false\n"
        f"storage:\n  filesystem:\n    rootdirectory: {directory / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    log = directory / "registry.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [binary, "serve", str(config)], stdout=out, stderr=subprocess.STDOUT
        )
        try:
            wait_for_http(f"http://127.0.0.1:{port}/v2/")
            yield CountedRegistry(
                f"127.0.0.1:{port}",
                f"http://127.0.0.1:{port}",
                log,
                RequestCounter(log),
                directory / "data",
            )
        finally:
            stop(process)


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class _Storage:
    """Writes images straight into docker-registry's filesystem storage (distribution's
    documented-by-use layout: blobs by digest, and per repository the links that make a blob a
    layer, a manifest revision or a tag). Pushing the same content over the registry's HTTP API
    costs the registry ~6 ms of CPU per request on this machine, over a minute for the bench's
    images; what the servers measured then read is the same, served by the registry itself."""

    def __init__(self, root: Path) -> None:
        self.v2 = root / "docker" / "registry" / "v2"

    def _data(self, data: bytes) -> str:
        digest = _digest(data)
        hex_digest = digest.split(":", 1)[1]
        path = self.v2 / "blobs" / "sha256" / hex_digest[:2] / hex_digest / "data"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return digest

    def _link(self, path: Path, digest: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(digest)

    def blob(self, repository: str, data: bytes) -> str:
        digest = self._data(data)
        link = ("_layers", "sha256", digest.split(":", 1)[1], "link")
        self._link(self.v2.joinpath("repositories", repository, *link), digest)
        return digest

    def manifest(self, repository: str, tag: str, raw: bytes) -> str:
        digest = self._data(raw)
        hex_digest = digest.split(":", 1)[1]
        manifests = self.v2 / "repositories" / repository / "_manifests"
        self._link(manifests / "revisions" / "sha256" / hex_digest / "link", digest)
        self._link(manifests / "tags" / tag / "current" / "link", digest)
        self._link(manifests / "tags" / tag / "index" / "sha256" / hex_digest / "link", digest)
        return digest


class _Publisher:
    def __init__(self, storage: _Storage, host: str, key: PrivateKey, stranger: PrivateKey):
        self.storage, self.host, self.key, self.stranger = storage, host, key, stranger

    def publish(self, image: BenchImage) -> str | None:
        if image.kind == MISSING:
            return None
        layer_data = f"the shared layer of {image.repository}\n".encode() * 8
        layer = self.storage.blob(image.repository, layer_data)
        config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {"Labels": {"bench.image": f"{image.repository}:{image.tag}"}},
                "rootfs": {"type": "layers", "diff_ids": [layer]},
            }
        ).encode()
        config_digest = self.storage.blob(image.repository, config)
        raw = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
                "layers": [{"mediaType": OCI_LAYER, "digest": layer, "size": len(layer_data)}],
            }
        ).encode()
        digest = self.storage.manifest(image.repository, image.tag, raw)
        if image.kind != UNSIGNED:
            self.sign(image, digest)
        return digest

    def sign(self, image: BenchImage, digest: str) -> None:
        """What `signet sign` (and `cosign sign --tlog-upload=false`) writes for a new image."""
        payload = cosign.make_payload(parse(image.key(self.host)).name, digest)
        if image.kind == MALFORMED:
            signature = b"\x30\x06 this is not a DER signature"
        else:
            signature = (self.key if image.kind == SIGNED else self.stranger).sign(payload)[0]
        payload_digest = self.storage.blob(image.repository, payload)
        config = cosign.signature_config([payload_digest])
        config_digest = self.storage.blob(image.repository, config)
        layer = cosign.signature_layer_descriptor(payload_digest, len(payload), signature)
        manifest = cosign.signature_manifest(
            {"mediaType": cosign.OCI_CONFIG, "size": len(config), "digest": config_digest},
            [layer],
        )
        self.storage.manifest(image.repository, cosign.signature_tag(digest), manifest)


def publish(
    registry: CountedRegistry,
    images: Sequence[BenchImage],
    key: PrivateKey,
    stranger: PrivateKey,
) -> dict[BenchImage, str | None]:
    """Push (and sign, as each image's kind says) every image; its manifest digest, or None for
    a MISSING one (which is never pushed)."""
    publisher = _Publisher(_Storage(registry.storage), registry.host, key, stranger)
    return {image: publisher.publish(image) for image in images}
