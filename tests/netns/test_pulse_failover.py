"""pulse on two directors in namespaces on the host: heartbeats, VIP takeover, ARP, SIGTERM,
SIGHUP, -t. lvsd runs with its in-memory table here (no IPVS on the host); the kernel tier
repeats the failover with the real table and real servers behind the VIP.

Each director also answers TCP on 0.0.0.0:8080 with its name, so the client can tell which
director holds the VIP just by connecting to it.
"""

from __future__ import annotations

import os
import signal
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.netlab import (
    VIP,
    Lan,
    NameServer,
    Pulse,
    addresses,
    ask,
    has_vip,
    neighbour_mac,
    running,
    spoof_udp,
)
from lab.patience import wait_for

KEEPALIVE, DEADTIME = 0.2, 0.6
MAC1, MAC2 = "02:00:00:00:00:01", "02:00:00:00:00:02"

CONFIG = f"""\
serial_no = 1
primary = 198.51.100.1
service = lvs
backup_active = 1
backup = 198.51.100.2
heartbeat = 1
heartbeat_port = 5390
keepalive = {KEEPALIVE}
deadtime = {DEADTIME}
network = direct
{{extra}}
virtual web {{{{
     active = 1
     address = {VIP} eth0:1
     port = 80
     timeout = 1
     server rs1 {{{{
         address = 198.51.100.100
         active = 1
     }}}}
}}}}
"""


@pytest.fixture
def lan() -> Iterator[Lan]:
    net = Lan(f"pp{os.getpid() % 10000}{uuid.uuid4().hex[:4]}")
    try:
        net.create()
        net.add("d1", "198.51.100.1/24", MAC1)
        net.add("d2", "198.51.100.2/24", MAC2)
        net.add("client", "198.51.100.100/24", "02:00:00:00:00:64")
        yield net
    finally:
        net.delete()


@pytest.fixture
def names(lan: Lan) -> Iterator[None]:
    servers = [NameServer(lan["d1"].ns, "d1"), NameServer(lan["d2"].ns, "d2")]
    yield
    for s in servers:
        s.close()


def pair(lan: Lan, tmp_path: Path, extra: str = "", args1: tuple[str, ...] = (),
         args2: tuple[str, ...] = ()) -> tuple[Pulse, Pulse]:
    config = CONFIG.format(extra=extra)
    fake = ["--backend=fake"]
    return (Pulse(lan["d1"], tmp_path, "d1", config, list(args1), fake),
            Pulse(lan["d2"], tmp_path, "d2", config, list(args2), fake))


def test_started_together_the_primary_is_active_and_the_backup_takes_over_on_a_crash(
        lan: Lan, tmp_path: Path, names: None) -> None:
    p1, p2 = pair(lan, tmp_path)
    client = lan["client"].ns
    with running(p1, p2):
        p2.start()  # the backup first: it must still end up standby
        p1.start()
        wait_for("the VIP on the primary", lambda: has_vip(lan["d1"].ns), 20)
        wait_for("the VIP answering from d1", lambda: ask(client, VIP) == "d1", 10)
        assert not has_vip(lan["d2"].ns)
        assert "STARTING PULSE AS MASTER" in p1.text()
        p2.wait_log("STARTING PULSE AS BACKUP", 20)  # started first, but may log later
        assert f" {VIP}/32 " in addresses(lan["d1"].ns) and "eth0:1" in addresses(lan["d1"].ns)
        assert neighbour_mac(client, VIP) == MAC1
        assert (p1.state()["role"], p1.state()["state"]) == ("master", "active")
        assert (p2.state()["role"], p2.state()["partner"]) == ("backup", "198.51.100.1")
        time.sleep(3 * DEADTIME)  # steady: nobody flaps
        assert not has_vip(lan["d2"].ns) and has_vip(lan["d1"].ns)

        p1.crash()
        killed = time.monotonic()
        wait_for("the VIP answering from d2", lambda: ask(client, VIP, timeout=0.1) == "d2", 10,
                 step=0.01)
        took = time.monotonic() - killed
        print(f"pulse failover (host tier, deadtime {DEADTIME}): VIP answered by the backup "
              f"after {took:.2f} s")
        assert took <= DEADTIME + 1.5  # the kernel tier holds the tighter deadtime + 0.5 s
        assert neighbour_mac(client, VIP) == MAC2
        assert "partner dead: activating lvs" in p2.text()

        # the primary returns and stays passive (no fail-back without --forceactive)
        p1.start()
        p1.wait_log("STARTING PULSE AS MASTER", 20)
        time.sleep(4 * DEADTIME)
        assert has_vip(lan["d2"].ns) and not has_vip(lan["d1"].ns)
        assert ask(client, VIP) == "d2"


def test_sigterm_hands_over_at_once_and_removes_only_what_pulse_added(
        lan: Lan, tmp_path: Path, names: None) -> None:
    p1, p2 = pair(lan, tmp_path)
    with running(p1, p2):
        p1.start()
        p2.start()
        wait_for("the VIP on the primary", lambda: has_vip(lan["d1"].ns), 20)
        p2.wait_log("started lvsd", 20)
        t0 = time.monotonic()
        assert p1.stop() == 0
        wait_for("the VIP on the backup", lambda: has_vip(lan["d2"].ns), 10, step=0.01)
        # the last STOPPED heartbeat makes the backup take over before deadtime runs out
        assert time.monotonic() - t0 < 5
        assert "198.51.100.1/24" in addresses(lan["d1"].ns) and not has_vip(lan["d1"].ns)
        assert "Terminating due to signal 15" in p1.text()
        assert not (p1.dir / "pulse.pid").exists() and p1.state() == {}


def test_forceactive_primary_takes_the_vip_back(lan: Lan, tmp_path: Path, names: None) -> None:
    p1, p2 = pair(lan, tmp_path, args1=("--forceactive",))
    with running(p1, p2):
        p2.start()
        wait_for("the lone backup taking the VIP", lambda: has_vip(lan["d2"].ns), 20)
        p1.start()
        wait_for("the forced primary taking it back", lambda: has_vip(lan["d1"].ns), 20)
        wait_for("the backup standing down", lambda: not has_vip(lan["d2"].ns), 10)
        assert "partner active: deactivating LVS" in p2.text()
        assert neighbour_mac(lan["client"].ns, VIP) in (MAC1, None)


STOPPED = bytes.fromhex("bddabdad")  # Piranha's LVS STOPPED magic, little-endian


def forge(lan: Lan, count: int = 10) -> None:
    """From the client: STOPPED heartbeats to the backup claiming to come from the primary,
    plain and in the authenticated format with a wrong key."""
    from piranha.heartbeat.packet import AuthCodec, Magic
    wrong = AuthCodec(b"not-the-real-key-at-all", ["198.51.100.1"])
    for _ in range(count):
        for payload in (STOPPED, wrong.encode(Magic.STOPPED, time.time())):
            spoof_udp(lan["client"].ns, "198.51.100.1", "198.51.100.2", 5390, payload)
        time.sleep(0.02)


@pytest.mark.parametrize("authenticated", [True, False])
def test_forged_heartbeats_cause_no_takeover_in_authenticated_mode(
        lan: Lan, tmp_path: Path, names: None, authenticated: bool) -> None:
    key = "heartbeat_key = 0123456789abcdef0123456789abcdef" if authenticated else ""
    p1, p2 = pair(lan, tmp_path, extra=key)
    with running(p1, p2):
        p1.start()
        p2.start()
        wait_for("the VIP on the primary", lambda: has_vip(lan["d1"].ns), 20)
        p2.wait_log("started lvsd", 20)
        time.sleep(2 * DEADTIME)
        forge(lan)
        time.sleep(2 * DEADTIME)
        took_over = "activating lvs" in p2.text()
        if authenticated:
            assert not took_over, p2.text()
            assert "heartbeat authentication failed" in p2.text()
            assert "unauthenticated heartbeat in authenticated mode" in p2.text()
            assert has_vip(lan["d1"].ns) and not has_vip(lan["d2"].ns)
            assert "readable by other users" not in p1.text()  # lvs.cf is mode 600 here
        else:  # the control: Piranha's format believes the forger
            assert took_over, p2.text()


def test_sighup_adds_a_new_vip_and_a_broken_file_changes_nothing(
        lan: Lan, tmp_path: Path, names: None) -> None:
    p1, p2 = pair(lan, tmp_path)
    with running(p1, p2):
        p1.start()
        p2.start()
        wait_for("the VIP on the primary", lambda: has_vip(lan["d1"].ns), 20)
        second = CONFIG.format(extra="") + CONFIG.format(extra="").split("network = direct\n")[1]\
            .replace("virtual web", "virtual web2").replace(f"{VIP} eth0:1",
                                                              "198.51.100.11 eth0:2")
        p1.cf.write_text(second)
        p1.signal(signal.SIGHUP)
        wait_for("the new VIP", lambda: has_vip(lan["d1"].ns, "198.51.100.11"), 10)
        assert has_vip(lan["d1"].ns)
        p1.cf.write_text("primary = 198.51.100.1\nvirtual broken {\n     active = maybe\n}\n")
        p1.signal(signal.SIGHUP)
        p1.wait_log("is invalid; the running configuration stays", 10)
        assert has_vip(lan["d1"].ns) and has_vip(lan["d1"].ns, "198.51.100.11")
        p1.cf.write_text(CONFIG.format(extra=""))
        p1.signal(signal.SIGHUP)
        wait_for("the dropped VIP gone", lambda: not has_vip(lan["d1"].ns, "198.51.100.11"), 10)
        assert has_vip(lan["d1"].ns)


def test_test_start_goes_through_the_motions_and_touches_nothing(
        lan: Lan, tmp_path: Path) -> None:
    p1, _ = pair(lan, tmp_path)
    before = addresses(lan["d1"].ns)
    out = lan["d1"].ns.exec(p1.argv("-t")[4:])
    assert out.returncode == 0, out.stderr
    assert "this director is the master" in out.stdout
    assert "heartbeat public: 198.51.100.1 -> 198.51.100.2 udp/5390" in out.stdout
    assert f"would add {VIP}/32 on eth0:1 (virtual web)" in out.stdout
    assert "lvs: would run: ipvsadm -A -t 198.51.100.10:80 -s wlc" in out.stdout
    assert addresses(lan["d1"].ns) == before
    assert not (p1.dir / "pulse.pid").exists() and not p1.status_file.exists()


def test_test_start_of_a_backup_with_backup_active_0_says_what_the_daemon_does(
        lan: Lan, tmp_path: Path) -> None:
    _, p2 = pair(lan, tmp_path)
    p2.cf.write_text(CONFIG.format(extra="").replace("backup_active = 1", "backup_active = 0"))
    plan = lan["d2"].ns.exec(p2.argv("-t")[4:])
    assert (plan.returncode, plan.stdout.splitlines()) == (0, [
        f"pulse: {p2.cf}: this director is the backup",
        "pulse: this director is the backup and backup_active = 0: nothing to do"])
    run = lan["d2"].ns.exec(p2.argv("-n")[4:])
    assert (run.returncode, run.stderr.splitlines()[-1]) == (
        0, "pulse: this director is the backup and backup_active = 0: nothing to do")
    assert "deadtime" not in plan.stdout + plan.stderr + run.stderr


def test_start_errors_name_the_problem(lan: Lan, tmp_path: Path) -> None:
    p1, _ = pair(lan, tmp_path)
    p1.cf.write_text(CONFIG.format(extra="").replace("eth0:1", "eth7:1"))
    out = lan["d1"].ns.exec(p1.argv("-n")[4:])
    assert out.returncode == 1
    assert "virtual web: address 198.51.100.10 is on device eth7:1, but this director has " \
           "no interface eth7" in out.stderr
    p1.cf.write_text(CONFIG.format(extra="").replace("active = 1\n     address",
                                                     "active = 0\n     address"))
    out = lan["d1"].ns.exec(p1.argv("-n")[4:])
    assert (out.returncode, out.stderr.splitlines()[-1]) == (
        1, f"pulse: no active lvs services defined in {p1.cf}")
    p1.cf.write_text(CONFIG.format(extra=""))
    with lan["d1"].ns.entered():
        taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("198.51.100.1", 5390))
    try:
        out = lan["d1"].ns.exec(p1.argv("-n")[4:])
    finally:
        taken.close()
    assert out.returncode == 1
    assert "failed to bind to heartbeat address 198.51.100.1 port 5390" in out.stderr
    assert "pulse: cannot create heartbeat socket. running as root?" in out.stderr


def test_monitor_links_hands_over_when_the_public_nic_dies(tmp_path: Path) -> None:
    """Heartbeats also run on a private LAN: with its public NIC down the primary still talks
    to the backup, so only monitor_links makes it step down and the backup take over."""
    net = Lan(f"pm{os.getpid() % 10000}{uuid.uuid4().hex[:4]}")
    extra = ("primary_private = 10.200.0.1\nbackup_private = 10.200.0.2\nmonitor_links = 1")
    try:
        net.create(("br0", "br1"))
        for n, mac in ((1, MAC1), (2, MAC2)):
            net.add(f"d{n}", f"198.51.100.{n}/24", mac)
            net.plug(f"d{n}", "br1", "eth1", f"10.200.0.{n}/24", f"02:00:00:00:02:0{n}")
        p1, p2 = pair(net, tmp_path, extra=extra)
        with running(p1, p2):
            p1.start()
            p2.start()
            wait_for("the VIP on the primary", lambda: has_vip(net["d1"].ns), 20)
            p2.wait_log("started as backup", 20)
            time.sleep(2 * DEADTIME)
            net["d1"].ns.exec(["ip", "link", "set", "eth0", "down"])
            took = wait_for("the backup taking over", lambda: has_vip(net["d2"].ns), 10, 0.01)
            assert "Primary NIC: link down (eth0)" in p1.text()
            assert "local link failure: deactivating LVS" in p1.text()
            assert p1.state()["state"] == "blocked" and p1.state()["faults"] == ["link"]
            assert not has_vip(net["d1"].ns)
            print(f"monitor_links: backup active {took:.2f} s after the primary's NIC went down")
            net["d1"].ns.exec(["ip", "link", "set", "eth0", "up"])
            p1.wait_log("Local NIC link(s) restored: Pulse enabled", 10)
            time.sleep(2 * DEADTIME)
            assert has_vip(net["d2"].ns) and not has_vip(net["d1"].ns)  # no fail-back
    finally:
        net.delete()


def lvsd_pid(p: Pulse) -> int:
    return int((p.dir / "lvs.pid").read_text())


def test_a_crashing_lvsd_is_restarted_and_only_repeated_failures_hand_over(
        lan: Lan, tmp_path: Path, names: None) -> None:
    p1, p2 = pair(lan, tmp_path)
    with running(p1, p2):
        p1.start()
        p2.start()
        wait_for("the VIP on the primary", lambda: has_vip(lan["d1"].ns), 20)
        p2.wait_log("started as backup", 20)
        wait_for("lvsd's pid file", lambda: (p1.dir / "lvs.pid").exists(), 20)
        first = lvsd_pid(p1)
        os.kill(first, signal.SIGKILL)  # one crash: restarted, the kernel table kept serving
        wait_for("a new lvsd", lambda: (p1.dir / "lvs.pid").exists()
                 and lvsd_pid(p1) != first and "failure 1 in a row" in p1.text(), 20)
        time.sleep(2 * DEADTIME)
        assert has_vip(lan["d1"].ns) and not has_vip(lan["d2"].ns)
        assert "deactivating" not in p1.text()
        for n in (2, 3):  # crashes in a row: the third hands over to the partner
            pid = lvsd_pid(p1)
            os.kill(pid, signal.SIGKILL)
            wait_for(f"crash {n} noticed", lambda n=n: f"failure {n} in a row" in p1.text(), 20)
            if n < 3:
                wait_for("the next lvsd", lambda pid=pid: (p1.dir / "lvs.pid").exists()
                         and lvsd_pid(p1) != pid, 20)
        wait_for("the backup taking over", lambda: has_vip(lan["d2"].ns), 10)
        assert "lvsd failed 3 times in a row: deactivating LVS" in p1.text()
        assert not has_vip(lan["d1"].ns)
        # the partner's RUNNING clears the fault (Piranha's rule), lvsd keeps being restarted
        # with backoff, and nothing fails back
        p1.wait_log("partner active: lvsd failure cleared", 10)
        wait_for("lvsd started again", lambda: p1.text().count("started lvsd") == 4, 20)
        assert p1.state()["state"] == "standby" and has_vip(lan["d2"].ns)


def scrape(ns, port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """GET /metrics on 127.0.0.1:port inside ``ns``; every sample by name and labels (none
    while nothing listens there yet)."""
    from prometheus_client.parser import text_string_to_metric_families

    with ns.entered():
        sock = socket.socket()
    try:
        sock.settimeout(10)
        sock.connect(("127.0.0.1", port))
    except ConnectionRefusedError:
        sock.close()
        return {}
    with sock:
        sock.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200"), head
    return {(s.name, frozenset(s.labels.items())): s.value
            for f in text_string_to_metric_families(body.decode()) for s in f.samples}


def metric(samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def test_pulse_and_lvsd_metrics_show_roles_heartbeats_forgeries_and_the_takeover(
        lan: Lan, tmp_path: Path) -> None:
    extra = ("heartbeat_key = 0123456789abcdef0123456789abcdef\n"
             "pulse_metrics = 127.0.0.1:9748\nlvsd_metrics = 127.0.0.1:9747")
    p1, p2 = pair(lan, tmp_path, extra=extra)
    d1, d2 = lan["d1"].ns, lan["d2"].ns
    state = "piranha_pulse_state"
    with running(p1, p2):
        p1.start()
        p2.start()
        wait_for("d1 master and d2 backup in their metrics",
                 lambda: (metric(scrape(d1, 9748), state), metric(scrape(d2, 9748), state))
                 == (2, 1), 30)
        wait_for("heartbeats counted both ways",
                 lambda: all(metric(scrape(ns, 9748), "piranha_pulse_heartbeats_received_total")
                             for ns in (d1, d2)), 20)
        assert metric(scrape(d2, 9748), "piranha_pulse_partner_last_seen_timestamp_seconds") \
            > time.time() - 60
        wait_for("d1's lvsd serving its metrics",
                 lambda: metric(scrape(d1, 9747), "piranha_lvsd_reconciles_total"), 30)
        forge(lan)
        wait_for("the forgeries counted by reason", lambda: metric(
            scrape(d2, 9748), "piranha_pulse_heartbeats_rejected_total", reason="bad_mac"), 20)
        assert metric(scrape(d2, 9748), "piranha_pulse_heartbeats_rejected_total",
                      reason="not_authenticated")
        assert metric(scrape(d2, 9748), state) == 1  # no takeover
        p1.crash()
        wait_for("d2 master in its metrics", lambda: metric(scrape(d2, 9748), state) == 2, 20)
        assert metric(scrape(d2, 9748), "piranha_pulse_transitions_total", state="active") == 1
        assert metric(scrape(d2, 9748), "piranha_pulse_lvsd_up") == 1
