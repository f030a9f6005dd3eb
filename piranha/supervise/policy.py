"""When to restart a child that died: exponential backoff that resets after a good run (pure).

Rules (keepalived's ``calc_restart_delay`` and supervisor's BACKOFF, in one table-tested place):

* the first restart after a crash waits ``initial`` seconds; each further consecutive crash
  doubles the wait (``factor``), capped at ``maximum``;
* a child that ran at least ``reset_after`` seconds before dying starts a new streak, so an
  occasional crash always restarts quickly;
* ``give_up_after`` consecutive crashes (0 = never) stop the restarts: the caller logs it
  loudly and leaves the child down.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RestartPolicy:
    """Backoff parameters, all in seconds except the counts."""

    initial: float = 1.0
    factor: float = 2.0
    maximum: float = 60.0
    reset_after: float = 60.0
    give_up_after: int = 0

    def streak(self, previous: int, uptime: float) -> int:
        """Consecutive crashes counting the one that just happened after ``uptime`` s."""
        return 1 if uptime >= self.reset_after else previous + 1

    def delay(self, streak: int) -> float | None:
        """Seconds to wait before restart number ``streak``; None = give up."""
        if self.give_up_after and streak > self.give_up_after:
            return None
        return float(min(self.maximum, self.initial * self.factor ** max(0, streak - 1)))
