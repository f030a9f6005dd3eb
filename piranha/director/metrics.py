"""pulse's Prometheus metrics (lvs.cf extension ``pulse_metrics = [ADDRESS:]PORT``).

The director's state uses keepalived's VRRP integers, so alert rules written for keepalived's
exporters translate: 0 init (and stopped), 1 backup (standby), 2 master (active), 3 fault
(blocked: a link down or lvsd failing here).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from piranha.heartbeat.events import DirectorState
from piranha.heartbeat.packet import Reason
from piranha.metrics import Endpoint, Family, labels

if TYPE_CHECKING:
    from piranha.director.loop import PulseLoop

#: DirectorState -> keepalived's state number
KEEPALIVED_STATE = {DirectorState.INIT: 0, DirectorState.STANDBY: 1, DirectorState.ACTIVE: 2,
                    DirectorState.BLOCKED: 3, DirectorState.TERMINATED: 0}


@dataclass(frozen=True)
class Sample:
    """What one scrape of pulse shows (copies)."""

    state: DirectorState
    master: bool
    started: float
    heartbeats_sent: int
    heartbeats_received: int
    rejected: dict[Reason, int]
    transitions: dict[DirectorState, int]
    lvsd_exits: int
    partner_seen: float
    lvsd_up: bool
    partner_configured: bool


def sample_of(loop: PulseLoop) -> Sample:
    c = loop.counters
    return Sample(loop.machine.state, loop.machine.master, c.started, c.heartbeats_sent,
                  c.heartbeats_received, dict(c.rejected), dict(c.transitions), c.lvsd_exits,
                  c.partner_seen, loop.lvsd.pid is not None,
                  loop.machine.backup_active)


def endpoint() -> Endpoint[Sample]:
    """pulse's /metrics."""
    return Endpoint(sample_of, families)


def families(s: Sample) -> Iterator[Family]:
    def one(name: str, kind: str, doc: str, value: float) -> Family:
        fam = Family(name, kind, doc)
        fam.add("", value)
        return fam

    yield one("piranha_pulse_state", "gauge", "Director state as keepalived numbers it: "
              "0 init, 1 backup, 2 master, 3 fault", KEEPALIVED_STATE[s.state])
    yield one("piranha_pulse_primary", "gauge", "1 on the primary director, 0 on the backup",
              1 if s.master else 0)
    yield one("piranha_pulse_start_time_seconds", "gauge", "When pulse started (Unix time)",
              s.started)
    yield one("piranha_pulse_heartbeats_sent", "counter", "Heartbeats sent to the partner",
              s.heartbeats_sent)
    yield one("piranha_pulse_heartbeats_received", "counter",
              "Valid heartbeats received from the partner", s.heartbeats_received)
    rejected = Family("piranha_pulse_heartbeats_rejected", "counter",
                      "Datagrams on the heartbeat port not taken as heartbeats, by reason")
    rejected.extend((labels(("reason",), (r.name.lower(),)), s.rejected.get(r, 0))
                    for r in Reason)
    yield rejected
    transitions = Family("piranha_pulse_transitions", "counter",
                         "Changes of the director's state, by the state entered")
    transitions.extend((labels(("state",), (st.value,)), s.transitions.get(st, 0))
                       for st in DirectorState)
    yield transitions
    yield one("piranha_pulse_partner_last_seen_timestamp_seconds", "gauge",
              "When the partner's last valid heartbeat arrived (Unix time; 0: never)",
              s.partner_seen)
    yield one("piranha_pulse_partner_configured", "gauge", "1 when lvs.cf names a backup "
              "director that heartbeats are exchanged with", 1 if s.partner_configured else 0)
    yield one("piranha_pulse_lvsd_up", "gauge", "1 while pulse runs an lvsd",
              1 if s.lvsd_up else 0)
    yield one("piranha_pulse_lvsd_exits", "counter", "Unexpected exits of lvsd (it is "
              "restarted)", s.lvsd_exits)
