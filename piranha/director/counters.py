"""What pulse counts for its metrics: heartbeats, rejections by reason, transitions, lvsd's
unexpected exits, and when the partner was last heard. Only the loop changes these."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from piranha.heartbeat.events import DirectorState
from piranha.heartbeat.packet import Reason


@dataclass
class PulseCounters:
    """Running totals since pulse started."""

    started: float = 0.0
    heartbeats_sent: int = 0
    heartbeats_received: int = 0
    rejected: Counter[Reason] = field(default_factory=Counter)
    transitions: Counter[DirectorState] = field(default_factory=Counter)
    lvsd_exits: int = 0
    #: wall-clock time of the last valid heartbeat from the partner (0: never)
    partner_seen: float = 0.0
    generation: int = 0

    def sent(self) -> None:
        self.heartbeats_sent += 1
        self.generation += 1

    def heard(self, wall: float) -> None:
        self.heartbeats_received += 1
        self.partner_seen = wall
        self.generation += 1

    def reject(self, reason: Reason) -> None:
        self.rejected[reason] += 1
        self.generation += 1

    def entered(self, state: DirectorState) -> None:
        self.transitions[state] += 1
        self.generation += 1

    def lvsd_exited(self) -> None:
        self.lvsd_exits += 1
        self.generation += 1
