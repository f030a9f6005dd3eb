"""The vocabulary of the failover machine: states, faults, events in, actions out, steps.

Every event carries ``now``, the caller's monotonic time in seconds (fractions allowed).
Events and actions are frozen dataclasses so tests compare them with ``==``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from piranha.errors import PiranhaError
from piranha.heartbeat.packet import Heartbeat, Magic


class DirectorState(enum.Enum):
    """Where a director stands in the failover protocol."""

    #: created; :class:`Start` not handled yet
    INIT = "init"
    #: not serving, and free to take over
    STANDBY = "standby"
    #: serving: lvsd runs, the VIPs are up, heartbeats say RUNNING
    ACTIVE = "active"
    #: not serving and may not take over: a local link is down or lvsd failed here
    BLOCKED = "blocked"
    #: stopped by a signal; no further events
    TERMINATED = "terminated"


class Fault(enum.Enum):
    """A local fault that keeps a director from activating (pulse's LINKFAIL/CHILDFAIL)."""

    #: a heartbeat NIC has no link (monitor_links); cleared when the links are back
    LINK = "link"
    #: lvsd exited while active; cleared by a RUNNING heartbeat from the partner
    LVSD = "lvsd"


# ---- events -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Start:
    """pulse has started (timers are armed from ``now``)."""

    now: float


@dataclass(frozen=True)
class Tick:
    """Time has passed; deliver one at or after :meth:`FailoverMachine.next_deadline`."""

    now: float


@dataclass(frozen=True)
class PeerHeard:
    """A heartbeat from the partner passed the codec's checks."""

    now: float
    heartbeat: Heartbeat


@dataclass(frozen=True)
class LinkDown:
    """monitor_links found a heartbeat NIC without link."""

    now: float
    detail: str = ""


@dataclass(frozen=True)
class LinkUp:
    """Every monitored NIC has link again."""

    now: float


@dataclass(frozen=True)
class LvsdExited:
    """lvsd failed: it exited (cold standby, Piranha) or keeps crashing (warm standby);
    ``detail`` is pulse's line (``Child process N exited ...``)."""

    now: float
    detail: str = "lvsd exited"


@dataclass(frozen=True)
class LvsdReady:
    """lvsd (re)started and programmed its table (warm standby: clears the lvsd fault)."""

    now: float


@dataclass(frozen=True)
class Reconfigure:
    """SIGHUP with a usable lvs.cf: the machine takes the new timers and heartbeat mode, and
    lvsd (where it runs) re-reads the file."""

    now: float
    keepalive: float
    deadtime: float
    authenticated: bool


@dataclass(frozen=True)
class Terminate:
    """SIGTERM or SIGINT."""

    now: float
    signum: int = 15


Event = (Start | Tick | PeerHeard | LinkDown | LinkUp | LvsdExited | LvsdReady | Reconfigure
         | Terminate)


# ---- actions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendHeartbeat:
    """Send ``magic`` to the partner over every heartbeat path (public and private)."""

    magic: Magic


@dataclass(frozen=True)
class Activate:
    """Take over: active_cmd, lvsd, sync daemon master, VIPs up and gratuitous ARPs."""


@dataclass(frozen=True)
class Deactivate:
    """Stand down: inactive_cmd, sync daemon backup, stop lvsd, VIPs down."""


@dataclass(frozen=True)
class Announce:
    """Still active while the partner claims to be: re-run active_cmd and re-send the ARPs."""


@dataclass(frozen=True)
class ReloadLvsd:
    """Forward SIGHUP to lvsd."""


Action = SendHeartbeat | Activate | Deactivate | Announce | ReloadLvsd


@dataclass(frozen=True)
class Step:
    """What one event did: state before and after, actions in order, and why."""

    before: DirectorState
    after: DirectorState
    actions: tuple[Action, ...] = ()
    reason: str | None = None


class ProtocolError(PiranhaError):
    """An event the transition table does not allow (a wiring bug in the caller)."""
