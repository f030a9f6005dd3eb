"""lvsd's plan step is pure; drains, health and the state file change only through their owners."""

from __future__ import annotations

import copy
import os

from piranha.health.types import ServerState
from piranha.ipvs.fake import FakeIpvs
from piranha.lvsd.book import Drain, Health, HealthBook
from piranha.lvsd.drains import Drains
from piranha.lvsd.planner import World, decide
from piranha.lvsd.statefile import Keeper, SavedState
from testkit.lvsd import cluster, conf, dest, make_lab, server

TWO = conf(server("web1", 11, weight=3) + server("web2", 12))


def test_decide_changes_nothing_and_says_which_drains_finish() -> None:
    lab = make_lab(TWO)
    lab.report(dest(11), ServerState.UP, 3)
    lab.report(dest(12), ServerState.UP, 1)
    engine = lab.engine
    drains = {dest(11): Drain(1.0, 9e9)}  # no connections: its entry goes now
    world = World(engine.cluster, engine.where, engine.health.view(), drains, frozenset(),
                  engine.grace)
    actual = lab.ipvs.dump()
    before = (copy.deepcopy(drains), dict(engine.health.view()), lab.ipvs.dump())
    decision = decide(world, actual, lab.clock.now, lab.clock.wall())
    assert (drains, dict(engine.health.view()), lab.ipvs.dump()) == before
    assert decision.finished == {dest(11): Drain(1.0, 9e9, True)}
    assert [type(op).__name__ for op in decision.ops] == ["DelDest"]
    assert [d.port for ds in decision.want.dests.values() for d in ds] == [80]


def test_every_change_of_a_book_moves_its_generation() -> None:
    drains, health = Drains(), HealthBook()
    seen = [drains.generation]
    drains.ask(dest(11), 10.0, 5)
    drains.finish({dest(11): Drain(10.0, 15.0, True)})
    assert drains.finish({dest(11): Drain(10.0, 15.0, True)}) == []  # already done: no change
    assert drains.enable(dest(11)) and not drains.enable(dest(11))
    seen.append(drains.generation)
    assert seen == [0, 3]
    health.set(dest(11), Health(ServerState.UP, 1, 0.0, "probe"))
    health.drop(dest(11))
    health.drop(dest(11))
    assert health.generation == 2 and health.get(dest(11)) is None


def test_keeper_writes_only_what_changed(tmp_path) -> None:
    path, errors = tmp_path / "state.json", []
    keeper = Keeper(str(path), errors.append)
    assert keeper.load() == SavedState()
    keeper.keep(SavedState(set(), {dest(11): Drain(1.0, 2.0)}))
    first = path.stat().st_mtime_ns
    os.utime(path, ns=(first - 10**9, first - 10**9))
    keeper.keep(SavedState(set(), {dest(11): Drain(1.0, 2.0)}))
    assert path.stat().st_mtime_ns == first - 10**9  # same state: not rewritten
    keeper.keep(SavedState(set(), {}))
    assert Keeper(str(path), errors.append).load() == SavedState() and errors == []
    path.write_text("{not json")
    assert Keeper(str(path), errors.append).load() == SavedState()
    assert errors and "ignoring unreadable state file" in errors[0]


def test_the_status_generation_moves_with_reports_and_nannies() -> None:
    lab = make_lab(TWO, FakeIpvs(interfaces=("lo",)))
    before = lab.engine.generation()
    assert lab.engine.generation() == before
    lab.report(dest(11), ServerState.UP, 3)
    after_report = lab.engine.generation()
    assert after_report != before
    lab.engine.on_exit(lab.pid(dest(12)), 0)
    assert lab.engine.generation() != after_report


def test_a_reload_that_only_renames_moves_the_snapshot() -> None:
    lab = make_lab(TWO, FakeIpvs(interfaces=("lo",)))
    before = lab.engine.generation()
    lab.engine.reload(cluster(TWO.replace("server web1 {", "server www1 {")))
    assert lab.engine.generation() != before  # the loop rewrites the status snapshot
    names = [rs["name"] for vs in lab.snapshot(1)["virtuals"] for rs in vs["servers"]]
    assert "www1" in names and "web1" not in names
