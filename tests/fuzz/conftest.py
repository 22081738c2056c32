"""Hypothesis profiles: `ci` (bounded and repeatable, in `make test`) and `fuzz` (`make fuzz`)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=150,
    deadline=2000,  # ms per input: a hang past it is a failure
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
settings.register_profile(
    "fuzz",
    max_examples=5000,
    deadline=2000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("SIGNET_FUZZ_PROFILE", "ci"))
