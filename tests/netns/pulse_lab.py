"""The two-director LAN of the pulse tests: demo/netlab.py (the demo's own topology code),
re-exported here so the host and kernel tiers test with exactly what `make demo` runs."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "demo"))

from netlab import (  # noqa: E402
    ROOT,
    VIP,
    EchoServer,
    Fetched,
    FtpServer,
    Lan,
    Member,
    NameServer,
    Netns,
    Pulse,
    TcpServer,
    addresses,
    ask,
    delete,
    ftp_fetch,
    has_vip,
    ip,
    neighbour_mac,
    payload,
    running,
    set_links,
    spoof_udp,
    sysctl,
    wait_for,
)

__all__ = ["ROOT", "VIP", "EchoServer", "Fetched", "FtpServer", "Lan", "Member", "NameServer",
           "Netns", "Pulse", "TcpServer", "addresses", "ask", "delete", "ftp_fetch", "has_vip",
           "ip", "neighbour_mac", "payload", "running", "set_links", "spoof_udp", "sysctl",
           "wait_for"]
