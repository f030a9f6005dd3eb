"""Values shared by the probes, the tracker and the report codec (no I/O here)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from piranha.text import hostport

IPAddress = IPv4Address | IPv6Address


class ServerState(enum.Enum):
    """Health of one real server as nanny sees it."""

    #: in rotation: the IPVS entry exists with a non-zero weight (or the configured 0)
    UP = "UP"
    #: out of rotation: the entry is absent, or present with weight 0 when quiescing
    DOWN = "DOWN"


@dataclass(frozen=True)
class Target:
    """Where a probe goes: the real server's address and the port actually checked (rport)."""

    addr: IPAddress
    port: int

    def __str__(self) -> str:
        return hostport(self.addr, self.port)


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of one probe: pass or fail, why, and how long it took (seconds)."""

    ok: bool
    message: str
    duration: float = 0.0
