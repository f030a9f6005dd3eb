"""CONTROL/MONITORING data: snapshot + pulse status + live table merged; Apply's signals."""

from __future__ import annotations

import json
import signal
from ipaddress import ip_address

from piranha.gui import monitor, reload
from piranha.gui.monitor import Inputs, Rates
from piranha.ipvs.fake import FakeIpvs
from piranha.ipvs.types import (
    AddDest,
    AddService,
    Dest,
    DestKey,
    Forward,
    Proto,
    Service,
    ServiceKey,
)
from piranha.model import Cluster
from testkit.system import FakeOs

NOW = 1_800_000_000.0
VIP = ip_address("10.0.0.80")
KEY = ServiceKey.inet(Proto.TCP, VIP, 80)


def snapshot(pid: int = 42) -> dict:
    return {
        "version": 1, "pid": pid, "config": "/etc/sysconfig/ha/lvs.cf", "started": NOW - 60,
        "written": NOW - 1, "ops_applied": 3,
        "virtuals": [{
            "name": "web", "service": "-t 10.0.0.80:80", "scheduler": "wlc", "persistent": 0,
            "sorry_server": None,
            "servers": [
                {"name": "web1", "address": "192.168.1.11:80", "state": "UP", "weight": 5,
                 "health_weight": 5, "since": NOW - 30, "reason": "ok", "reported": True,
                 "conns": 7, "drain": None,
                 "nanny": {"pid": 50, "state": "running", "restarts": 0}},
                {"name": "web2", "address": "192.168.1.12:80", "state": "DOWN", "weight": None,
                 "health_weight": None, "since": NOW - 10, "reason": "connect refused",
                 "reported": True, "conns": 0, "drain": None,
                 "nanny": {"pid": 51, "state": "running", "restarts": 0}},
            ]}],
    }


def table():
    fake = FakeIpvs()
    other = ServiceKey.inet(Proto.UDP, VIP, 53)
    assert not fake.apply([
        AddService(Service(KEY)), AddService(Service(other, "rr")),
        AddDest(KEY, Dest(ip_address("192.168.1.11"), 80, Forward.MASQ, weight=5)),
        AddDest(other, Dest(ip_address("192.168.1.53"), 53, Forward.MASQ)),
    ])
    fake.add_traffic(KEY, DestKey(ip_address("192.168.1.11"), 80), conns=12, cps=3, inbps=2048)
    return fake.dump()


def alive(*pids: int):
    return lambda pid: pid in pids


def test_snapshot_and_live_table_are_merged():
    view = monitor.build(Inputs(None, snapshot(), table()), alive(42), NOW)
    assert view.live and view.notes == ()
    assert [s.service for s in view.services] == ["TCP 10.0.0.80:80", "UDP 10.0.0.80:53"]
    web = view.services[0]
    assert (web.name, web.scheduler, web.in_table) == ("web", "wlc", True)
    web1, web2 = web.servers
    assert (web1.name, web1.state, web1.weight, web1.note) == ("web1", "UP", "5", "")
    assert web1.rates.total == 12 and web1.rates.cps == 3 and web1.rates.inbps == 2048
    assert (web2.name, web2.state, web2.weight, web2.note) == ("web2", "DOWN", "-",
                                                                "not in the table")
    foreign = view.services[1]
    assert foreign.name == "" and foreign.servers[0].note == "not in lvs.cf"
    assert view.lvsd.running and view.lvsd.summary == "lvsd running"


def test_without_the_live_table_the_snapshot_alone_with_a_note():
    view = monitor.build(Inputs(None, snapshot(), None, table_error="no IPVS"), alive(42), NOW)
    assert not view.live
    assert view.notes[0].startswith("The live IPVS table is not available (no IPVS)")
    web1 = view.services[0].servers[0]
    assert (web1.weight, web1.rates) == ("5", Rates(active=7))


def test_stale_snapshot_and_pulse_status():
    pulse = {"pid": 7, "role": "master", "state": "active", "since": NOW - 90,
             "faults": ["eth1 link down"], "vips": ["10.0.0.80"], "partner": "10.0.0.2"}
    view = monitor.build(Inputs(pulse, snapshot(), table()), alive(7), NOW)
    assert view.pulse.running and view.pulse.summary == "pulse: active (master)"
    assert "VIPs: 10.0.0.80" in view.pulse.details
    assert "fault: eth1 link down" in view.pulse.details
    assert not view.lvsd.running
    assert any("lvsd is not running" in n for n in view.notes)
    dead = monitor.build(Inputs(pulse, None, None, "No such file"), alive(), NOW)
    assert dead.pulse.summary == "pulse not running" and not dead.pulse.running
    assert dead.lvsd.details == ("no status snapshot: No such file",)


def test_gather_reads_files_and_survives_a_broken_table(tmp_path):
    (tmp_path / "pulse.json").write_text(json.dumps({"pid": 1}))
    (tmp_path / "lvsd.json").write_text(json.dumps(snapshot()))

    def broken():
        raise OSError("IPVS not loaded")

    inputs = monitor.gather(str(tmp_path / "pulse.json"), str(tmp_path / "lvsd.json"), broken)
    assert inputs.pulse == {"pid": 1} and inputs.snapshot is not None
    assert inputs.table is None and inputs.table_error == "IPVS not loaded"
    nothing = monitor.gather(str(tmp_path / "x"), str(tmp_path / "y"), None)
    assert nothing.pulse is None and nothing.snapshot is None and nothing.snapshot_error


def test_human_numbers():
    assert [monitor.human(n) for n in (None, 0, 9999, 12345, 4_100_000, 3 * 10**9)] == \
        ["-", "0", "9999", "12.3K", "4.1M", "3.0G"]


def pidfiles(tmp_path, pulse: int | None, lvsd: int | None):
    p, l_ = tmp_path / "pulse.pid", tmp_path / "lvs.pid"
    for path, pid in ((p, pulse), (l_, lvsd)):
        if pid is not None:
            path.write_text(f"{pid}\n")
    return str(p), str(l_)


def test_apply_signals_pulse_first_then_lvsd_and_says_so(tmp_path):
    p, l_ = pidfiles(tmp_path, 100, 200)
    fake = FakeOs({100, 200})
    result = reload.signal_daemons(p, l_, fake.os())
    assert result.ok and fake.signals == [(100, signal.SIGHUP)]
    assert result.message.startswith("Applied: sent SIGHUP to pulse (pid 100")
    fake = FakeOs({200})  # pulse's pid file is stale
    result = reload.signal_daemons(p, l_, fake.os())
    assert result.ok and fake.signals == [(200, signal.SIGHUP)]
    assert "sent SIGHUP to lvsd (pid 200" in result.message


def test_apply_never_silent_when_nothing_runs_or_kill_fails(tmp_path):
    p, l_ = pidfiles(tmp_path, None, 200)
    result = reload.signal_daemons(p, l_, FakeOs(set()).os())
    assert not result.ok and result.message.startswith("Not applied: neither pulse")
    result = reload.signal_daemons(p, l_, FakeOs({200}, fail=True).os())
    assert not result.ok and "cannot signal lvsd (pid 200)" in result.message


def test_copy_to_backup(tmp_path):
    cluster = Cluster(backup_active=True, backup=ip_address("10.0.0.2"))
    fake = FakeOs(set())
    result = reload.copy_to_backup("/etc/sysconfig/ha/lvs.cf", cluster, "/srv/lvs.cf",
                                   fake.os())
    assert result.ok
    assert fake.runs == [["scp", "-q", "-p", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
                          "--", "/etc/sysconfig/ha/lvs.cf", "root@10.0.0.2:/srv/lvs.cf"]]
    failed = reload.copy_to_backup("/x", cluster, "/x", FakeOs(set(), scp=(1, "denied")).os())
    assert not failed.ok and "FAILED" in failed.message and "denied" in failed.message
    none = reload.copy_to_backup("/x", Cluster(), "/x", fake.os())
    assert not none.ok and len(fake.runs) == 1
    v6 = reload.scp_argv("/x", Cluster(backup_active=True, backup=ip_address("2001:db8::2")),
                         "/y")
    assert v6 is not None and v6[-1] == "root@[2001:db8::2]:/y"
