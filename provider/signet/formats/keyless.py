"""Keyless evidence in any format, judged for one attestor under the image's budget of checks.

Shared by every format that can carry a Fulcio certificate (Sigstore bundles, cosign's classic
`.sig` and `.att` layers). The cryptographic checks (`signet.keyless.verify`) depend only on the
evidence and the attestor's trusted root and log/SCT requirements, so they run once per piece of
evidence and trusted root, however many attestors share that root; then, and only then, the
certified identity is matched against this attestor's identities. Nothing in the evidence chooses
which identities or roots are tried.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from signet.formats.envelopes import OUT_OF_BUDGET, OutOfBudget
from signet.formats.lifecycle import identity_refusal, stamp
from signet.formats.verdict import Budget
from signet.keyless.verify import KeylessEvidence, KeylessSignature, verify
from signet.model.report import KeylessFact
from signet.reasons import DeterministicFailure, Reason
from signet.trust.lifecycle import Revocations, SigningTime, TimeSource
from signet.trust.model import Attestor

__all__ = ["KEYLESS_CHECK_COST", "KeylessChecks", "KeylessSigner"]

# One keyless verification checks a signature, each timestamp, a log entry's signatures and an
# SCT, and walks a chain: ~1.3 ms, some nine P-256 checks (bench/keyless.py).
KEYLESS_CHECK_COST: Final = 8


@dataclass(frozen=True, slots=True)
class KeylessSigner:
    """A keyless signature that verified and whose identity is one of the attestor's."""

    signature: KeylessSignature

    @property
    def key_id(self) -> str:
        return self.signature.identity.subject

    @property
    def when(self) -> SigningTime:
        """The earliest trusted signing time, which the identity's window was judged at."""
        source = TimeSource(self.signature.time_source.split(" ", 1)[0])
        return SigningTime(self.signature.signed_at, source)

    @property
    def stamp(self) -> tuple[str, str]:
        return stamp(self.when)

    @property
    def fact(self) -> KeylessFact:
        signed = self.signature
        return KeylessFact(
            subject=signed.identity.subject,
            issuer=signed.identity.issuer,
            claims=signed.identity.claims,
            signed_at=signed.signed_at.isoformat().replace("+00:00", "Z"),
            time_source=signed.time_source,
            log_index=signed.log_index,
            log_url=signed.log_url,
        )


class KeylessChecks:
    """The keyless verifications of one image, each done at most once."""

    def __init__(self, budget: Budget, revocations: Revocations) -> None:
        self.budget = budget
        self.revocations = revocations
        self._results: dict[
            tuple[str, KeylessEvidence, tuple[str, bool, bool]],
            KeylessSignature | DeterministicFailure,
        ] = {}

    def signer(
        self, name: str, evidence: KeylessEvidence, attestor: Attestor
    ) -> KeylessSigner | DeterministicFailure | OutOfBudget | None:
        """`attestor`'s keyless signer for the evidence called `name` (a layer or referrer
        digest); None when the attestor is not keyless; a failure saying why not."""
        if attestor.keyless is None:
            return None
        # The evidence itself, not just its name: two layers may share a payload digest.
        key = (name, evidence, attestor.keyless.policy_key())
        result = self._results.get(key)
        if result is None:
            if not self.budget.spend(KEYLESS_CHECK_COST):
                return OUT_OF_BUDGET
            try:
                result = verify(evidence, attestor.keyless)
            except DeterministicFailure as failure:
                result = failure
            self._results[key] = result
        if isinstance(result, DeterministicFailure):
            return result
        identity = result.identity
        matched = [i for i in attestor.keyless.identities if i.matches(identity)]
        if matched:
            signer = KeylessSigner(result)
            refused = identity_refusal(
                self.revocations,
                attestor,
                matched,
                identity.subject,
                identity.issuer,
                result.certificate,
                name,
                signer.when,
            )
            return signer if refused is None else refused
        accepted = "; ".join(i.describe() for i in attestor.keyless.identities[:3])
        return DeterministicFailure(
            Reason.NOT_SIGNED_BY_ATTESTOR,
            f"signed keyless by {identity.subject} (issuer {identity.issuer}), which is not an "
            f"identity of {attestor.name}: it accepts {accepted}",
        )
