"""Benchmark: a daemon programming a big IPVS table, and its reload of one changed weight,
piranha's lvsd vs keepalived's checker.

    flock build/.test.lock bench/vm-run.sh .venv/bin/python -m bench.reload_bench \\
        [--trials 5] [--peer piranha|keepalived|both] [--piranha-size 100x10] \\
        [--keepalived-size 100x10 --keepalived-size 1000x10] [--check-interval 60]

SERVICES x REALS: SERVICES NAT virtual services 198.51.100.10:10000.. each in front of the
same REALS real servers 10.200.0.11..:8080 (one namespace on br1 holding every real-server
address, one listener on 0.0.0.0:8080 accepting and closing). Every real server answers, so
every check passes: the table is complete once each daemon has admitted every server. Both
daemons check each real server entry with a plain TCP connect every --check-interval seconds
(nanny ``timeout``; keepalived ``TCP_CHECK`` ``delay_loop``).

Per daemon, in a fresh director namespace:

* **programming**: from the daemon's start (process spawned) to the complete table in the
  kernel (/proc/net/ip_vs polled every 0.1 s). lvsd adds the services at once and each real
  server when its nanny's first check passes; keepalived adds real servers as up before their
  first check (no ``alpha``). Raw apply speed without a daemon: bench/ipvs_bench.py.
* **reload**, TRIALS times: one real server of one virtual gets a new weight in the file, then
  SIGHUP. Reported: SIGHUP -> the new weight visible in the kernel; the IPVS write requests the
  kernel served from the SIGHUP until --settle seconds after (ftrace on the netlink and sockopt
  entry points); every entry that differs between the tables before and after (only the one
  weight should); for lvsd, the ops it logged.

Why piranha's table is smaller: lvsd runs one nanny process per real server entry (~1.9 MiB
each, bench/nanny_scale_bench.py), so 10,000 entries need ~19 GiB; the 4 GiB VM holds ~1,000.
keepalived's checker is one process and runs the 11,000-entry table as well.

Prints a markdown table and writes the figures to $PIRANHA_OUT/reload_bench.json.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from lab.bench import (
    ROOT,
    IpvsView,
    Lan,
    Netns,
    TcpServer,
    Tracer,
    command_line,
    diff,
    fmt,
    log,
    markdown,
    reap_orphans,
    save,
    spread,
    subreaper,
)
from lab.keepalived import Check, Keepalived, checker_config
from lab.patience import wait_for

VIP, BASE_PORT, RPORT = "198.51.100.10", 10000, 8080


def parse_size(text: str) -> tuple[int, int]:
    services, reals = text.lower().split("x")
    return int(services), int(reals)


def rips(reals: int) -> list[str]:
    return [f"10.200.{(11 + j) // 256}.{(11 + j) % 256}" for j in range(reals)]


class Acceptor(TcpServer):
    """One listener on 0.0.0.0:RPORT in ``ns``: accept and close, in a thread."""

    backlog = 4096

    def __init__(self, ns: Netns) -> None:
        super().__init__(ns, RPORT)

    def handle(self, conn: socket.socket) -> None:
        conn.close()


class Lab:
    """A director namespace (eth0 on br0, eth1 on br1) and a real-server namespace."""

    def __init__(self, reals: int) -> None:
        self.lan = Lan(f"rb{uuid.uuid4().hex[:5]}")
        self.lan.create(("br0", "br1"))
        self.lan.add("d", "198.51.100.1/24", "02:00:00:00:01:01")
        self.lan.plug("d", "br1", "eth1", "10.200.0.1/16", "02:00:00:00:02:01")
        addrs = rips(reals)
        self.lan.add("rs", f"{addrs[0]}/16", "02:00:00:00:02:11",
                     [f"addr add {a}/16 dev eth0" for a in addrs[1:]], bridge="br1")
        self.acceptor = Acceptor(self.lan["rs"].ns)
        self.view = IpvsView(self.lan["d"].ns)

    def close(self) -> None:
        self.view.close()
        self.acceptor.close()
        self.lan.delete()


# ---- the two daemons -------------------------------------------------------------------------

def lvs_cf(services: int, reals: int, interval: float, weights: dict[tuple[int, int], int]) -> str:
    out = ["serial_no = 1", "primary = 198.51.100.1", "service = lvs", "network = nat", ""]
    for i in range(services):
        out += [f"virtual v{i} {{", "    active = 1", f"    address = {VIP} eth0:1",
                f"    port = {BASE_PORT + i}", "    protocol = tcp", "    scheduler = wlc",
                f"    timeout = {interval:g}", "    reentry = 0"]
        for j, rip in enumerate(rips(reals)):
            out += [f"    server r{j} {{", f"        address = {rip}", f"        port = {RPORT}",
                    "        active = 1", f"        weight = {weights.get((i, j), 1)}", "    }"]
        out.append("}")
    return "\n".join(out) + "\n"


class Lvsd:
    """``python -m piranha.lvs -n`` in the director namespace; files under ``folder``."""

    name = "piranha lvsd"

    def __init__(self, ns: Netns, folder: Path, services: int, reals: int,
                 interval: float) -> None:
        self.ns, self.dir = ns, folder
        self.services, self.reals, self.interval = services, reals, interval
        folder.mkdir(parents=True, exist_ok=True)
        self.cf, self.log = folder / "lvs.cf", folder / "lvsd.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.write({})

    def write(self, weights: dict[tuple[int, int], int]) -> None:
        self.cf.write_text(lvs_cf(self.services, self.reals, self.interval, weights))

    def start(self) -> None:
        argv = ["ip", "netns", "exec", self.ns.name, sys.executable, "-m", "piranha.lvs", "-n",
                "-c", str(self.cf), "--status-file", str(self.dir / "status.json"),
                "--control-socket", str(self.dir / "lvsd.sock"), "--state-file",
                str(self.dir / "state.json"), "--pidfile", str(self.dir / "lvs.pid")]
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                         start_new_session=True)

    def reload(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)

    def ops(self) -> list[str]:
        return [line.split("ipvs: ", 1)[1] for line in self.log.read_text().splitlines()
                if line.startswith("lvsd: ipvs: ")]

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(300)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)
        reap_orphans()

    def tail(self) -> str:
        return self.log.read_text()[-3000:]


class KeepalivedChecker:
    """``keepalived -C`` (checker only) in the director namespace."""

    name = "keepalived"

    def __init__(self, ns: Netns, folder: Path, services: int, reals: int,
                 interval: float) -> None:
        self.services, self.reals = services, reals
        self.check = Check(delay_loop=interval, connect_timeout=3)
        self.k = Keepalived(ns.name, folder, self._config({}), extra=["-C"])

    def _config(self, weights: dict[tuple[int, int], int]) -> str:
        return checker_config([(VIP, BASE_PORT + i) for i in range(self.services)],
                              [(rip, RPORT) for rip in rips(self.reals)], self.check, weights)

    def write(self, weights: dict[tuple[int, int], int]) -> None:
        self.k.conf.write_text(self._config(weights))

    def start(self) -> None:
        self.k.start()

    def reload(self) -> None:
        self.k.reload()

    def ops(self) -> list[str]:
        return []

    def running(self) -> bool:
        return self.k.running()

    def stop(self) -> None:
        self.k.stop(120)

    def tail(self) -> str:
        return self.k.text()[-3000:]


# ---- measuring -------------------------------------------------------------------------------

def run_daemon(kind: str, services: int, reals: int, args: argparse.Namespace, tracer: Tracer,
               tmp: Path) -> dict[str, Any]:
    """Programming time and TRIALS reloads of one daemon at one size."""
    entries = services * (1 + reals)
    log(f"{kind} {services}x{reals} ({entries} entries): starting")
    lab = Lab(reals)
    folder = tmp / f"{kind}-{services}x{reals}"
    daemon: Lvsd | KeepalivedChecker
    if kind == "piranha":
        daemon = Lvsd(lab.lan["d"].ns, folder, services, reals, args.check_interval)
    else:
        daemon = KeepalivedChecker(lab.lan["d"].ns, folder, services, reals,
                                   args.check_interval)
    try:
        start = time.monotonic()
        daemon.start()
        services_in: list[float] = []

        def complete() -> bool:
            count = lab.view.entries()
            if count >= services and not services_in:
                services_in.append(time.monotonic() - start)
            return daemon.running() and count == entries

        wait_for(f"{entries} entries", complete, args.start_timeout, step=0.1)
        programmed = time.monotonic() - start
        log(f"  table programmed {programmed:.2f} s after the start "
            f"(the first {services} entries after {services_in[0]:.2f} s)")
        time.sleep(args.settle)
        weights: dict[tuple[int, int], int] = {}
        target = (services // 2, reals // 2)
        service, dest = f"{VIP}:{BASE_PORT + target[0]}", f"{rips(reals)[target[1]]}:{RPORT}"
        trials = []
        for n in range(args.trials):
            weights[target] = n + 2
            daemon.write(weights)
            before = lab.view.table()
            ops_before = len(daemon.ops())
            tracer.clear()
            t0 = time.monotonic()
            daemon.reload()
            wait_for("the new weight", lambda w=n + 2: lab.view.weight(service, dest) == w,
                     args.reload_timeout, step=0.01)
            took = time.monotonic() - t0
            time.sleep(args.settle)
            writes = tracer.count()
            changes = diff(before, lab.view.table())
            ops = daemon.ops()[ops_before:]
            trials.append({"took": took, "kernel_writes": writes, "changes": changes[:20],
                           "changed_entries": len(changes), "logged_ops": ops[:20],
                           "logged_op_count": len(ops)})
            log(f"  reload {n + 1}: {took:.3f} s, kernel writes {writes}, "
                f"{len(changes)} entries changed {changes[:3]}, ops logged {ops[:3]}")
        return {"peer": kind, "services": services, "reals": reals, "entries": entries,
                "programmed": programmed, "first_entries": services_in[0], "reloads": trials}
    except BaseException:
        print(f"----- {kind} log tail -----\n{daemon.tail()}", flush=True)
        raise
    finally:
        daemon.stop()
        lab.close()
        reap_orphans()


def parse_times(sizes: list[tuple[int, int]], tmp: Path, repeat: int = 3) -> dict[str, float]:
    """Seconds lvsd's reload spends loading lvs.cf of each size (median, in this process)."""
    from piranha.config import load

    out = {}
    for services, reals in sizes:
        path = tmp / f"lvs-{services}x{reals}.cf"
        path.write_text(lvs_cf(services, reals, 60, {}))
        runs = []
        for _ in range(repeat):
            start = time.perf_counter()
            load(str(path))
            runs.append(time.perf_counter() - start)
        out[f"{services}x{reals}"] = sorted(runs)[len(runs) // 2]
    return out


def report(results: list[dict[str, Any]], args: argparse.Namespace, tracer: Tracer,
           parse: dict[str, float]) -> None:
    rows = []
    for r in results:
        took = spread([t["took"] for t in r["reloads"]])
        writes = [sum(t["kernel_writes"].values()) for t in r["reloads"]
                  if t["kernel_writes"] is not None]
        changed = [t["changed_entries"] for t in r["reloads"]]
        rows.append([r["peer"], f"{r['services']} x {r['reals']} = {r['entries']:,}",
                     f"{fmt(r['first_entries'])} / {fmt(r['programmed'])}",
                     fmt(took["median"]), fmt(took["min"]),
                     fmt(took["max"]),
                     "-" if not writes else f"{min(writes)}-{max(writes)}",
                     f"{min(changed, default=0)}-{max(changed, default=0)}"])
    print(f"\nTable programming (start -> complete table) and reload of one changed weight "
          f"(SIGHUP -> new weight in the kernel), median of {args.trials} reloads\n")
    print(markdown(["daemon", "services x reals = entries",
                    "programming: first SERVICES entries / complete", "reload median",
                    "min", "max", f"IPVS writes per reload (within {args.settle:g} s)",
                    "entries changed per reload"], rows))
    if not tracer.available:
        print(f"\n(kernel write counts unavailable: {tracer.reason})")
    if parse:
        print("\npiranha.config.load of the same lvs.cf in this VM (what every lvsd reload "
              "parses first; median of 3): "
              + ", ".join(f"{k}: {v:.2f} s" for k, v in parse.items()))
    print(f"\ncommand: flock build/.test.lock bench/vm-run.sh {command_line()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--peer", choices=("piranha", "keepalived", "both"), default="both")
    parser.add_argument("--piranha-size", type=parse_size, default=(100, 10),
                        help="SERVICESxREALS for lvsd (default 100x10)")
    parser.add_argument("--keepalived-size", type=parse_size, action="append",
                        help="SERVICESxREALS for keepalived, repeatable "
                             "(default 100x10 and 1000x10)")
    parser.add_argument("--check-interval", type=float, default=60.0)
    parser.add_argument("--settle", type=float, default=6.0,
                        help="seconds to wait after each step (lvsd reconciles every 5 s)")
    parser.add_argument("--start-timeout", type=float, default=600.0)
    parser.add_argument("--reload-timeout", type=float, default=120.0)
    args = parser.parse_args()
    sizes = args.keepalived_size or [(100, 10), (1000, 10)]
    subreaper()
    tracer = Tracer()
    how = f"ftrace on {', '.join(tracer.functions)}" if tracer.available else tracer.reason
    log(f"kernel write counting: {how}")
    runs: list[tuple[str, int, int]] = []
    if args.peer in ("piranha", "both"):
        runs.append(("piranha", *args.piranha_size))
    if args.peer in ("keepalived", "both"):
        runs += [("keepalived", s, r) for s, r in sizes]
    results: list[dict[str, Any]] = []
    parse: dict[str, float] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="reload-bench-") as tmp:
            for kind, services, reals in runs:
                results.append(run_daemon(kind, services, reals, args, tracer, Path(tmp)))
                save("reload_bench.json", {"command": command_line(), "results": results})
            if args.peer in ("piranha", "both"):
                parse = parse_times(sorted({args.piranha_size, *sizes}), Path(tmp))
    finally:
        tracer.close()
    report(results, args, tracer, parse)
    save("reload_bench.json", {"command": command_line(), "results": results,
                               "piranha_config_load_s": parse})


if __name__ == "__main__":
    main()
