"""What attestations are made of: DSSE envelopes, in-toto statements, SLSA provenance facts."""
