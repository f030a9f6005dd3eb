"""A clock tests move by hand."""

from __future__ import annotations

WALL_OFFSET = 1_700_000_000


class Clock:
    """Monotonic clock (call it) and wall clock (``wall``) at once; tests set ``now``."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def wall(self) -> float:
        """Wall clock: a fixed offset from the monotonic one."""
        return self.now + WALL_OFFSET
