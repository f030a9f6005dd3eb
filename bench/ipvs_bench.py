"""Benchmark: loading and dumping a big IPVS table, ipvsadm 1.31 vs NetlinkIpvs (root + IPVS).

    bench/vm-run.sh python -m bench.ipvs_bench [--services 1000] [--dests 10] [--repeat 3]

In a fresh network namespace, builds SERVICES x DESTS (default 1,000 x 10: an 11,000-line
restore file) and times, each REPEAT times from an empty table (median reported):

* ``ipvsadm -R`` of the restore file, a whole process;
* ``NetlinkIpvs.apply()`` of the same ops from this already running process (imports, socket
  and family lookup excluded), then with ``--batch 1`` semantics for comparison;
* full dumps by ``ipvsadm -Sn`` (a whole process) and by ``NetlinkIpvs.dump()``;
* with ``--cli CMD`` (hook for the CLI, e.g. ``--cli piranha-ipvsadm``): ``CMD -R`` and
  ``CMD -Sn`` as whole processes too.

Prints a table and the ratios against the targets (apply >= 3x faster than ``ipvsadm -R``,
dump no slower than ``ipvsadm -Sn``); writes the figures as JSON to $PIRANHA_OUT when set.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path
from typing import TypeVar

from piranha.ipvs.types import (
    AddDest,
    AddService,
    Dest,
    Flush,
    Forward,
    Op,
    Proto,
    Service,
    ServiceKey,
)

TOPOLOGY = """link set lo up
link add pub0 type dummy
addr add 198.51.100.1/24 dev pub0
link set pub0 up
link add priv0 type dummy
addr add 10.200.0.1/16 dev priv0
link set priv0 up
"""
PORTS = (80, 443, 8080, 8443)
T = TypeVar("T")


def table(services: int, dests: int) -> tuple[list[Op], str]:
    """The ops and the equivalent ipvsadm restore text."""
    ops: list[Op] = []
    lines: list[str] = []
    for i in range(services):
        vip = IPv4Address("198.51.100.10") + i // len(PORTS)
        key = ServiceKey.inet(Proto.TCP, vip, PORTS[i % len(PORTS)])
        ops.append(AddService(Service(key, "wlc")))
        lines.append(f"-A -t {vip}:{key.port} -s wlc")
        for j in range(dests):
            rs = IPv4Address("10.200.0.0") + 256 + i * dests + j
            ops.append(AddDest(key, Dest(rs, 8080, Forward.MASQ, weight=1 + j % 5)))
            lines.append(f"-a -t {vip}:{key.port} -r {rs}:8080 -m -w {1 + j % 5}")
    return ops, "\n".join(lines) + "\n"


def enter_fresh_namespace() -> str:
    """Create a namespace with the lab topology and move this process into it."""
    from pyroute2 import netns

    name = f"pirbench-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    subprocess.run(["ip", "-n", name, "-batch", "-"], input=TOPOLOGY, text=True, check=True)
    netns.setns(name, flags=0)
    return name


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    """(seconds, result) of ``fn()``."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def run(argv: list[str], stdin: str | None = None) -> str:
    """Run a command; its stdout (RuntimeError when it fails)."""
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr[:500]}")
    return proc.stdout


def measure(args: argparse.Namespace) -> dict[str, list[float]]:
    """Seconds per run of each timed step, REPEAT runs each from an empty table."""
    from piranha.ipvs.netlink import NetlinkIpvs

    ops, text = table(args.services, args.dests)
    entries = args.services * (1 + args.dests)
    times: dict[str, list[float]] = {}

    def add(name: str, seconds: float) -> None:
        times.setdefault(name, []).append(seconds)

    ipvs = NetlinkIpvs()
    batch1 = NetlinkIpvs(batch=1, bulk=False)  # "before": one request per send, one recv per ack
    cli = args.cli.split() if args.cli else []
    for _ in range(args.repeat):
        run(["ipvsadm", "-C"])
        add("ipvsadm -R", timed(lambda: run(["ipvsadm", "-R"], text))[0])
        seconds, saved = timed(lambda: run(["ipvsadm", "-Sn"]))
        add("ipvsadm -Sn", seconds)
        assert saved.count("\n") == entries, "ipvsadm -Sn: wrong line count"
        assert ipvs.apply([Flush()]) == []
        seconds, failures = timed(lambda: ipvs.apply(ops))
        add("NetlinkIpvs.apply", seconds)
        assert failures == [], failures[:3]
        seconds, dumped = timed(ipvs.dump)
        add("NetlinkIpvs.dump", seconds)
        assert sum(1 + len(d) for d in dumped.dests.values()) == entries
        assert ipvs.apply([Flush()]) == []
        add("NetlinkIpvs.apply batch=1", timed(lambda: batch1.apply(ops))[0])
        if cli:
            run(["ipvsadm", "-C"])
            add(f"{args.cli} -R", timed(lambda: run([*cli, "-R"], text))[0])
            add(f"{args.cli} -Sn", timed(lambda: run([*cli, "-Sn"]))[0])
    run(["ipvsadm", "-C"])
    ipvs.close()
    batch1.close()
    return times


def report(times: dict[str, list[float]], args: argparse.Namespace) -> dict[str, object]:
    """Print medians and ratios; the figures as a JSON-able dict."""
    med = {name: statistics.median(v) for name, v in times.items()}
    print(f"{args.services} services x {args.dests} dests "
          f"({args.services * (1 + args.dests)} entries), median of {args.repeat}:")
    for name, value in med.items():
        runs = " ".join(f"{v:.3f}" for v in times[name])
        print(f"  {name:<28} {value:8.3f} s   (runs: {runs})")
    ratios = {
        "ipvsadm -R / NetlinkIpvs.apply": med["ipvsadm -R"] / med["NetlinkIpvs.apply"],
        "ipvsadm -Sn / NetlinkIpvs.dump": med["ipvsadm -Sn"] / med["NetlinkIpvs.dump"],
        "apply batch=1 / apply": med["NetlinkIpvs.apply batch=1"] / med["NetlinkIpvs.apply"],
    }
    for name, value in ratios.items():
        print(f"  {name:<34} {value:6.2f}x")
    print(f"  target apply >= 3x faster than ipvsadm -R: "
          f"{'met' if ratios['ipvsadm -R / NetlinkIpvs.apply'] >= 3 else 'MISSED'}")
    print(f"  target dump no slower than ipvsadm -Sn:     "
          f"{'met' if ratios['ipvsadm -Sn / NetlinkIpvs.dump'] >= 1 else 'MISSED'}")
    return {"runs": times, "median": med, "ratios": ratios}


def main() -> None:
    """Parse arguments, measure in a fresh namespace, report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--dests", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cli", help="also time this ipvsadm-compatible command's -R and -Sn")
    args = parser.parse_args()
    name = enter_fresh_namespace()
    try:
        result = report(measure(args), args)
    finally:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True)
    if os.environ.get("PIRANHA_OUT"):
        Path(os.environ["PIRANHA_OUT"], "ipvs_bench.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
