"""How many hypothesis examples a test that fixes its own count runs (capped by the ``fast``
profile, see tests/conftest.py)."""

from __future__ import annotations

import os

FAST_CAP = 10


def examples(wanted: int) -> int:
    """``wanted``, or at most FAST_CAP under HYPOTHESIS_PROFILE=fast."""
    return min(wanted, FAST_CAP) if os.environ.get("HYPOTHESIS_PROFILE") == "fast" else wanted
