"""Scale benchmark: lvsd with N real servers (one forked nanny each), probed once a second.

    .venv/bin/python -m bench.nanny_scale_bench [--servers 1000] [--window 10] [--kills 10]

Runs on the host: lvsd uses its in-memory IPVS table (``--backend fake``), which leaves the
process model, the probes and the report path exactly as in production; the real servers are
N TCP listeners on 127.0.0.1 in this process (accept, close), checked with a plain connect
(``timeout = 1``, so one probe per server per second). Prints:

* USS (private memory) per nanny: median, mean, max; PSS of all nannies and of lvsd;
* CPU of all nannies (and of lvsd) per second of checking, in % of one core, over --window s
  (from /proc/PID/schedstat, nanosecond accounting);
* detection: time from a listener's death to lvsd's snapshot showing the server DOWN (the
  entry out of the table), for --kills servers killed one by one, against 1.5 x timeout;
* start-up: time from lvsd's start to every server UP.

Targets (issue 4): <= 2 MiB USS per nanny, <= 15 % of one core for 1,000 servers, detection
within 1.5 x timeout. Writes the figures as JSON to $PIRANHA_OUT/nanny_scale.json when set.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 1.0


class Listeners:
    """N listening sockets on 127.0.0.1 served by one thread (accept, close)."""

    def __init__(self, count: int) -> None:
        self.sel = selectors.DefaultSelector()
        self.socks: dict[int, socket.socket] = {}
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sock.listen(128)
            sock.setblocking(False)
            self.sel.register(sock, selectors.EVENT_READ)
            self.socks[sock.getsockname()[1]] = sock
        self.lock = threading.Lock()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            for key, _ in self.sel.select(0.2):
                with contextlib.suppress(OSError):
                    conn, _ = key.fileobj.accept()  # type: ignore[union-attr]
                    conn.close()

    def kill(self, port: int) -> None:
        """Stop listening on ``port`` (new connections are refused)."""
        sock = self.socks.pop(port)
        with self.lock:
            self.sel.unregister(sock)
        sock.close()


def config(ports: list[int]) -> str:
    servers = "".join(f"    server s{i} {{\n        address = 127.0.0.1\n        active = 1\n"
                      f"        port = {port}\n    }}\n" for i, port in enumerate(ports))
    return (f"primary = 127.0.0.1\nnetwork = nat\nhard_shutdown = 0\nvirtual bench {{\n"
            f"    active = 1\n    address = 198.51.100.80 lo:1\n    port = 8080\n"
            f"    timeout = {TIMEOUT:g}\n    reentry = {TIMEOUT:g}\n{servers}}}\n")


def smaps(pid: int) -> dict[str, int]:
    """KiB figures of /proc/PID/smaps_rollup."""
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
                out[parts[0][:-1]] = int(parts[1])
    return out


def cpu_ns(pid: int) -> int:
    """Nanoseconds of CPU ``pid`` has used (schedstat: exact, not tick-sampled)."""
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0])


def servers(status: Path) -> dict[str, dict]:
    snap = json.loads(status.read_text())
    return {rs["name"]: rs for vs in snap["virtuals"] for rs in vs["servers"]}


def wait(check, timeout: float, step: float = 0.01) -> float:
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise SystemExit("benchmark: timed out")
        time.sleep(step)
    return time.monotonic() - start


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--servers", type=int, default=1000)
    p.add_argument("--window", type=float, default=10.0, help="CPU measurement window, s")
    p.add_argument("--kills", type=int, default=10, help="servers killed to time detection")
    args = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.servers)), hard))
    listeners = Listeners(args.servers)
    ports = sorted(listeners.socks)
    tmp = Path(tempfile.mkdtemp(prefix="nanny-bench-"))
    (tmp / "lvs.cf").write_text(config(ports))
    status = tmp / "status.json"
    argv = [sys.executable, "-m", "piranha.lvs", "-n", "--backend", "fake", "-c",
            str(tmp / "lvs.cf"), "--status-file", str(status), "--control-socket",
            str(tmp / "sock"), "--state-file", str(tmp / "state"), "--pidfile", str(tmp / "pid")]
    start = time.monotonic()
    with open(tmp / "log", "wb") as log:
        lvsd = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        return measure(args, listeners, ports, status, lvsd, start)
    finally:
        lvsd.send_signal(signal.SIGTERM)
        lvsd.wait(60)


def measure(args: argparse.Namespace, listeners: Listeners, ports: list[int], status: Path,
            lvsd: subprocess.Popen[bytes], start: float) -> int:
    wait(status.exists, 120)
    ready = wait(lambda: all(s["state"] == "UP" for s in servers(status).values()), 300, 0.2)
    ready += time.monotonic() - start - ready
    time.sleep(3.0)  # settle: every nanny has run a few cycles
    pids = [s["nanny"]["pid"] for s in servers(status).values()]
    mem = [smaps(pid) for pid in pids]
    uss = sorted((m["Private_Clean"] + m["Private_Dirty"]) / 1024 for m in mem)
    pss_total = sum(m["Pss"] for m in mem) / 1024
    lvsd_mem = smaps(lvsd.pid)
    before, lvsd_before, t0 = sum(cpu_ns(p) for p in pids), cpu_ns(lvsd.pid), time.monotonic()
    time.sleep(args.window)
    elapsed = time.monotonic() - t0
    nanny_cpu = (sum(cpu_ns(p) for p in pids) - before) / 1e9 / elapsed * 100
    lvsd_cpu = (cpu_ns(lvsd.pid) - lvsd_before) / 1e9 / elapsed * 100
    detections = []
    names = {int(s["address"].rsplit(":", 1)[1]): n for n, s in servers(status).items()}
    for port in random.sample(ports, args.kills):
        time.sleep(random.uniform(0, TIMEOUT))  # kill at a random point of the probe cycle
        killed = time.monotonic()
        listeners.kill(port)
        name = names[port]
        wait(lambda n=name: servers(status)[n]["weight"] is None, 30, 0.005)
        detections.append(time.monotonic() - killed)
    figures = {
        "servers": args.servers, "timeout_s": TIMEOUT, "startup_all_up_s": round(ready, 2),
        "uss_per_nanny_mib": {"median": round(statistics.median(uss), 3),
                              "mean": round(statistics.mean(uss), 3), "max": round(uss[-1], 3)},
        "pss_all_nannies_mib": round(pss_total, 1),
        "lvsd_uss_mib": round((lvsd_mem["Private_Clean"] + lvsd_mem["Private_Dirty"]) / 1024, 1),
        "lvsd_pss_mib": round(lvsd_mem["Pss"] / 1024, 1),
        "cpu_nannies_pct_of_one_core": round(nanny_cpu, 1),
        "cpu_lvsd_pct_of_one_core": round(lvsd_cpu, 1),
        "detection_s": {"median": round(statistics.median(detections), 3),
                        "max": round(max(detections), 3),
                        "limit_1_5x_timeout": 1.5 * TIMEOUT},
    }
    print_report(figures)
    out = os.environ.get("PIRANHA_OUT")
    if out:
        Path(out, "nanny_scale.json").write_text(json.dumps(figures, indent=1) + "\n")
    return 0


def print_report(f: dict) -> None:
    u, d = f["uss_per_nanny_mib"], f["detection_s"]
    ok = {True: "OK", False: "MISSED"}
    print(f"nanny scale benchmark: {f['servers']} real servers on 127.0.0.1, one forked nanny "
          f"each, TCP connect every {f['timeout_s']:g} s (host, lvsd --backend fake)")
    print(f"  start-up, lvsd start to every server UP: {f['startup_all_up_s']} s")
    print(f"  USS per nanny: median {u['median']} MiB, mean {u['mean']}, max {u['max']} "
          f"(target <= 2 MiB: {ok[u['median'] <= 2]})")
    print(f"  PSS of all nannies: {f['pss_all_nannies_mib']} MiB; lvsd: USS "
          f"{f['lvsd_uss_mib']} MiB, PSS {f['lvsd_pss_mib']} MiB")
    print(f"  CPU of all nannies: {f['cpu_nannies_pct_of_one_core']} % of one core "
          f"(target <= 15 %: {ok[f['cpu_nannies_pct_of_one_core'] <= 15]}); lvsd: "
          f"{f['cpu_lvsd_pct_of_one_core']} %")
    print(f"  detection of a killed server: median {d['median']} s, max {d['max']} s "
          f"(target <= {d['limit_1_5x_timeout']:g} s: {ok[d['max'] <= d['limit_1_5x_timeout']]})")


if __name__ == "__main__":
    sys.exit(main())
