"""Which signers each repository has been verified with, and an alert when a new one appears.

A repository (registry/repository of a decision's image) is learnt the first time an image of it
verifies: its signers are remembered, and that is no alert. Later, an image of it verified by a
signer never seen for it (another attestor, key id, or keyless identity and issuer) fires
"unusual signing source", which resolves `hold` seconds after that signer was last seen new.

Memory is bounded: at most `max_repositories` repositories (least recently verified first out)
and `max_signers` signers each (the longest unseen first out). `to_json`/`from_json` and
`load`/`write` keep it in a small JSON file, so a restart does not learn everything again.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from signet.alerts.event import Alert, printable
from signet.audit.record import Decision, SignerFact
from signet.model.reference import InvalidReference, parse

__all__ = ["NewSigners", "load", "write"]

_FORMAT = 1
_MAX_ACTIVE = 256  # unusual-signer alerts held at once; past this, the oldest resolves early


def _signer(fact: SignerFact) -> str:
    if fact.identity is not None or fact.issuer is not None:
        return f"{fact.attestor}: keyless {fact.identity} from {fact.issuer}"
    return f"{fact.attestor}: key {fact.key}"


def _repository(key: str) -> str | None:
    try:
        reference = parse(key)
    except InvalidReference:
        return None
    return f"{reference.registry}/{reference.repository}"


class NewSigners:
    NAME = "SignetUnusualSigningSource"

    def __init__(self, hold: float, max_repositories: int = 10_000, max_signers: int = 16) -> None:
        self.hold, self.max_repositories, self.max_signers = hold, max_repositories, max_signers
        self._seen: collections.OrderedDict[str, collections.OrderedDict[str, None]] = (
            collections.OrderedDict()
        )
        self._firing: collections.OrderedDict[tuple[str, str], tuple[Alert, float]] = (
            collections.OrderedDict()
        )
        self.changed = False  # since the last `to_json`

    def __len__(self) -> int:
        return len(self._seen)

    def signers(self, repository: str) -> tuple[str, ...]:
        return tuple(self._seen.get(repository, ()))

    def observe(self, decisions: Sequence[Decision], now: float) -> list[Alert]:
        changed: list[Alert] = []
        for decision in decisions:
            if not decision.signers or decision.error is not None:
                continue
            repository = _repository(decision.key)
            if repository is None:
                continue
            known = self._seen.get(repository)
            if known is None:
                self._learn(repository, decision.signers)
                continue
            self._seen.move_to_end(repository)
            for fact in decision.signers:
                signer = _signer(fact)
                if signer in known:
                    known.move_to_end(signer)
                    continue
                changed.extend(self._fire(repository, known, signer, fact, decision, now))
                self._remember(known, signer)
        return changed

    def tick(self, now: float) -> list[Alert]:
        old = [key for key, (_, seen) in self._firing.items() if now - seen > self.hold]
        return [self._firing.pop(key)[0].resolved(now) for key in old]

    def _learn(self, repository: str, facts: Sequence[SignerFact]) -> None:
        known: collections.OrderedDict[str, None] = collections.OrderedDict()
        for fact in facts:
            self._remember(known, _signer(fact))
        self._seen[repository] = known
        if len(self._seen) > self.max_repositories:
            self._seen.popitem(last=False)
        self.changed = True

    def _remember(self, known: collections.OrderedDict[str, None], signer: str) -> None:
        known[signer] = None
        if len(known) > self.max_signers:
            known.popitem(last=False)
        self.changed = True

    def _fire(
        self,
        repository: str,
        known: collections.OrderedDict[str, None],
        signer: str,
        fact: SignerFact,
        decision: Decision,
        now: float,
    ) -> list[Alert]:
        # The repository is only ever one whose images verified with a trusted signer, and
        # the attestor is the trust config's name: both may label the alert.
        key = (repository, fact.attestor)
        held = self._firing.get(key)
        if held is not None:
            self._firing[key] = (held[0], now)
            return []
        previous = "; ".join(printable(s, 80) for s in list(known)[-3:])
        alert = Alert(
            self.NAME,
            "warning",
            (("repository", printable(repository)), ("attestor", printable(fact.attestor))),
            f"{printable(repository)} was signed by a source never seen for it before.",
            f"New signer {printable(signer)} for image {printable(decision.key)} "
            f"({decision.digest or 'no digest'}); previously: {previous}.",
            now,
        )
        self._firing[key] = (alert, now)
        changed = [alert]
        if len(self._firing) > _MAX_ACTIVE:
            _, (oldest, _) = self._firing.popitem(last=False)
            changed.append(oldest.resolved(now))
        return changed

    def to_json(self) -> dict[str, Any]:
        self.changed = False
        return {
            "format": _FORMAT,
            "repositories": {name: list(signers) for name, signers in self._seen.items()},
        }

    def from_json(self, document: object) -> None:
        """Take in what `to_json` wrote (least recently verified first); ValueError if not that."""
        if not isinstance(document, dict) or document.get("format") != _FORMAT:
            raise ValueError(f"not a signer history of format {_FORMAT}")
        repositories = document.get("repositories")
        if not isinstance(repositories, dict):
            raise ValueError("repositories: expected an object")
        for name, signers in repositories.items():
            if not isinstance(signers, list) or not all(isinstance(s, str) for s in signers):
                raise ValueError(f"repositories[{name!r}]: expected a list of strings")
            known: collections.OrderedDict[str, None] = collections.OrderedDict()
            for signer in signers:
                self._remember(known, signer)
            self._seen[name] = known
            if len(self._seen) > self.max_repositories:
                self._seen.popitem(last=False)
        self.changed = False


def load(history: NewSigners, path: Path) -> None:
    """Fill `history` from `path`; a missing file is an empty history. Raises ValueError."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror or exc}") from None
    try:
        history.from_json(json.loads(text))
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def write(path: Path, document: dict[str, Any]) -> None:
    """Write a `to_json` document atomically (a temporary file beside it, then renamed).

    Raises OSError."""
    data = json.dumps(document, separators=(",", ":")).encode()
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
