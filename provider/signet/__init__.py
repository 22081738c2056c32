"""Signet: admit only container images whose signatures verify (an OPA Gatekeeper provider)."""

__version__ = "0.1.0"
