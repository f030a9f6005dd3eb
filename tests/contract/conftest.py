"""Backends for the contract suite: ``lab`` is a FakeIpvs, or a NetlinkIpvs in a fresh netns.

The netlink case is marked ``kernel`` (the host tier deselects it; scripts/vm-pytest.sh runs it
in the VM). Its namespace mirrors tests/kernel/conftest.py's: pub0 = 198.51.100.1/24 +
2001:db8:100::1/64, priv0 = 10.200.0.1/24, so IPVS accepts real servers and sync daemons have
an interface. Outside the harness a netlink case is skipped without root or IPVS; inside it
(PIRANHA_KERNEL_TIER=1) that is an error.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from piranha.ipvs.fake import FakeIpvs
from piranha.ipvs.types import DestKey, ServiceKey, StopDaemon

IFNAME = "pub0"
_TOPOLOGY = """link set lo up
link add pub0 type dummy
addr add 198.51.100.1/24 dev pub0
addr add 2001:db8:100::1/64 dev pub0 nodad
link set pub0 up
link add priv0 type dummy
addr add 10.200.0.1/24 dev priv0
link set priv0 up
"""


@dataclass
class Lab:
    """A backend under test plus what the suite needs around it."""

    kind: str
    ipvs: Any  # FakeIpvs | NetlinkIpvs
    ifname: str
    #: traffic(key, dest): make the backend count one connection to ``dest`` of service ``key``
    traffic: Callable[[ServiceKey, DestKey], None]
    name: str = ""  # the network namespace (netlink only)


def _kernel_missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    if not (Path("/proc/net/ip_vs").exists() or Path("/sys/module/ip_vs").exists()):
        return "needs a kernel with IPVS loaded"
    return None


def _ip(*args: str, stdin: str | None = None) -> None:
    proc = subprocess.run(["ip", *args], input=stdin, text=True, capture_output=True, timeout=60)
    if proc.returncode:
        raise RuntimeError(f"ip {' '.join(args)}: {proc.stderr.strip()}")


def _connect_in(netns: str, key: ServiceKey) -> None:
    """Send one TCP SYN to the service from inside ``netns`` (IPVS counts it; nobody answers)."""
    from pyroute2 import netns as pr_netns

    pr_netns.pushns(netns)
    try:
        family = socket.AF_INET if key.family == 2 else socket.AF_INET6
        sock = socket.socket(family, socket.SOCK_STREAM)
    finally:
        pr_netns.popns()
    with sock, contextlib.suppress(BlockingIOError):
        sock.setblocking(False)
        sock.connect((str(key.addr), key.port))


@pytest.fixture
def netlink_lab() -> Iterator[Lab]:
    """A NetlinkIpvs on a fresh namespace (small batches, so tests cross batch seams)."""
    reason = _kernel_missing()
    if reason:
        if os.environ.get("PIRANHA_KERNEL_TIER") == "1":
            pytest.fail(f"kernel tier: {reason}", pytrace=False)
        pytest.skip(f"netlink backend: {reason}")
    from piranha.ipvs.netlink import NetlinkIpvs

    name = f"pirc-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    _ip("netns", "add", name)
    try:
        _ip("-n", name, "-batch", "-", stdin=_TOPOLOGY)
        with NetlinkIpvs(name, batch=64) as ipvs:
            yield Lab("netlink", ipvs, IFNAME, lambda key, dest: _connect_in(name, key), name)
            # leave no sync daemon for the namespace's deletion to stop
            ipvs.apply([StopDaemon(d.state) for d in ipvs.daemons()])
    finally:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True, timeout=60)


@pytest.fixture
def fake_lab() -> Lab:
    """A FakeIpvs knowing the same interfaces as the namespace."""
    fake = FakeIpvs(interfaces=("lo", IFNAME, "priv0"))

    def traffic(key: ServiceKey, dest: DestKey) -> None:
        fake.add_traffic(key, dest, conns=1, inpkts=1, inbytes=60)

    return Lab("fake", fake, IFNAME, traffic)


@pytest.fixture(params=["fake", pytest.param("netlink", marks=pytest.mark.kernel)])
def lab(request: pytest.FixtureRequest) -> Lab:
    """Each contract test runs once per backend."""
    return request.getfixturevalue(f"{request.param}_lab")  # type: ignore[no-any-return]
