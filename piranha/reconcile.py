"""Desired IPVS table from config + health, and the plan that turns the kernel's table into it.

Pure: ``desired(cluster, weights)`` encodes Piranha's semantics in one place and
``plan(actual, desired, owned)`` diffs two tables into ops. lvsd runs
``backend.apply(plan(backend.dump(), desired(...), owned))`` on every event and on a timer,
so hand-made changes to owned services are repaired and everything else is left alone.

Piranha semantics encoded here:
- only active virtuals and active real servers count; a real server is in the table only
  once its nanny reported it (``weights[id]`` set): None = absent, 0 = quiesced, else weight;
- forwarding method from ``network``; like ipvsadm, direct-routing and tunnel destinations of
  an address-keyed service use the service's port;
- ``sorry_server`` (port = virtual port, weight 1) is in exactly when no real server of the
  virtual has a weight above 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from piranha.health.report import DestId
from piranha.ipvs.types import (
    AddDest,
    AddService,
    DelDest,
    DelService,
    Dest,
    DestKey,
    EditDest,
    EditService,
    Family,
    Forward,
    IPAddress,
    Op,
    Proto,
    Service,
    ServiceKey,
    SetTimeouts,
    SvcFlags,
    Table,
    Timeouts,
)
from piranha.model import Cluster, Network, RealServer, ServiceProtocol, VirtualServer

FORWARD = {Network.NAT: Forward.MASQ, Network.DIRECT: Forward.ROUTE,
           Network.TUNNEL: Forward.TUNNEL}
PROTO = {ServiceProtocol.TCP: Proto.TCP, ServiceProtocol.UDP: Proto.UDP}

Weights = Mapping[DestId, int | None]


def service_key(vs: VirtualServer) -> ServiceKey:
    """The IPVS key of a virtual server (its address must be set)."""
    if vs.address is None:
        raise ValueError(f"virtual {vs.name} has no address")
    family = Family.INET if vs.address.ip.version == 4 else Family.INET6
    if vs.fwmark:
        return ServiceKey.mark(vs.fwmark, family)
    return ServiceKey.inet(PROTO[vs.protocol], vs.address.ip, vs.port)


def service_of(vs: VirtualServer) -> Service:
    """The IPVS service a virtual server asks for."""
    key = service_key(vs)
    full = 32 if key.family is Family.INET else 128
    if vs.persistent > 0:
        return Service(key, vs.scheduler, SvcFlags.PERSISTENT, vs.persistent,
                       vs.pmask if vs.pmask is not None else full)
    return Service(key, vs.scheduler, SvcFlags.NONE, 0, full)


def dest_key(network: Network, vs: VirtualServer, rs: RealServer) -> tuple[ServiceKey, DestKey]:
    """Where real server ``rs`` of ``vs`` sits in the kernel's table (service, destination)."""
    key = service_key(vs)
    if rs.address is None:
        raise ValueError(f"real server {rs.name} has no address")
    return key, DestKey(rs.address, _dest_port(key, FORWARD[network], rs.port))


def sorry_key(network: Network, vs: VirtualServer) -> tuple[ServiceKey, DestKey] | None:
    """Where the sorry server of ``vs`` sits in the kernel's table; None without one."""
    if vs.sorry_server is None:
        return None
    key = service_key(vs)
    return key, DestKey(vs.sorry_server, _dest_port(key, FORWARD[network], vs.port))


def owned_keys(*clusters: Cluster) -> frozenset[ServiceKey]:
    """The services lvsd may touch: the active virtuals of these configs (old and new)."""
    return frozenset(service_key(vs) for c in clusters for vs in c.active_virtuals()
                     if vs.address is not None)


def desired(cluster: Cluster, weights: Weights) -> Table:
    """The table lvsd wants for ``cluster`` given each real server's reported weight.

    Active virtuals with one service key (two virtuals sharing a fwmark, as Red Hat's manuals
    do for HTTP and HTTPS) are one IPVS service: the first one's settings (the loader refuses
    conflicting ones) with the real servers of all of them; a sorry server goes in when none
    of those has weight."""
    groups: dict[ServiceKey, list[VirtualServer]] = {}
    for vs in cluster.active_virtuals():
        if vs.address is not None:
            groups.setdefault(service_key(vs), []).append(vs)
    forward = FORWARD[cluster.network]
    services = tuple(service_of(group[0]) for group in groups.values())
    dests = {key: _dests(group, key, forward, weights) for key, group in groups.items()}
    return Table(services, dests)


def _dests(group: list[VirtualServer], key: ServiceKey, forward: Forward,
           weights: Weights) -> tuple[Dest, ...]:
    out: dict[tuple[IPAddress, int], Dest] = {}
    for vs in group:
        for rs in vs.servers:
            if not rs.active or rs.address is None:
                continue
            weight = weights.get(DestId.for_server(vs, rs))
            if weight is None:
                continue
            port = _dest_port(key, forward, rs.port)
            out.setdefault((rs.address, port), Dest(rs.address, port, forward, weight))
    sorry = next((vs for vs in group if vs.sorry_server is not None), None)
    if sorry is not None and sorry.sorry_server is not None \
            and not any(d.weight > 0 for d in out.values()):
        port = _dest_port(key, forward, sorry.port)
        out.setdefault((sorry.sorry_server, port), Dest(sorry.sorry_server, port, forward, 1))
    return tuple(out.values())


def _dest_port(key: ServiceKey, forward: Forward, port: int) -> int:
    if not key.fwmark and forward in (Forward.ROUTE, Forward.TUNNEL):
        return key.port  # what ipvsadm -g/-i does, so the kernel entry matches Piranha's
    return port


def set_timeouts(cluster: Cluster, before: Cluster | None = None) -> SetTimeouts | None:
    """``ipvsadm --set TCP TCPFIN UDP`` from lvs.cf, when it changes something: not for
    ``0 0 0`` (which changes nothing) nor when ``before`` had the same values."""
    new = Timeouts(cluster.tcp_timeout, cluster.tcpfin_timeout, cluster.udp_timeout)
    old = None if before is None else Timeouts(before.tcp_timeout, before.tcpfin_timeout,
                                               before.udp_timeout)
    return SetTimeouts(new) if new != Timeouts() and new != old else None


def plan(actual: Table, want: Table, owned: Iterable[ServiceKey]) -> list[Op]:
    """Ops that turn ``actual`` into ``want`` for the ``owned`` services only.

    Order: service adds/edits, dest adds/edits, dest deletes, service deletes.
    """
    owned = frozenset(owned) | {s.key for s in want.services}
    have = {s.key: s for s in actual.services}
    services: list[Op] = []
    dest_changes: list[Op] = []
    dest_deletes: list[Op] = []
    for svc in want.services:
        current = have.get(svc.key)
        if current is None:
            services.append(AddService(svc))
        elif current != svc:
            services.append(EditService(svc))
        adds, deletes = _dest_plan(svc.key, actual.dests.get(svc.key, ()) if current else (),
                                   want.dests.get(svc.key, ()))
        dest_changes += adds
        dest_deletes += deletes
    wanted = {s.key for s in want.services}
    removals: list[Op] = [DelService(s.key) for s in actual.services
                          if s.key in owned and s.key not in wanted]
    return services + dest_changes + dest_deletes + removals


def _dest_plan(key: ServiceKey, actual: Iterable[Dest],
               want: Iterable[Dest]) -> tuple[list[Op], list[Op]]:
    have = {d.key: d for d in actual}
    changes: list[Op] = []
    for dest in want:
        current = have.pop(dest.key, None)
        if current is None:
            changes.append(AddDest(key, dest))
        elif current != dest:
            changes.append(EditDest(key, dest))
    return changes, [DelDest(key, k) for k in have]
