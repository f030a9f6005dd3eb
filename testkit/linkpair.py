"""Two directors wired back to back in memory: no sockets, no sleeping, a fake clock.

h11's ``ConnectionPair`` idea for pulse. Each :class:`Director` is a FailoverMachine plus the
codec the daemon would use; :class:`LinkPair` carries the datagrams between them over two
heartbeat paths, delivers Ticks exactly at each machine's ``next_deadline()`` and records
everything. Tests cut a path or a direction, drop packets by pattern, inject forged bytes,
crash or restart a director, and then look at states, steps, effects and the wire.
"""

from __future__ import annotations

import enum
import heapq
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

from piranha.heartbeat.events import (
    Action,
    DirectorState,
    Event,
    PeerHeard,
    SendHeartbeat,
    Start,
    Step,
    Tick,
)
from piranha.heartbeat.machine import FailoverMachine
from piranha.heartbeat.packet import AuthCodec, Codec, Heartbeat, PlainCodec, Rejected

PRIMARY, BACKUP = "primary", "backup"
#: wall clock = fake monotonic time + this (the authenticated format carries wall time)
WALL_EPOCH = 1_700_000_000.0
#: more events than this in one run() means a machine never lets time advance
MAX_EVENTS = 1_000_000


class HeartbeatPath(enum.Enum):
    """The two heartbeat paths of pulse."""

    #: primary <-> backup addresses
    PUBLIC = "public"
    #: primary_private <-> backup_private addresses
    PRIVATE = "private"


PUBLIC, PRIVATE = HeartbeatPath.PUBLIC, HeartbeatPath.PRIVATE

ADDRESSES = {
    PRIMARY: {PUBLIC: "198.51.100.1", PRIVATE: "192.0.2.1"},
    BACKUP: {PUBLIC: "198.51.100.2", PRIVATE: "192.0.2.2"},
}


@dataclass(frozen=True)
class Datagram:
    """One datagram put on a path; ``lost`` when a cut or the drop rule discarded it."""

    at: float
    sender: str
    path: HeartbeatPath
    source: str
    data: bytes
    lost: bool = False


@dataclass(frozen=True)
class Record:
    """One event a director handled and the step it produced."""

    at: float
    event: Event
    step: Step


@dataclass
class Director:
    """One simulated pulse: its machine, its codec and what happened to it."""

    name: str
    machine: FailoverMachine
    codec: Codec
    up: bool = True  # False after crash()
    #: how far this director's wall clock is off the shared one (``step_clock``)
    clock_offset: float = 0.0
    started: bool = False
    records: list[Record] = field(default_factory=list)
    rejected: list[tuple[float, Rejected]] = field(default_factory=list)

    @property
    def state(self) -> DirectorState:
        """The machine's state."""
        return self.machine.state

    def listening(self) -> bool:
        """True while this director handles events."""
        return self.up and self.started and self.machine.state is not DirectorState.TERMINATED

    def transitions(self) -> list[tuple[float, DirectorState, DirectorState, str | None]]:
        """Every state change as (time, before, after, reason)."""
        return [(r.at, r.step.before, r.step.after, r.step.reason) for r in self.records
                if r.step.before is not r.step.after]

    def effects(self) -> list[tuple[float, Action]]:
        """Every action other than sending a heartbeat, with its time."""
        return [(r.at, a) for r in self.records for a in r.step.actions
                if not isinstance(a, SendHeartbeat)]


class LinkPair:
    """A primary and a backup director joined by in-memory heartbeat paths."""

    def __init__(
        self, primary: FailoverMachine, backup: FailoverMachine, *, key: bytes | None = None,
        paths: tuple[HeartbeatPath, ...] = (PUBLIC, PRIVATE), latency: float = 0.001,
    ) -> None:
        self.key = key
        self.paths = paths
        self.latency = latency
        self.now = 0.0
        self.cuts: set[tuple[str, HeartbeatPath]] = set()
        self.drop: Callable[[Datagram], bool] | None = None
        self.wire: list[Datagram] = []
        self.nodes = {PRIMARY: self._director(PRIMARY, primary),
                      BACKUP: self._director(BACKUP, backup)}
        self._queue: list[tuple[float, int, str, Datagram]] = []
        self._seq = 0

    def __getitem__(self, name: str) -> Director:
        return self.nodes[name]

    def _director(self, name: str, machine: FailoverMachine) -> Director:
        partner = ADDRESSES[BACKUP if name == PRIMARY else PRIMARY]
        partners = [partner[p] for p in self.paths]
        codec: Codec = (PlainCodec(partners) if self.key is None
                        else AuthCodec(self.key, partners, primary=name == PRIMARY))
        return Director(name, machine, codec)

    # ---- driving ------------------------------------------------------------------------------

    def start(self, name: str) -> Step:
        """Start director ``name`` now."""
        self.nodes[name].started = True
        return self.handle(name, Start(self.now))

    def restart(self, name: str, machine: FailoverMachine) -> Step:
        """Replace director ``name`` by a fresh pulse (new machine and codec) and start it."""
        self.nodes[name] = self._director(name, machine)
        return self.start(name)

    def step_clock(self, name: str, seconds: float) -> None:
        """Step ``name``'s wall clock by ``seconds`` (NTP, a resumed VM); monotonic time,
        which drives the machines' timers, goes on evenly as on a real host."""
        self.nodes[name].clock_offset += seconds

    def crash(self, name: str) -> None:
        """Director ``name`` stops dead: it sends, hears and ticks no more."""
        self.nodes[name].up = False

    def cut(self, sender: str | None = None, path: HeartbeatPath | None = None) -> None:
        """Lose datagrams from ``sender`` (default both) on ``path`` (default all paths)."""
        self.cuts |= set(self._matching(sender, path))

    def restore(self, sender: str | None = None, path: HeartbeatPath | None = None) -> None:
        """Undo :meth:`cut` for ``sender`` on ``path`` (defaults: everything)."""
        self.cuts -= set(self._matching(sender, path))

    def _matching(
        self, sender: str | None, path: HeartbeatPath | None
    ) -> Iterator[tuple[str, HeartbeatPath]]:
        for name in (PRIMARY, BACKUP) if sender is None else (sender,):
            for p in self.paths if path is None else (path,):
                yield name, p

    def inject(self, to: str, data: bytes, source: str, path: HeartbeatPath = PUBLIC) -> None:
        """Deliver ``data`` to director ``to`` as if sent from ``source`` (a forgery)."""
        sender = BACKUP if to == PRIMARY else PRIMARY
        self._enqueue(to, Datagram(self.now, f"forged:{sender}", path, source, data))

    def handle(self, name: str, event: Event) -> Step:
        """Give ``event`` to director ``name``, record the step and execute its actions."""
        node = self.nodes[name]
        step = node.machine.handle(event)
        node.records.append(Record(self.now, event, step))
        for action in step.actions:
            if isinstance(action, SendHeartbeat):
                self._send(node, action)
        return step

    def run(self, until: float) -> None:
        """Advance the fake clock to ``until``, delivering datagrams and Ticks in time order."""
        for _ in range(MAX_EVENTS):
            t_packet = self._queue[0][0] if self._queue else math.inf
            t_tick, ticking = self._next_tick()
            if min(t_packet, t_tick) > until:
                self.now = until
                return
            if t_packet <= t_tick:
                self.now, _, to, datagram = heapq.heappop(self._queue)
                self._deliver(self.nodes[to], datagram)
            else:
                self.now = t_tick
                self.handle(ticking, Tick(t_tick))
        raise RuntimeError(f"no progress after {MAX_EVENTS} events at t={self.now}")

    def run_for(self, seconds: float) -> None:
        """Advance the fake clock by ``seconds``."""
        self.run(self.now + seconds)

    # ---- wiring -------------------------------------------------------------------------------

    def _next_tick(self) -> tuple[float, str]:
        due = [(n.machine.next_deadline(), n.name) for n in self.nodes.values() if n.listening()]
        return min(due, default=(math.inf, ""))

    def _send(self, node: Director, action: SendHeartbeat) -> None:
        if not node.up:
            return
        to = BACKUP if node.name == PRIMARY else PRIMARY
        for path in self.paths:
            data = node.codec.encode(action.magic, WALL_EPOCH + self.now + node.clock_offset)
            datagram = Datagram(self.now, node.name, path, ADDRESSES[node.name][path], data)
            lost = (node.name, path) in self.cuts or bool(self.drop and self.drop(datagram))
            if lost:
                self.wire.append(replace(datagram, lost=True))
                continue
            self.wire.append(datagram)
            self._enqueue(to, datagram)

    def _enqueue(self, to: str, datagram: Datagram) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (self.now + self.latency, self._seq, to, datagram))

    def _deliver(self, node: Director, datagram: Datagram) -> None:
        if not node.listening():
            return
        result = node.codec.decode(datagram.data, datagram.source,
                                   WALL_EPOCH + self.now + node.clock_offset)
        if isinstance(result, Heartbeat):
            self.handle(node.name, PeerHeard(self.now, result))
        else:
            node.rejected.append((self.now, result))
