"""Writing signatures (what `signet sign` pushes)."""
