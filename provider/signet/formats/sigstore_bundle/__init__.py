"""Sigstore bundles stored as OCI 1.1 referrers (cosign v3's default; v2.6 with a flag)."""
