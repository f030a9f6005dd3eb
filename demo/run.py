"""The piranha lab: two directors running pulse in front of real servers, every step checked.

Run by ``make demo`` inside the kernel-lab VM (``scripts/demo.sh``), or directly as root on a
host whose kernel has IPVS: ``python -m demo.run [--keep]``. It builds the namespaces of
:mod:`netlab`, starts pulse on both directors with a lab lvs.cf (NAT for HTTP), then shows, one
checked step at a time: requests spread across the real servers; a real server killed and
removed; the active director killed and the backup taking over. The table and the health
(``piranha status``, ``piranha-ipvsadm -Ln``) are printed at each step; an FTP download through
a firewall-mark virtual, passive and active, is checked too. Exit status 0 only if
every step behaved. ``--keep`` leaves the lab running and opens a shell in the client
namespace (``exit`` tears it down).
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from lab.netlab import (
    VIP,
    FtpServer,
    Lan,
    NameServer,
    Netns,
    Pulse,
    addresses,
    ask,
    ftp_fetch,
    has_vip,
    neighbour_mac,
    payload,
    set_links,
)
from lab.patience import START, limit, wait_for

ROUTER = "10.200.0.254"
MACS = {"d1": "02:00:00:00:01:01", "d2": "02:00:00:00:01:02"}
SERVERS = ("rs1", "rs2", "rs3")
FTP_SERVERS = ("ftp1", "ftp2")
KEEPALIVE, DEADTIME, TIMEOUT = 0.5, 2.0, 1.0

CONFIG = f"""\
# the demo's lvs.cf: NAT; HTTP in front of three real servers, FTP in front of two
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
virtual web {{
     active = 1
     address = {VIP} eth0:1
     port = 80
     scheduler = rr
     send = "GET / HTTP/1.0\\r\\n\\r\\n"
     expect = "HTTP"
     timeout = {TIMEOUT}
     reentry = 2
{''.join(f'''     server {name} {{
         address = 10.200.0.1{i}
         active = 1
         weight = 1
     }}
''' for i, name in enumerate(SERVERS, 1))}}}
# FTP: a firewall-mark virtual (port 21 and the passive range carry mark 21; see
# `piranha fwmark-rules`), persistent so a data connection follows its control connection
virtual ftp {{
     active = 1
     address = {VIP} eth0:1
     port = 21
     fwmark = 21
     persistent = 60
     scheduler = rr
     timeout = {TIMEOUT}
     reentry = 2
{''.join(f'''     server {name} {{
         address = 10.200.0.2{i}
         active = 1
     }}
''' for i, name in enumerate(FTP_SERVERS, 1))}}}
"""


def table(ns: Netns) -> set[str]:
    """The real servers in ``ns``'s IPVS table as ``address:port`` (netlink, in-process: a
    command per poll costs seconds in the emulated VM)."""
    from piranha.ipvs.netlink import NetlinkIpvs
    with ns.entered():
        ipvs = NetlinkIpvs()
    try:
        t = ipvs.dump()
        return {f"{d.key.addr}:{d.key.port}" for ds in t.dests.values() for d in ds}
    finally:
        ipvs.close()


class Demo:
    """The lab and its checked steps."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.lan = Lan(f"demo{os.getpid() % 10000}")
        self.servers: dict[str, NameServer | FtpServer] = {}
        self.pulses: dict[str, Pulse] = {}
        self.results: list[tuple[str, bool]] = []

    # ---- output ----------------------------------------------------------------------------

    def step(self, title: str, action: Callable[[], str]) -> bool:
        """Run one step: print its title, then ``[ ok ]`` or ``[FAIL]`` with what happened."""
        print(f"\n==> {title}", flush=True)
        try:
            detail, ok = action(), True
        except Exception as exc:  # noqa: BLE001 - a demo step reports, the next one still runs
            detail, ok = f"{type(exc).__name__}: {exc}", False
        print(f"[{' ok ' if ok else 'FAIL'}] {detail}", flush=True)
        self.results.append((title, ok))
        return ok

    def show(self, director: str) -> None:
        """``piranha status`` and ``piranha-ipvsadm -Ln`` as seen on ``director``."""
        p = self.pulses[director]
        ns = self.lan[director].ns
        for title, argv in (
                (f"piranha status ({director})",
                 ["piranha", "status", "--status-file", str(p.status_file)]),
                (f"piranha-ipvsadm -Ln ({director})", ["piranha-ipvsadm", "-Ln"])):
            out = ns.exec(argv, timeout=START)  # a CLI starts in seconds in the VM
            print(f"    --- {title} ---")
            for line in (out.stdout + out.stderr).rstrip().splitlines():
                print(f"    {line}")
        sys.stdout.flush()

    # ---- the lab ---------------------------------------------------------------------------

    def build(self) -> str:
        lan = self.lan
        lan.create(("br0", "br1"))
        for n in (1, 2):
            lan.add(f"d{n}", f"198.51.100.{n}/24", MACS[f"d{n}"])
            lan.plug(f"d{n}", "br1", "eth1", f"10.200.0.{n}/24", f"02:00:00:00:02:0{n}")
        lan.add("client", "198.51.100.100/24", "02:00:00:00:01:64")
        for i, name in enumerate(SERVERS, 1):
            rs = lan.add(name, f"10.200.0.1{i}/24", f"02:00:00:00:02:1{i}",
                         [f"route add default via {ROUTER}"], bridge="br1")
            self.servers[name] = NameServer(rs.ns, name, port=80)
        for i, name in enumerate(FTP_SERVERS, 1):
            rs = lan.add(name, f"10.200.0.2{i}/24", f"02:00:00:00:02:2{i}",
                         [f"route add default via {ROUTER}"], bridge="br1")
            self.servers[name] = FtpServer(rs.ns, name, {"demo.bin": payload(name)})
        for n in (1, 2):
            name = f"d{n}"
            self.pulses[name] = Pulse(lan[name], self.work, name, CONFIG,
                                      ["--ip-forward=set", f"--lvsd-timeout={limit(START):g}"])
        for n in (1, 2):  # the FTP marks, on both directors (harmless on the standby)
            out = lan[f"d{n}"].ns.exec(["piranha", "fwmark-rules", "-c",
                                        str(self.pulses[f"d{n}"].cf), "--apply"])
            assert out.returncode == 0, f"piranha fwmark-rules --apply on d{n}: {out.stderr}"
        return (f"public LAN 198.51.100.0/24: client .100, directors d1 .1 (primary) and d2 .2; "
                f"private LAN 10.200.0.0/24: web servers {', '.join(SERVERS)} .11-.13, FTP "
                f"servers {', '.join(FTP_SERVERS)} .21-.22 (gateway {ROUTER}, raised by pulse); "
                f"firewall marks from `piranha fwmark-rules --apply`; lvs.cf in {self.work}")

    def start(self) -> str:
        d1, d2 = self.pulses["d1"], self.pulses["d2"]
        t0 = time.monotonic()
        d1.start()
        d1.wait_log("started as master", START)
        d2.start()
        wait_for("d1 holding the VIP", lambda: has_vip(self.lan["d1"].ns), START)
        wait_for("d2's lvsd running", lambda: "started lvsd" in d2.text(run_only=True), START)
        wait_for("the VIP answering",
                 lambda: ask(self.lan["client"].ns, VIP, 80) in SERVERS, 120)
        took = time.monotonic() - t0
        assert not has_vip(self.lan["d2"].ns), "d2 holds the VIP too"
        self.show("d1")
        return (f"d1 active after {took:.1f} s: VIP {VIP} and NAT router {ROUTER} up on d1, "
                "d2 standby with its own table (warm standby)")

    def spread(self, count: int = 30, expect: tuple[str, ...] = SERVERS) -> str:
        client = self.lan["client"].ns
        wait_for("every expected server in rotation",
                 lambda: {ask(client, VIP, 80) for _ in range(2 * len(expect))} == set(expect),
                 60)
        answers = collections.Counter(ask(client, VIP, 80) for _ in range(count))
        failed = answers.pop(None, 0)
        assert failed == 0, f"{failed} of {count} requests failed"
        assert set(answers) == set(expect), f"answered by {dict(answers)}"
        return f"{count} requests from the client: " + ", ".join(
            f"{k} {v}" for k, v in sorted(answers.items())) + ", 0 failed"

    def ftp(self) -> str:
        client = self.lan["client"].ns
        wait_for("both FTP servers in the table", lambda: all(
            f"10.200.0.2{i}:21" in table(self.lan["d1"].ns) for i in (1, 2)), 60)
        lines = []
        for passive in (True, False):
            got = ftp_fetch(client, VIP, "demo.bin", passive)
            server = got.welcome.split()[1]
            assert got.content == payload(server), f"{server}: wrong bytes"
            mode = "passive" if passive else "active"
            where = f", data via {got.pasv_host}" if got.pasv_host else ""
            lines.append(f"{mode}: {len(got.content)} bytes from {server}{where}")
        return "FTP through the fwmark virtual, " + "; ".join(lines)

    def kill_server(self) -> str:
        self.servers["rs2"].close()
        t0 = time.monotonic()
        wait_for("rs2 out of d1's table", lambda: "10.200.0.12:80" not in table(self.lan["d1"].ns),
                 30, step=0.02)
        took = time.monotonic() - t0
        self.show("d1")
        return (f"rs2's web server stopped; lvsd removed it after {took:.1f} s "
                f"(timeout {TIMEOUT:g} s); " + self.spread(expect=("rs1", "rs3")))

    def fail_over(self) -> str:
        client = self.lan["client"].ns
        d1 = self.lan["d1"].ns
        t0 = time.monotonic()
        set_links(d1, "down", "eth0", "eth1")
        self.pulses["d1"].kill()  # reaped at teardown
        failed = 0
        while (answer := ask(client, VIP, 80, timeout=0.2)) is None:
            failed += 1
            assert time.monotonic() - t0 < 30, "nobody answered on the VIP for 30 s"
            time.sleep(0.05)
        took = time.monotonic() - t0
        after = [ask(client, VIP, 80) for _ in range(20)]
        assert after.count(None) == 0, f"{after.count(None)} of 20 requests failed after"
        mac = neighbour_mac(client, VIP)
        assert mac == MACS["d2"], f"the client's ARP entry for the VIP is {mac}"
        self.show("d2")
        return (f"d1 gone (links down, pulse and lvsd killed); {answer} answered through d2 "
                f"after {took:.2f} s (deadtime {DEADTIME:g} s), {failed} requests failed "
                f"before, 0 of 20 after; client's ARP entry for {VIP}: {mac} (d2)")

    def teardown(self) -> None:
        for p in self.pulses.values():
            p.crash()
        for s in self.servers.values():
            s.close()
        self.lan.delete()

    def shell(self) -> None:
        client = self.lan["client"].ns.name
        print(f"\nThe lab is running. A shell in the client namespace ({client}) follows; try:\n"
              f"  curl -s http://{VIP}/      (or: python3 -c ...)\n"
              f"  ip netns exec {self.lan['d2'].ns.name} piranha-ipvsadm -Ln\n"
              f"  logs: {self.work}/d1/pulse.log, {self.work}/d2/pulse.log\n"
              "Type exit to tear the lab down.", flush=True)
        subprocess.run(["ip", "netns", "exec", client, "bash", "-i"], check=False)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--keep", action="store_true",
                   help="leave the lab running and open a shell in the client namespace")
    p.add_argument("--workdir", default=None, help="where lvs.cf and logs go (default: temp)")
    args = p.parse_args(argv)
    if os.geteuid() != 0 or not Path("/proc/net/ip_vs").exists():
        print("demo: needs root and a kernel with IPVS: run `make demo` (it boots a VM)",
              file=sys.stderr)
        return 2
    work = Path(args.workdir or tempfile.mkdtemp(prefix="piranha-demo-"))
    demo = Demo(work)
    try:
        ok = (demo.step("Build the lab: 2 directors, a client, 3 web and 2 FTP servers", demo.build)
              and demo.step("Start pulse on both directors", demo.start))
        if ok:
            demo.step("Requests spread across the real servers", demo.spread)
            demo.step("FTP download through the VIP, passive and active", demo.ftp)
            demo.step("A real server dies and leaves the table", demo.kill_server)
            demo.step("The active director dies; the backup takes over", demo.fail_over)
        passed = sum(ok for _, ok in demo.results)
        print(f"\ndemo: {passed} of {len(demo.results)} steps ok"
              f"{'' if passed == len(demo.results) else ' - FAILED'}", flush=True)
        if passed != len(demo.results):
            for name, p in demo.pulses.items():
                print(f"--- {name}: pulse log (last lines) ---\n{p.text()[-3000:]}")
            print(f"--- d1 addresses ---\n{addresses(demo.lan['d1'].ns)}")
        if args.keep:
            demo.shell()
        return 0 if passed == len(demo.results) and len(demo.results) == 6 else 1
    finally:
        demo.teardown()


if __name__ == "__main__":
    sys.exit(main())
