"""The lvsd engine in-process: FakeIpvs as the kernel, a fake runner, a clock moved by hand."""

from __future__ import annotations

import os
import signal
from ipaddress import ip_address

from piranha.health.types import ServerState
from piranha.ipvs.fake import FakeIpvs
from piranha.ipvs.types import (
    AddDest,
    AddService,
    DelDest,
    DestKey,
    EditDest,
    Proto,
    Service,
    ServiceKey,
)
from piranha.lvsd.control import Request
from testkit.clock import Clock
from testkit.lvsd import VIP, conf, dest, make_lab, server

KEY = ServiceKey.inet(Proto.TCP, ip_address(VIP), 80)
TWO = conf(server("web1", 11, weight=3) + server("web2", 12, weight=1))


def status_of(pid_exit: int) -> int:
    """A wait status for exit code ``pid_exit``."""
    return pid_exit << 8


def test_start_programs_the_service_and_only_healthy_servers() -> None:
    lab = make_lab(TWO)
    assert lab.ipvs.dump().services[0].key == KEY
    assert lab.weights() == {}  # nothing reported yet: no real server is in
    assert len(lab.runner.spawned) == 2
    assert lab.report(dest(11), ServerState.UP, 3)
    assert lab.weights() == {"10.200.0.11:80": 3}


def test_down_report_removes_and_quiesce_keeps_weight_zero() -> None:
    lab = make_lab(TWO)
    lab.report(dest(11), ServerState.UP, 3)
    lab.report(dest(11), ServerState.DOWN, None, "CONNECT to 10.200.0.11:80 failed")
    assert lab.weights() == {}
    assert 'rs=10.200.0.11:80 vs=web UP->DOWN weight=absent reason="CONNECT to ' \
           '10.200.0.11:80 failed"' in lab.log.lines
    lab.report(dest(11), ServerState.UP, 3)
    lab.report(dest(11), ServerState.DOWN, 0)
    assert lab.weights() == {"10.200.0.11:80": 0}


def test_drift_is_repaired_and_foreign_services_are_left_alone() -> None:
    lab = make_lab(TWO)
    lab.report(dest(11), ServerState.UP, 3)
    foreign = ServiceKey.inet(Proto.TCP, ip_address("198.51.100.99"), 80)
    lab.ipvs.apply([AddService(Service(foreign, "rr")),
                    DelDest(KEY, DestKey(ip_address("10.200.0.11"), 80))])
    ops = lab.engine.reconcile()
    assert ops == [AddDest(KEY, lab.engine.want.dests[KEY][0])]
    assert lab.weights() == {"10.200.0.11:80": 3}
    assert lab.ipvs.dump().service(foreign) is not None


def test_already_done_errors_are_forgiven_and_replanned() -> None:
    lab = make_lab(TWO)
    lab.report(dest(11), ServerState.UP, 3)
    ipvs = lab.ipvs
    racing = []
    real_apply = ipvs.apply

    def apply(ops):  # the operator adds the same entry between our dump and our add
        if any(isinstance(op, AddDest) for op in ops) and not racing:
            racing.append(True)
            real_apply([op for op in ops if isinstance(op, AddDest)])
        return real_apply(ops)

    ipvs.apply = apply  # type: ignore[method-assign]
    lab.report(dest(12), ServerState.UP, 1)
    assert lab.weights() == {"10.200.0.11:80": 3, "10.200.0.12:80": 1}
    assert any("(already done)" in line for line in lab.log.lines)


def test_sorry_server_goes_in_when_all_are_down_and_out_when_one_is_up() -> None:
    lab = make_lab(conf(server("web1", 11), extra="sorry_server = 10.200.0.99"))
    assert lab.weights() == {}  # grace: one interval before the sorry server may go in
    lab.clock.now += 2
    lab.engine.reconcile()
    assert lab.weights() == {"10.200.0.99:80": 1}
    lab.report(dest(11), ServerState.UP, 1)
    assert lab.weights() == {"10.200.0.11:80": 1}
    lab.report(dest(11), ServerState.DOWN, None)
    assert lab.weights() == {"10.200.0.99:80": 1}


def test_restart_adopts_the_table_without_touching_it() -> None:
    ipvs = FakeIpvs(interfaces=("lo",))
    first = make_lab(TWO, ipvs)
    first.report(dest(11), ServerState.UP, 3)
    first.report(dest(12), ServerState.UP, 1)
    before = ipvs.dump()
    second = make_lab(TWO, ipvs)
    assert ipvs.dump() == before
    assert second.adopted == {dest(11): 3, dest(12): 1}
    assert second.engine.health[dest(11)].state is ServerState.UP
    assert second.engine.reconcile() == []


def test_report_from_a_replaced_nanny_is_ignored() -> None:
    lab = make_lab(TWO)
    from piranha.health.report import HealthReport
    assert not lab.engine.on_report(4242, HealthReport(dest(11), ServerState.UP, 3, "x", 0.0))
    assert lab.weights() == {}


def test_dead_nanny_is_restarted_with_backoff_and_adopts_the_weight() -> None:
    lab = make_lab(TWO)
    lab.report(dest(11), ServerState.UP, 3)
    old = lab.pid(dest(11))
    assert not lab.engine.on_exit(old, status_of(1))
    lab.engine.tick()
    assert lab.engine.supervisor.get(dest(11)).pid is None
    lab.clock.now += 1.0
    lab.engine.tick()
    assert lab.pid(dest(11)) != old
    assert lab.adopted[dest(11)] == 3
    assert lab.weights() == {"10.200.0.11:80": 3}


def test_hard_shutdown_takes_lvsd_down_on_a_nanny_death() -> None:
    lab = make_lab(conf(server("web1", 11), globals_="hard_shutdown = 1"))
    assert lab.engine.on_exit(lab.pid(dest(11)), signal.SIGKILL)
    assert "shutting down lvs (hard_shutdown = 1)" in lab.log.lines[-1]


def test_reload_with_one_changed_weight_issues_one_edit_and_keeps_the_rest() -> None:
    lab = make_lab(TWO)
    lab.report(dest(11), ServerState.UP, 3)
    lab.report(dest(12), ServerState.UP, 1)
    web2 = lab.pid(dest(12))
    from testkit.lvsd import cluster
    lab.engine.reload(cluster(conf(server("web1", 11, weight=5) + server("web2", 12))))
    assert lab.log.lines.count("ipvs: ipvsadm -e -t 198.51.100.80:80 -r 10.200.0.11:80 -m "
                               "-w 5") == 1
    assert [line for line in lab.log.lines if line.startswith("ipvs: ")][-1].startswith(
        "ipvs: ipvsadm -e")
    assert lab.pid(dest(12)) == web2  # unchanged server: same nanny, same health
    assert lab.weights() == {"10.200.0.11:80": 5, "10.200.0.12:80": 1}
    assert lab.engine.reconcile() == []


def test_a_weight_only_reload_keeps_the_nanny_and_maps_its_weights() -> None:
    lab = make_lab(TWO)
    lab.report(dest(11), ServerState.UP, 3)
    web1, spawned = lab.pid(dest(11)), len(lab.runner.spawned)
    from testkit.lvsd import cluster
    lab.engine.reload(cluster(conf(server("web1", 11, weight=5) + server("web2", 12))))
    assert lab.pid(dest(11)) == web1 and len(lab.runner.spawned) == spawned
    assert lab.runner.terms() == []  # no nanny was stopped
    assert lab.weights() == {"10.200.0.11:80": 5}
    # the old nanny still thinks in weight 3: its full weight is the new 5, a slow-start
    # step below it stays, one above it is capped
    lab.report(dest(11), ServerState.DOWN, None)
    assert lab.weights() == {}
    lab.report(dest(11), ServerState.UP, 1)
    assert lab.weights() == {"10.200.0.11:80": 1}
    lab.report(dest(11), ServerState.UP, 3)
    assert lab.weights() == {"10.200.0.11:80": 5}
    lab.engine.reload(cluster(conf(server("web1", 11, weight=2) + server("web2", 12))))
    lab.report(dest(11), ServerState.UP, 3)
    assert lab.weights() == {"10.200.0.11:80": 2}
    # any other change to the check restarts the nanny, which then knows the weight itself
    lab.engine.reload(cluster(conf(server("web1", 11, weight=2) + server("web2", 12),
                                   extra='send = "HEAD / HTTP/1.0\\r\\n\\r\\n"')))
    assert lab.pid(dest(11)) not in (None, web1) and web1 in lab.runner.terms()


def test_reload_changes_scheduler_and_drops_removed_virtuals() -> None:
    lab = make_lab(TWO)
    from testkit.lvsd import cluster
    lab.engine.reload(cluster(TWO.replace("scheduler = wlc", "scheduler = rr")))
    assert lab.ipvs.dump().services[0].scheduler == "rr"
    lab.engine.reload(cluster(TWO.replace("active = 1\n    address", "active = 0\n    address")))
    assert lab.ipvs.dump().services == ()
    assert sorted(lab.runner.terms()) == sorted(p for p, _ in lab.runner.spawned)


def test_drain_sets_weight_zero_then_removes_at_zero_connections() -> None:
    lab = make_lab(TWO)
    lab.report(dest(11), ServerState.UP, 3)
    conns = {"n": 2}
    real_dump = lab.ipvs.dump

    def dump():
        table = real_dump()
        from dataclasses import replace
        return type(table)(table.services, {k: tuple(
            replace(d, active_conns=conns["n"]) for d in ds) for k, ds in table.dests.items()})

    lab.ipvs.dump = dump  # type: ignore[method-assign]
    ok, message = lab.control(Request("drain", "web", "web1", 30))
    assert ok, message
    assert lab.weights() == {"10.200.0.11:80": 0}
    conns["n"] = 0
    lab.engine.reconcile()
    assert lab.weights() == {}
    lab.report(dest(11), ServerState.UP, 3)
    assert lab.weights() == {}  # drained stays out whatever health says
    ok, _ = lab.control(Request("enable", "web", "10.200.0.11"))
    assert ok and lab.weights() == {"10.200.0.11:80": 3}


def test_drain_deadline_removes_a_busy_entry_and_drains_survive_restart(tmp_path) -> None:
    ipvs, state = FakeIpvs(interfaces=("lo",)), str(tmp_path / "state.json")
    lab = make_lab(TWO, ipvs, state)
    lab.report(dest(11), ServerState.UP, 3)
    real_dump = ipvs.dump

    def busy():
        from dataclasses import replace
        table = real_dump()
        return type(table)(table.services, {k: tuple(replace(d, inact_conns=5) for d in ds)
                                            for k, ds in table.dests.items()})

    ipvs.dump = busy  # type: ignore[method-assign]
    lab.control(Request("drain", "web", "web1", 10))
    assert lab.weights() == {"10.200.0.11:80": 0}
    second = make_lab(TWO, ipvs, state, Clock(lab.clock.now + 1))
    assert dest(11) in second.engine.drains
    second.report(dest(11), ServerState.UP, 3)
    assert second.weights() == {"10.200.0.11:80": 0}
    second.clock.now += 10
    second.engine.reconcile()
    assert second.weights() == {}
    assert second.snapshot(os.getpid())["virtuals"][0]["servers"][0]["drain"]["state"] \
        == "drained"


def test_control_names_unknown_servers() -> None:
    lab = make_lab(TWO)
    ok, message = lab.control(Request("drain", "web", "web9"))
    assert not ok and message == ("virtual web has no active real server 'web9' "
                                  "(servers: web1, web2)")
    ok, message = lab.control(Request("enable", "nope", "web1"))
    assert not ok and message.startswith("no active virtual 'nope'")


def test_shutdown_removes_owned_services_and_stops_nannies() -> None:
    lab = make_lab(TWO)
    foreign = ServiceKey.inet(Proto.TCP, ip_address("198.51.100.99"), 80)
    lab.ipvs.apply([AddService(Service(foreign, "rr"))])
    lab.report(dest(11), ServerState.UP, 3)
    lab.engine.shutdown()
    assert [s.key for s in lab.ipvs.dump().services] == [foreign]
    assert len(lab.runner.terms()) == 2


def test_slow_start_weight_reports_edit_in_place() -> None:
    lab = make_lab(TWO)
    lab.report(dest(11), ServerState.UP, 1)
    lab.report(dest(11), ServerState.UP, 2, "slow start: weight 1 -> 2")
    assert lab.weights() == {"10.200.0.11:80": 2}
    assert 'rs=10.200.0.11:80 vs=web UP weight 1->2 reason="slow start: weight 1 -> 2"' \
        in lab.log.lines
    assert lab.engine.reconcile() == []
    assert [op for op in lab.engine.applier.apply([]) if isinstance(op, EditDest)] == []
