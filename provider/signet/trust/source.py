"""Reading the trust config's YAML: a strict loader, and messages that name file and place."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NoReturn

import yaml

from signet.keyless.root import TrustedRoot, TrustedRootError, parse_trusted_root
from signet.trust.model import TrustConfigError

__all__ = ["StrictLoader", "Where"]

_MAX_TRUSTED_ROOT_BYTES = 4 * 1024 * 1024


class Where:
    """Builds error messages that name the file and the place in it."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self.files_read: list[Path] = []

    def fail(self, at: str, problem: str) -> NoReturn:
        prefix = f"{self.file}: {at}: " if at else f"{self.file}: "
        raise TrustConfigError(prefix + problem)

    def mapping(self, value: Any, at: str, allowed: Iterable[str]) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            self.fail(at, f"expected a mapping, found {type(value).__name__}")
        unknown = sorted(str(k) for k in set(value) - set(allowed))
        if unknown:
            self.fail(at, f"unknown field {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")
        mapping: Mapping[str, Any] = value
        return mapping

    def sequence(self, value: Any, at: str) -> list[Any]:
        if not isinstance(value, list):
            self.fail(at, f"expected a list, found {type(value).__name__}")
        items: list[Any] = value
        return items

    def string(self, value: Any, at: str) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(at, "expected a non-empty string")
        text: str = value
        return text

    def trusted_root(self, path: Path, at: str) -> TrustedRoot:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            self.fail(at, f"cannot read {path}: {exc.strerror}")
        if len(raw) > _MAX_TRUSTED_ROOT_BYTES:
            self.fail(at, f"{path} is larger than {_MAX_TRUSTED_ROOT_BYTES} bytes")
        try:
            return parse_trusted_root(raw)
        except TrustedRootError as exc:
            self.fail(at, f"{path}: {exc}")

    def certificate_file(self, value: Any, at: str) -> bytes:
        """The PEM certificates (a CA bundle) in the file `value` names."""
        path = self.relative_path(self.string(value, at))
        try:
            pem = path.read_bytes()
        except OSError as exc:
            self.fail(at, f"cannot read {path}: {exc.strerror}")
        if b"-----BEGIN CERTIFICATE-----" not in pem:
            self.fail(at, f"{path} holds no PEM certificate")
        return pem

    def relative_path(self, text: str) -> Path:
        path = Path(text)
        path = path if path.is_absolute() else self.file.parent / path
        self.files_read.append(path)
        return path


class StrictLoader(yaml.SafeLoader):
    """A SafeLoader that refuses duplicate mapping keys instead of keeping the last one."""


def _construct_mapping(loader: StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, f"a {type(key).__name__} cannot be a mapping key", key_node.start_mark
            ) from None
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
