"""What a nanny counts about its own checks (pure): how many ran, how long each took, how far
each ran behind its schedule, why the failed ones failed, and when the last one passed.

The counts are cumulative for the life of the nanny; it sends them to lvsd every
:data:`STATS_EVERY` seconds (see :mod:`piranha.health.report`), and lvsd adds the counts of a
nanny's predecessors so its metrics never go backwards.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from piranha.health.types import ProbeResult

#: seconds between two stats reports of one nanny
STATS_EVERY = 10.0
#: upper bounds (seconds) of the duration and lateness histograms' buckets (+Inf is implied)
BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)
#: why a check failed, as the metrics label it
REASONS = ("refused", "timeout", "unexpected_reply", "error", "program")


def failure_reason(message: str) -> str:
    """The :data:`REASONS` class of a failed probe's message (:mod:`piranha.health.probe`
    words them: ``CONNECT to ... failed: Connection refused``, ``... timed out``,
    ``READ from ... <expectation's detail>``, a program's exit)."""
    if "timed out" in message:
        return "timeout"
    if "refused" in message:
        return "refused"
    if message.startswith("READ from") and "returned error" not in message:
        return "unexpected_reply"
    if message.startswith(("CONNECT", "WRITE", "READ", "cannot open")):
        return "error"
    return "program"


def _bucket(value: float) -> int:
    for i, bound in enumerate(BUCKETS):
        if value <= bound:
            return i
    return len(BUCKETS)


@dataclass(frozen=True)
class CheckStats:
    """Cumulative counts; histograms hold per-bucket (not cumulative) counts, the last one
    for values above every bound."""

    checks: int = 0
    failures: tuple[int, ...] = (0,) * len(REASONS)
    duration: tuple[int, ...] = (0,) * (len(BUCKETS) + 1)
    duration_sum: float = 0.0
    lateness: tuple[int, ...] = (0,) * (len(BUCKETS) + 1)
    lateness_sum: float = 0.0
    #: when the last passing check ended (the nanny's monotonic clock); None = never
    last_ok: float | None = None

    def record(self, result: ProbeResult, late: float, now: float) -> CheckStats:
        """These counts with one more check that ran ``late`` seconds behind schedule."""
        late = max(0.0, late) if math.isfinite(late) else 0.0
        spent = max(0.0, result.duration)
        failures = self.failures
        if not result.ok:
            i = REASONS.index(failure_reason(result.message))
            failures = failures[:i] + (failures[i] + 1,) + failures[i + 1:]
        d, lt = _bucket(spent), _bucket(late)
        return replace(
            self, checks=self.checks + 1, failures=failures,
            duration=self.duration[:d] + (self.duration[d] + 1,) + self.duration[d + 1:],
            duration_sum=self.duration_sum + spent,
            lateness=self.lateness[:lt] + (self.lateness[lt] + 1,) + self.lateness[lt + 1:],
            lateness_sum=self.lateness_sum + late,
            last_ok=now if result.ok else self.last_ok)

    def plus(self, other: CheckStats) -> CheckStats:
        """Both counts added (a nanny's and its predecessors'); the later last success."""
        def add(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
            return tuple(x + y for x, y in zip(a, b, strict=True))
        oks = [t for t in (self.last_ok, other.last_ok) if t is not None]
        return CheckStats(self.checks + other.checks, add(self.failures, other.failures),
                          add(self.duration, other.duration),
                          self.duration_sum + other.duration_sum,
                          add(self.lateness, other.lateness),
                          self.lateness_sum + other.lateness_sum, max(oks, default=None))


@dataclass
class StatsClock:
    """When the next stats report is due."""

    every: float = STATS_EVERY
    due: float = field(default=-math.inf)

    def ready(self, now: float) -> bool:
        if now < self.due:
            return False
        self.due = now + self.every
        return True
