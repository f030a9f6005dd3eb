"""The failover decision of pulse (LVS mode) as a pure state machine: events in, actions out.

Rules of this module:

* Nothing here does I/O or reads a clock. Every event carries ``now`` (monotonic seconds, never
  decreasing); :meth:`FailoverMachine.next_deadline` says when the caller must deliver the next
  :class:`Tick`. Heartbeats arrive decoded and verified (``packet.py``); deliver the ones
  already received before a Tick, as pulse's select loop does.
* :data:`TRANSITIONS` lists, for every (state, event type), the states the machine may move
  to. ``handle`` refuses events the table does not list and raises if a handler ever picks
  a state outside it, so the table is enforced, not just written down.
* Every ``handle`` returns a :class:`Step`: state before and after, the actions to execute in
  order, and the reason (one log line, Piranha's wording where pulse has one; None when
  nothing worth logging happened).

The decision table (reference section 2.4). BLOCKED = pulse's LINKFAIL/CHILDFAIL flags.

==========================  ===========================  =====================================
event                       condition                    result
==========================  ===========================  =====================================
Start                       force_active                 ACTIVE, Activate
Start                       otherwise                    STANDBY
partner RUNNING (or STOPME) ACTIVE backup                send RUNNING once more, Deactivate,
                                                         STANDBY (master wins ties)
partner RUNNING (or STOPME) ACTIVE master                Announce (re-ARP), stay ACTIVE
partner RUNNING (or STOPME) BLOCKED                      clear the lvsd fault
partner RUNNING (or STOPME) STANDBY                      nothing: no automatic fail-back
partner STOPPED             STANDBY master               ACTIVE, Activate
partner STOPPED             STANDBY backup; the primary  ACTIVE, Activate
                            fell from RUNNING, or stayed
                            idle for deadtime after we
                            said STOPPED
partner STOPPED             STANDBY backup, otherwise    wait: the primary activates when it
                                                         hears our STOPPED
partner STOPPED, HOLD/HELD  ACTIVE or BLOCKED            nothing
any heartbeat               --                           partner deadline = now + deadtime
Tick past partner deadline  STANDBY                      ACTIVE, Activate ("partner dead")
Tick past partner deadline  otherwise                    nothing; forget the partner's state
Tick past send time         backup_active                SendHeartbeat(RUNNING if ACTIVE else
                                                         STOPPED), next one in keepalive
LinkDown                    ACTIVE                       Deactivate, BLOCKED (link)
LinkDown                    STANDBY or BLOCKED           BLOCKED (link)
LinkUp                      link fault                   clear it (STANDBY if no other fault)
LvsdExited                  ACTIVE                       Deactivate, BLOCKED (lvsd)
LvsdExited                  STANDBY, warm standby        BLOCKED (lvsd): no table to serve
LvsdExited                  otherwise                    nothing (not our child)
LvsdReady                   lvsd fault, warm standby     clear it (STANDBY if no other fault)
Reconfigure                 any but INIT/TERMINATED      new keepalive, deadtime and heartbeat
                                                         mode; ReloadLvsd where lvsd runs
                                                         (ACTIVE, or warm standby)
Terminate                   any                          Deactivate if ACTIVE, one last STOPPED
                                                         heartbeat, TERMINATED
==========================  ===========================  =====================================

Where this differs from pulse 0.8.6, and why:

* A STANDBY backup does not take over from the primary's first STOPPED (see the rows above):
  in 0.8.6 a backup started just after the primary does, and stays active for good.
* A backup's first partner deadline is 2 x deadtime after Start (the master's: deadtime), so
  a primary started up to deadtime later is heard before the backup gives up on it.
* STOPME in LVS mode counts as RUNNING; 0.8.6 drops ACTIVE on an active master without
  stopping lvsd or the VIPs.
* Terminate sends a last STOPPED so the partner takes over at once, not after deadtime.
* SIGHUP on a standby director does nothing (0.8.6 signals its own process group).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from piranha.heartbeat.events import (
    Action,
    Activate,
    Announce,
    Deactivate,
    DirectorState,
    Event,
    Fault,
    LinkDown,
    LinkUp,
    LvsdExited,
    LvsdReady,
    PeerHeard,
    ProtocolError,
    Reconfigure,
    ReloadLvsd,
    SendHeartbeat,
    Start,
    Step,
    Terminate,
    Tick,
)
from piranha.heartbeat.packet import Magic


def _to(*states: DirectorState) -> frozenset[DirectorState]:
    return frozenset(states)


_S, _A, _B = DirectorState.STANDBY, DirectorState.ACTIVE, DirectorState.BLOCKED
_T = DirectorState.TERMINATED

#: (state, event type) -> states the event may lead to; anything missing is refused
TRANSITIONS: dict[tuple[DirectorState, type], frozenset[DirectorState]] = {
    (DirectorState.INIT, Start): _to(_S, _A),  # force_active starts ACTIVE
    (DirectorState.INIT, Terminate): _to(_T),
    (_S, Tick): _to(_S, _A),  # partner dead: take over
    (_S, PeerHeard): _to(_S, _A),  # partner STOPPED: take over (the backup may wait)
    (_S, LinkDown): _to(_B),
    (_S, LinkUp): _to(_S),
    (_S, LvsdExited): _to(_S, _B),  # cold: not our child; warm: cannot take over
    (_S, LvsdReady): _to(_S),
    (_S, Reconfigure): _to(_S),
    (_S, Terminate): _to(_T),
    (_A, Tick): _to(_A),  # heartbeat only; partner dead changes nothing
    (_A, PeerHeard): _to(_A, _S),  # partner RUNNING: backup yields, master re-ARPs
    (_A, LinkDown): _to(_B),
    (_A, LinkUp): _to(_A),
    (_A, LvsdExited): _to(_B),
    (_A, LvsdReady): _to(_A),
    (_A, Reconfigure): _to(_A),
    (_A, Terminate): _to(_T),
    (_B, Tick): _to(_B),
    (_B, PeerHeard): _to(_B, _S),  # partner RUNNING clears the lvsd fault
    (_B, LinkDown): _to(_B),
    (_B, LinkUp): _to(_B, _S),  # clears the link fault
    (_B, LvsdExited): _to(_B),
    (_B, LvsdReady): _to(_B, _S),  # warm standby: clears the lvsd fault
    (_B, Reconfigure): _to(_B),
    (_B, Terminate): _to(_T),
}


@dataclass
class _Peer:
    """What we know of the partner: its last RUNNING/STOPPED and since when it is idle."""

    running: bool | None = None  # None: unknown (never heard, or declared dead)
    idle_since: float | None = None  # start of the current run of STOPPED heartbeats
    dropped: bool = False  # that run followed a RUNNING: the partner fell out of ACTIVE


@dataclass
class _Timers:
    send_at: float = math.inf
    dead_at: float = math.inf
    idle_announced: float | None = None  # first STOPPED we sent in the current STANDBY


@dataclass
class FailoverMachine:
    """One director's failover decisions; feed it events, execute the actions it returns."""

    keepalive: float
    deadtime: float
    master: bool
    backup_active: bool = True
    force_active: bool = False
    authenticated: bool = False
    #: lvsd runs on the standby too: its failure blocks takeover, its recovery clears that
    warm_standby: bool = False
    state: DirectorState = field(default=DirectorState.INIT, init=False)
    faults: frozenset[Fault] = field(default=frozenset(), init=False)
    _peer: _Peer = field(default_factory=_Peer, init=False, repr=False)
    _timers: _Timers = field(default_factory=_Timers, init=False, repr=False)
    _now: float = field(default=-math.inf, init=False, repr=False)

    def __post_init__(self) -> None:
        if not (self.keepalive > 0 and self.deadtime > 0):
            raise ValueError("keepalive and deadtime must be positive")
        if not self.master and not self.backup_active:
            raise ValueError("a backup director with backup_active = 0 has nothing to do")

    @property
    def active(self) -> bool:
        """True while this director serves the VIPs."""
        return self.state is DirectorState.ACTIVE

    def next_deadline(self) -> float:
        """The time by which the caller must deliver a Tick (inf when no timer runs)."""
        if self.state in (DirectorState.INIT, DirectorState.TERMINATED):
            return math.inf
        return min(self._timers.send_at, self._timers.dead_at)

    def handle(self, event: Event) -> Step:
        """Apply ``event``; return the state change, the actions to run and the reason."""
        allowed = TRANSITIONS.get((self.state, type(event)))
        if allowed is None:
            raise ProtocolError(f"{type(event).__name__} not allowed in state {self.state.name}")
        if event.now < self._now:
            raise ProtocolError(f"time went backwards: {event.now} after {self._now}")
        self._now = event.now
        before = self.state
        step = self._dispatch(event)
        if step.after not in allowed:
            raise ProtocolError(f"{before.name} -> {step.after.name} on {type(event).__name__}"
                                " is not in the transition table")
        self.state = step.after
        if step.after is not DirectorState.STANDBY:
            self._timers.idle_announced = None
        return step

    def _dispatch(self, event: Event) -> Step:
        match event:
            case Start():
                return self._start(event)
            case Tick():
                return self._tick(event)
            case PeerHeard():
                return self._heard(event)
            case LinkDown():
                return self._link_down(event)
            case LinkUp():
                return self._link_up()
            case LvsdExited():
                return self._lvsd_exited(event)
            case LvsdReady():
                return self._lvsd_ready()
            case Reconfigure():
                return self._reconfigure(event)
            case Terminate():
                return self._terminate(event)

    # ---- handlers: each returns the Step; only handle() assigns self.state ------------------

    def _start(self, event: Start) -> Step:
        # Why two deadtimes for a backup: a primary started up to deadtime later must get its
        # own deadtime to be heard, or a backup booting first takes over for good.
        patience = self.deadtime if self.master else 2 * self.deadtime
        self._timers.dead_at = event.now + patience
        if self.backup_active:
            self._timers.send_at = event.now + self.keepalive
        role = "master" if self.master else "backup"
        if self.force_active:
            return self._step(_A, (Activate(),), "Forced active on startup: activating lvs")
        return self._step(_S, (), f"started as {role}: standby")

    def _tick(self, event: Tick) -> Step:
        step = self._step(self.state)
        if event.now >= self._timers.dead_at:
            step = self._partner_dead(event.now)
        if event.now >= self._timers.send_at:
            magic = Magic.RUNNING if step.after is _A else Magic.STOPPED
            self._timers.send_at = event.now + self.keepalive
            if step.after is _S and self._timers.idle_announced is None:
                self._timers.idle_announced = event.now
            step = Step(step.before, step.after, (*step.actions, SendHeartbeat(magic)), step.reason)
        return step

    def _partner_dead(self, now: float) -> Step:
        self._timers.dead_at = now + self.deadtime
        self._peer = _Peer()
        if self.state is _S:
            return self._step(_A, (Activate(),), "partner dead: activating lvs")
        return self._step(self.state)

    def _heard(self, event: PeerHeard) -> Step:
        if self.authenticated and not event.heartbeat.authenticated:
            raise ProtocolError("unauthenticated heartbeat given to an authenticated machine")
        self._timers.dead_at = event.now + self.deadtime
        magic = event.heartbeat.magic
        if magic in (Magic.RUNNING, Magic.FOS_STOPME):
            return self._partner_running()
        if magic is Magic.STOPPED:
            return self._partner_stopped(event.now)
        if magic in (Magic.HOLD, Magic.HELD):
            return self._step(self.state)
        raise ProtocolError(f"{magic.name} heartbeat given to an LVS-mode machine")

    def _partner_running(self) -> Step:
        self._peer = _Peer(running=True)
        if self.state is _A and not self.master:
            return self._step(_S, (SendHeartbeat(Magic.RUNNING), Deactivate()),
                              "partner active: deactivating LVS")
        if self.state is _A:
            return self._step(_A, (Announce(),), "partner active: resending arps")
        if Fault.LVSD in self.faults:
            return self._clear(Fault.LVSD, "partner active: lvsd failure cleared")
        return self._step(self.state)

    def _partner_stopped(self, now: float) -> Step:
        peer = self._peer
        if peer.running is not False:
            self._peer = peer = _Peer(running=False, idle_since=now, dropped=bool(peer.running))
        if self.state is not _S:
            return self._step(self.state)
        if self.master:
            return self._step(_A, (Activate(),), "backup inactive: activating lvs")
        wait_until = self._primary_wait_until(peer)
        if now >= wait_until:
            return self._step(_A, (Activate(),), "primary inactive: activating lvs")
        if peer.idle_since == now:
            return self._step(_S, (), "primary inactive: waiting for it to activate "
                                      "(it does when it hears our STOPPED heartbeat)")
        return self._step(_S)

    def _primary_wait_until(self, peer: _Peer) -> float:
        # Why: a STOPPED primary that is merely idle activates as soon as it hears our STOPPED;
        # taking over at once (as pulse 0.8.6 does) leaves the backup active for good when it
        # starts just after the primary. Only a primary that fell out of ACTIVE, or that stayed
        # idle for a deadtime after we announced ourselves idle, is really unable to serve.
        if peer.dropped:
            return -math.inf
        announced = self._timers.idle_announced
        if announced is None or peer.idle_since is None:
            return math.inf
        return max(announced, peer.idle_since) + self.deadtime

    def _link_down(self, event: LinkDown) -> Step:
        if Fault.LINK in self.faults:
            return self._step(self.state)
        self.faults |= {Fault.LINK}
        reason = "Local NIC link failure: Pulse disabled"
        if event.detail:
            reason = f"{event.detail}; {reason}"
        if self.state is _A:
            reason += "; local link failure: deactivating LVS"
            return self._step(_B, (Deactivate(),), reason)
        return self._step(_B, (), reason)

    def _link_up(self) -> Step:
        if Fault.LINK not in self.faults:
            return self._step(self.state)
        return self._clear(Fault.LINK, "Local NIC link(s) restored: Pulse enabled")

    def _lvsd_exited(self, event: LvsdExited) -> Step:
        if self.state is _S and self.warm_standby:
            self.faults |= {Fault.LVSD}
            return self._step(_B, (), f"{event.detail}: lvsd is failing, this director "
                                      "cannot take over until it recovers")
        if self.state is not _A:
            return self._step(self.state, (), f"{event.detail}: not active, ignored")
        self.faults |= {Fault.LVSD}
        return self._step(_B, (Deactivate(),), f"{event.detail}: deactivating LVS, staying "
                                               "inactive until the partner is active")

    def _lvsd_ready(self) -> Step:
        if not self.warm_standby or Fault.LVSD not in self.faults:
            return self._step(self.state)
        return self._clear(Fault.LVSD, "lvsd recovered: lvsd failure cleared")

    def _reconfigure(self, event: Reconfigure) -> Step:
        if not (event.keepalive > 0 and event.deadtime > 0):
            raise ProtocolError("keepalive and deadtime must be positive")
        self.keepalive, self.deadtime = event.keepalive, event.deadtime
        self.authenticated = event.authenticated
        # timers already set follow a shorter period at once, a longer one from their next turn
        self._timers.send_at = min(self._timers.send_at, event.now + self.keepalive)
        if self._timers.dead_at != math.inf:
            self._timers.dead_at = min(self._timers.dead_at, event.now + self.deadtime)
        reason = (f"reload: keepalive {self.keepalive:g}s, deadtime {self.deadtime:g}s, "
                  f"heartbeats {'authenticated' if self.authenticated else 'plain'}")
        if self.state is _A or self.warm_standby:
            return self._step(self.state, (ReloadLvsd(),), f"{reason}; lvsd re-reads the "
                                                           "configuration")
        return self._step(self.state, (), f"{reason}; lvsd is not running")

    def _terminate(self, event: Terminate) -> Step:
        # Why the last STOPPED: the partner then takes over at once instead of after deadtime.
        actions: tuple[Action, ...] = (Deactivate(),) if self.state is _A else ()
        if self.backup_active and self.state is not DirectorState.INIT:
            actions += (SendHeartbeat(Magic.STOPPED),)
        self._timers = _Timers()
        return self._step(_T, actions, f"Terminating due to signal {event.signum}")

    # ---- helpers ----------------------------------------------------------------------------

    def _clear(self, fault: Fault, reason: str) -> Step:
        self.faults -= {fault}
        return self._step(_B if self.faults else _S, (), reason)

    def _step(self, after: DirectorState, actions: tuple[Action, ...] = (),
              reason: str | None = None) -> Step:
        return Step(self.state, after, actions, reason)
