"""Shared vocabulary of the contract suite: addresses, builders, and apply helpers."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any

from piranha.errors import KernelError
from piranha.ipvs.types import (
    Dest,
    Family,
    Forward,
    IPAddress,
    Op,
    Proto,
    Service,
    ServiceKey,
)

VIP = IPv4Address("198.51.100.80")
VIP6 = IPv6Address("2001:db8:100::80")
WEB = ServiceKey.inet(Proto.TCP, VIP, 80)
WEB6 = ServiceKey.inet(Proto.TCP, VIP6, 443)


def key(port: int = 80, addr: IPAddress | str = VIP, proto: Proto = Proto.TCP) -> ServiceKey:
    """An address-keyed service key."""
    return ServiceKey.inet(proto, ip_address(addr), port)


def service(k: ServiceKey = WEB, scheduler: str = "wlc", **kw: Any) -> Service:
    """A service with ipvsadm's defaults: full netmask for its family."""
    kw.setdefault("netmask", 128 if k.family == Family.INET6 else 32)
    return Service(k, scheduler, **kw)


def rs(host: int | str, port: int = 80, forward: Forward = Forward.MASQ, **kw: Any) -> Dest:
    """A real server: ``host`` is the last octet in 10.200.0.0/24, or a whole address."""
    addr = ip_address(f"10.200.0.{host}" if isinstance(host, int) else host)
    return Dest(addr, port, forward, **kw)


def ok(lab: Any, *ops: Op) -> None:
    """Apply ``ops``; every one must succeed."""
    failures = lab.ipvs.apply(list(ops))
    assert failures == [], [f"{f.op}: {f.errno} {f.message}" for f in failures]


def fails(lab: Any, op: Op) -> KernelError:
    """Apply ``op`` alone; it must fail, and the error must name it."""
    failures = lab.ipvs.apply([op])
    assert len(failures) == 1, f"{op} did not fail"
    assert failures[0].op is op
    return failures[0]
