"""FakeIpvs: a strict, stateful, in-memory IPVS table that fails like the kernel does.

Rules follow Linux 6.1 ``net/netfilter/ipvs/ip_vs_ctl.c`` and ``ip_vs_sync.c`` and are held to
the same contract tests as ``NetlinkIpvs`` (tests/contract, run against the real kernel in the
VM). Checks run in the kernel's order, so an op with two faults reports the kernel's errno.

Not modelled: traffic (``add_traffic`` stands in for it; the kernel shows counters up to 2 s
late, when its estimator folds them in), the destination trash (a re-added destination gets
fresh counters), subnet-broadcast real-server addresses (the kernel refuses e.g. 10.0.0.255 of
a local /24), interface MTUs other than 1500, scheduler module loading (the known names are
fixed).
"""

from __future__ import annotations

import errno as E
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from piranha.errors import KernelError
from piranha.ipvs import nlmsg
from piranha.ipvs.backend import kernel_error
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
    Info,
    IPAddress,
    Op,
    Proto,
    Query,
    Service,
    ServiceKey,
    SetTimeouts,
    StartDaemon,
    Stats,
    StopDaemon,
    SvcFlags,
    Table,
    Timeouts,
    TunType,
    Zero,
    family_of,
)

#: scheduler modules of Debian's 6.1 kernel ("none" = no scheduler), persistence engines
SCHEDULERS = frozenset({"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq",
                        "fo", "ovf", "mh", "none"})
PERSISTENCE_ENGINES = frozenset({"sip"})
DEFAULT_TIMEOUTS = Timeouts(900, 120, 300)
HZ = 250  # CONFIG_HZ of Debian's kernel: timeouts above INT_MAX / HZ are rejected
SYNC_GROUP, SYNC_PORT, SYNC_TTL = IPv4Address("224.0.0.81"), 8848, 1
IFNAME_MAX, SCHED_NAME_MAX, PE_NAME_MAX = 15, 15, 32
_INT_MAX = 2**31 - 1


def service_bucket(key: ServiceKey, salt: int = 0) -> tuple[int, int]:
    """(table, bucket) the kernel hashes ``key`` into; dumps walk tables, then buckets.

    ``salt`` is bits 8..15 of the kernel's per-namespace ``struct netns_ipvs`` address, which
    the kernel mixes into every bucket index; it differs between namespaces.
    """
    if key.fwmark:
        return 1, (key.fwmark ^ salt) & 0xFF
    assert key.addr is not None
    if key.addr.version == 4:
        fold = int(key.addr)
    else:
        raw = key.addr.packed
        fold = 0
        for i in range(0, 16, 4):
            fold ^= int.from_bytes(raw[i:i + 4], "big")
    return 0, (key.protocol ^ fold ^ (key.port >> 8) ^ key.port ^ salt) & 0xFF


def normal_key(key: ServiceKey) -> ServiceKey:
    """``key`` as the kernel keeps it: a fwmark service has protocol TCP and no address."""
    if key.fwmark:
        return ServiceKey(key.family, Proto.TCP, None, 0, key.fwmark)
    return key


@dataclass
class _Svc:
    service: Service
    born: int
    dests: list[Dest] = field(default_factory=list)  # newest first, as the kernel lists them


def _bad_dest_address(addr: IPAddress) -> bool:
    """Whether the kernel refuses ``addr`` as a real server (not unicast)."""
    if isinstance(addr, IPv6Address):
        return addr.is_multicast or addr.is_unspecified or addr.is_link_local
    return addr.is_multicast or addr in (IPv4Address("255.255.255.255"), IPv4Address("0.0.0.0"))


def _int32(value: int) -> int:
    """How the kernel's ``int`` sees a u32 from the wire."""
    return value - 2**32 if value > _INT_MAX else value


class FakeIpvs:
    """IpvsBackend in memory; ``interfaces`` are the names sync daemons may use."""

    def __init__(self, interfaces: Iterable[str] = ("lo",), *, salt: int = 0):
        self.interfaces = frozenset(interfaces)
        self.salt = salt
        self._services: dict[ServiceKey, _Svc] = {}
        self._born = 0
        self._timeouts = DEFAULT_TIMEOUTS
        self._daemons: dict[DaemonState, Daemon] = {}

    # -- reads --------------------------------------------------------------------------------

    def dump(self) -> Table:
        """Every service in the kernel's dump order, each with its destinations."""
        order = sorted(self._services.values(),
                       key=lambda s: (service_bucket(s.service.key, self.salt), -s.born))
        return Table(tuple(s.service for s in order),
                     {s.service.key: tuple(s.dests) for s in order})

    def get_service(self, key: ServiceKey) -> tuple[Service, tuple[Dest, ...]]:
        """One service and its destinations; KernelError(ESRCH) when absent."""
        svc = self._services.get(normal_key(key))
        if svc is None:
            raise kernel_error(Query("service", key), E.ESRCH)
        return svc.service, tuple(svc.dests)

    def info(self) -> Info:
        """IPVS 1.2.1 with the default 4096-bucket connection table."""
        return Info((1, 2, 1), 4096)

    def timeouts(self) -> Timeouts:
        """The current connection timeouts."""
        return self._timeouts

    def daemons(self) -> list[Daemon]:
        """Running sync daemons, master first."""
        return [self._daemons[s] for s in (DaemonState.MASTER, DaemonState.BACKUP)
                if s in self._daemons]

    def add_traffic(self, key: ServiceKey, dest: DestKey, **counts: int) -> None:
        """Test hook standing in for packets: add ``counts`` (Stats fields) to both counters."""
        svc = self._services[normal_key(key)]
        svc.service = replace(svc.service, stats=_added(svc.service.stats, counts))
        svc.dests = [replace(d, stats=_added(d.stats, counts)) if d.key == dest else d
                     for d in svc.dests]

    # -- writes -------------------------------------------------------------------------------

    def apply(self, ops: Sequence[Op]) -> list[KernelError]:
        """Apply ``ops`` in order; return the ones that failed (the others stay applied)."""
        for op in ops:
            nlmsg.encode(op)  # the same ValueError/TypeError as NetlinkIpvs, before any change
        failures = []
        for op in ops:
            code = _HANDLERS[type(op)](self, op)
            if code:
                failures.append(kernel_error(op, code))
        return failures

    def _add_service(self, op: AddService) -> int:
        svc = op.service
        key = normal_key(svc.key)
        code = _service_attrs_error(svc)
        if code or key in self._services:
            return code or E.EEXIST
        code = _service_error(svc)
        if code:
            return code
        self._born += 1
        stored = replace(svc, key=key, flags=_kept_flags(svc.flags), stats=Stats())
        self._services[key] = _Svc(stored, self._born)
        return 0

    def _edit_service(self, op: EditService) -> int:
        svc = op.service
        key = normal_key(svc.key)
        code = _service_attrs_error(svc)
        if code or key not in self._services:
            return code or E.ESRCH
        code = _service_error(svc)
        if code:
            return code
        entry = self._services[key]
        entry.service = replace(svc, key=key, flags=_kept_flags(svc.flags),
                                stats=entry.service.stats)
        return 0

    def _del_service(self, op: DelService) -> int:
        return 0 if self._services.pop(normal_key(op.key), None) else E.ESRCH

    def _dest_op(self, key: ServiceKey, dest: Dest, add: bool) -> int:
        """Checks shared by add and edit; errno, or 0 when the op may proceed."""
        entry = self._services.get(normal_key(key))
        if entry is None:
            return E.ESRCH
        if family_of(dest.addr) != entry.service.key.family and (
                self._daemons or dest.forward != Forward.TUNNEL):
            return E.EINVAL  # mixed families: tunnels only, and never with a sync daemon
        if dest.weight < 0 or dest.l_threshold > dest.u_threshold:
            return E.ERANGE
        if dest.u_threshold > _INT_MAX or (dest.tun_type == TunType.GUE and dest.tun_port == 0):
            return E.EINVAL
        exists = any(d.key == dest.key for d in entry.dests)
        if add and exists:
            return E.EEXIST
        if not add and not exists:
            return E.ENOENT
        if add and _bad_dest_address(dest.addr):
            return E.EINVAL
        return 0

    def _add_dest(self, op: AddDest) -> int:
        code = self._dest_op(op.service, op.dest, add=True)
        if not code:
            dest = replace(op.dest, active_conns=0, inact_conns=0, persist_conns=0, stats=Stats())
            self._services[normal_key(op.service)].dests.insert(0, dest)
        return code

    def _edit_dest(self, op: EditDest) -> int:
        code = self._dest_op(op.service, op.dest, add=False)
        if not code:
            entry = self._services[normal_key(op.service)]
            entry.dests = [replace(op.dest, active_conns=d.active_conns, inact_conns=d.inact_conns,
                                   persist_conns=d.persist_conns, stats=d.stats)
                           if d.key == op.dest.key else d for d in entry.dests]
        return code

    def _del_dest(self, op: DelDest) -> int:
        entry = self._services.get(normal_key(op.service))
        if entry is None:
            return E.ESRCH
        kept = [d for d in entry.dests if d.key != op.dest]
        if len(kept) == len(entry.dests):
            return E.ENOENT
        entry.dests = kept
        return 0

    def _flush(self, op: Flush) -> int:
        self._services.clear()
        return 0

    def _zero(self, op: Zero) -> int:
        if op.service is None:
            targets = list(self._services.values())
        elif normal_key(op.service) in self._services:
            targets = [self._services[normal_key(op.service)]]
        else:
            return E.ESRCH
        for entry in targets:
            entry.service = replace(entry.service, stats=Stats())
            entry.dests = [replace(d, stats=Stats()) for d in entry.dests]
        return 0

    def _set_timeouts(self, op: SetTimeouts) -> int:
        new = op.timeouts
        values = [_int32(v) for v in (new.tcp, new.tcpfin, new.udp)]
        if any(v < 0 or v > _INT_MAX // HZ for v in values):
            return E.EINVAL
        old = self._timeouts
        self._timeouts = Timeouts(*(v or o for v, o in zip(values, (old.tcp, old.tcpfin, old.udp),
                                                           strict=True)))
        return 0

    def _start_daemon(self, op: StartDaemon) -> int:
        d = op.daemon
        group = d.mcast_group
        if len(d.mcast_ifn.encode()) > IFNAME_MAX or (group is not None and not group.is_multicast):
            return E.EINVAL
        if any(family_of(x.addr) != e.service.key.family
               for e in self._services.values() for x in e.dests):
            return E.EINVAL  # the sync protocol cannot carry mixed-family services
        if d.mcast_ifn not in self.interfaces:
            return E.ENODEV
        if d.state in self._daemons:
            return E.EEXIST
        self._daemons[d.state] = _daemon_defaults(d)
        return 0

    def _stop_daemon(self, op: StopDaemon) -> int:
        return 0 if self._daemons.pop(op.state, None) else E.ESRCH


def _kept_flags(flags: int) -> SvcFlags:
    """The flags the kernel keeps and reports: HASHED is its own bookkeeping."""
    return SvcFlags(flags & ~int(SvcFlags.HASHED))


def _service_attrs_error(svc: Service) -> int:
    """EINVAL when the kernel's attribute policy refuses the names (checked before lookup)."""
    if len(svc.scheduler.encode()) > SCHED_NAME_MAX or len(svc.pe_name.encode()) > PE_NAME_MAX:
        return E.EINVAL
    return 0


def _service_error(svc: Service) -> int:
    """The errno of an add/edit once the service was looked up: scheduler, pe, IPv6 prefix."""
    if svc.scheduler not in SCHEDULERS or (svc.pe_name and svc.pe_name not in PERSISTENCE_ENGINES):
        return E.ENOENT
    if svc.key.family == Family.INET6 and not 1 <= svc.netmask <= 128:
        return E.EINVAL
    return 0


def _daemon_defaults(d: Daemon) -> Daemon:
    """What the kernel keeps and reports for a started daemon (defaults filled in, clamped)."""
    group = d.mcast_group or SYNC_GROUP
    hlen = 48 if group.version == 6 else 28  # IP + UDP headers
    if d.sync_maxlen:
        low = 1024 if d.state == DaemonState.BACKUP else 1
        maxlen = min(max(d.sync_maxlen, low), 65535 - hlen)
    else:
        maxlen = 1500 - hlen
    return replace(d, mcast_group=group, sync_maxlen=maxlen, mcast_port=d.mcast_port or SYNC_PORT,
                   mcast_ttl=d.mcast_ttl or SYNC_TTL)


def _added(stats: Stats, counts: dict[str, int]) -> Stats:
    return replace(stats, **{k: getattr(stats, k) + v for k, v in counts.items()})


#: op type -> the method applying it (returns an errno, 0 on success)
_HANDLERS: dict[type, Callable[[FakeIpvs, Any], int]] = {
    AddService: FakeIpvs._add_service, EditService: FakeIpvs._edit_service,
    DelService: FakeIpvs._del_service, AddDest: FakeIpvs._add_dest,
    EditDest: FakeIpvs._edit_dest, DelDest: FakeIpvs._del_dest, Flush: FakeIpvs._flush,
    Zero: FakeIpvs._zero, SetTimeouts: FakeIpvs._set_timeouts,
    StartDaemon: FakeIpvs._start_daemon, StopDaemon: FakeIpvs._stop_daemon,
}
