"""Evidence formats, one folder each: how it is found (discover, the only I/O) and judged (pure)."""
