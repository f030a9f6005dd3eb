"""Soak benchmark (issue 13): long runs under churn, with memory, fds and correctness sampled.

    .venv/bin/python -m bench.soak_bench [--minutes 30] [--servers 60] [--flap-every 2]
        [--cut-every 20] [--sample-every 60]
    flock build/.test.lock bench/vm-run.sh .venv/bin/python -m bench.soak_bench --minutes 30

Two soaks run side by side for ``--minutes``, each on namespaces of its own (root, iproute2):

* **lvsd under flapping**: lvsd with ``--servers`` real servers (TCP listeners on 127.0.0.1
  in the lvsd namespace, nanny ``timeout = 1``, ``reentry = 1``); every ``--flap-every`` s
  one of them, chosen at random, stops or starts listening (at most half are down). After
  each flap the bench waits until the table shows it (entry present with its weight when
  listening, absent when not), then compares the whole table with which listeners are up.
  The table is the kernel's IPVS table (``/proc/net/ip_vs``) where the kernel has IPVS (the
  VM); elsewhere lvsd runs on its in-memory table (``--backend fake``) and the table read is
  the one lvsd's status snapshot shows.
* **pulse under failovers**: two directors (lvsd ``--backend fake`` behind each pulse,
  authenticated heartbeats, keepalive 0.5 s, deadtime 2 s); every ``--cut-every`` s the links
  of one director go down (alternately the active one, so the standby takes over, and the
  standby, so it activates alone), and come back half a cut period later, when the two must
  agree again on one holder of the VIP. Every ``--crash-every``-th cycle the active director
  crashes instead (SIGKILL of its pulse, lvsd and nannies) and reboots. Every 100 ms the
  bench records which directors with links up hold the VIP: two holders is an overlap; one
  lasting longer than deadtime, or a cycle ending without exactly one holder, is a split
  brain.

Every ``--sample-every`` s: RSS and open fds of lvsd, of each pulse and of each pulse's lvsd;
the private memory of a nanny (USS, the mean over all of them: RSS counts the pages a nanny
shares with its zygote), the nannies' fds summed, and how many there are (the zygote
included). At the end it prints the samples and, per series, the mean of the first and last
quarter of the run (the first sample is the warm-up baseline) and the slope per hour; "flat"
means a process's memory grew less than 1 MiB (a nanny's: 0.1 MiB) and the median fd count
did not change. Writes the figures to $PIRANHA_OUT/soak.json when set. Exit status 1 when any
flap did not converge, any table disagreed with the listeners, or a split brain was seen.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.bench import IpvsView, markdown, save
from lab.lvsd import Listener, Lvsd, subreaper
from lab.netlab import Lan, Pulse, set_links
from lab.netns import Netns, delete, ip
from lab.patience import TimedOut, wait_for

VIP, SERVICE_PORT, FIRST_PORT = "198.51.100.80", 8080, 20001
DIRECTOR_VIP = "198.51.100.10"
KEY = "soak-bench-shared-key-0123"


# ---- processes -------------------------------------------------------------------------------

def _children() -> dict[int, list[int]]:
    """ppid -> pids of every process (one pass over /proc)."""
    out: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            out.setdefault(ppid, []).append(int(entry))
    return out


def descendants(pid: int, tree: dict[int, list[int]]) -> list[int]:
    found, todo = [], [pid]
    while todo:
        kids = tree.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def uss_mib(pid: int) -> float:
    """Private memory (smaps_rollup): what a forked nanny does not share with its zygote."""
    kib = 0
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                kib += int(line.split()[1])
    return kib / 1024


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def comm_is(pid: int, module: str) -> bool:
    with contextlib.suppress(OSError):
        return module in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    return False


# ---- the lvsd soak ---------------------------------------------------------------------------

def lvsd_config(count: int) -> str:
    servers = "".join(f"    server s{i} {{\n        address = 127.0.0.1\n        active = 1\n"
                      f"        port = {FIRST_PORT + i}\n        weight = {1 + i % 5}\n    }}\n"
                      for i in range(count))
    return (f"primary = 127.0.0.1\nnetwork = nat\nhard_shutdown = 0\nvirtual soak {{\n"
            f"    active = 1\n    address = {VIP} lo:1\n    port = {SERVICE_PORT}\n"
            f"    scheduler = wlc\n    timeout = 1\n    reentry = 1\n{servers}}}\n")


def kernel_has_ipvs(ns: Netns) -> bool:
    return ns.exec(["test", "-e", "/proc/net/ip_vs"]).returncode == 0


@dataclass
class LvsdSoak:
    """lvsd in its own namespace, its listeners, the truth, and what was seen."""

    ns: Netns
    tmp: Path
    count: int
    rng: random.Random
    kernel: bool = False
    listeners: dict[str, Listener] = field(default_factory=dict)
    up: dict[str, bool] = field(default_factory=dict)
    flaps: int = 0
    converged: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    lvsd: Lvsd | None = None
    view: IpvsView | None = None

    def start(self) -> None:
        ip("netns", "add", self.ns.name)
        ip("-n", self.ns.name, "link", "set", "lo", "up")
        self.kernel = kernel_has_ipvs(self.ns)
        for i in range(self.count):
            self.listeners[f"s{i}"] = Listener(self.ns, "127.0.0.1", FIRST_PORT + i)
            self.up[f"s{i}"] = True
        extra = [] if self.kernel else ["--backend", "fake"]
        self.lvsd = Lvsd(self.ns, self.tmp, lvsd_config(self.count), args=extra)
        self.lvsd.start()
        if self.kernel:
            self.view = IpvsView(self.ns)
        wait_for(f"all {self.count} servers in the table", self.agrees, 300, step=0.2,
                 show=self.disagreements)

    def table(self) -> dict[str, int | None]:
        """Server name -> weight in the table (None: absent)."""
        assert self.lvsd is not None
        if self.view is not None:
            kernel = self.view.table()
            prefix = f"TCP {VIP}:{SERVICE_PORT} -> 127.0.0.1:"
            return {f"s{i}": kernel.get(f"{prefix}{FIRST_PORT + i}") for i in range(self.count)}
        snap = self.lvsd.snapshot()
        return {rs["name"]: rs["weight"] for vs in snap["virtuals"] for rs in vs["servers"]}

    def disagreements(self) -> list[str]:
        table = self.table()
        return [f"{name} listening={up} table={table.get(name)}" for name, up in self.up.items()
                if (table.get(name) is not None) != up]

    def agrees(self) -> bool:
        return not self.disagreements()

    def flap(self) -> None:
        """Toggle one server and wait until the table shows it; then check the whole table."""
        down = [n for n, u in self.up.items() if not u]
        name = self.rng.choice(list(self.up))
        if self.up[name] and len(down) >= self.count // 2:
            name = self.rng.choice(down)
        if self.up[name]:
            self.listeners[name].stop()
        else:
            self.listeners[name].start()
        self.up[name] = not self.up[name]
        self.flaps += 1
        want = self.up[name]
        try:
            self.converged.append(wait_for(
                f"{name} {'in' if want else 'out of'} the table",
                lambda: (self.table().get(name) is not None) == want, 30, step=0.02,
                show=lambda: self.table().get(name)))
        except TimedOut as exc:
            self.failures.append(f"flap {self.flaps}: {exc}")
            return
        wrong = self.disagreements()
        if wrong:
            self.failures.append(f"flap {self.flaps}: table disagrees: {wrong}")

    def processes(self) -> tuple[int, list[int]]:
        assert self.lvsd is not None and self.lvsd.proc is not None
        tree = _children()
        # lvsd runs under `ip netns exec`, which execs: the Popen pid is lvsd itself
        pid = self.lvsd.proc.pid
        return pid, descendants(pid, tree)

    def close(self) -> None:
        if self.lvsd is not None and self.lvsd.proc is not None:
            self.lvsd.stop()
        if self.view is not None:
            self.view.close()
        for listener in self.listeners.values():
            listener.stop()
        delete(self.ns)


# ---- the pulse soak --------------------------------------------------------------------------

def pulse_config() -> str:
    return f"""\
serial_no = 1
primary = 198.51.100.1
service = lvs
backup_active = 1
backup = 198.51.100.2
heartbeat = 1
heartbeat_port = 539
heartbeat_key = {KEY}
keepalive = 0.5
deadtime = 2
network = direct
virtual web {{
     active = 1
     address = {DIRECTOR_VIP} eth0:1
     port = 80
     timeout = 1
     server rs1 {{
         address = 198.51.100.21
         active = 1
     }}
}}
"""


def holds_vip(ns: Netns) -> bool:
    """Whether ``ns`` has the VIP (a bind to it succeeds only then): no process to start."""
    with ns.entered():
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        try:
            sock.bind((DIRECTOR_VIP, 0))
        except OSError:
            return False
    return True


@dataclass
class PulseSoak:
    """Two directors, the cuts, and every overlap of VIP holders seen."""

    tmp: Path
    deadtime: float = 2.0
    lan: Lan = field(default_factory=lambda: Lan(f"sk{os.getpid() % 10000}"))
    pulses: dict[str, Pulse] = field(default_factory=dict)
    links_up: dict[str, bool] = field(default_factory=lambda: {"d1": True, "d2": True})
    overlaps: list[float] = field(default_factory=list)
    cycles: int = 0
    crashes: int = 0
    takeovers: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    _overlap_since: float | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        self.lan.create(("br0",))
        for n in (1, 2):
            self.lan.add(f"d{n}", f"198.51.100.{n}/24", f"02:00:00:00:05:0{n}")
        for name in ("d1", "d2"):
            self.pulses[name] = Pulse(self.lan[name], self.tmp, name, pulse_config(),
                                      lvsd_args=["--backend=fake"])
            self.pulses[name].start()
        wait_for("exactly one director with the VIP", lambda: len(self.holders()) == 1, 300,
                 step=0.2, show=self.holders)
        threading.Thread(target=self._watch, daemon=True).start()

    def holders(self) -> list[str]:
        return [n for n in ("d1", "d2") if self.links_up[n] and holds_vip(self.lan[n].ns)]

    def _watch(self) -> None:
        while not self._stop.wait(0.1):
            both = len(self.holders()) == 2
            now = time.monotonic()
            if both and self._overlap_since is None:
                self._overlap_since = now
            elif not both and self._overlap_since is not None:
                self.overlaps.append(now - self._overlap_since)
                self._overlap_since = None

    def cycle(self, period: float, crash_every: int) -> None:
        """Take one director off the LAN for half a period, bring it back, check one holder.

        Mostly a link cut (its processes live on: their memory and fds are the trend); every
        ``crash_every``-th cycle the active director crashes instead (SIGKILL of pulse, lvsd
        and nannies, links down) and reboots (no VIP, links up, pulse started again)."""
        self.cycles += 1
        active = self.holders()
        if len(active) != 1:
            self.failures.append(f"cycle {self.cycles}: VIP on {active} before the cut")
            return
        crash = crash_every > 0 and self.cycles % crash_every == 0
        victim = active[0] if crash or self.cycles % 2 else ("d2" if active[0] == "d1" else "d1")
        other = "d2" if victim == "d1" else "d1"
        cut = time.monotonic()
        set_links(self.lan[victim].ns, "down", "eth0")
        self.links_up[victim] = False
        if crash:
            self.pulses[victim].crash()
            self.crashes += 1
        try:
            took = wait_for(f"{other} holding the VIP after {victim} left the LAN",
                            lambda: self.holders() == [other], 60, step=0.05,
                            show=self.holders)
            if victim == active[0]:
                self.takeovers.append(took)
        except TimedOut as exc:
            self.failures.append(f"cycle {self.cycles}: {exc}")
        time.sleep(max(0.0, period / 2 - (time.monotonic() - cut)))
        if crash:  # what a rebooted director looks like: no VIP, its daemon started again
            self.lan[victim].ns.exec(["ip", "addr", "flush", "dev", "eth0", "label", "eth0:1"])
            self.pulses[victim].start()
        set_links(self.lan[victim].ns, "up", "eth0")
        self.links_up[victim] = True
        try:
            wait_for("one holder of the VIP again", lambda: len(self.holders()) == 1, 60,
                     step=0.05, show=self.holders)
            # the next cut may take the other director away: this one must be back in service
            # (a restart takes tens of seconds in the emulated VM)
            wait_for(f"{victim}'s pulse standing by or active", lambda: self.pulses[victim]
                     .state().get("state") in ("standby", "active"), 300, step=0.2,
                     show=lambda: self.pulses[victim].state().get("state"))
        except TimedOut as exc:
            self.failures.append(f"cycle {self.cycles}: {exc}")

    def split_brains(self) -> list[float]:
        return [o for o in self.overlaps if o > self.deadtime]

    def processes(self) -> dict[str, tuple[int, int | None]]:
        """director -> (pulse pid, its lvsd pid)."""
        tree = _children()
        out: dict[str, tuple[int, int | None]] = {}
        for name, p in self.pulses.items():
            if p.proc is None or p.proc.poll() is not None:
                out[name] = (0, None)  # crashed, not rebooted yet
                continue
            lvsd = [c for c in descendants(p.proc.pid, tree) if comm_is(c, "piranha.lvs")]
            # the oldest lvsd-like descendant is lvsd itself (its nannies come after it)
            out[name] = (p.proc.pid, min(lvsd) if lvsd else None)
        return out

    def close(self) -> None:
        self._stop.set()
        for p in self.pulses.values():
            with contextlib.suppress(Exception):
                p.stop()
        self.lan.delete()


# ---- sampling and the report -----------------------------------------------------------------

def sample(t0: float, lvsd: LvsdSoak, pulse: PulseSoak) -> dict[str, float]:
    row: dict[str, float] = {"minute": round((time.monotonic() - t0) / 60, 1)}
    pid, kids = lvsd.processes()
    row["lvsd_rss"] = rss_mib(pid)
    row["lvsd_fds"] = fds(pid)
    alive = [k for k in kids if os.path.exists(f"/proc/{k}")]
    row["nannies"] = len(alive)
    row["nanny_uss"] = sum(uss_mib(k) for k in alive) / max(1, len(alive))
    row["nannies_fds"] = sum(fds(k) for k in alive)
    for name, (ppid, lpid) in pulse.processes().items():
        row[f"{name}_pid"] = ppid
        row[f"{name}_pulse_rss"] = rss_mib(ppid) if ppid else 0.0
        row[f"{name}_pulse_fds"] = fds(ppid) if ppid else 0
        row[f"{name}_lvsd_rss"] = rss_mib(lpid) if lpid else 0.0
        row[f"{name}_lvsd_fds"] = fds(lpid) if lpid else 0
    return row


def trend(rows: list[dict[str, float]], key: str) -> dict[str, Any]:
    """First and last quarter means (after the first sample), slope per hour, flat or not;
    a director's series over the lifetime of its last pulse (a crash starts a new one)."""
    director = key.split("_", 1)[0]
    if f"{director}_pid" in rows[-1]:
        rows = [r for r in rows if r[f"{director}_pid"] == rows[-1][f"{director}_pid"]]
    run = rows[1:] if len(rows) > 2 else rows
    quarter = max(1, len(run) // 4)
    first = statistics.mean(r[key] for r in run[:quarter])
    last = statistics.mean(r[key] for r in run[-quarter:])
    slope = 0.0
    if len(run) >= 3 and len({r["minute"] for r in run}) > 1:
        slope = statistics.linear_regression([r["minute"] / 60 for r in run],
                                             [r[key] for r in run]).slope
    if key.endswith("fds") or key == "nannies":  # a probe's socket may be open at a sample
        flat = statistics.median(r[key] for r in run[:quarter]) == statistics.median(
            r[key] for r in run[-quarter:])
    else:  # a process: under 1 MiB more; a nanny (mean of them all): under 0.1 MiB
        flat = last - first < (0.1 if key == "nanny_uss" else 1.0)
    return {"first_quarter": round(first, 2), "last_quarter": round(last, 2),
            "per_hour": round(slope, 2), "flat": flat}


def report(args: argparse.Namespace, lvsd: LvsdSoak, pulse: PulseSoak,
           rows: list[dict[str, float]], wall: float) -> dict[str, Any]:
    keys = [k for k in rows[0] if k != "minute" and not k.endswith("_pid")]
    trends = {k: trend(rows, k) for k in keys}
    conv = sorted(lvsd.converged)
    figures: dict[str, Any] = {
        "minutes": round(wall / 60, 1), "servers": args.servers,
        "table": "kernel IPVS (/proc/net/ip_vs)" if lvsd.kernel else "lvsd --backend fake",
        "flaps": lvsd.flaps, "flaps_converged": len(conv),
        "convergence_s": {"median": round(statistics.median(conv), 3) if conv else None,
                          "max": round(conv[-1], 3) if conv else None},
        "lvsd_failures": lvsd.failures,
        "cycles": pulse.cycles, "crashes": pulse.crashes,
        "takeover_s": {"median": round(statistics.median(pulse.takeovers), 2)
                       if pulse.takeovers else None,
                       "max": round(max(pulse.takeovers), 2) if pulse.takeovers else None},
        "overlaps": len(pulse.overlaps),
        "longest_overlap_s": round(max(pulse.overlaps), 2) if pulse.overlaps else 0.0,
        "split_brains": len(pulse.split_brains()), "pulse_failures": pulse.failures,
        "samples": rows, "trends": trends,
    }
    print(f"soak benchmark: {figures['minutes']} min (command: {' '.join(sys.argv)})")
    print(f"  lvsd, {args.servers} servers, table = {figures['table']}: {lvsd.flaps} flaps, "
          f"{len(conv)} converged (median {figures['convergence_s']['median']} s, max "
          f"{figures['convergence_s']['max']} s), {len(lvsd.failures)} failures")
    print(f"  pulse: {pulse.cycles} cycles ({pulse.crashes} crashes, the rest link cuts), "
          f"takeover median {figures['takeover_s']['median']} s, max "
          f"{figures['takeover_s']['max']} s; {len(pulse.overlaps)} overlaps of two VIP holders"
          f" after a link came back (longest {figures['longest_overlap_s']} s), "
          f"{figures['split_brains']} split brains (overlap > deadtime {pulse.deadtime:g} s), "
          f"{len(pulse.failures)} failures")
    for failure in lvsd.failures + pulse.failures:
        print(f"  FAILED: {failure}")
    print()
    print(markdown(["minute", *keys], ([r["minute"], *(_cell(r[k]) for k in keys)]
                                       for r in rows)))
    print("(a director's series restart after its crash; trends cover its last pulse only)")
    print()
    print(markdown(["series", "first quarter", "last quarter", "per hour", "flat"],
                   ([k, t["first_quarter"], t["last_quarter"], t["per_hour"],
                     "flat" if t["flat"] else "GROWS"] for k, t in trends.items())))
    return figures


def _cell(value: float) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--servers", type=int, default=60)
    p.add_argument("--flap-every", type=float, default=2.0, metavar="SECONDS")
    p.add_argument("--cut-every", type=float, default=20.0, metavar="SECONDS")
    p.add_argument("--crash-every", type=int, default=5, metavar="N",
                   help="every Nth cycle the active director crashes and reboots (0: never)")
    p.add_argument("--sample-every", type=float, default=60.0, metavar="SECONDS")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    subreaper()
    tmp = Path(tempfile.mkdtemp(prefix="soak-"))
    (tmp / "lvsd").mkdir()
    lvsd = LvsdSoak(Netns(f"soak{os.getpid() % 10000}"), tmp / "lvsd", args.servers,
                    random.Random(args.seed))
    pulse = PulseSoak(tmp)
    rows: list[dict[str, float]] = []
    try:
        lvsd.start()
        pulse.start()
        t0 = time.monotonic()
        end = t0 + args.minutes * 60
        rows.append(sample(t0, lvsd, pulse))
        flapper = _every(args.flap_every, end, lvsd.flap)
        cutter = _every(args.cut_every, end,
                        lambda: pulse.cycle(args.cut_every, args.crash_every))
        next_sample = t0 + args.sample_every
        while time.monotonic() < end:
            time.sleep(max(0.0, min(next_sample, end) - time.monotonic()))
            if time.monotonic() >= next_sample:
                rows.append(sample(t0, lvsd, pulse))
                next_sample += args.sample_every
                print(f"soak: minute {rows[-1]['minute']}: {lvsd.flaps} flaps, "
                      f"{pulse.cycles} cycles, lvsd {rows[-1]['lvsd_rss']:.1f} MiB, nanny "
                      f"{rows[-1]['nanny_uss']:.2f} MiB, pulses "
                      f"{rows[-1]['d1_pulse_rss']:.1f}/{rows[-1]['d2_pulse_rss']:.1f} MiB",
                      flush=True)
        flapper.join()
        cutter.join()
        rows.append(sample(t0, lvsd, pulse))
        figures = report(args, lvsd, pulse, rows, time.monotonic() - t0)
    finally:
        pulse.close()
        lvsd.close()
    save("soak", figures)
    bad = figures["lvsd_failures"] or figures["pulse_failures"] or figures["split_brains"] \
        or figures["flaps_converged"] != figures["flaps"]
    return 1 if bad else 0


def _every(period: float, end: float, action: Callable[[], None]) -> threading.Thread:
    """Run ``action`` every ``period`` s (or right after the previous one) until ``end``."""
    def loop() -> None:
        due = time.monotonic() + period
        while due < end:
            time.sleep(max(0.0, due - time.monotonic()))
            action()
            due = max(due + period, time.monotonic())
    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


if __name__ == "__main__":
    sys.exit(main())
