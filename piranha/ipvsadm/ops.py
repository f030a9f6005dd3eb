"""A parsed ipvsadm command -> the backend operations the reconciler also uses.

The only lossy step: piranha's :class:`~piranha.ipvs.types.Service` keeps the persistence
netmask as a prefix length, while ipvsadm accepts any dotted IPv4 mask (``-M 255.0.255.0``,
or ``-M 24`` which ``inet_aton`` reads as 0.0.0.24). A non-contiguous IPv4 mask is therefore
refused with ipvsadm's own ``illegal virtual server persistent mask specified`` (exit 2),
where ipvsadm 1.31 would hand it to the kernel.
"""

from __future__ import annotations

from piranha.ipvs.types import (
    AddDest,
    AddService,
    Daemon,
    DaemonState,
    DelDest,
    DelService,
    Dest,
    DestKey,
    EditDest,
    EditService,
    Family,
    Flush,
    Forward,
    Op,
    Proto,
    Service,
    ServiceKey,
    SetTimeouts,
    StartDaemon,
    StopDaemon,
    SvcFlags,
    Timeouts,
    TunFlags,
    TunType,
    Zero,
)
from piranha.ipvsadm.commands import Command, DestSpec, Svc, fail
from piranha.ipvsadm.values import AF_INET6


def service_key(svc: Svc) -> ServiceKey:
    """The key ipvsadm's service options name."""
    family = Family.INET6 if svc.af == AF_INET6 else Family.INET
    if svc.fwmark:
        return ServiceKey.mark(svc.fwmark, family)
    assert svc.addr is not None
    return ServiceKey.inet(Proto(svc.protocol), svc.addr, svc.port)


def prefix_of_mask(mask: int) -> int | None:
    """Prefix length of a contiguous 32-bit mask, else None."""
    inverted = ~mask & 0xFFFFFFFF
    if inverted & (inverted + 1):
        return None
    return 32 - inverted.bit_length()


def to_service(svc: Svc) -> Service:
    """The Service that -A/-E describe."""
    prefix = svc.netmask if svc.af == AF_INET6 else prefix_of_mask(svc.netmask)
    if prefix is None:
        raise fail("illegal virtual server persistent mask specified")
    return Service(service_key(svc), svc.sched, SvcFlags(svc.flags), svc.timeout, prefix, svc.pe)


def to_dest(dest: DestSpec) -> Dest:
    """The Dest that -a/-e describe."""
    assert dest.addr is not None
    return Dest(dest.addr, dest.port, Forward(dest.fwd), dest.weight, dest.u_threshold,
                dest.l_threshold, TunType(dest.tun_type), dest.tun_port, TunFlags(dest.tun_flags))


def _zero_target(svc: Svc) -> ServiceKey | None:
    """-Z's service, or None for "all" (also when the given service is all zeroes)."""
    if not svc.fwmark and not svc.port and (svc.addr is None or int(svc.addr) == 0):
        return None
    return service_key(svc)


def _daemon(ce: Command) -> Daemon:
    """The sync daemon --start-daemon describes."""
    d = ce.daemon
    return Daemon(DaemonState(d.state), d.mcast_ifn, d.syncid, d.sync_maxlen, d.mcast_group,
                  d.mcast_port, d.mcast_ttl)


def command_op(ce: Command) -> Op:
    """The one operation a mutating command performs."""
    cmd = ce.cmd
    if cmd == "add-service":
        return AddService(to_service(ce.svc))
    if cmd == "edit-service":
        return EditService(to_service(ce.svc))
    if cmd == "delete-service":
        return DelService(service_key(ce.svc))
    if cmd == "add-server":
        return AddDest(service_key(ce.svc), to_dest(ce.dest))
    if cmd == "edit-server":
        return EditDest(service_key(ce.svc), to_dest(ce.dest))
    if cmd == "delete-server":
        assert ce.dest.addr is not None
        return DelDest(service_key(ce.svc), DestKey(ce.dest.addr, ce.dest.port))
    if cmd == "flush":
        return Flush()
    if cmd == "zero":
        return Zero(_zero_target(ce.svc))
    if cmd == "set":
        return SetTimeouts(Timeouts(*ce.timeouts))
    if cmd == "start-daemon":
        return StartDaemon(_daemon(ce))
    if cmd == "stop-daemon":
        return StopDaemon(DaemonState(ce.daemon.state), ce.daemon.syncid)
    raise ValueError(f"{cmd} is not a mutating command")


MUTATING = frozenset({"add-service", "edit-service", "delete-service", "add-server",
                      "edit-server", "delete-server", "flush", "zero", "set", "start-daemon",
                      "stop-daemon"})
