"""Values every part shares: image references and the report."""
