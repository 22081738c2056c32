"""The keyless test images: how each is signed, and what the cosign oracle is asked about it."""

from __future__ import annotations

from dataclasses import dataclass

from .oidc import GITHUB_IDENTITY

ALICE = "alice@example.test"
MALLORY = "mallory@example.test"

# OIDC issuer path → Fulcio issuer type. The trusted Fulcio knows all three; the rogue one `email`.
ISSUERS = {"email": "email", "github": "github-workflow", "other-issuer": "email"}


@dataclass(frozen=True)
class Step:
    """One `cosign sign` or `cosign attest` (an SLSA v1 provenance, `--type slsaprovenance1`)."""

    action: str  # "sign" | "attest"
    bundle: bool  # --new-bundle-format
    fulcio: str = "trusted"  # "trusted" | "rogue"
    timestamp: bool = True  # --timestamp-server-url
    issuer: str | None = None  # default: the image's
    identity: str | None = None  # default: the image's


@dataclass(frozen=True)
class Check:
    """One oracle run; `expected` None records cosign's answer without asserting it."""

    label: str
    command: str  # "verify" | "verify-attestation"
    expected: bool | None
    bundle: bool | None = None  # --new-bundle-format, if given
    root: str = "trusted"  # "trusted" | "rogue" trusted root
    issuer: str | None = None  # default: the image's
    identity: str | None = None  # default: the image's


@dataclass(frozen=True)
class ImageSpec:
    name: str  # also its repository
    issuer: str  # issuer path (ISSUERS)
    identity: str  # the certificate identity: email, or the GitHub workflow URI
    about: str
    steps: tuple[Step, ...] = ()
    # (image, tag suffix) whose artifacts are copied verbatim: ".sig", or "" for the bundle index.
    copy_from: tuple[tuple[str, str], ...] = ()
    checks: tuple[Check, ...] = ()


CLASSIC = Step("sign", bundle=False)
BUNDLE = Step("sign", bundle=True)
ATTEST_BUNDLE = Step("attest", bundle=True)
ATTEST_CLASSIC = Step("attest", bundle=False)
VERIFY_CLASSIC = Check("verify classic", "verify", True, bundle=False)
VERIFY_BUNDLE = Check("verify bundle", "verify", True, bundle=True)
VERIFY_ATTESTATION = Check("verify-attestation bundle", "verify-attestation", True, bundle=True)

IMAGES: tuple[ImageSpec, ...] = (
    ImageSpec(
        "classic-email",
        "email",
        ALICE,
        "classic .sig signature, email identity, TSA timestamp",
        (CLASSIC,),
        checks=(VERIFY_CLASSIC,),
    ),
    ImageSpec(
        "bundle-email",
        "email",
        ALICE,
        "Sigstore bundle signature, email identity, TSA timestamp",
        (BUNDLE,),
        checks=(VERIFY_BUNDLE,),
    ),
    ImageSpec(
        "classic-github",
        "github",
        GITHUB_IDENTITY,
        "classic .sig signature, GitHub workflow identity",
        (CLASSIC,),
        checks=(VERIFY_CLASSIC,),
    ),
    ImageSpec(
        "bundle-github",
        "github",
        GITHUB_IDENTITY,
        "bundle signature, GitHub workflow identity",
        (BUNDLE,),
        checks=(VERIFY_BUNDLE,),
    ),
    ImageSpec(
        "attested-github",
        "github",
        GITHUB_IDENTITY,
        "bundle signature and a bundle SLSA v1 provenance attestation",
        (BUNDLE, ATTEST_BUNDLE),
        checks=(VERIFY_BUNDLE, VERIFY_ATTESTATION),
    ),
    ImageSpec(
        "attestation-only",
        "github",
        GITHUB_IDENTITY,
        "only a bundle SLSA v1 provenance attestation, no signature",
        (ATTEST_BUNDLE,),
        checks=(
            VERIFY_ATTESTATION,
            # cosign v3.1.3 takes an attestation bundle for a signature: recorded, not asserted.
            Check("verify bundle (attestation taken as signature)", "verify", None, bundle=True),
        ),
    ),
    ImageSpec(
        "classic-attestation",
        "github",
        GITHUB_IDENTITY,
        "classic .att attestation and a classic .sig signature",
        (ATTEST_CLASSIC, CLASSIC),
        checks=(
            VERIFY_CLASSIC,
            # cosign's classic reader hashes the whole envelope for the timestamp: recorded only.
            Check("verify-attestation classic", "verify-attestation", None, bundle=False),
        ),
    ),
    ImageSpec(
        "rogue-email",
        "email",
        ALICE,
        "bundle and classic signatures from a Fulcio whose CA is not in trusted_root.json",
        (Step("sign", bundle=True, fulcio="rogue"), Step("sign", bundle=False, fulcio="rogue")),
        checks=(
            Check("verify bundle", "verify", False, bundle=True),
            Check("verify classic", "verify", False, bundle=False),
            Check("verify bundle with the rogue root", "verify", True, bundle=True, root="rogue"),
            Check("verify classic with the rogue root", "verify", True, bundle=False, root="rogue"),
        ),
    ),
    ImageSpec(
        "no-timestamp",
        "email",
        ALICE,
        "classic signature with no timestamp at all (no TSA, no log)",
        (Step("sign", bundle=False, timestamp=False),),
        # cosign's classic path judges it at the current time: passes only while the leaf
        # certificate (10 minutes) is valid. Recorded, not asserted.
        checks=(Check("verify classic", "verify", None, bundle=False),),
    ),
    ImageSpec(
        "copied",
        "email",
        ALICE,
        "unsigned; bundle-email's bundle index and classic-email's .sig copied to its tags",
        copy_from=(("bundle-email", ""), ("classic-email", ".sig")),
        checks=(
            Check("verify bundle", "verify", False, bundle=True),
            Check("verify classic", "verify", False, bundle=False),
        ),
    ),
    ImageSpec(
        "wrong-identity",
        "email",
        MALLORY,
        f"bundle and classic signatures by {MALLORY} (trusted Fulcio, email issuer)",
        (BUNDLE, CLASSIC),
        checks=(
            Check(f"verify bundle as {ALICE}", "verify", False, bundle=True, identity=ALICE),
            Check(f"verify classic as {ALICE}", "verify", False, bundle=False, identity=ALICE),
            Check(f"verify bundle as {MALLORY}", "verify", True, bundle=True),
        ),
    ),
    ImageSpec(
        "wrong-issuer",
        "other-issuer",
        ALICE,
        f"bundle and classic signatures by {ALICE} from another issuer the trusted Fulcio knows",
        (BUNDLE, CLASSIC),
        checks=(
            Check("verify bundle, email issuer", "verify", False, bundle=True, issuer="email"),
            Check("verify classic, email issuer", "verify", False, bundle=False, issuer="email"),
            Check("verify bundle, other issuer", "verify", True, bundle=True),
        ),
    ),
)


@dataclass(frozen=True)
class HandmadeSpec:
    """A classic `.sig` signature built without cosign (see `handmade`), by the trusted Fulcio:
    the RFC 3161 timestamp is requested before the certificate or after it."""

    image: ImageSpec  # its steps are unused: the signing is by hand
    timestamp_first: bool


HANDMADE: tuple[HandmadeSpec, ...] = (
    HandmadeSpec(
        ImageSpec(
            "handmade",
            "email",
            ALICE,
            "classic .sig built by hand as cosign builds it: certificate, then the timestamp",
            checks=(VERIFY_CLASSIC,),
        ),
        timestamp_first=False,
    ),
    HandmadeSpec(
        ImageSpec(
            "backdated",
            "email",
            ALICE,
            "classic .sig built by hand: the timestamp first, the certificate seconds later "
            "(genTime < notBefore)",
            # Recorded, not asserted.
            checks=(Check("verify classic", "verify", None, bundle=False),),
        ),
        timestamp_first=True,
    ),
)
