"""The engine (resolve, discover, verify, cache), its flights, workers and caches, and the one
composition root that wires them (runtime)."""
