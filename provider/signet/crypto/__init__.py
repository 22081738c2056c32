"""Keys and the signature schemes they verify (pure); cosign key files."""
