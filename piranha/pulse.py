"""pulse: the heartbeat/failover daemon (one per director). Only -t works in this release."""

from __future__ import annotations

import sys

from piranha import daemon


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``pulse``."""
    p = daemon.parser("pulse", "LVS director heartbeat and failover daemon", "pulse 1.56")
    p.add_argument("--forceactive", action="store_true", help="become active at start")
    p.add_argument("--lvsd", default="/usr/sbin/lvsd", metavar="PATH", help="lvsd to run")
    args = p.parse_args(argv)
    result = daemon.load_or_exit(args.configfile, "pulse")
    if args.test_start:
        active = result.cluster.active_virtuals()
        print(f"pulse: {args.configfile}: {len(active)} active virtual services")
        return 0
    return daemon.not_yet("pulse")


if __name__ == "__main__":
    sys.exit(main())
