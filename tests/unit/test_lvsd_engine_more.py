"""More engine cases: owned services across restarts, timeouts, reload of servers, adoption."""

from __future__ import annotations

import functools
import time
from ipaddress import ip_address

from piranha.health.types import ServerState
from piranha.ipvs.fake import FakeIpvs
from piranha.ipvs.types import AddDest, Dest, Forward, Proto, ServiceKey, Timeouts
from piranha.supervise.zygote import ZygoteRunner
from testkit.lvsd import VIP, cluster, conf, dest, make_lab, server

KEY = ServiceKey.inet(Proto.TCP, ip_address(VIP), 80)
TWO = conf(server("web1", 11, weight=3) + server("web2", 12))


def test_a_service_dropped_while_lvsd_was_down_is_removed_at_start(tmp_path) -> None:
    ipvs, state = FakeIpvs(), str(tmp_path / "state.json")
    make_lab(TWO, ipvs, state)
    other = TWO.replace("198.51.100.80", "198.51.100.81").replace("virtual web", "virtual www")
    second = make_lab(other, ipvs, state)
    assert [s.key.addr for s in ipvs.dump().services] == [ip_address("198.51.100.81")]
    assert second.engine.retired == set()


def test_shutdown_empties_the_table_and_an_inactive_virtual_gets_no_nanny(tmp_path) -> None:
    ipvs = FakeIpvs()
    lab = make_lab(TWO, ipvs, str(tmp_path / "s"))
    lab.engine.shutdown()
    assert ipvs.dump().services == ()
    third = make_lab(TWO.replace("active = 1\n    address", "active = 0\n    address"), ipvs)
    assert third.engine.specs == {}


def test_timeouts_are_set_when_given_and_changed_on_reload() -> None:
    lab = make_lab(conf(server("web1", 11), globals_="tcp_timeout = 600\nhard_shutdown = 0"))
    assert lab.ipvs.timeouts() == Timeouts(600, 120, 300)
    assert "ipvs: ipvsadm --set 600 0 0" in lab.log.lines
    lab.engine.reload(cluster(conf(server("web1", 11), globals_="tcp_timeout = 700")))
    assert lab.ipvs.timeouts().tcp == 700
    plain = make_lab(conf(server("web1", 11)))
    assert not any("--set" in line for line in plain.log.lines)


def test_reload_adds_and_removes_servers_and_keeps_the_others() -> None:
    lab = make_lab(TWO)
    lab.report(dest(11), ServerState.UP, 1)
    lab.report(dest(12), ServerState.UP, 1)
    web1 = lab.pid(dest(11))
    lab.engine.reload(cluster(conf(server("web1", 11, weight=3) + server("web3", 13))))
    assert lab.pid(dest(11)) == web1
    assert dest(12) not in lab.engine.specs and dest(13) in lab.engine.specs
    assert lab.weights() == {"10.200.0.11:80": 1}
    assert lab.engine.health[dest(13)].state is ServerState.DOWN


def test_reload_changing_a_check_restarts_only_that_nanny_and_keeps_its_state() -> None:
    lab = make_lab(TWO)
    lab.report(dest(11), ServerState.UP, 1)
    web1, web2 = lab.pid(dest(11)), lab.pid(dest(12))
    lab.engine.reload(cluster(TWO.replace("timeout = 1", "timeout = 2")))
    assert lab.pid(dest(11)) != web1 and lab.pid(dest(12)) != web2
    assert lab.adopted[dest(11)] == 1 and lab.adopted[dest(12)] is None
    assert lab.weights() == {"10.200.0.11:80": 1}
    assert lab.engine.reconcile() == []


def test_adopting_a_quiesced_entry_and_a_stray_weight_zero() -> None:
    ipvs = FakeIpvs()
    quiet = conf(server("web1", 11, weight=3) + server("web2", 12, weight=3),
                 extra="quiesce_server = 1")
    first = make_lab(quiet, ipvs)
    first.report(dest(11), ServerState.UP, 3)
    first.report(dest(11), ServerState.DOWN, 0)
    second = make_lab(quiet, ipvs)
    assert second.engine.health[dest(11)].state is ServerState.DOWN
    assert second.weights() == {"10.200.0.11:80": 0}
    ipvs.apply([AddDest(KEY, Dest(ip_address("10.200.0.12"), 80, Forward.MASQ, 0))])
    plain = make_lab(TWO, ipvs)
    assert "10.200.0.12:80" not in plain.weights()  # weight 0 nobody asked for: repaired


def test_status_snapshot_shape() -> None:
    lab = make_lab(conf(server("web1", 11), extra="sorry_server = 10.200.0.99"))
    lab.clock.now += 2
    lab.engine.reconcile()
    snap = lab.snapshot(1234)
    vs = snap["virtuals"][0]
    assert (snap["pid"], vs["name"], vs["service"]) == (1234, "web", "-t 198.51.100.80:80")
    assert vs["sorry_server"] == {"address": "10.200.0.99", "in_table": True}
    rs = vs["servers"][0]
    assert (rs["name"], rs["address"], rs["state"], rs["weight"]) == ("web1", "10.200.0.11:80",
                                                                      "DOWN", None)
    assert rs["nanny"]["state"] == "running" and rs["drain"] is None


def test_zygote_spawns_a_batch() -> None:
    runner = ZygoteRunner()
    try:
        pids = runner.spawn_many([(functools.partial(int, str(n)), []) for n in range(3)])
        exits: dict[int, int] = {}
        deadline = time.monotonic() + 10
        while len(exits) < 3 and time.monotonic() < deadline:
            exits.update(runner.reap())
            time.sleep(0.01)
        assert [exits[p] >> 8 for p in pids] == [0, 1, 2]
    finally:
        runner.close()
