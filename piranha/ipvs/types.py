"""Domain types of the IPVS table: keys, services, destinations, stats, daemons, operations.

These are what the rest of piranha speaks. They never carry netlink dicts; only
``piranha.ipvs.netlink`` converts them to and from wire messages. Config fields compare with
``==``; live counters (``stats``, connection counts) are excluded from comparison so a plan
compares what was configured, not what traffic did.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address

IPAddress = IPv4Address | IPv6Address


class Family(enum.IntEnum):
    """Address family (Linux AF_* values)."""

    INET = 2
    INET6 = 10


class Proto(enum.IntEnum):
    """Transport protocol of an address-keyed service (IPPROTO_* values)."""

    TCP = 6
    UDP = 17
    SCTP = 132


class Forward(enum.IntEnum):
    """Forwarding method of a destination (IP_VS_CONN_F_* values)."""

    MASQ = 0
    LOCAL = 1
    TUNNEL = 2
    ROUTE = 3


class TunType(enum.IntEnum):
    """Encapsulation of a tunnel destination."""

    IPIP = 0
    GUE = 1
    GRE = 2


class TunFlags(enum.IntFlag):
    """Tunnel checksum flags (0 = nocsum)."""

    NOCSUM = 0
    CSUM = 1
    REMCSUM = 2


class SvcFlags(enum.IntFlag):
    """Service flags (IP_VS_SVC_F_*); HASHED is kernel-internal and never set by us."""

    NONE = 0
    PERSISTENT = 0x1
    HASHED = 0x2
    ONEPACKET = 0x4
    SCHED1 = 0x8
    SCHED2 = 0x10
    SCHED3 = 0x20


class DaemonState(enum.IntEnum):
    """Sync daemon role."""

    MASTER = 1
    BACKUP = 2


def family_of(addr: IPAddress) -> Family:
    """The family of an address."""
    return Family.INET if addr.version == 4 else Family.INET6


@dataclass(frozen=True, order=False)
class ServiceKey:
    """What identifies a virtual service: protocol+address+port, or a firewall mark."""

    family: Family = Family.INET
    protocol: Proto = Proto.TCP
    addr: IPAddress | None = None
    port: int = 0
    fwmark: int = 0

    @classmethod
    def inet(cls, protocol: Proto, addr: IPAddress, port: int) -> ServiceKey:
        """An address-keyed service."""
        return cls(family_of(addr), protocol, addr, port, 0)

    @classmethod
    def mark(cls, fwmark: int, family: Family = Family.INET) -> ServiceKey:
        """A firewall-mark service (the kernel keeps TCP as its protocol)."""
        return cls(family, Proto.TCP, None, 0, fwmark)


@dataclass(frozen=True)
class Stats:
    """Counters and rates of a service or destination (64-bit)."""

    conns: int = 0
    inpkts: int = 0
    outpkts: int = 0
    inbytes: int = 0
    outbytes: int = 0
    cps: int = 0
    inpps: int = 0
    outpps: int = 0
    inbps: int = 0
    outbps: int = 0


@dataclass(frozen=True)
class Service:
    """A virtual service as configured; ``timeout`` is the persistence timeout in seconds."""

    key: ServiceKey
    scheduler: str = "wlc"
    flags: SvcFlags = SvcFlags.NONE
    timeout: int = 0
    netmask: int = 32  # prefix length (128 for IPv6 by default)
    pe_name: str = ""
    stats: Stats = field(default=Stats(), compare=False)

    @property
    def persistent(self) -> bool:
        return bool(self.flags & SvcFlags.PERSISTENT)


@dataclass(frozen=True)
class DestKey:
    """What identifies a destination inside its service."""

    addr: IPAddress
    port: int


@dataclass(frozen=True)
class Dest:
    """A real server entry of a service."""

    addr: IPAddress
    port: int
    forward: Forward = Forward.ROUTE
    weight: int = 1
    u_threshold: int = 0
    l_threshold: int = 0
    tun_type: TunType = TunType.IPIP
    tun_port: int = 0
    tun_flags: TunFlags = TunFlags.NOCSUM
    active_conns: int = field(default=0, compare=False)
    inact_conns: int = field(default=0, compare=False)
    persist_conns: int = field(default=0, compare=False)
    stats: Stats = field(default=Stats(), compare=False)

    @property
    def key(self) -> DestKey:
        return DestKey(self.addr, self.port)


@dataclass(frozen=True)
class Table:
    """A whole IPVS table: services in kernel order, each with its destinations."""

    services: tuple[Service, ...] = ()
    dests: dict[ServiceKey, tuple[Dest, ...]] = field(default_factory=dict)

    def service(self, key: ServiceKey) -> Service | None:
        """The service with ``key``, if present."""
        return next((s for s in self.services if s.key == key), None)


@dataclass(frozen=True)
class Timeouts:
    """Connection timeouts in seconds (0 in a set request = leave unchanged)."""

    tcp: int = 0
    tcpfin: int = 0
    udp: int = 0


@dataclass(frozen=True)
class Daemon:
    """A connection-sync daemon."""

    state: DaemonState
    mcast_ifn: str = "eth0"
    syncid: int = 0
    sync_maxlen: int = 0
    mcast_group: IPAddress | None = None
    mcast_port: int = 0
    mcast_ttl: int = 0


@dataclass(frozen=True)
class Info:
    """IPVS version and connection hash table size."""

    version: tuple[int, int, int]
    conn_tab_size: int


# -- operations (what apply() takes) ----------------------------------------------------------


@dataclass(frozen=True)
class AddService:
    service: Service


@dataclass(frozen=True)
class EditService:
    service: Service


@dataclass(frozen=True)
class DelService:
    key: ServiceKey


@dataclass(frozen=True)
class AddDest:
    service: ServiceKey
    dest: Dest


@dataclass(frozen=True)
class EditDest:
    service: ServiceKey
    dest: Dest


@dataclass(frozen=True)
class DelDest:
    service: ServiceKey
    dest: DestKey


@dataclass(frozen=True)
class Flush:
    pass


@dataclass(frozen=True)
class Zero:
    service: ServiceKey | None = None


@dataclass(frozen=True)
class SetTimeouts:
    timeouts: Timeouts


@dataclass(frozen=True)
class StartDaemon:
    daemon: Daemon


@dataclass(frozen=True)
class StopDaemon:
    state: DaemonState
    syncid: int = 0


@dataclass(frozen=True)
class Query:
    """A read (``what``: dump, service, info, timeouts, daemons), as a failed read's op."""

    what: str
    key: ServiceKey | None = None


Op = (AddService | EditService | DelService | AddDest | EditDest | DelDest | Flush | Zero
      | SetTimeouts | StartDaemon | StopDaemon)
