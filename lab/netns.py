"""Helpers of the namespace tests: namespaces, a veth pair between two of them, a capture.

Nothing is ever sent in the namespace pytest runs in: senders enter namespace A (checked by
inode) and use only the veth end there, whose peer lives in namespace B.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from lab.netlab import Netns, delete, ip

__all__ = ["Capture", "Netns", "Veth", "create_veth", "delete", "ip", "unavailable_reason"]

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
MAC_A = "02:00:00:c0:ff:ee"
IF_A, IF_B = "pxa0", "pxb0"
ADDR_A, ADDR_B = "198.51.100.1/24", "198.51.100.2/24"
ADDR6_A, ADDR6_B = "2001:db8::1/64", "2001:db8::2/64"


def unavailable_reason() -> str | None:
    """Why these tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces and AF_PACKET sockets)"
    if shutil.which("ip") is None:
        return "needs iproute2 (`ip`)"
    return None


@dataclass(frozen=True)
class Veth:
    """Namespace ``a`` (sender, ``pxa0``, MAC 02:00:00:c0:ff:ee) joined to ``b`` (``pxb0``)."""

    a: Netns
    b: Netns


def create_veth(a: Netns, b: Netns) -> None:
    """Create both namespaces and the veth pair between them (addresses, links up)."""
    quiet = ["net.ipv6.conf.default.router_solicitations=0", "net.ipv6.conf.all.accept_ra=0",
             "net.ipv6.auto_flowlabels=0"]
    for ns in (a, b):
        ip("netns", "add", ns.name)
        ns.exec(["sysctl", "-qw", *quiet])
    ip("-n", a.name, "-batch", "-", stdin="\n".join([
        f"link add {IF_A} address {MAC_A} type veth peer name {IF_B} netns {b.name}",
        "link set lo up", f"addr add {ADDR_A} dev {IF_A}",
        f"addr add {ADDR6_A} dev {IF_A} nodad", f"link set {IF_A} up", ""]))
    ip("-n", b.name, "-batch", "-", stdin="\n".join([
        "link set lo up", f"addr add {ADDR_B} dev {IF_B}",
        f"addr add {ADDR6_B} dev {IF_B} nodad", f"link set {IF_B} up", ""]))


class Capture:
    """An AF_PACKET socket on ``pxb0`` in namespace B that records incoming frames."""

    def __init__(self, ns: Netns) -> None:
        with ns.entered():
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            self.sock.bind((IF_B, ETH_P_ALL))
        self.sock.setblocking(False)

    def drain(self) -> None:
        """Forget frames received so far (router solicitations, MLD reports...)."""
        with contextlib.suppress(BlockingIOError):
            while True:
                self.sock.recv(65535)

    def wait_for(self, match: Callable[[bytes], bool], count: int = 1,
                 timeout: float = 2.0, settle: float = 0.05) -> list[bytes]:
        """Incoming frames that satisfy ``match``: wait for ``count``, then ``settle`` more."""
        found: list[bytes] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                frame, addr = self.sock.recvfrom(65535)
            except BlockingIOError:
                time.sleep(0.002)
                continue
            if addr[2] != PACKET_OUTGOING and match(frame):
                found.append(frame)
                if len(found) == count:
                    deadline = min(deadline, time.monotonic() + settle)
        return found

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()
