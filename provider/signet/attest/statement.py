"""in-toto Statements (v0.1 and v1): which digests a predicate is about, and its type.

A statement binds to an image only through `subject[].digest.sha256`; names are informative. The
predicate is kept as parsed JSON for `provenance` to read facts from; nothing else of it is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from signet.model.json_object import json_object
from signet.reasons import DeterministicFailure, Reason

__all__ = [
    "COSIGN_SIGN_PREDICATE",
    "STATEMENT_TYPES",
    "Statement",
    "parse_statement",
]

STATEMENT_TYPES: Final = ("https://in-toto.io/Statement/v0.1", "https://in-toto.io/Statement/v1")
# What cosign signs as a signature in the bundle format; every other predicate is an attestation.
COSIGN_SIGN_PREDICATE: Final = "https://sigstore.dev/cosign/sign/v1"
_MAX_SUBJECTS: Final = 1024
_HEX: Final = frozenset("0123456789abcdef")


@dataclass(frozen=True, slots=True)
class Statement:
    statement_type: str
    # "sha256:<hex>" for every subject that names a sha256 digest.
    subject_digests: tuple[str, ...]
    predicate_type: str
    predicate: Any

    @property
    def is_signature(self) -> bool:
        return self.predicate_type == COSIGN_SIGN_PREDICATE

    def names(self, digest: str) -> bool:
        return digest in self.subject_digests


def parse_statement(raw: bytes) -> Statement:
    """Parse a statement; one that cannot name a digest is SIGNATURE_INVALID."""
    document = json_object(raw, "signed statement", Reason.SIGNATURE_INVALID)
    statement_type = document.get("_type")
    if statement_type not in STATEMENT_TYPES:
        raise DeterministicFailure(
            Reason.UNSUPPORTED_FORMAT,
            f"the statement type is {statement_type!r}, not an in-toto Statement v0.1 or v1",
        )
    predicate_type = document.get("predicateType")
    if not isinstance(predicate_type, str) or not predicate_type:
        raise DeterministicFailure(Reason.SIGNATURE_INVALID, "the statement has no predicateType")
    subjects = document.get("subject")
    if not isinstance(subjects, list) or not subjects:
        raise DeterministicFailure(Reason.SIGNATURE_INVALID, "the statement has no subject")
    if len(subjects) > _MAX_SUBJECTS:
        raise DeterministicFailure(
            Reason.LIMIT_EXCEEDED,
            f"the statement has {len(subjects)} subjects; the limit is {_MAX_SUBJECTS}",
        )
    digests = []
    for subject in subjects:
        digest = subject.get("digest") if isinstance(subject, dict) else None
        value = digest.get("sha256") if isinstance(digest, dict) else None
        if isinstance(value, str) and len(value) == 64 and set(value) <= _HEX:
            digests.append(f"sha256:{value}")
    return Statement(
        statement_type, tuple(dict.fromkeys(digests)), predicate_type, document.get("predicate")
    )
