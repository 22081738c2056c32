"""The one-line remediation of every deterministic reason: what the person who reads the denial
can do about it, naming the pinned image and the attestor."""

from __future__ import annotations

from signet.reasons import Reason

__all__ = ["remediation"]


def remediation(
    reason: Reason, *, image: str, attestor: str | None = None, keyless: bool = False
) -> str:
    """A one-line instruction for the person who reads the denial (`keyless`: the attestor is
    identities Fulcio certifies, not keys)."""
    if keyless and attestor:
        as_identity = f"keyless as an identity of {attestor}"
        keyless_texts = {
            Reason.NO_SIGNATURE: (
                f"sign {image} {as_identity} (cosign sign, with that identity's OIDC token)"
            ),
            Reason.NOT_SIGNED_BY_ATTESTOR: (
                f"sign {image} {as_identity}, or add the signer's identity to {attestor}"
            ),
            Reason.SIGNATURE_INVALID: (
                f"re-sign {image} {as_identity}; the stored signature does not verify"
            ),
            Reason.DIGEST_MISMATCH: (
                f"sign {image} itself {as_identity}; the signature found names another digest"
            ),
            Reason.UNSUPPORTED_FORMAT: (
                f"sign {image} {as_identity} as cosign does (a .sig tag or a Sigstore bundle)"
            ),
            Reason.KEY_REVOKED: (
                f"re-sign {image} {as_identity} that is not revoked; the signer's certificate "
                "or identity is revoked in the trust config"
            ),
            Reason.KEY_EXPIRED: (
                f"re-sign {image} {as_identity} whose window is current, or renew the "
                f"identity's notAfter in the trust config"
            ),
            Reason.KEY_NOT_YET_VALID: (
                f"sign {image} {as_identity} valid at signing time, or correct the identity's "
                "notBefore in the trust config"
            ),
        }
        if reason in keyless_texts:
            return keyless_texts[reason]
    who = f"a {attestor} key" if attestor else "a trusted key"
    texts = {
        Reason.INVALID_REFERENCE: f"fix the image reference {image!r} in the pod spec",
        Reason.IMAGE_NOT_FOUND: f"push {image} to its registry, or correct the reference",
        Reason.NO_SIGNATURE: f"sign {image} with {who} (signet sign / cosign sign)",
        Reason.NOT_SIGNED_BY_ATTESTOR: f"sign {image} with {who}",
        Reason.SIGNATURE_INVALID: f"re-sign {image} with {who}; its stored signature is corrupt",
        Reason.DIGEST_MISMATCH: (
            f"sign {image} itself with {who}; the signature found names another digest"
        ),
        Reason.LIMIT_EXCEEDED: f"remove surplus signatures and referrers from {image}",
        Reason.UNSUPPORTED_FORMAT: (
            f"sign {image} with {who} as cosign does (a .sig tag or a Sigstore bundle)"
        ),
        Reason.KEY_REVOKED: (
            f"re-sign {image} with a current {_owner(attestor)} key; the key (or signature) "
            "that signed it is revoked in the trust config"
        ),
        Reason.KEY_EXPIRED: (
            f"re-sign {image} with a current {_owner(attestor)} key, or renew the key's "
            "notAfter in the trust config"
        ),
        Reason.KEY_NOT_YET_VALID: (
            f"sign {image} with a {_owner(attestor)} key valid now, or correct the key's "
            "notBefore in the trust config"
        ),
    }
    return texts.get(reason, f"retry later; {reason} is not about the image itself")


def _owner(attestor: str | None) -> str:
    return attestor or "trusted"
