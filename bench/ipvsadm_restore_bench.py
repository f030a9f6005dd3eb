"""Time a whole ``piranha-ipvsadm -R`` process against ``ipvsadm -R`` (1,000 services x 10).

Run inside the kernel-lab VM (root, IPVS):  ``bench/vm-run.sh .venv/bin/python
bench/ipvsadm_restore_bench.py [--runs 5] [--services 1000] [--dests 10]``.

Each run restores the same 11,000-line script into an empty table of a private network
namespace, timing the process from spawn to exit (start-up, imports, parsing, netlink and
exit included), then checks the table with ``ipvsadm -Sn`` and flushes it (not timed). The
hook for other benchmarks is :func:`time_restore` (one timed run of any restore command) and
:func:`restore_script` (the table as restore text).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

NS = f"pirb-{os.getpid()}"
SETUP = """link set lo up
link add pub0 type dummy
addr add 198.51.100.1/24 dev pub0
link set pub0 up
link add priv0 type dummy
addr add 10.200.0.1/24 dev priv0
link set priv0 up
"""


def restore_script(services: int = 1000, dests: int = 10) -> str:
    """``services`` TCP services on 198.51.100.0/24, each with ``dests`` NAT real servers."""
    lines = []
    for i in range(services):
        vip = f"198.51.100.{2 + i % 200}:{1000 + i // 200}"
        lines.append(f"-A -t {vip} -s wlc")
        lines.extend(f"-a -t {vip} -r 10.200.0.{2 + j}:8080 -m -w {1 + j % 5}"
                     for j in range(dests))
    return "\n".join(lines) + "\n"


def sh(*argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command inside the bench namespace."""
    return subprocess.run(["ip", "netns", "exec", NS, *argv], input=stdin, text=True,
                          capture_output=True, check=False)


def time_restore(argv: list[str], script: str) -> float:
    """Seconds one ``argv`` process takes to restore ``script`` into the namespace."""
    started = time.perf_counter()
    proc = sh(*argv, stdin=script)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0 or proc.stderr:
        raise RuntimeError(f"{argv} failed ({proc.returncode}): {proc.stderr[:500]}")
    return elapsed


def measure(name: str, argv: list[str], script: str, runs: int) -> dict[str, object]:
    """``runs`` timed restores of ``script`` by ``argv``, each into an empty table."""
    want = script.count("\n")
    times = []
    for _ in range(runs):
        sh("ipvsadm", "-C")
        times.append(time_restore(argv, script))
        got = sh("ipvsadm", "-Sn").stdout.count("\n")
        if got != want:
            raise RuntimeError(f"{name}: table has {got} lines after restore, want {want}")
    sh("ipvsadm", "-C")
    return {"tool": name, "runs": runs, "median_s": statistics.median(times),
            "min_s": min(times), "max_s": max(times)}


def main() -> int:
    """Benchmark both tools and print (and save under $PIRANHA_OUT) the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--dests", type=int, default=10)
    args = parser.parse_args()
    ours = shutil.which("piranha-ipvsadm") or str(Path(sys.executable).with_name(
        "piranha-ipvsadm"))
    script = restore_script(args.services, args.dests)
    subprocess.run(["ip", "netns", "add", NS], check=True)
    try:
        subprocess.run(["ip", "-n", NS, "-batch", "-"], input=SETUP, text=True, check=True)
        results = [measure("ipvsadm -R", ["ipvsadm", "-R"], script, args.runs),
                   measure("piranha-ipvsadm -R", [ours, "-R"], script, args.runs)]
    finally:
        subprocess.run(["ip", "netns", "delete", NS], check=False)
    lines = script.count("\n")
    for r in results:
        print(f"{r['tool']:<20} {lines} lines: median {r['median_s']:.2f}s "
              f"(min {r['min_s']:.2f}s, max {r['max_s']:.2f}s, {r['runs']} runs)")
    out = os.environ.get("PIRANHA_OUT")
    if out:
        Path(out, "ipvsadm_restore_bench.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
