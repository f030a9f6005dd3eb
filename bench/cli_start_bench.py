"""Start-up cost of the command-line tools, as ratios to the bare interpreter, in one run.

    .venv/bin/python -m bench.cli_start_bench [--runs 15]          host: -h, status
    bench/vm-run.sh .venv/bin/python -m bench.cli_start_bench      VM: -Ln of 100 entries too

Each command is run ``--runs`` times, interleaved with the others (so a busy machine slows them
alike), and its median wall time is printed with its ratio to ``python -c pass`` of the same
interpreter. The target (issue 14) is <= 2x for ``piranha-ipvsadm -Ln`` of a 100-entry table
and for ``piranha status``. ``-Ln`` needs IPVS: where the kernel has it (the VM, as root) the
table is built in a network namespace of its own with ipvsadm and listed there, and Debian's
``ipvsadm -Ln`` is timed beside it; elsewhere those rows are skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from testkit.lvsd import conf, make_lab, server

BIN = Path(sys.executable).parent
SERVICES, DESTS = 10, 9  # 10 services + 90 destinations: 100 entries
NS_BASE = "python -c pass (ip netns exec)"


def status_file(folder: Path) -> Path:
    """A real lvsd snapshot of one virtual with 99 real servers, 50 of them UP."""
    from piranha.health.types import ServerState
    from testkit.lvsd import dest

    lab = make_lab(conf("".join(server(f"rs{n}", n) for n in range(1, 100))))
    for n in range(1, 51):
        lab.report(dest(n), ServerState.UP, 1)
    path = folder / "lvsd.status.json"
    path.write_text(json.dumps(lab.snapshot(os.getpid())))
    return path


def restore_script() -> str:
    lines = []
    for i in range(SERVICES):
        vip = f"198.51.100.{10 + i}:80"
        lines.append(f"-A -t {vip} -s wlc")
        lines += [f"-a -t {vip} -r 10.200.{i}.{j + 1}:80 -m -w 1" for j in range(DESTS)]
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def table_namespace() -> Iterator[str | None]:
    """The name of a fresh netns holding the 100-entry table, or None where there is no IPVS.
    Commands run there through ``ip netns exec``, as the kernel tests run them."""
    if os.geteuid() != 0 or not Path("/proc/net/ip_vs").exists() or not shutil.which("ipvsadm"):
        yield None
        return
    name = f"clibench{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        # lo up creates the local routing table, without which the kernel calls every real
        # server address "not unicast" (EINVAL)
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        subprocess.run(["ip", "netns", "exec", name, "ipvsadm", "-R"], input=restore_script(),
                       text=True, check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def median_times(commands: dict[str, list[str]], runs: int) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            start = time.perf_counter()
            proc = subprocess.run(argv, capture_output=True, check=False)
            samples[name].append(time.perf_counter() - start)
            if proc.returncode not in (0, 3):  # 3: status of a snapshot whose lvsd is gone
                raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}: "
                                 f"{proc.stderr.decode(errors='replace')}")
    return {name: statistics.median(s) for name, s in samples.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=15)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, table_namespace() as ns:
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "piranha-ipvsadm -h": [str(BIN / "piranha-ipvsadm"), "-h"],
            "piranha status (99 servers)": [str(BIN / "piranha"), "status", "--status-file",
                                            str(status_file(Path(tmp)))],
        }
        if ns is not None:  # each of these against the interpreter started the same way
            inside = ["ip", "netns", "exec", ns]
            commands[NS_BASE] = [*inside, sys.executable, "-c", "pass"]
            commands["piranha-ipvsadm -Ln (100 entries)"] = [
                *inside, str(BIN / "piranha-ipvsadm"), "-Ln"]
            commands["ipvsadm -Ln (100 entries)"] = [*inside, "ipvsadm", "-Ln"]
        times = median_times(commands, args.runs)
    print(f"cli start-up, median of {args.runs} interleaved runs "
          f"({'VM or IPVS host' if ns else 'no IPVS here: -Ln skipped'}):")
    for name, took in times.items():
        base_name = NS_BASE if "-Ln" in name else "python -c pass"
        print(f"  {name:36} {took * 1000:8.1f} ms   {took / times[base_name]:5.2f}x {base_name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
