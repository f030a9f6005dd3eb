"""Frozen, typed model of a validated lvs.cf.

Every value here is the *effective* one: defaults filled in, host names resolved, derived
values (private heartbeat addresses, real-server ports) computed. Two loads of equivalent
files compare equal with ``==``. This module imports nothing from the project.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

IPAddress = IPv4Address | IPv6Address


class ServiceType(enum.Enum):
    """What pulse runs: LVS virtual servers or legacy failover services."""

    #: virtual servers through IPVS
    LVS = "lvs"
    #: two-node failover services (Piranha's FOS, legacy)
    FOS = "fos"


class Network(enum.Enum):
    """Forwarding method used for every real server."""

    #: masquerading (ipvsadm -m)
    NAT = "nat"
    #: direct routing / gatewaying (ipvsadm -g)
    DIRECT = "direct"
    #: IP-in-IP tunnelling (ipvsadm -i)
    TUNNEL = "tunnel"


class ServiceProtocol(enum.Enum):
    """Transport protocol of a virtual service (and of its health check)."""

    TCP = "tcp"
    UDP = "udp"


#: Piranha 0.8.6's schedulers, then the ones later kernels added (an extension).
PIRANHA_SCHEDULERS = ("rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh")
EXTRA_SCHEDULERS = ("sed", "nq", "fo", "ovf", "mh")
SCHEDULERS = PIRANHA_SCHEDULERS + EXTRA_SCHEDULERS


@dataclass(frozen=True)
class InterfaceAddress:
    """An address pulse raises on a device, e.g. ``10.0.0.80 eth0:1``."""

    ip: IPAddress
    device: str


@dataclass(frozen=True)
class Listen:
    """Where an HTTP endpoint listens (``lvsd_metrics = 127.0.0.1:9747``)."""

    address: IPAddress
    port: int

    def __str__(self) -> str:
        text = str(self.address)
        return f"[{text}]:{self.port}" if ":" in text else f"{text}:{self.port}"


@dataclass(frozen=True)
class RealServer:
    """A ``server NAME { ... }`` block."""

    name: str
    address: IPAddress | None = None
    active: bool = False
    weight: int = 1
    port: int = 80


@dataclass(frozen=True)
class VirtualServer:
    """A ``virtual NAME { ... }`` block."""

    name: str
    address: InterfaceAddress | None = None
    active: bool = False
    vip_nmask: int | None = None  # prefix length
    sorry_server: IPAddress | None = None
    fwmark: int = 0
    port: int = 80
    protocol: ServiceProtocol = ServiceProtocol.TCP
    scheduler: str = "wlc"
    persistent: int = 0
    pmask: int | None = None  # prefix length; only with persistent > 0
    send: str | None = None
    expect: str | None = None
    use_regex: bool = False
    send_program: str | None = None
    load_monitor: str | None = None  # None = no load feedback
    timeout: float = 10.0
    reentry: float = 180.0
    quiesce_server: bool = False
    client_monitor: str = "/usr/sbin/nanny"
    servers: tuple[RealServer, ...] = ()


@dataclass(frozen=True)
class FailoverService:
    """A legacy ``failover NAME { ... }`` block (service = fos)."""

    name: str
    address: InterfaceAddress | None = None
    active: bool = False
    vip_nmask: int | None = None
    port: int = 80
    protocol: ServiceProtocol = ServiceProtocol.TCP
    send: str | None = None
    expect: str | None = None
    send_program: str | None = None
    timeout: float = 10.0
    start_cmd: str | None = None
    stop_cmd: str | None = None


@dataclass(frozen=True)
class Cluster:
    """A whole lvs.cf: the globals, the virtual servers and the failover services."""

    serial_no: int = 0
    primary: IPAddress | None = None
    primary_private: IPAddress | None = None
    primary_shared: str | None = None
    service: ServiceType = ServiceType.LVS
    rsh_command: str = "rsh"
    backup_active: bool = False
    backup: IPAddress | None = None
    backup_private: IPAddress | None = None
    backup_shared: str | None = None
    heartbeat: bool = False
    heartbeat_port: int = 539
    heartbeat_key: str | None = None  # extension: HMAC key of authenticated heartbeats
    keepalive: float = 2.0
    deadtime: float = 5.0
    network: Network = Network.NAT
    nat_router: InterfaceAddress | None = None
    nat_nmask: int | None = None
    reservation_conflict_action: str | None = None
    debug_level: str = "NONE"
    ipvsadm: str = "/sbin/ipvsadm"
    active_cmd: str | None = None
    inactive_cmd: str | None = None
    monitor_links: bool = False
    syncdaemon: bool = False
    syncd_iface: str = "eth0"
    syncd_id: int = 0
    tcp_timeout: int = 0
    tcpfin_timeout: int = 0
    udp_timeout: int = 0
    hard_shutdown: bool = True
    lvsd_metrics: Listen | None = None  # extension: lvsd's Prometheus endpoint
    pulse_metrics: Listen | None = None  # extension: pulse's Prometheus endpoint
    virtuals: tuple[VirtualServer, ...] = ()
    failovers: tuple[FailoverService, ...] = ()

    def active_virtuals(self) -> tuple[VirtualServer, ...]:
        """The virtual servers lvsd installs (``active = 1``)."""
        return tuple(v for v in self.virtuals if v.active)
