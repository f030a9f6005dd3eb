"""lvsd: programs the IPVS table and runs one nanny per real server. Only -t in this release."""

from __future__ import annotations

import sys

from piranha import daemon


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``lvsd``."""
    p = daemon.parser("lvsd", "LVS table daemon", "lvs 1.38")
    p.add_argument("--nofork", action="store_true", help="daemon mode without forking")
    args = p.parse_args(argv)
    result = daemon.load_or_exit(args.configfile, "lvsd")
    if args.test_start:
        for vs in result.cluster.active_virtuals():
            servers = sum(1 for s in vs.servers if s.active)
            print(f"lvs: virtual service {vs.name}: {servers} active real servers")
        return 0
    return daemon.not_yet("lvsd")


if __name__ == "__main__":
    sys.exit(main())
