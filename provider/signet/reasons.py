"""Reason codes (contract v1) and the two kinds of failure they name.

A *deterministic* failure is a fact about the image that asking again will not change (it is
cached, and returned to Gatekeeper as an item). A *transient* failure is about reaching the
registry; it is never cached, and it reaches Gatekeeper only through `systemError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["DeterministicFailure", "Reason", "Refusal", "TransientFailure"]


class Reason(StrEnum):
    # Deterministic: cached, returned as items.
    INVALID_REFERENCE = "INVALID_REFERENCE"
    IMAGE_NOT_FOUND = "IMAGE_NOT_FOUND"
    NO_SIGNATURE = "NO_SIGNATURE"
    NOT_SIGNED_BY_ATTESTOR = "NOT_SIGNED_BY_ATTESTOR"
    SIGNATURE_INVALID = "SIGNATURE_INVALID"
    DIGEST_MISMATCH = "DIGEST_MISMATCH"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    UNSUPPORTED_FORMAT = "UNSUPPORTED_FORMAT"
    # Key lifecycle (the trust config's revocations and validity windows): deterministic too.
    KEY_REVOKED = "KEY_REVOKED"
    KEY_EXPIRED = "KEY_EXPIRED"
    KEY_NOT_YET_VALID = "KEY_NOT_YET_VALID"
    # Transient: never cached, only in systemError.
    REGISTRY_UNAVAILABLE = "REGISTRY_UNAVAILABLE"
    REGISTRY_TIMEOUT = "REGISTRY_TIMEOUT"
    REGISTRY_RATE_LIMITED = "REGISTRY_RATE_LIMITED"
    REGISTRY_AUTH_FAILED = "REGISTRY_AUTH_FAILED"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    INTERNAL_ERROR = "INTERNAL_ERROR"

    @property
    def transient(self) -> bool:
        return self in _TRANSIENT

    @property
    def lifecycle(self) -> bool:
        """A valid signature refused by the trust config's revocations or validity windows."""
        return self in _LIFECYCLE


_TRANSIENT = frozenset(
    {
        Reason.REGISTRY_UNAVAILABLE,
        Reason.REGISTRY_TIMEOUT,
        Reason.REGISTRY_RATE_LIMITED,
        Reason.REGISTRY_AUTH_FAILED,
        Reason.DEADLINE_EXCEEDED,
        Reason.INTERNAL_ERROR,
    }
)


_LIFECYCLE = frozenset({Reason.KEY_REVOKED, Reason.KEY_EXPIRED, Reason.KEY_NOT_YET_VALID})


class _Failure(Exception):
    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"

    def __reduce__(self) -> tuple[type[_Failure], tuple[Reason, str]]:
        # Pickled (to and from a verification worker process) as what it is, not by its args.
        return (type(self), (self.reason, self.message))


class DeterministicFailure(_Failure):
    """The image cannot be admitted, and asking again will give the same answer."""

    def __init__(self, reason: Reason, message: str) -> None:
        if reason.transient:
            raise ValueError(f"{reason} is a transient reason")
        super().__init__(reason, message)


class TransientFailure(_Failure):
    """The answer could not be found now; it may be found later."""

    def __init__(self, reason: Reason, message: str) -> None:
        if not reason.transient:
            raise ValueError(f"{reason} is not a transient reason")
        super().__init__(reason, message)


@dataclass(frozen=True, slots=True)
class Refusal:
    """A deterministic failure as a plain value: what caches keep and flights hand over.

    An exception kept and raised again grows its traceback on every raise and holds the frames
    it passed through; raising `error()` makes a fresh one each time.
    """

    reason: Reason
    message: str

    @classmethod
    def of(cls, failure: DeterministicFailure) -> Refusal:
        return cls(failure.reason, failure.message)

    def error(self) -> DeterministicFailure:
        return DeterministicFailure(self.reason, self.message)
