"""cosign's classic format: the `sha256-<hex>.sig` tag and its simple-signing payloads."""
