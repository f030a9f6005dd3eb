"""nanny: health-checks one real server and reports to lvsd (not in this release)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``nanny``."""
    args = sys.argv[1:] if argv is None else argv
    if "--version" in args:
        print("nanny 1.46 (piranha)")
        return 0
    print("nanny: not implemented in this release", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
