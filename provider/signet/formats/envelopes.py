"""Checking a DSSE envelope against one attestor's keys, under the image's budget of checks.

Shared by every format that carries DSSE (Sigstore bundles, cosign's classic attestations). Only
the configured keys are tried, in their configured order; nothing in the envelope (a `keyid`, a
bundle's key hint) selects, adds or skips a key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from signet.attest.dsse import Envelope
from signet.formats.verdict import Budget
from signet.trust.model import Attestor, TrustedKey

__all__ = ["OUT_OF_BUDGET", "OutOfBudget", "Signer", "check_envelope"]


@dataclass(frozen=True, slots=True)
class Signer:
    key: TrustedKey
    scheme: str


class OutOfBudget:
    def __repr__(self) -> str:
        return "OUT_OF_BUDGET"


OUT_OF_BUDGET: Final = OutOfBudget()


def check_envelope(
    envelope: Envelope, attestor: Attestor, budget: Budget
) -> Signer | OutOfBudget | None:
    """The attestor's key (and scheme) a signature of the envelope verifies under, if any."""
    signed = envelope.signed_bytes
    for trusted in attestor.keys:
        for signature in envelope.signatures:
            cost = trusted.key.check_cost(signature)
            if cost == 0:
                continue
            if not budget.spend(cost):
                return OUT_OF_BUDGET
            scheme = trusted.key.verify(signed, signature)
            if scheme is not None:
                return Signer(trusted, scheme)
    return None
