"""Heartbeat and failover, sans-IO: packet codecs (``packet``), the failover decision
(``machine``, vocabulary in ``events``) and the UDP transport. The pulse daemon moves the
bytes and executes the actions; tests run two directors back to back in memory with
``testkit.linkpair``."""

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
from piranha.heartbeat.machine import TRANSITIONS, FailoverMachine
from piranha.heartbeat.packet import (
    AuthCodec,
    Codec,
    Heartbeat,
    Magic,
    Mode,
    PlainCodec,
    Reason,
    Rejected,
)

__all__ = [
    "TRANSITIONS", "Action", "Activate", "Announce", "AuthCodec", "Codec", "Deactivate",
    "Event", "FailoverMachine", "Fault", "Reconfigure", "Heartbeat", "LinkDown", "LinkUp",
    "LvsdExited", "LvsdReady", "Magic", "Mode", "PeerHeard", "PlainCodec", "ProtocolError",
    "Reason", "Rejected", "ReloadLvsd", "SendHeartbeat", "Start", "DirectorState", "Step",
    "Terminate", "Tick",
]
