"""Benchmark: director failover and real-server failure detection, piranha vs keepalived.

    flock build/.test.lock bench/vm-run.sh .venv/bin/python -m bench.failover_bench \\
        [--trials 5] [--setting default|tuned|both] [--peer piranha|keepalived|both]

One VM boot runs every (peer, setting) pair in turn, each on a fresh LAN of namespaces
(lab/netlab.py): the client on br0; two directors, eth0 on br0 (198.51.100.1/.2) and eth1 on
br1 (10.200.0.1/.2); two real servers on br1 (10.200.0.11/.12) whose default route is the NAT
router address 10.200.0.254 that the active director holds. The VIP 198.51.100.10:8080 is a
NAT virtual service in front of both real servers (port 8080: a plain TCP check for both
peers; on port 80 nanny would do Piranha's HTTP check). Both directors run all the time and
keep their own IPVS table programmed and checked (pulse's warm standby; keepalived's checker
runs on both), and both use the IPVS sync daemon on eth1.

Per pair, with the pair running and stable:

* **detection** (TRIALS times, alternating rs1/rs2): the real server's listener is closed
  (connections refused from then on) at phase (n + 0.5) / TRIALS of the check interval after
  the active director's last check of it (its SYN, seen on eth1); the time until the entry is
  gone from the active director's IPVS table (read from /proc/net/ip_vs every 10 ms), split
  into "first check refused" (the RST it got) and "removed after that"; then the server
  listens again and the bench waits until both directors have it back.
* **failover** (TRIALS times): the client asks the VIP in a loop (new connection each time,
  ``--probe-timeout`` for connect and read, 20 ms apart); at phase (n + 0.5) / TRIALS of
  keepalive/advert_int after the standby received the active director's last heartbeat or
  advert, the active director's eth0 and eth1 go down (an in-process ioctl: this instant is t0)
  and its daemon's process group is SIGKILLed. Reported: t0 -> start of the first request that
  succeeds (the figure) and the requests that failed in between; and where the time went: the
  last heartbeat heard, the VIP added on the other director (rtnetlink event), how long after
  (last heard + takeover window) that was, the client's ARP entry moving to the new MAC. Then
  the killed director "reboots": links up, its addresses, IPVS table and sync daemons cleared,
  its daemon started again; it comes back as the standby (pulse never fails back; keepalived
  runs ``nopreempt``), so the next trial kills the other one.

Why set phases: the time to detect is (1 - phase) x interval + the daemon's own reaction, and
with random phases 5 trials leave the median ~0.2 x interval apart by luck alone.

Settings (the same timers on both sides; printed with the table):

* default: pulse ``keepalive = 1``, ``deadtime = 3``, nanny ``timeout = 1``; keepalived VRRPv2
  ``advert_int 1``, TCP_CHECK ``delay_loop 1``, ``connect_timeout 1``;
* tuned: ``keepalive = 0.1``, ``deadtime = 0.3``, ``timeout = 0.2``; VRRPv3 ``advert_int 0.1``,
  ``delay_loop 0.2``, ``connect_timeout 0.2``.

keepalived's backup declares the master dead after 3 x advert_int + skew, skew =
(256 - priority) / 256 x advert_int; priorities 254/253 make the skew 0.01 x advert_int, so
its window equals pulse's deadtime = 3 x keepalive. ``retry 0`` makes one failed TCP_CHECK
take the server out, as one failed nanny probe does (keepalived's default, retry 1 with
delay_before_retry 1 s, adds a second failed check 1 s later). Both peers re-admit a server on
its first good check (``reentry = 0``).

Then bench/activation_profile.py times each step of pulse's activation in this machine, which
accounts for pulse's reaction. Prints a markdown table per bench and writes everything to
$PIRANHA_OUT/failover_bench.json. About 12 minutes in the emulated VM (each pulse restart
costs ~35 s there; keepalived's ~5 s).
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from bench import activation_profile
from lab.bench import (
    Heard,
    IpvsView,
    Lan,
    Member,
    NameServer,
    Prober,
    Pulse,
    RtWatch,
    ask,
    command_line,
    fmt,
    has_vip,
    log,
    markdown,
    reap_orphans,
    save,
    spread,
    subreaper,
    sysctl,
)
from lab.keepalived import Check, Keepalived, Vrrp, director_config
from lab.netlab import set_links
from lab.patience import wait_for

VIP, PORT = "198.51.100.10", 8080
ROUTER = "10.200.0.254"
RIPS = ("10.200.0.11", "10.200.0.12")
MACS = {"d1": "02:00:00:00:01:01", "d2": "02:00:00:00:01:02"}
SERVICE = f"{VIP}:{PORT}"


@dataclass(frozen=True)
class Setting:
    """Equal timers for both peers."""

    name: str
    keepalive: float  # pulse keepalive = VRRP advert_int
    deadtime: float  # pulse deadtime (VRRP: 3 x advert_int + skew)
    timeout: float  # nanny timeout = TCP_CHECK delay_loop = connect_timeout
    vrrp_version: int

    def window(self, peer: str, priority: int) -> float:
        """Seconds of silence after which the standby takes over."""
        if peer == "piranha":
            return self.deadtime
        return 3 * self.keepalive + (256 - priority) / 256 * self.keepalive

    def describe(self, peer: str) -> str:
        if peer == "piranha":
            return (f"keepalive {self.keepalive:g}, deadtime {self.deadtime:g}, "
                    f"timeout {self.timeout:g}")
        return (f"VRRPv{self.vrrp_version} advert_int {self.keepalive:g}, "
                f"delay_loop {self.timeout:g}")


SETTINGS = {
    "default": Setting("default", 1.0, 3.0, 1.0, 2),
    "tuned": Setting("tuned", 0.1, 0.3, 0.2, 3),
}
PRIORITIES = {"d1": 254, "d2": 253}


# ---- the two kinds of director ---------------------------------------------------------------

class Director(Protocol):
    name: str
    member: Member

    def start(self) -> None: ...

    def crash(self) -> None: ...

    def started(self) -> bool: ...

    def tail(self) -> str: ...


class PiranhaDirector:
    """pulse (+ lvsd + nannies) in a director namespace."""

    def __init__(self, member: Member, tmp: Path, name: str, setting: Setting) -> None:
        self.name, self.member = name, member
        args = ["--ip-forward=set", "--lvsd-timeout=120"]
        self.pulse = Pulse(member, tmp, name, piranha_config(setting), args)

    def start(self) -> None:
        self.pulse.start()

    def crash(self) -> None:
        self.pulse.crash()

    def started(self) -> bool:
        return "started as" in self.pulse.text(run_only=True)

    def tail(self) -> str:
        return self.pulse.text()[-4000:]


class KeepalivedDirector:
    """keepalived (parent, VRRP and checker children) in a director namespace."""

    def __init__(self, member: Member, tmp: Path, name: str, setting: Setting) -> None:
        self.name, self.member = name, member
        peer = "198.51.100.2" if name == "d1" else "198.51.100.1"
        vrrp = Vrrp(name, member.ip, peer, PRIORITIES[name], setting.keepalive,
                    setting.vrrp_version, [(f"{VIP}/32", "eth0", "eth0:1"),
                                           (f"{ROUTER}/24", "eth1", "eth1:1")])
        check = Check(delay_loop=setting.timeout, connect_timeout=setting.timeout)
        config = director_config(vrrp, [(VIP, PORT)], [(rip, PORT) for rip in RIPS], check)
        self.k = Keepalived(member.ns.name, tmp / name, config)

    def start(self) -> None:
        self.k.start()

    def crash(self) -> None:
        self.k.crash()

    def started(self) -> bool:
        return "Entering BACKUP STATE" in self.k.text() or "Entering MASTER STATE" in self.k.text()

    def tail(self) -> str:
        return self.k.text(run_only=False)[-4000:]


def piranha_config(s: Setting) -> str:
    servers = "".join(f"""
     server rs{n} {{
         address = {rip}
         active = 1
         weight = 1
     }}""" for n, rip in enumerate(RIPS, 1))
    return f"""\
serial_no = 1
primary = 198.51.100.1
service = lvs
backup_active = 1
backup = 198.51.100.2
heartbeat = 1
heartbeat_port = 539
keepalive = {s.keepalive:g}
deadtime = {s.deadtime:g}
network = nat
nat_router = {ROUTER} eth1:1
nat_nmask = 255.255.255.0
syncdaemon = 1
syncd_iface = eth1
virtual web {{
     active = 1
     address = {VIP} eth0:1
     port = {PORT}
     scheduler = wlc
     protocol = tcp
     timeout = {s.timeout:g}
     reentry = 0
{servers}
}}
"""


# ---- the lab ---------------------------------------------------------------------------------

class Lab:
    """The LAN, its real servers, the two directors of one peer and the table views."""

    def __init__(self, peer: str, setting: Setting, tmp: Path) -> None:
        self.lan = Lan(f"fb{uuid.uuid4().hex[:5]}")
        self.servers: dict[str, NameServer] = {}
        self.lan.create(("br0", "br1"))
        for n in (1, 2):
            name = f"d{n}"
            self.lan.add(name, f"198.51.100.{n}/24", MACS[name])
            self.lan.plug(name, "br1", "eth1", f"10.200.0.{n}/24", f"02:00:00:00:02:0{n}")
            sysctl(self.lan[name].ns, "net.ipv4.ip_forward=1")
        self.lan.add("client", "198.51.100.100/24", "02:00:00:00:01:64")
        for n, rip in enumerate(RIPS, 1):
            rs = self.lan.add(f"rs{n}", f"{rip}/24", f"02:00:00:00:02:1{n}",
                              [f"route add default via {ROUTER}"], bridge="br1")
            self.servers[f"rs{n}"] = NameServer(rs.ns, f"rs{n}", port=PORT)
        kind = PiranhaDirector if peer == "piranha" else KeepalivedDirector
        self.directors: dict[str, Director] = {
            n: kind(self.lan[n], tmp, n, setting) for n in ("d1", "d2")}
        self.views = {n: IpvsView(self.lan[n].ns) for n in ("d1", "d2")}

    def full(self, name: str) -> bool:
        """Both real servers in ``name``'s table."""
        table = self.views[name].table()
        return all(f"TCP {SERVICE} -> {rip}:{PORT}" in table for rip in RIPS)

    def active(self) -> list[str]:
        return [n for n in ("d1", "d2") if has_vip(self.lan[n].ns, VIP)]

    def stable(self, timeout: float = 180.0) -> None:
        """Both daemons up, both tables full, one director with the VIP, the VIP answering."""
        for d in self.directors.values():
            wait_for(f"{d.name} started", d.started, timeout, step=0.2)
        wait_for("both tables programmed", lambda: self.full("d1") and self.full("d2"),
                 timeout, step=0.2)
        wait_for("exactly one director with the VIP", lambda: len(self.active()) == 1,
                 timeout, step=0.2)
        client = self.lan["client"].ns
        wait_for("the VIP answering", lambda: ask(client, VIP, PORT, timeout=0.5), timeout,
                 step=0.2)
        time.sleep(2.0)  # heartbeats/adverts flow both ways; the newcomer has settled
        if len(self.active()) != 1:
            raise AssertionError(f"VIP on {self.active()} after settling")

    def reboot(self, name: str) -> None:
        """What a rebooted director looks like: links up, no VIPs, empty IPVS state."""
        ns = self.lan[name].ns
        set_links(ns, "up", "eth0", "eth1")
        for addr, dev in ((f"{VIP}/32", "eth0"), (f"{ROUTER}/24", "eth1")):
            ns.exec(["ip", "addr", "del", addr, "dev", dev])
        ns.exec(["ipvsadm", "-C"])
        for role in ("master", "backup"):
            ns.exec(["ipvsadm", "--stop-daemon", role])
        reap_orphans()

    def diagnosis(self) -> str:
        out = []
        for name in ("d1", "d2"):
            ns = self.lan[name].ns
            out.append(f"## {name}: addresses\n{ns.exec(['ip', '-o', 'addr']).stdout}")
            out.append(f"## {name}: ipvsadm -Ln\n{ns.exec(['ipvsadm', '-Ln']).stdout}")
            out.append(f"## {name}: log tail\n{self.directors[name].tail()}")
        return "\n".join(out)

    def close(self) -> None:
        for d in self.directors.values():
            d.crash()
        for view in self.views.values():
            view.close()
        for server in self.servers.values():
            server.close()
        self.lan.delete()
        reap_orphans()


# ---- the trials ------------------------------------------------------------------------------

def phase(n: int, trials: int) -> float:
    """Where trial ``n`` strikes within a period: spread evenly, (n + 0.5) / trials (0.1, 0.3,
    ... 0.9 for 5 trials), so the median of the trials is the median over every phase and
    neither peer is luckier than the other (a random phase needs many more trials)."""
    return (n + 0.5) / trials


def detection_trial(lab: Lab, setting: Setting, n: int, trials: int) -> dict[str, float | None]:
    """A real server's listener closes at a set phase after a check of it by the active
    director: seconds until its entry leaves the active table, and how long after the first
    check that failed (the reset the active director received)."""
    (active,) = lab.active()
    rs = f"rs{n % 2 + 1}"
    rip = RIPS[n % 2]
    view = lab.views[active]
    assert view.weight(SERVICE, f"{rip}:{PORT}") is not None
    me = lab.lan[active].ns
    mine = f"10.200.0.{active[1]}"
    checks = Heard(me, "eth1", mine, 6, tcp_flags=0x02, dst=rip)  # the checker's SYNs
    resets = Heard(me, "eth1", rip, 6, tcp_flags=0x04)  # RST: the check refused
    try:
        last_check, start = checks.at_phase(setting.timeout, phase(n, trials))
        lab.servers[rs].close()
        wait_for(f"{rs} out of {active}'s table",
                 lambda: view.weight(SERVICE, f"{rip}:{PORT}") is None, 60, step=0.01)
        gone = time.monotonic()
    finally:
        checks.close()
        resets.close()
    refused = resets.first_after(start)
    lab.servers[rs] = NameServer(lab.lan[rs].ns, rs, port=PORT)
    wait_for(f"{rs} back in both tables", lambda: lab.full("d1") and lab.full("d2"), 60,
             step=0.05)
    time.sleep(1.0)
    return {"took": gone - start, "phase": (start - last_check) / setting.timeout,
            "refused": None if refused is None else refused - start,
            "reaction": None if refused is None else gone - refused}


def failover_trial(lab: Lab, peer: str, setting: Setting, probe_timeout: float, n: int,
                   trials: int) -> dict[str, Any]:
    """Kill the active director; what the standby, the new director and the client saw."""
    (active,) = lab.active()
    other = "d2" if active == "d1" else "d1"
    prober = Prober(lab.lan["client"].ns, VIP, PORT, timeout=probe_timeout)
    watch = RtWatch([lab.lan[other].ns, lab.lan["client"].ns])
    proto, port = (17, 539) if peer == "piranha" else (112, None)
    heard = Heard(lab.lan[other].ns, "eth0", lab.lan[active].ip, proto, port)
    try:
        time.sleep(1.0)
        heard_at, killed = heard.at_phase(setting.keepalive, phase(n, trials))
        set_links(lab.lan[active].ns, "down", "eth0", "eth1")
        lab.directors[active].crash()
        wait_for("the VIP answering from the other director",
                 lambda: prober.first_success_after(killed), 60, step=0.01)
        time.sleep(1.0)
    finally:
        results = prober.stop()
        watch.close()
        heard.close()
    first = prober.first_success_after(killed)
    assert first is not None
    raised = watch.address_added(VIP, killed)
    router = watch.address_added(ROUTER, killed)
    last = heard.last_before(raised if raised is not None else first)
    arp = watch.neighbour(VIP, MACS[other], killed)
    window = setting.window(peer, PRIORITIES[other])

    def rel(t: float | None) -> float | None:
        return None if t is None else t - killed

    trial = {
        "killed": active,
        "phase": (killed - heard_at) / setting.keepalive,
        "took": first - killed,
        "vip_raised": rel(raised),
        "router_raised": rel(router),
        "last_heard": rel(last),
        "window": window,
        # how long after its timer expired the standby had the VIP up
        "reaction": None if raised is None or last is None else raised - last - window,
        "client_arp": rel(arp),
        "failed": sum(1 for s, _, ok in results if killed < s < first and not ok),
        "failed_before_kill": sum(1 for s, _, ok in results if s < killed and not ok),
        "failed_after_first": sum(1 for s, _, ok in results if s > first and not ok),
        "requests": len(results),
    }
    lab.reboot(active)
    lab.directors[active].start()
    lab.stable()
    return trial


def run_pair(peer: str, setting: Setting, trials: int, probe_timeout: float,
             tmp: Path) -> dict[str, Any]:
    """Start the pair, then the detection trials, then the failover trials."""
    log(f"{peer} / {setting.name}: building the lab, starting both directors")
    lab = Lab(peer, setting, tmp / f"{peer}-{setting.name}")
    try:
        t0 = time.monotonic()
        lab.directors["d1"].start()
        if peer == "piranha":  # the primary first, as the kernel test does
            wait_for("d1 started", lab.directors["d1"].started, 120, step=0.2)
        lab.directors["d2"].start()
        lab.stable()
        startup = time.monotonic() - t0
        log(f"{peer} / {setting.name}: stable after {startup:.1f} s; active {lab.active()}")
        detections = []
        for n in range(trials):
            detections.append(detection_trial(lab, setting, n, trials))
            d = detections[-1]
            log(f"  detection {n + 1} (phase {d['phase']:.2f}): {d['took']:.3f} s (first "
                f"check refused {fmt(d['refused'], '', 3)}, removed {fmt(d['reaction'], '', 3)} "
                "after it)")
        failovers = []
        for n in range(trials):
            failovers.append(failover_trial(lab, peer, setting, probe_timeout, n, trials))
            t = failovers[-1]
            log(f"  failover {n + 1} (killed {t['killed']}, phase {t['phase']:.2f}): "
                f"{t['took']:.3f} s; last heard "
                f"{fmt(t['last_heard'], '', 3)}, router {fmt(t['router_raised'], '', 3)}, VIP "
                f"raised {fmt(t['vip_raised'], '', 3)} "
                f"(reaction {fmt(t['reaction'], '', 3)} after the window), client ARP "
                f"{fmt(t['client_arp'], '', 3)}; {t['failed']} failed "
                f"(+{t['failed_before_kill']} before, +{t['failed_after_first']} after)")
        return {"peer": peer, "setting": asdict(setting), "startup": startup,
                "detection": detections, "failover": failovers}
    except BaseException:
        print(lab.diagnosis(), flush=True)
        raise
    finally:
        lab.close()


# ---- report ----------------------------------------------------------------------------------

def _median(trials: list[dict[str, Any]], key: str) -> float | None:
    return spread([t[key] for t in trials if t[key] is not None])["median"]


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    fail_rows, split_rows, det_rows = [], [], []
    for r in results:
        setting = Setting(**r["setting"])
        label = f"{setting.name}: {setting.describe(r['peer'])}"
        trials = r["failover"]
        took = spread([t["took"] for t in trials])
        failed = [t["failed"] for t in trials]
        fail_rows.append([r["peer"], label, fmt(took["median"]), fmt(took["min"]),
                          fmt(took["max"]), f"{int(spread(failed)['median'] or 0)} / "
                          f"{max(failed, default=0)}"])
        split_rows.append([r["peer"], setting.name, fmt(trials[0]["window"], " s", 3),
                           fmt(_median(trials, "last_heard"), " s", 3),
                           fmt(_median(trials, "vip_raised"), " s", 3),
                           fmt(_median(trials, "reaction"), " s", 3),
                           fmt(_median(trials, "client_arp"), " s", 3)])
        det = spread([d["took"] for d in r["detection"]])
        det_rows.append([r["peer"], label, fmt(det["median"]), fmt(det["min"]),
                         fmt(det["max"]), fmt(_median(r["detection"], "refused"), " s", 3),
                         fmt(_median(r["detection"], "reaction"), " s", 3)])
    print(f"\nFailover: active director's links down + SIGKILL of its daemon -> first "
          f"successful request via the VIP, {args.trials} trials (client: new connection every "
          f"20 ms, {args.probe_timeout:g} s timeout)\n")
    print(markdown(["peer", "setting", "median", "min", "max",
                    "failed requests (median / max)"], fail_rows))
    print("\nWhere the failover time goes (medians, seconds from the links going down): the "
          "standby's takeover window, its last heartbeat/advert from the dead director, the VIP "
          "added on it, that minus (last heard + window), the client's ARP entry moving\n")
    print(markdown(["peer", "setting", "window", "last heard", "VIP raised",
                    "reaction after the window", "client ARP updated"], split_rows))
    print(f"\nReal-server failure detection: listener closed -> entry gone from the active "
          f"director's table, {args.trials} trials\n")
    print(markdown(["peer", "setting", "median", "min", "max", "first check refused (median)",
                    "removed after that (median)"], det_rows))
    print(f"\ncommand: flock build/.test.lock bench/vm-run.sh {command_line()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--setting", choices=("default", "tuned", "both"), default="both")
    parser.add_argument("--peer", choices=("piranha", "keepalived", "both"), default="both")
    parser.add_argument("--probe-timeout", type=float, default=0.1,
                        help="client connect/read timeout per request (default 0.1 s)")
    parser.add_argument("--profile-repeat", type=int, default=20,
                        help="runs of each pulse activation step timed (0: skip the profile)")
    args = parser.parse_args()
    subreaper()
    peers = ("piranha", "keepalived") if args.peer == "both" else (args.peer,)
    settings = ("default", "tuned") if args.setting == "both" else (args.setting,)
    version = subprocess.run(["keepalived", "--version"], capture_output=True, text=True)
    log(f"{version.stderr.splitlines()[0] if version.stderr else 'keepalived: ?'}")
    results = []
    with tempfile.TemporaryDirectory(prefix="failover-bench-") as tmp:
        for setting in settings:
            for peer in peers:
                results.append(run_pair(peer, SETTINGS[setting], args.trials,
                                        args.probe_timeout, Path(tmp)))
                with contextlib.suppress(OSError):
                    save("failover_bench.json", {"command": command_line(), "results": results})
    profile = activation_profile.profile(args.profile_repeat) if args.profile_repeat else {}
    report(results, args)
    if profile:
        print("\nWhat pulse's activation steps cost in this machine (bench/activation_profile.py, "
              f"median of {args.profile_repeat}):\n")
        print(activation_profile.table(profile))
    save("failover_bench.json", {"command": command_line(), "results": results,
                                 "probe_timeout": args.probe_timeout,
                                 "activation_profile_ms": profile})


if __name__ == "__main__":
    main()
