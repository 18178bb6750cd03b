"""Hypothesis profiles for the fuzz suite.

- ``quick`` (default, part of ``make test``): a few dozen examples a property, whole suite in
  seconds.
- ``long`` (``make fuzz``, ``HYPOTHESIS_PROFILE=long``): ``FUZZ_EXAMPLES`` examples a property
  (default 15 000: seven properties, >= 100 000 examples in all).

No deadline per example (a shared CI machine is noisy); time is bounded instead by the properties
themselves (decoding has cost caps, tests assert a generous wall-clock bound per example).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "quick",
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "40")),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
settings.register_profile(
    "long",
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "15000")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "quick"))
