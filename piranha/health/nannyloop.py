"""Nanny's loop body: probe when due, feed the tracker, hand each transition on (no I/O here).

The probe, the clock, the report sink and the load reader are injected, so the loop runs in
tests with a fake probe and a fake clock, and in a forked nanny with the real ones
(:mod:`piranha.nanny` does the waiting and the signals). Operator signals map as in Piranha:
SIGUSR1 forces DOWN, SIGUSR2 forces UP (both freeze probing), SIGHUP returns to normal.
"""

from __future__ import annotations

import math
import signal
from collections.abc import Callable

from piranha.health.check import CheckSpec
from piranha.health.probe import Probe
from piranha.health.report import HealthReport, StatsReport
from piranha.health.stats import CheckStats, StatsClock
from piranha.health.tracker import HealthTracker, Transition

Clock = Callable[[], float]
Send = Callable[[HealthReport], None]
LoadReader = Callable[[], "float | None"]
SendStats = Callable[[StatsReport], None]


class NannyLoop:
    """One real server's checking, one step at a time."""

    def __init__(self, spec: CheckSpec, tracker: HealthTracker, probe: Probe, send: Send,
                 clock: Clock, read_load: LoadReader | None = None,
                 send_stats: SendStats | None = None) -> None:
        self.spec, self.tracker, self.probe = spec, tracker, probe
        self.send, self.clock, self.read_load = send, clock, read_load
        self.send_stats = send_stats
        self.target = spec.target
        self.first = True
        self.stats = CheckStats()
        self.stats_clock = StatsClock()

    def step(self) -> float:
        """Probe if one is due; seconds until the next is due (inf while frozen)."""
        tracker = self.tracker
        start = self.clock()
        if tracker.probe_due(start):
            due = tracker.next_probe_at()
            result = self.probe.check(self.target, self.spec.timeout)
            end = self.clock()
            self.stats = self.stats.record(result, start - due, end)
            transition = tracker.observe(result, end)
            if transition is None and self.first:
                # the first verdict is always told: it confirms (or not) an adopted entry
                self.send(HealthReport(self.spec.dest, tracker.state, tracker.entry_weight,
                                       result.message, self.clock()))
            self.first = False
            self._emit(transition)
            if tracker.load_due and self.read_load is not None:
                self._emit(tracker.feed_load(self.read_load(), self.clock()))
            if self.send_stats is not None and self.stats_clock.ready(end):
                self.send_stats(StatsReport(self.spec.dest, self.stats, end))
        if tracker.mode.value != "normal":
            return math.inf
        return max(0.0, tracker.next_probe_at() - self.clock())

    def on_signal(self, signum: int) -> None:
        """SIGUSR1 = force DOWN, SIGUSR2 = force UP, SIGHUP = back to normal probing."""
        now = self.clock()
        if signum == signal.SIGUSR1:
            self._emit(self.tracker.force_down(now))
        elif signum == signal.SIGUSR2:
            self._emit(self.tracker.force_up(now))
        elif signum == signal.SIGHUP:
            self.tracker.resume(now)

    def _emit(self, transition: Transition | None) -> None:
        if transition is not None:
            self.send(HealthReport.from_transition(self.spec.dest, transition))
