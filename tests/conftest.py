"""Suite-wide settings: hypothesis profiles, chosen with HYPOTHESIS_PROFILE.

* ``default``: hypothesis' own (100 examples a test) -- what ``make test`` and CI run;
* ``fast``: 10 examples a test, for a quick edit-test loop
  (``HYPOTHESIS_PROFILE=fast .venv/bin/python -m pytest tests/unit``);
* ``thorough``: 2,000 examples a test, for a soak before a release.

Tests that fix their own ``max_examples`` (the slow oracles) keep it in every profile except
``fast``, where it is capped too.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

from testkit.examples import FAST_CAP

settings.register_profile("fast", max_examples=FAST_CAP, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
