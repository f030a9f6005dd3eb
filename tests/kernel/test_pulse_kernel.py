"""Two directors with pulse, real IPVS, real servers behind NAT, a client: the failover that
pulse exists for, measured end to end in the VM.

Topology (``lab.netlab.Lan``): public LAN br0 with the client (198.51.100.100) and the
directors' eth0 (198.51.100.1 primary, .2 backup); private LAN br1 with the directors' eth1
(10.200.0.1, .2) and two real servers (10.200.0.11, .12) whose default route is the NAT router
address 10.200.0.254 that pulse raises on the active director. Each real server answers TCP
port 80 with its name.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.e2e import connections
from lab.netlab import (
    VIP,
    EchoServer,
    Lan,
    NameServer,
    Pulse,
    addresses,
    ask,
    has_vip,
    neighbour_mac,
    running,
    set_links,
    spoof_udp,
)
from lab.patience import START, limit, wait_for
from piranha.ipvs.netlink import NetlinkIpvs
from piranha.ipvs.types import DaemonState

KEEPALIVE, DEADTIME = 0.25, 1.0
MAC1, MAC2 = "02:00:00:00:01:01", "02:00:00:00:01:02"
ROUTER = "10.200.0.254"

CONFIG = f"""\
serial_no = 1
primary = 198.51.100.1
service = lvs
backup_active = 1
backup = 198.51.100.2
heartbeat = 1
heartbeat_port = 539
keepalive = {KEEPALIVE}
deadtime = {DEADTIME}
network = nat
nat_router = {ROUTER} eth1:1
nat_nmask = 255.255.255.0
syncdaemon = 1
syncd_iface = eth1
{{extra}}
virtual web {{{{
     active = 1
     address = {VIP} eth0:1
     port = 80
     scheduler = rr
     timeout = 1
     reentry = 2
     server rs1 {{{{
         address = 10.200.0.11
         active = 1
     }}}}
     server rs2 {{{{
         address = 10.200.0.12
         active = 1
     }}}}
}}}}
virtual echo {{{{
     active = 1
     address = {VIP} eth0:1
     port = 7
     scheduler = rr
     send = "ping"
     expect = "ping"
     timeout = 1
     server rs1 {{{{
         address = 10.200.0.11
         active = 1
     }}}}
     server rs2 {{{{
         address = 10.200.0.12
         active = 1
     }}}}
}}}}
"""


@pytest.fixture
def lab() -> Iterator[Lan]:
    net = Lan(f"pk{os.getpid() % 10000}{uuid.uuid4().hex[:4]}")
    servers: list[NameServer | EchoServer] = []
    try:
        net.create(("br0", "br1"))
        for n, mac in ((1, MAC1), (2, MAC2)):
            net.add(f"d{n}", f"198.51.100.{n}/24", mac)
            net.plug(f"d{n}", "br1", "eth1", f"10.200.0.{n}/24", f"02:00:00:00:02:0{n}")
        net.add("client", "198.51.100.100/24", "02:00:00:00:01:64")
        for n in (1, 2):
            rs = net.add(f"rs{n}", f"10.200.0.1{n}/24", f"02:00:00:00:02:1{n}",
                         [f"route add default via {ROUTER}"], bridge="br1")
            servers.append(NameServer(rs.ns, f"rs{n}", port=80))
            servers.append(EchoServer(rs.ns, port=7))
        yield net
    finally:
        for s in servers:
            s.close()
        net.delete()


def directors(lab: Lan, tmp_path: Path, extra: str = "") -> tuple[Pulse, Pulse]:
    config = CONFIG.format(extra=extra)
    # the emulated VM starts Python processes slowly: give lvsd time to program its table
    args = ["--ip-forward=set", f"--lvsd-timeout={limit(START):g}"]
    return (Pulse(lab["d1"], tmp_path, "d1", config, args),
            Pulse(lab["d2"], tmp_path, "d2", config, args))


def diagnosis(lab: Lan) -> str:
    """What a failed test needs to see: tables, addresses, routes, neighbours of every member."""
    out = []
    for name, member in lab.members.items():
        for cmd in (["ipvsadm", "-Ln", "--stats"], ["ip", "-o", "addr"], ["ip", "route"],
                    ["ip", "neigh"], ["sysctl", "net.ipv4.ip_forward"]):
            if cmd[0] == "ipvsadm" and not name.startswith("d"):
                continue
            r = member.ns.exec(cmd)
            out.append(f"## {name}: {' '.join(cmd)}\n{r.stdout}{r.stderr}")
    return "\n".join(out)


def table(lab: Lan, name: str) -> list[str]:
    """The director's IPVS entries as 'VIP:port -> RIP:port' lines."""
    with lab[name].ns.entered():
        ipvs = NetlinkIpvs()
    try:
        t = ipvs.dump()
        return sorted(f"{s.key.addr}:{s.key.port} -> {d.key.addr}:{d.key.port}"
                      for s in t.services for d in t.dests.get(s.key, ()))
    finally:
        ipvs.close()


def sync_roles(lab: Lan, name: str) -> set[DaemonState]:
    with lab[name].ns.entered():
        ipvs = NetlinkIpvs()
    try:
        return {d.state for d in ipvs.daemons()}
    finally:
        ipvs.close()


FULL = [f"{VIP}:7 -> 10.200.0.11:7", f"{VIP}:7 -> 10.200.0.12:7",
        f"{VIP}:80 -> 10.200.0.11:80", f"{VIP}:80 -> 10.200.0.12:80"]


def echo(sock: socket.socket, text: bytes) -> bytes:
    """Send ``text`` on the long-lived connection and read the echo back."""
    sock.sendall(text)
    got = b""
    while len(got) < len(text):
        chunk = sock.recv(4096)
        if not chunk:
            break
        got += chunk
    return got


class Prober:
    """The client asking the VIP every 20 ms in a thread: (monotonic time, answer or None)."""

    def __init__(self, lab: Lan) -> None:
        self.client = lab["client"].ns
        self.results: list[tuple[float, str | None]] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopped.is_set():
            self.results.append((time.monotonic(), ask(self.client, VIP, 80, timeout=0.2)))
            time.sleep(0.02)

    def stop(self) -> list[tuple[float, str | None]]:
        self.stopped.set()
        self.thread.join(5)
        return self.results


def test_two_directors_fail_over_within_deadtime_and_the_primary_stays_passive(
        lab: Lan, tmp_path: Path) -> None:
    p1, p2 = directors(lab, tmp_path)
    client = lab["client"].ns
    with running(p1, p2, diagnose=lambda: diagnosis(lab)):
        # the primary first, the backup a moment later: 0.8.6 left the backup active for good
        # (simultaneous starts are covered on the host, where start-up jitter is small)
        p1.start()
        p1.wait_log("started as master", START)
        p2.start()
        wait_for("the VIP on the primary", lambda: has_vip(lab["d1"].ns), START)
        wait_for("the VIP answering through IPVS",
                 lambda: ask(client, VIP, 80) in ("rs1", "rs2"), 60)
        assert {ask(client, VIP, 80) for _ in range(6)} == {"rs1", "rs2"}  # rr over both
        assert not has_vip(lab["d2"].ns) and ROUTER not in addresses(lab["d2"].ns)
        assert f" {ROUTER}/24 " in addresses(lab["d1"].ns)
        # warm standby: the backup's own table is programmed with both healthy servers
        wait_for("the standby's table", lambda: table(lab, "d2") == FULL, START)
        assert table(lab, "d1") == FULL
        assert sync_roles(lab, "d1") == {DaemonState.MASTER}
        assert sync_roles(lab, "d2") == {DaemonState.BACKUP}
        assert neighbour_mac(client, VIP) == MAC1

        # a long-lived connection through the VIP, known to the backup by the sync daemon
        with client.entered():
            conn = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        conn.settimeout(5)
        conn.connect((VIP, 7))
        for i in range(10):  # IPVS syncs a connection on its 3rd packet, then every 50
            assert echo(conn, b"before %d\n" % i) == b"before %d\n" % i
        prober = Prober(lab)
        # the sync daemon flushes its buffer up to 2 s later (IPVS_SYNC_FLUSH_TIME): wait until
        # the backup holds the connection, or the test would race it, not test the failover
        cport = conn.getsockname()[1]
        wait_for("d2 holding the echo connection (IPVS sync daemon)",
                 lambda: any(c.cport == cport and c.vport == 7
                             for c in connections(lab["d2"].ns)), 30, step=0.1,
                 show=lambda: [c for c in connections(lab["d2"].ns) if c.vport == 7])
        wait_for("the prober's first answers", lambda: len(prober.results) >= 5, 30,
                 step=0.05)
        killed = time.monotonic()
        set_links(lab["d1"].ns, "down", "eth0", "eth1")  # the links go, then the processes
        cut = time.monotonic()  # a request started after this can only be served by d2
        p1.crash()
        wait_for("the VIP answering from the backup",
                 lambda: any(t > cut and r for t, r in prober.results), 30, step=0.02)
        time.sleep(2.0)
        results = prober.stop()
        first = next(t for t, r in results if t > cut and r)
        took = first - killed
        after = [r for t, r in results if t >= first]
        failed_before = sum(1 for t, r in results if killed < t < first and r is None)
        print(f"pulse failover (kernel tier, keepalive {KEEPALIVE} s, deadtime {DEADTIME} s): "
              f"VIP answered by the backup {took:.2f} s after the kill (links cut in "
              f"{cut - killed:.2f} s); {failed_before} requests failed before, "
              f"{after.count(None)} of {len(after)} after")
        assert took <= DEADTIME + 0.5
        assert after.count(None) == 0  # no request fails once the VIP has moved
        assert neighbour_mac(client, VIP) == MAC2
        assert sync_roles(lab, "d2") == {DaemonState.MASTER}
        assert "partner dead: activating lvs" in p2.text()
        # the connection opened through d1 carries on through d2 (syncdaemon = 1)
        assert echo(conn, b"after the failover\n") == b"after the failover\n"
        conn.close()

        # the primary comes back (rebooted: its addresses are gone) and stays passive
        lab["d1"].ns.exec(["ip", "addr", "del", f"{VIP}/32", "dev", "eth0"])
        lab["d1"].ns.exec(["ip", "addr", "del", f"{ROUTER}/24", "dev", "eth1"])
        for dev in ("eth0", "eth1"):
            lab["d1"].ns.exec(["ip", "link", "set", dev, "up"])
        p1.start()
        p1.wait_log("started as master: standby", START)
        wait_for("the returning primary's table", lambda: table(lab, "d1") == FULL, START)
        time.sleep(3 * DEADTIME)
        assert has_vip(lab["d2"].ns) and not has_vip(lab["d1"].ns)
        assert ask(client, VIP, 80) in ("rs1", "rs2")
        # ...unless told --forceactive
        assert p1.stop() == 0
        assert has_vip(lab["d2"].ns)
        p1.start("--forceactive")
        wait_for("the forced primary holding the VIP", lambda: has_vip(lab["d1"].ns), START)
        wait_for("the backup standing down", lambda: not has_vip(lab["d2"].ns), 30)
        wait_for("the VIP answering from the primary again",
                 lambda: ask(client, VIP, 80) in ("rs1", "rs2")
                 and neighbour_mac(client, VIP) == MAC1, 30)


def test_test_start_touches_nothing_and_forged_heartbeats_cause_no_takeover(
        lab: Lan, tmp_path: Path) -> None:
    private = ("primary_private = 10.200.0.1\nbackup_private = 10.200.0.2\n"
               "heartbeat_key = correct-horse-battery-staple-0123")
    p1, p2 = directors(lab, tmp_path, private)
    before = addresses(lab["d1"].ns)
    out = lab["d1"].ns.exec(p1.argv("-t")[4:], timeout=START)
    assert out.returncode == 0, out.stderr
    assert "heartbeat private: 10.200.0.1 -> 10.200.0.2 udp/539, authenticated" in out.stdout
    assert f"would add {ROUTER}/24 on eth1:1 (nat_router)" in out.stdout
    assert addresses(lab["d1"].ns) == before and table(lab, "d1") == []
    assert sync_roles(lab, "d1") == set()

    with running(p1, p2, diagnose=lambda: diagnosis(lab)):
        p1.start()
        p1.wait_log("started as master", START)
        p2.start()
        wait_for("the VIP on the primary", lambda: has_vip(lab["d1"].ns), START)
        p2.wait_log("started as backup", START)
        # cut the public heartbeat path both ways; the private one still carries them
        lab["d1"].ns.exec(["ip", "route", "add", "blackhole", "198.51.100.2/32"])
        lab["d2"].ns.exec(["ip", "route", "add", "blackhole", "198.51.100.1/32"])
        from piranha.heartbeat.packet import AuthCodec, Magic
        wrong = AuthCodec(b"not-the-real-key-at-all", ["198.51.100.1"])
        stopped = bytes.fromhex("bddabdad")
        end = time.monotonic() + 3 * DEADTIME
        while time.monotonic() < end:  # a forger on the LAN posing as the primary
            for payload in (stopped, wrong.encode(Magic.STOPPED, time.time())):
                spoof_udp(lab["client"].ns, "198.51.100.1", "198.51.100.2", 539, payload)
            time.sleep(0.05)
        assert "activating lvs" not in p2.text(), p2.text()
        assert "heartbeat authentication failed" in p2.text()
        assert has_vip(lab["d1"].ns) and not has_vip(lab["d2"].ns)
