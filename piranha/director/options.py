"""pulse's command line: Piranha's options (-c, -n, -t, -v, --forceactive, --lvsd) plus
piranha's own (argparse, like every reproduced daemon command line)."""

from __future__ import annotations

import argparse

from piranha import daemon
from piranha.director.build import LVSD

PIDFILE = "/var/run/pulse.pid"
STATUS_FILE = "/var/run/piranha/pulse.status.json"


def parser() -> argparse.ArgumentParser:
    """Piranha's options (-c, -n, -t, -v, --forceactive, --lvsd) plus piranha's own."""
    p = daemon.parser("pulse", "LVS director heartbeat and failover daemon", "pulse 1.56")
    p.add_argument("--forceactive", action="store_true", help="become active at start")
    p.add_argument("--lvsd", default=None, metavar="PATH",
                   help=f"lvsd to run (default {LVSD}, else the lvsd installed with pulse)")
    p.add_argument("--norun", dest="test_start", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--pidfile", default=PIDFILE, help=f"pid file (default {PIDFILE})")
    p.add_argument("--status-file", default=STATUS_FILE,
                   help=f"role and state for piranha-gui and scripts (default {STATUS_FILE})")
    p.add_argument("--cold-standby", action="store_true",
                   help="Piranha's way: start lvsd only when this director becomes active")
    p.add_argument("--lvsd-option", action="append", default=[], metavar="ARG",
                   help="extra argument for lvsd (repeatable), e.g. --lvsd-option=--pidfile=F")
    p.add_argument("--lvsd-timeout", type=float, default=30.0, metavar="SECONDS",
                   help="how long activation waits for lvsd to program the table (default 30)")
    p.add_argument("--ip-forward", choices=("warn", "set"), default="warn",
                   help="network = nat needs net.ipv4.ip_forward = 1: warn (default) or set it")
    p.add_argument("--announce", type=int, default=5, metavar="N",
                   help="gratuitous ARPs per address on activation (default 5, 1 s apart)")
    return p
