"""Off the admission path: metrics and log formatting."""
