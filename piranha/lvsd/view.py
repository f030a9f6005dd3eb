"""Read-only views of the engine: log lines, name resolution, connection counts, the snapshot.

Kept apart from the engine so the engine holds decisions only; everything here is pure. The
snapshot is built from an :class:`EngineView` (read-only mappings the engine hands out), so
nothing here can change the engine, and this module does not import it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from piranha.health.check import CheckSpec
from piranha.health.report import DestId
from piranha.ipvs.types import DestKey, ServiceKey, Table
from piranha.ipvsadm.rules import service_option
from piranha.lvsd import status
from piranha.lvsd.book import Drain, Health
from piranha.model import Cluster, VirtualServer
from piranha.reconcile import service_key, sorry_key
from piranha.supervise.children import Child
from piranha.text import hostport


@dataclass(frozen=True)
class EngineView:
    """What the status snapshot shows, as the engine holds it (read-only)."""

    cluster: Cluster
    config_path: str
    specs: Mapping[DestId, CheckSpec]
    where: Mapping[DestId, tuple[ServiceKey, DestKey]]
    health: Mapping[DestId, Health]
    drains: Mapping[DestId, Drain]
    nanny: Callable[[DestId], Child[DestId] | None]
    #: the kernel's table after the last reconcile, and the one lvsd wanted
    table: Table
    want: Table
    started: float
    ops_applied: int


def transition_line(spec: CheckSpec, old: Health, new: Health) -> str:
    """One log line for a state or weight change: ``rs=... vs=... UP->DOWN reason="..."``."""
    head = f"rs={spec.target} vs={spec.vs_name}"
    if old.state is not new.state:
        change = f"{old.state.value}->{new.state.value} weight={_weight(new.weight)}"
    else:
        change = f"{new.state.value} weight {_weight(old.weight)}->{_weight(new.weight)}"
    reason = new.reason.replace('"', "'")
    return f'{head} {change} reason="{reason}"'


def _weight(weight: int | None) -> str:
    return "absent" if weight is None else str(weight)


def conns_of(where: Mapping[DestId, tuple[ServiceKey, DestKey]],
             table: Table) -> Callable[[DestId], int | None]:
    """A function giving the connections of a real server's entry (None when absent)."""
    index = {(skey, d.key): d.active_conns + d.inact_conns
             for skey, dests in table.dests.items() for d in dests}

    def conns(dest: DestId) -> int | None:
        return index.get(where[dest])
    return conns


def _virtual_matches(vs: VirtualServer, text: str) -> bool:
    if vs.name == text:
        return True
    if vs.fwmark and text in (str(vs.fwmark), f"fwmark {vs.fwmark}", f"fwmark:{vs.fwmark}"):
        return True
    return vs.address is not None and text in (f"{vs.address.ip}:{vs.port}",
                                                hostport(vs.address.ip, vs.port))


def resolve(cluster: Cluster, specs: Mapping[DestId, CheckSpec], virtual: str,
            server: str) -> DestId | str:
    """The real server named by ``virtual`` and ``server`` (names or addresses), or an error."""
    matches = [vs for vs in cluster.active_virtuals() if _virtual_matches(vs, virtual)]
    if not matches:
        names = ", ".join(vs.name for vs in cluster.active_virtuals()) or "none"
        return f"no active virtual {virtual!r} (active virtuals: {names})"
    vs = matches[0]
    candidates = [s for s in specs.values() if s.vs_name == vs.name]
    for spec in candidates:
        if server in (spec.rs_name, str(spec.dest.rip), str(spec.target)):
            return spec.dest
    names = ", ".join(s.rs_name for s in candidates) or "none"
    return f"virtual {vs.name} has no active real server {server!r} (servers: {names})"


def snapshot(engine: EngineView, pid: int, written: float) -> dict[str, Any]:
    """The JSON-able status snapshot of ``engine`` (``written``: wall clock now)."""
    cluster = engine.cluster
    conns = conns_of(engine.where, engine.table)
    virtuals = []
    for vs in cluster.active_virtuals():
        if vs.address is None:
            continue
        skey = service_key(vs)
        wanted = {d.key: d for d in engine.want.dests.get(skey, ())}
        servers = [_server(engine, spec, wanted, conns) for spec in engine.specs.values()
                   if spec.vs_name == vs.name]
        entry: dict[str, Any] = {
            "name": vs.name, "service": service_option(skey), "scheduler": vs.scheduler,
            "persistent": vs.persistent, "servers": servers, "sorry_server": None,
        }
        where = sorry_key(cluster.network, vs)
        if where is not None:
            entry["sorry_server"] = {"address": str(vs.sorry_server),
                                     "in_table": where[1] in wanted}
        virtuals.append(entry)
    return {"version": status.VERSION, "pid": pid, "config": engine.config_path,
            "started": engine.started, "written": written,
            "ops_applied": engine.ops_applied, "virtuals": virtuals}


def _server(engine: EngineView, spec: CheckSpec, wanted: Mapping[DestKey, Any],
            conns: Callable[[DestId], int | None]) -> dict[str, Any]:
    dest = spec.dest
    health = engine.health[dest]
    drain = engine.drains.get(dest)
    child = engine.nanny(dest)
    in_table = wanted.get(engine.where[dest][1])
    return {
        "name": spec.rs_name, "address": str(spec.target), "state": health.state.value,
        "weight": None if in_table is None else in_table.weight,
        "health_weight": health.weight, "since": health.since, "reason": health.reason,
        "reported": health.reported,
        "conns": conns(dest) or 0,
        "drain": None if drain is None else {"state": drain.state(), "started": drain.started,
                                             "deadline": drain.deadline},
        "nanny": {"pid": None if child is None else child.pid,
                  "state": "stopped" if child is None else child.state.value,
                  "restarts": 0 if child is None else child.restarts},
    }
