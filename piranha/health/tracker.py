"""The up/down decision for one real server (pure: results and ``now`` in, transitions out).

Rules, from nanny.c ``run``/``checkState``/``adjustWeight`` (0.8.6):

* ``count_thresh = floor(reentry / interval)``, computed on the decimal values (reentry 1,
  interval 0.3 gives 3). The good-probe counter starts *at* the threshold, so the first good
  probe admits a new server at once. Any failed probe resets it to 0, so after a failure
  ``count_thresh`` consecutive good probes are needed (one when it is 0 or 1).
* One failed probe takes an UP server DOWN.
* UP admits the server with ``initial_weight``; then, every ``adjust_period`` good probes
  (about 20 s), the weight doubles up to the configured one (slow start) and, at full weight
  with a load monitor, follows the load (:mod:`piranha.health.weights`).
* DOWN means "entry absent", or "entry kept with weight 0" when ``quiesce_server`` is set and
  the entry exists. The tracker only says which; applying it is lvsd's job.
* SIGUSR1 (:meth:`HealthTracker.force_down`) and SIGUSR2 (:meth:`force_up`) freeze the state:
  no probes until SIGHUP (:meth:`resume`), which resets the counter to the threshold and asks
  for a probe now.

Deliberate differences from 0.8.6:

* ``reentry = 0`` means 0 (one good probe re-admits); nanny turned ``-a 0`` into 180.
* Forcing UP sets the weight to the configured one, and slow start continues from there;
  0.8.6 left its internal weight at 0, so after SIGUSR2 + SIGHUP it edited the server to
  weight 0 and kept it there.
* Forcing DOWN follows ``quiesce_server`` like a failed probe (0.8.6 deleted the entry even
  when quiescing, then failed its next ``ipvsadm -e`` on the missing entry and exited).
* Each probe cycle yields at most one transition: admission and a same-cycle weight step are
  merged into the final weight (0.8.6 ran two ipvsadm commands back to back).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from piranha.health.types import ProbeResult, ServerState
from piranha.health.weights import (
    DEFAULT_SCALE,
    MAX_WEIGHT,
    adjust_period,
    initial_weight,
    load_weight,
    slow_start,
    whole_ratio,
)
from piranha.model import RealServer, VirtualServer


class Mode(enum.Enum):
    """Whether probe results decide, or an operator's signal froze the state."""

    #: probing; results decide
    NORMAL = "normal"
    #: SIGUSR1: held DOWN, no probes until SIGHUP
    FORCED_DOWN = "forced down"
    #: SIGUSR2: held UP at full weight, no probes until SIGHUP
    FORCED_UP = "forced up"


@dataclass(frozen=True)
class Transition:
    """What changed after an event: state and/or the weight the IPVS entry should have."""

    old: ServerState
    new: ServerState
    #: the weight the entry should have; None = the entry should be absent
    weight: int | None
    reason: str
    at: float

    @property
    def state_changed(self) -> bool:
        """True for UP<->DOWN; False for a weight change of an UP server."""
        return self.old is not self.new


class HealthTracker:
    """Turns probe results into UP/DOWN transitions and weights for one real server."""

    def __init__(self, *, weight: int, interval: float, reentry: float,
                 quiesce: bool = False, load_feedback: bool = False,
                 scale: int = DEFAULT_SCALE) -> None:
        _check_params(weight, interval, reentry, scale)
        self.weight, self.interval, self.reentry = weight, interval, reentry
        self.quiesce, self.load_feedback, self.scale = quiesce, load_feedback, scale
        self.count_thresh = whole_ratio(reentry, interval)
        self.period = adjust_period(interval)
        self._state = ServerState.DOWN
        self._mode = Mode.NORMAL
        self._count = self.count_thresh
        self._last_weight = 0
        self._present = False  # does the IPVS entry exist (matters only for quiesce)
        self._next_probe = -math.inf
        self._load_due = False

    @classmethod
    def for_server(cls, vs: VirtualServer, rs: RealServer) -> HealthTracker:
        """A tracker with the settings lvsd gives the nanny of ``rs`` in ``vs``."""
        feedback = vs.load_monitor is not None and vs.load_monitor != "none"
        return cls(weight=rs.weight, interval=vs.timeout, reentry=vs.reentry,
                   quiesce=vs.quiesce_server, load_feedback=feedback)

    @property
    def state(self) -> ServerState:
        """UP or DOWN."""
        return self._state

    @property
    def mode(self) -> Mode:
        """NORMAL, or the forced mode an operator's signal set."""
        return self._mode

    @property
    def entry_weight(self) -> int | None:
        """The weight the IPVS entry should have now; None = the entry should be absent."""
        if self._state is ServerState.UP:
            return self._last_weight
        return 0 if self.quiesce and self._present else None

    @property
    def load_due(self) -> bool:
        """True when the last probe cycle wants a load reading (see :meth:`feed_load`)."""
        return self._load_due

    def probe_due(self, now: float) -> bool:
        """Whether nanny should probe at ``now`` (never while a forced mode holds)."""
        return self._mode is Mode.NORMAL and now >= self._next_probe

    def next_probe_at(self) -> float:
        """When the next probe is due (``-inf`` = at once); meaningless while frozen."""
        return self._next_probe

    def observe(self, result: ProbeResult, now: float) -> Transition | None:
        """Feed one probe result; the transition it causes, if any."""
        if self._mode is not Mode.NORMAL:
            return None  # a probe that was running when the operator froze the state
        before = (self._state, self.entry_weight)
        self._next_probe = now + self.interval
        self._load_due = False
        reasons = [self._count_and_switch(result)]
        if self._state is ServerState.UP and self._count % self.period == 0:
            reasons.append(self._adjust())
        return self._transition(before, reasons, now)

    def feed_load(self, load: float | None, now: float) -> Transition | None:
        """Apply a load reading asked for by :attr:`load_due` (None = could not read it)."""
        if not self._load_due:
            return None
        self._load_due = False
        before = (self._state, self.entry_weight)
        old, self._last_weight = self._last_weight, load_weight(
            self._last_weight, self.weight, load, self.scale)
        reason = f"load {load:.2f}: weight {old} -> {self._last_weight}" if load is not None else ""
        return self._transition(before, [reason], now)

    def force_down(self, now: float) -> Transition | None:
        """SIGUSR1: take the server out and stop probing until :meth:`resume`."""
        self._mode, self._load_due = Mode.FORCED_DOWN, False
        before = (self._state, self.entry_weight)
        self._state = ServerState.DOWN
        return self._transition(before, ["forced down by operator (SIGUSR1)"], now)

    def force_up(self, now: float) -> Transition | None:
        """SIGUSR2: put the server in at its full weight and stop probing until :meth:`resume`."""
        self._mode, self._load_due = Mode.FORCED_UP, False
        before = (self._state, self.entry_weight)
        if self._state is ServerState.DOWN:
            self._state, self._last_weight, self._present = ServerState.UP, self.weight, True
        return self._transition(before, ["forced up by operator (SIGUSR2)"], now)

    def adopt(self, weight: int | None) -> None:
        """Start from the entry a restarted lvsd found in the kernel with ``weight``.

        A positive weight (or 0 for a server configured with weight 0) is an UP server at that
        weight, counter at the threshold: no slow start again, and the next failed probe takes
        it out as usual. 0 with ``quiesce`` is a quiesced DOWN server whose entry exists.
        Anything else (None, or a weight 0 nobody asked for) starts fresh: DOWN, absent.
        """
        if weight is None:
            return
        if weight > 0 or self.weight == 0:
            self._state, self._last_weight, self._present = ServerState.UP, weight, True
            self._count = self.count_thresh
        elif self.quiesce:
            self._present = True

    def resume(self, now: float) -> None:
        """SIGHUP: back to normal probing, counter at the threshold, next probe at once."""
        self._mode = Mode.NORMAL
        self._count = self.count_thresh
        self._next_probe = now

    def _count_and_switch(self, result: ProbeResult) -> str:
        """Count the result and switch UP/DOWN as nanny did; the reason if it switched."""
        if not result.ok:
            self._count = 0
            if self._state is ServerState.UP:
                self._state = ServerState.DOWN
                return result.message
            return ""
        self._count += 1
        if self._state is ServerState.DOWN and self._count >= self.count_thresh:
            self._state, self._present = ServerState.UP, True
            self._last_weight = initial_weight(self.weight)
            return result.message
        return ""

    def _adjust(self) -> str:
        """One weight step of an UP server: slow start, or ask for a load reading."""
        if self._last_weight < self.weight:
            old, self._last_weight = self._last_weight, slow_start(self._last_weight,
                                                                   self.weight)
            return f"slow start: weight {old} -> {self._last_weight}"
        self._load_due = self.load_feedback
        return ""

    def _transition(self, before: tuple[ServerState, int | None], reasons: list[str],
                    now: float) -> Transition | None:
        """A transition if state or entry weight differ from ``before``, else None."""
        after = (self._state, self.entry_weight)
        if after == before:
            return None
        reason = "; ".join(r for r in reasons if r)
        return Transition(before[0], after[0], after[1], reason, now)


def _check_params(weight: int, interval: float, reentry: float, scale: int) -> None:
    if not 0 <= weight <= MAX_WEIGHT:
        raise ValueError(f"weight must be 0..{MAX_WEIGHT}, got {weight}")
    if not (math.isfinite(interval) and interval > 0):
        raise ValueError(f"interval must be a positive number of seconds, got {interval}")
    if not (math.isfinite(reentry) and reentry >= 0):
        raise ValueError(f"reentry must be 0 or more seconds, got {reentry}")
    if scale < 1:
        raise ValueError(f"scale must be 1 or more, got {scale}")
