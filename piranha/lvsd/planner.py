"""lvsd's plan step, pure: (config, health, drains, actual table) in, ops and what to commit
out. Nothing here writes a file, logs or changes the engine; the engine applies the ops and
commits the decision afterwards."""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass

from piranha.health.report import DestId
from piranha.ipvs.types import DestKey, Op, ServiceKey, Table
from piranha.lvsd.book import Drain, Health, effective_weights
from piranha.lvsd.view import conns_of
from piranha.model import Cluster
from piranha.reconcile import desired, owned_keys, plan, sorry_key


@dataclass(frozen=True)
class World:
    """What the plan is made from, besides the kernel's table."""

    cluster: Cluster
    where: Mapping[DestId, tuple[ServiceKey, DestKey]]
    health: Mapping[DestId, Health]
    drains: Mapping[DestId, Drain]
    #: services lvs.cf dropped whose removal is still due
    retired: Set[ServiceKey]
    #: monotonic time each virtual's sorry-server grace ends
    grace: Mapping[ServiceKey, float]


@dataclass(frozen=True)
class Decision:
    """The ops that make the kernel match, the table they aim at, the drains that finish."""

    ops: list[Op]
    want: Table
    #: drains whose entry goes now (connections reached zero or the deadline passed)
    finished: dict[DestId, Drain]


def decide(world: World, actual: Table, now: float, wall: float) -> Decision:
    """What to do about ``actual`` (``now`` monotonic, ``wall`` wall clock)."""
    weights, finished = effective_weights(world.health, world.drains,
                                          conns_of(world.where, actual), wall)
    want = without_early_sorry(desired(world.cluster, weights), actual, world, now)
    return Decision(plan(actual, want, owned_keys(world.cluster) | world.retired), want,
                    finished)


def without_early_sorry(want: Table, actual: Table, world: World, now: float) -> Table:
    """``want`` without sorry servers that would newly go in during a virtual's grace."""
    cluster = world.cluster
    dests = dict(want.dests)
    for vs in cluster.active_virtuals():
        where = sorry_key(cluster.network, vs) if vs.address is not None else None
        if where is None or now >= world.grace.get(where[0], 0.0):
            continue
        skey, dkey = where
        if not any(d.key == dkey for d in actual.dests.get(skey, ())):
            dests[skey] = tuple(d for d in dests.get(skey, ()) if d.key != dkey)
    return Table(want.services, dests)
