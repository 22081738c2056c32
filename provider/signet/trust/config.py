"""The trust config: which attestors (signers) exist, their keys, and how to reach registries.

Policy as code, in YAML: one file or a folder of `*.yaml`/`*.yml` files. Everything is validated
when loaded — unknown fields, duplicate attestor names, duplicate mapping keys, unreadable or
unsupported keys — and every error names the file, the attestor and the problem. The fingerprint
covers everything that can change a verdict, and is part of every verdict's cache key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from signet.crypto.keys import UnusableKey, load_public_key_pem
from signet.crypto.pkcs11 import read_public_key
from signet.keyless.certificate import CLAIMS
from signet.trust.config_kms import KmsKeys, RemoteKeys, kms_settings
from signet.trust.config_lifecycle import WINDOW_FIELDS, KeyReference, resolve, revocations, window
from signet.trust.lifecycle import Revocation, Revocations
from signet.trust.model import (
    CONFIG_VERSION,
    EVERYTHING,
    Attestor,
    EvidenceSettings,
    Keyless,
    KeylessIdentity,
    RegistrySettings,
    TrustConfig,
    TrustConfigError,
    TrustedKey,
)
from signet.trust.source import StrictLoader, Where

__all__ = ["RemoteKeys", "load"]

_MAX_CONFIG_BYTES = 4 * 1024 * 1024
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")
_MAX_PATTERN = 1024
_KEY_SOURCES = ("pem", "file", "pkcs11", "kms")
_FORMATS = ("cosign-classic", "sigstore-bundle")  # as reports name them


def load(path: Path | str, remote: RemoteKeys | None = None) -> TrustConfig:
    """Load one YAML file, or every `*.yaml`/`*.yml` file of a folder (sorted by name).

    KMS-held public keys are read from their KMS now; `remote` keeps what was read for the next
    load (a reload while the KMS is unreachable then keeps the keys it had)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
        if not files:
            raise TrustConfigError(f"{path}: the folder holds no .yaml or .yml file")
    elif path.is_file():
        files = [path]
    else:
        raise TrustConfigError(f"{path}: no such file or folder")

    attestors: list[Attestor] = []
    registries: list[RegistrySettings] = []
    docker_config: Path | None = None
    key_files: list[Path] = []
    owners: dict[str, Path] = {}
    revoked: list[Revocation | KeyReference] = []
    documents = [(Where(file), _read(file)) for file in files]
    evidence, evidence_from = EVERYTHING, None
    kms = KmsKeys(
        kms_settings([(where, doc["kms"]) for where, doc in documents if _has(doc, "kms")]),
        remote or RemoteKeys(),
    )
    for where, document in documents:
        file = where.file
        part, part_revoked = _load_file(where, document, kms)
        revoked.extend(part_revoked)
        key_files.extend(part.key_files)
        for attestor in part.attestors:
            if attestor.name in owners:
                raise TrustConfigError(
                    f"{file}: attestor {attestor.name!r} is already defined in "
                    f"{owners[attestor.name]}"
                )
            owners[attestor.name] = file
            attestors.append(attestor)
        for settings in part.registries:
            if any(r.host == settings.host for r in registries):
                raise TrustConfigError(f"{file}: registry {settings.host!r} is listed twice")
            registries.append(settings)
        if part.docker_config is not None:
            if docker_config is not None:
                raise TrustConfigError(f"{file}: auth is set in more than one file")
            docker_config = part.docker_config
        if _has(document, "evidence"):
            if evidence_from is not None:
                raise TrustConfigError(f"{file}: evidence is set in {evidence_from} already")
            evidence, evidence_from = part.evidence, file
    if not attestors:
        raise TrustConfigError(f"{path}: no attestors are configured; nothing could ever verify")
    _refuse_shared_keys(attestors, owners)
    _refuse_shared_identities(attestors, owners)
    return TrustConfig(
        tuple(attestors),
        tuple(registries),
        docker_config,
        tuple(files),
        tuple(key_files),
        Revocations(resolve(revoked, attestors)),
        tuple(kms.references),
        evidence,
        tuple(kms.warnings),
    )


def _has(document: Any, field: str) -> bool:
    return isinstance(document, dict) and field in document


def _refuse_shared_keys(attestors: list[Attestor], owners: dict[str, Path]) -> None:
    """One key under two attestors would let one signer meet a sign-off meant for two."""
    holders: dict[str, tuple[Attestor, TrustedKey]] = {}
    for attestor in attestors:
        for trusted in attestor.keys:
            held = holders.setdefault(trusted.key.fingerprint, (attestor, trusted))
            if held[1] is trusted:
                continue
            first, first_key = held
            where = owners[attestor.name]
            if first is attestor:
                raise TrustConfigError(
                    f"{where}: attestor {attestor.name!r}: keys {first_key.id!r} and "
                    f"{trusted.id!r} are the same key"
                )
            elsewhere = "" if owners[first.name] == where else f" (in {owners[first.name]})"
            raise TrustConfigError(
                f"{where}: attestors {first.name!r}{elsewhere} and {attestor.name!r} share the "
                f"key {first_key.id!r} (= {trusted.id!r}, sha256 {trusted.key.fingerprint[:16]}): "
                "one signer would count as both; give each attestor its own keys"
            )


def _refuse_shared_identities(attestors: list[Attestor], owners: dict[str, Path]) -> None:
    """The same keyless identity under two attestors: one signer would count as both."""
    holders: dict[tuple[str, str], str] = {}
    for attestor in attestors:
        for identity in attestor.keyless.identities if attestor.keyless else ():
            if identity.subject is None or identity.issuer is None:
                continue
            first = holders.setdefault((identity.issuer, identity.subject), attestor.name)
            if first != attestor.name:
                raise TrustConfigError(
                    f"{owners[attestor.name]}: attestors {first!r} and {attestor.name!r} both "
                    f"accept the keyless identity {identity.describe()}: one signer would count "
                    "as both"
                )


def _read(file: Path) -> Any:
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise TrustConfigError(f"{file}: cannot read: {exc.strerror}") from exc
    if len(raw) > _MAX_CONFIG_BYTES:
        raise TrustConfigError(f"{file}: larger than {_MAX_CONFIG_BYTES} bytes")
    try:
        document = yaml.load(raw, Loader=StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise TrustConfigError(f"{file}: not valid YAML: {exc}") from exc
    return document


def _load_file(
    where: Where, document: Any, kms: KmsKeys
) -> tuple[TrustConfig, list[Revocation | KeyReference]]:
    file = where.file
    if document is None:
        where.fail(
            "", "the file is empty; a trust config starts with `version: 1` and lists attestors"
        )
    top = where.mapping(
        document,
        "",
        {"version", "attestors", "registries", "auth", "revoked", "kms", "evidence"},
    )
    version = top.get("version")
    if type(version) is not int or version != CONFIG_VERSION:  # not `true`, not 1.0
        where.fail("", f"version must be {CONFIG_VERSION}, not {version!r}")
    attestors = tuple(
        _attestor(where, f"attestors[{i}]", item, kms)
        for i, item in enumerate(where.sequence(top.get("attestors", []), "attestors"))
    )
    seen: set[str] = set()
    for attestor in attestors:
        if attestor.name in seen:
            where.fail("attestors", f"attestor name {attestor.name!r} appears twice")
        seen.add(attestor.name)
    registries = tuple(
        _registry(where, f"registries[{i}]", item)
        for i, item in enumerate(where.sequence(top.get("registries", []), "registries"))
    )
    docker_config = None
    if "auth" in top:
        auth = where.mapping(top["auth"], "auth", {"docker_config"})
        docker_config = where.relative_path(
            where.string(auth.get("docker_config"), "auth.docker_config")
        )
    revoked = revocations(where, where.sequence(top.get("revoked", []), "revoked"))
    evidence = _evidence(where, top["evidence"]) if "evidence" in top else EVERYTHING
    files_read = tuple(where.files_read)
    part = TrustConfig(attestors, registries, docker_config, (file,), files_read, evidence=evidence)
    return part, revoked


def _evidence(where: Where, value: Any) -> EvidenceSettings:
    fields = where.mapping(value, "evidence", {"formats", "attestations"})
    formats = [
        where.string(name, f"evidence.formats[{i}]")
        for i, name in enumerate(
            where.sequence(fields.get("formats", list(_FORMATS)), "evidence.formats")
        )
    ]
    unknown = sorted(set(formats) - set(_FORMATS))
    if unknown:
        where.fail(
            "evidence.formats", f"unknown format {unknown[0]!r} (known: {', '.join(_FORMATS)})"
        )
    if not formats:
        where.fail("evidence.formats", "is empty: nothing would ever be found")
    attestations = fields.get("attestations", True)
    if not isinstance(attestations, bool):
        where.fail("evidence.attestations", "must be true or false")
    return EvidenceSettings(_FORMATS[0] in formats, _FORMATS[1] in formats, attestations)


def _attestor(where: Where, at: str, item: Any, kms: KmsKeys) -> Attestor:
    # Name the attestor in every message once its name can be read, even before validating it.
    named = item.get("name") if isinstance(item, dict) else None
    fields = where.mapping(
        item, f"attestor {named!r}" if isinstance(named, str) else at, {"name", "keys", "keyless"}
    )
    name = where.string(fields.get("name"), f"{at}.name")
    if not set(name) <= _NAME_CHARS:
        where.fail(
            f"{at}.name", f"{name!r} may hold only lower-case letters, digits, '-', '_', '.'"
        )
    at = f"attestor {name!r}"
    if ("keys" in fields) == ("keyless" in fields):
        where.fail(at, "give exactly one of 'keys' (public keys) or 'keyless' (identities)")
    if "keyless" in fields:
        return Attestor(name, keyless=_keyless(where, f"{at} keyless", fields["keyless"]))
    items = where.sequence(fields.get("keys"), f"{at} keys")
    if not items:
        where.fail(at, "has no keys")
    keys: list[TrustedKey] = []
    for i, key_item in enumerate(items):
        keys.extend(_keys(where, f"{at} keys[{i}]", key_item, kms))
    ids = [k.id for k in keys]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        where.fail(at, f"key id {duplicates[0]!r} is used twice")
    return Attestor(name, tuple(keys))


def _keys(where: Where, at: str, item: Any, kms: KmsKeys) -> list[TrustedKey]:
    """One entry's keys: one, or a KMS key's versions."""
    fields = where.mapping(item, at, {"id", "pem", "file", "pkcs11", "kms", *WINDOW_FIELDS})
    if sum(name in fields for name in _KEY_SOURCES) != 1:
        where.fail(
            at,
            "give exactly one of 'pem', 'file', 'pkcs11' (a token's public key) or 'kms' "
            "(a hashivault:// key)",
        )
    bounds = window(where, at, _window_fields(fields))
    if "kms" in fields:
        return kms.keys(where, at, fields, bounds)
    if "pem" in fields:
        pem = where.string(fields["pem"], f"{at}.pem").encode()
    elif "file" in fields:
        key_path = where.relative_path(where.string(fields["file"], f"{at}.file"))
        try:
            pem = key_path.read_bytes()
        except OSError as exc:
            where.fail(at, f"cannot read key file {key_path}: {exc.strerror}")
    try:
        # A token's public key is read now, at every load and reload, and never per request.
        key = (
            read_public_key(where.string(fields["pkcs11"], f"{at}.pkcs11"))
            if "pkcs11" in fields
            else load_public_key_pem(pem)
        )
    except UnusableKey as exc:
        where.fail(at, str(exc))
    key_id = where.string(fields["id"], f"{at}.id") if "id" in fields else key.short_id
    return [TrustedKey(key_id, key, bounds)]


def _keyless(where: Where, at: str, item: Any) -> Keyless:
    fields = where.mapping(
        item, at, {"trustedRoot", "identities", "transparencyLog", "certificateTransparency"}
    )
    root_path = where.relative_path(where.string(fields.get("trustedRoot"), f"{at}.trustedRoot"))
    root = where.trusted_root(root_path, f"{at}.trustedRoot")
    items = where.sequence(fields.get("identities"), f"{at}.identities")
    if not items:
        where.fail(at, "has no identities")
    identities = tuple(_identity(where, f"{at}.identities[{i}]", x) for i, x in enumerate(items))
    flags = {}
    for flag in ("transparencyLog", "certificateTransparency"):
        value = fields.get(flag, True)
        if not isinstance(value, bool):
            where.fail(f"{at}.{flag}", "must be true or false")
        flags[flag] = value
    if flags["transparencyLog"] and not root.tlogs:
        where.fail(
            at,
            f"{root_path} lists no transparency log; set transparencyLog: false to "
            "trust signatures that were never logged (a private Sigstore)",
        )
    if flags["certificateTransparency"] and not root.ctlogs:
        where.fail(
            at,
            f"{root_path} lists no CT log; set certificateTransparency: false to "
            "trust certificates without an SCT (a private Sigstore)",
        )
    if not root.certificate_authorities:
        where.fail(at, f"{root_path} lists no certificate authority; no certificate could verify")
    if not flags["transparencyLog"] and not root.timestamp_authorities:
        where.fail(
            at,
            f"{root_path} lists no timestamp authority, and transparencyLog is false: "
            "no signing time could ever be trusted",
        )
    return Keyless(root, identities, flags["transparencyLog"], flags["certificateTransparency"])


def _identity(where: Where, at: str, item: Any) -> KeylessIdentity:
    fields = where.mapping(
        item, at, {"issuer", "issuerRegExp", "subject", "subjectRegExp", "claims", *WINDOW_FIELDS}
    )
    issuer, issuer_pattern = _exact_or_pattern(where, at, fields, "issuer")
    subject, subject_pattern = _exact_or_pattern(where, at, fields, "subject")
    claims = where.mapping(fields.get("claims", {}), f"{at}.claims", CLAIMS)
    pairs = tuple(
        (str(name), where.string(value, f"{at}.claims.{name}"))
        for name, value in sorted(claims.items())
    )
    bounds = window(where, at, _window_fields(fields))
    return KeylessIdentity(issuer, subject, subject_pattern, pairs, issuer_pattern, bounds)


def _window_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if name in WINDOW_FIELDS}


def _exact_or_pattern(
    where: Where, at: str, fields: Mapping[str, Any], name: str
) -> tuple[str | None, re.Pattern[str] | None]:
    """`name` (exact) or `nameRegExp` (matched against the whole value): exactly one."""
    regexp = f"{name}RegExp"
    if (name in fields) == (regexp in fields):
        where.fail(at, f"give exactly one of '{name}' (exact) or '{regexp}'")
    if name in fields:
        return where.string(fields[name], f"{at}.{name}"), None
    text = where.string(fields[regexp], f"{at}.{regexp}")
    if len(text) > _MAX_PATTERN:
        where.fail(f"{at}.{regexp}", f"longer than {_MAX_PATTERN} characters")
    try:
        return None, re.compile(text)
    except re.error as exc:
        where.fail(f"{at}.{regexp}", f"not a regular expression: {exc}")


def _registry(where: Where, at: str, item: Any) -> RegistrySettings:
    fields = where.mapping(item, at, {"host", "insecure", "ca_file", "realms"})
    host = where.string(fields.get("host"), f"{at}.host").lower()
    if "/" in host or "://" in host:
        where.fail(f"{at}.host", f"{host!r} must be host[:port], without scheme or path")
    insecure = fields.get("insecure", False)
    if not isinstance(insecure, bool):
        where.fail(f"{at}.insecure", "must be true or false")
    ca_pem = (
        where.certificate_file(fields["ca_file"], f"{at}.ca_file") if "ca_file" in fields else None
    )
    realms = tuple(
        where.string(r, f"{at}.realms[{i}]").lower()
        for i, r in enumerate(where.sequence(fields.get("realms", []), f"{at}.realms"))
    )
    return RegistrySettings(host, insecure, ca_pem, realms)
