"""Keyless (Fulcio certificate) verification against an offline Sigstore trusted root. Pure."""
