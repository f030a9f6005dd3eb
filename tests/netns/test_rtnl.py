"""Rtnl and LinkWatch against the real kernel, each test in two fresh network namespaces.

Namespace A holds ``rta0`` (198.51.100.1/24) and ``rta1`` (10.200.0.1/24); their veth peers
``rtb0``/``rtb1`` live in namespace B, so downing a peer takes the carrier away from A's end.
The Rtnl/LinkWatch sockets are opened inside A (``ns.entered()``); ``ip -n A ...`` checks
what the kernel really holds.
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import ip_address

import pytest

from lab.netns import Netns, delete, ip
from piranha.net.rtnl import Addr, Link, LinkWatch, NetError, Rtnl, link_faults

MAC0 = "02:00:00:00:be:01"
VIP = ip_address("198.51.100.10")
VIP6 = ip_address("2001:db8::10")
PRIMARY, PRIVATE = ip_address("198.51.100.1"), ip_address("10.200.0.1")


@dataclass(frozen=True)
class Pair:
    a: Netns
    b: Netns
    rtnl: Rtnl


@pytest.fixture
def pair() -> Iterator[Pair]:
    tag = f"pirtnl-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    a, b = Netns(f"{tag}-a"), Netns(f"{tag}-b")
    try:
        for ns in (a, b):
            ip("netns", "add", ns.name)
        ip("-n", a.name, "-batch", "-", stdin="\n".join([
            f"link add rta0 address {MAC0} type veth peer name rtb0 netns {b.name}",
            f"link add rta1 type veth peer name rtb1 netns {b.name}",
            "link set lo up", "addr add 198.51.100.1/24 dev rta0",
            "addr add 10.200.0.1/24 dev rta1", "link set rta0 up", "link set rta1 up", ""]))
        ip("-n", b.name, "-batch", "-",
           stdin="link set rtb0 up\nlink set rtb1 up\n")
        with a.entered():
            rtnl = Rtnl()
        try:
            yield Pair(a, b, rtnl)
        finally:
            rtnl.close()
    finally:
        delete(a)
        delete(b)


def link_of(rtnl: Rtnl, name: str) -> Link:
    found = rtnl.link(name)
    assert found is not None, name
    return found


def ip_lines(ns: Netns, *args: str) -> list[str]:
    """``ip -o ARGS`` in ``ns``, one string per address."""
    return ip("-n", ns.name, "-o", *args).splitlines()


def line_of(lines: list[str], cidr: str) -> str | None:
    return next((ln for ln in lines if re.search(rf"\binet6? {re.escape(cidr)}\s", ln)), None)


def test_sees_only_its_own_namespace(pair: Pair) -> None:
    assert {link.name for link in pair.rtnl.links()} == {"lo", "rta0", "rta1"}
    assert Addr("rta0", "rta0", PRIMARY, 24) in pair.rtnl.addresses()


def test_add_ipv4_with_label_sets_broadcast(pair: Pair) -> None:
    assert pair.rtnl.add_address("rta0", VIP, 24, label="rta0:1") is True
    line = line_of(ip_lines(pair.a, "-4", "addr", "show", "dev", "rta0"), "198.51.100.10/24")
    assert line is not None
    assert "brd 198.51.100.255 " in line and line.split("\\")[0].rstrip().endswith("rta0:1")
    assert Addr("rta0", "rta0:1", VIP, 24) in pair.rtnl.addresses()


def test_broadcast_follows_prefix_and_none_on_31_32(pair: Pair) -> None:
    rtnl = pair.rtnl
    assert rtnl.add_address("rta1", ip_address("10.200.0.5"), 30)
    assert rtnl.add_address("rta1", ip_address("10.200.0.9"), 31)
    assert rtnl.add_address("rta1", ip_address("10.200.0.20"), 32)
    lines = ip_lines(pair.a, "-4", "addr", "show", "dev", "rta1")
    assert "brd 10.200.0.7 " in (line_of(lines, "10.200.0.5/30") or "")
    for cidr in ("10.200.0.9/31", "10.200.0.20/32"):
        line = line_of(lines, cidr)
        assert line is not None and "brd" not in line
    # no label asked: the kernel's default label is the device name
    assert Addr("rta1", "rta1", ip_address("10.200.0.20"), 32) in rtnl.addresses()


def test_add_twice_is_false_and_leaves_one(pair: Pair) -> None:
    assert pair.rtnl.add_address("rta0", VIP, 32, label="rta0:1") is True
    assert pair.rtnl.add_address("rta0", VIP, 32, label="rta0:1") is False
    assert pair.rtnl.add_address("rta0", VIP, 32) is False  # whatever the label
    lines = ip_lines(pair.a, "-4", "addr", "show", "dev", "rta0")
    assert sum("198.51.100.10/32" in ln for ln in lines) == 1


def test_remove_then_remove_absent(pair: Pair) -> None:
    rtnl = pair.rtnl
    rtnl.add_address("rta0", VIP, 24, label="rta0:1")
    assert rtnl.remove_address("rta0", VIP, 24) is True
    assert line_of(ip_lines(pair.a, "-4", "addr"), "198.51.100.10/24") is None
    assert rtnl.holder(VIP) is None
    assert rtnl.remove_address("rta0", VIP, 24) is False


def test_remove_touches_no_other_address(pair: Pair) -> None:
    rtnl = pair.rtnl
    other = ip_address("198.51.100.11")
    rtnl.add_address("rta0", VIP, 24, label="rta0:1")
    rtnl.add_address("rta0", other, 24, label="rta0:2")
    before = {a for a in rtnl.addresses() if a.address != VIP}
    # same address, other prefix / other device: not "that exact address"
    assert rtnl.remove_address("rta0", VIP, 32) is False
    assert rtnl.remove_address("rta1", VIP, 24) is False
    assert rtnl.remove_address("rta0", VIP, 24) is True
    assert set(rtnl.addresses()) == before
    lines = ip_lines(pair.a, "-4", "addr", "show", "dev", "rta0")
    assert line_of(lines, "198.51.100.1/24") and line_of(lines, "198.51.100.11/24")
    assert line_of(lines, "198.51.100.10/24") is None


def test_unknown_device_names_device_and_address(pair: Pair) -> None:
    with pytest.raises(NetError) as err:
        pair.rtnl.add_address("rtx9", VIP, 32)
    assert str(err.value) == "cannot add 198.51.100.10/32 to rtx9: No such device"
    with pytest.raises(NetError, match=r"^cannot remove 198\.51\.100\.10/32 from rtx9: No such"):
        pair.rtnl.remove_address("rtx9", VIP, 32)
    with pytest.raises(NetError, match="rtxxxxxxxxxxxxxxxxxxxx9: No such device"):
        pair.rtnl.add_address("rtxxxxxxxxxxxxxxxxxxxx9", VIP, 32)


def test_bad_label_and_prefix_are_refused(pair: Pair) -> None:
    with pytest.raises(NetError, match=r"to rta0: label 'eth0:1' must start with the device"):
        pair.rtnl.add_address("rta0", VIP, 32, label="eth0:1")
    with pytest.raises(NetError, match=r"to rta0: label .* at most 15 bytes"):
        pair.rtnl.add_address("rta0", VIP, 32, label="rta0:1234567890ab")
    with pytest.raises(NetError, match=r"198\.51\.100\.10/33 to rta0: prefix must be 0\.\.32"):
        pair.rtnl.add_address("rta0", VIP, 33)
    assert pair.rtnl.holder(VIP) is None


def test_ipv6_added_without_dad(pair: Pair) -> None:
    rtnl = pair.rtnl
    assert rtnl.add_address("rta0", VIP6, 64, label="rta0:6") is True
    # control: the same link does run DAD for an address added without nodad
    ip("-n", pair.a.name, "addr", "add", "2001:db8::11/64", "dev", "rta0")
    lines = ip_lines(pair.a, "-6", "addr", "show", "dev", "rta0")
    ours, control = line_of(lines, "2001:db8::10/64"), line_of(lines, "2001:db8::11/64")
    assert ours is not None and "tentative" not in ours and "nodad" in ours
    assert control is not None and "tentative" in control
    assert rtnl.holder(VIP6) == Addr("rta0", "rta0", VIP6, 64)  # IPv6 has no labels
    assert rtnl.add_address("rta0", VIP6, 64) is False
    assert rtnl.add_address("rta0", VIP6, 128) is False  # IPv6: one address, any prefix
    assert rtnl.remove_address("rta0", VIP6, 128) is False
    assert rtnl.remove_address("rta0", VIP6, 64) is True
    assert rtnl.remove_address("rta0", VIP6, 64) is False
    assert line_of(ip_lines(pair.a, "-6", "addr"), "2001:db8::10/64") is None


def test_holder(pair: Pair) -> None:
    rtnl = pair.rtnl
    assert rtnl.holder(PRIVATE) == Addr("rta1", "rta1", PRIVATE, 24)
    assert rtnl.holder(VIP) is None
    rtnl.add_address("rta1", VIP, 32, label="rta1:vip")
    assert rtnl.holder(VIP) == Addr("rta1", "rta1:vip", VIP, 32)


def test_link_state_follows_admin_state_and_peer_carrier(pair: Pair) -> None:
    rtnl = pair.rtnl
    rta0 = link_of(rtnl, "rta0")
    assert (rta0.up, rta0.carrier, rta0.master) == (True, True, None)
    assert rta0.mac == bytes.fromhex(MAC0.replace(":", ""))
    assert rta0.index == int(ip("-n", pair.a.name, "-o", "link", "show", "rta0").split(":")[0])
    ip("-n", pair.b.name, "link", "set", "dev", "rtb0", "down")
    # IFF_LOWER_UP follows the carrier at once (operstate lags behind by up to a second)
    assert rtnl.link("rta0") == Link(rta0.index, "rta0", rta0.mac, True, False, None)
    ip("-n", pair.b.name, "link", "set", "dev", "rtb0", "up")
    assert link_of(rtnl, "rta0").carrier is True
    ip("-n", pair.a.name, "link", "set", "dev", "rta0", "down")
    down = link_of(rtnl, "rta0")
    assert (down.up, down.carrier) == (False, False)


def test_loopback_has_carrier_while_up(pair: Pair) -> None:
    lo = link_of(pair.rtnl, "lo")
    assert (lo.up, lo.carrier, lo.mac) == (True, True, bytes(6))


def test_unknown_link_is_none(pair: Pair) -> None:
    assert pair.rtnl.link("rtx9") is None
    assert pair.rtnl.link("x" * 20) is None
    assert pair.rtnl.link("") is None


def test_bridge_master(pair: Pair) -> None:
    try:
        ip("-n", pair.a.name, "link", "add", "rtbr0", "type", "bridge")
    except RuntimeError as exc:
        pytest.skip(f"no bridge support here: {exc}")
    ip("-n", pair.a.name, "link", "set", "rta1", "master", "rtbr0")
    assert link_of(pair.rtnl, "rta1").master == link_of(pair.rtnl, "rtbr0").index


def test_link_watch_wakes_on_admin_down(pair: Pair) -> None:
    with pair.a.entered():
        watch = LinkWatch()
    with watch:
        assert watch.drain() is False
        ip("-n", pair.a.name, "link", "set", "dev", "rta0", "down")
        assert select.select([watch], [], [], 2.0)[0] == [watch]
        assert watch.drain() is True
        assert watch.drain() is False


def test_link_watch_wakes_on_peer_carrier_loss(pair: Pair) -> None:
    # the peer lives in the other namespace: here it is only our end's carrier change, which
    # the kernel's linkwatch reports up to a second late (the IFF_LOWER_UP flag is at once)
    with pair.a.entered():
        watch = LinkWatch()
    with watch:
        ip("-n", pair.b.name, "link", "set", "dev", "rtb1", "down")
        assert link_of(pair.rtnl, "rta1").carrier is False
        assert select.select([watch], [], [], 2.0)[0] == [watch]
        assert watch.drain() is True
        assert watch.drain() is False


def test_link_watch_survives_a_lost_flood_of_events(pair: Pair) -> None:
    # a receive queue the kernel overflows for real: recv says ENOBUFS (events were lost),
    # which counts as "links changed" (the caller re-reads them) and is no error
    with pair.a.entered():
        watch = LinkWatch(receive_buffer=1)
    with watch:
        batch = "".join(f"link set dev rta0 {'down' if i % 2 else 'up'}\n" for i in range(400))
        subprocess.run(["ip", "-n", pair.a.name, "-batch", "-"], input=batch, text=True,
                       check=True, capture_output=True)
        assert watch.drain() is True
        assert watch.drain() is False  # the queue is empty again and the socket still works
        ip("-n", pair.a.name, "link", "set", "dev", "rta0", "up")  # the flood ended down
        assert select.select([watch], [], [], 2.0)[0] == [watch]
        assert watch.drain() is True


def test_link_faults_on_real_links(pair: Pair) -> None:
    rtnl = pair.rtnl
    watched = {"Primary": PRIMARY, "Private": PRIVATE, "Public": ip_address("198.51.100.77")}
    assert link_faults(rtnl.links(), rtnl.addresses(), watched) == []
    ip("-n", pair.b.name, "link", "set", "dev", "rtb1", "down")
    assert link_faults(rtnl.links(), rtnl.addresses(), watched) == [
        "Private NIC: link down (rta1)"]
    ip("-n", pair.a.name, "link", "set", "dev", "rta0", "down")
    # an admin-down IPv4 link keeps its addresses, so the fault is still found
    assert link_faults(rtnl.links(), rtnl.addresses(), watched) == [
        "Primary NIC: link down (rta0)", "Private NIC: link down (rta1)"]


def test_bound_to_the_opening_thread(pair: Pair) -> None:
    errors: list[BaseException] = []

    def use() -> None:
        try:
            pair.rtnl.links()
        except BaseException as exc:  # reported to the main thread
            errors.append(exc)

    worker = threading.Thread(target=use)
    worker.start()
    worker.join()
    assert len(errors) == 1 and isinstance(errors[0], RuntimeError)
    assert pair.rtnl.link("rta0") is not None  # still fine in its own thread


def test_close_is_idempotent_and_later_calls_fail_clearly(pair: Pair) -> None:
    with pair.a.entered(), Rtnl() as rtnl:
        assert rtnl.link("rta0") is not None
    rtnl.close()
    with pytest.raises(NetError, match="closed"):
        rtnl.links()


def test_dumps_agree_with_pyroute2(pair: Pair) -> None:
    """pyroute2, an independent implementation, reads the same links and addresses (the
    product speaks rtnetlink itself; see piranha/net/netlink.py for why)."""
    from pyroute2 import IPRoute

    pair.rtnl.add_address("rta0", VIP, 32, "rta0:1")
    pair.rtnl.add_address("rta1", VIP6, 64)
    pair.rtnl.add_address("rta1", ip_address("10.200.0.77"), 24)  # a secondary
    with pair.a.entered():
        ipr = IPRoute()
    with ipr:
        links = {(int(m["index"]), m.get_attr("IFLA_IFNAME"),
                  bytes.fromhex((m.get_attr("IFLA_ADDRESS") or "").replace(":", "")),
                  bool(m["flags"] & 1), bool(m["flags"] & 0x10000), m.get_attr("IFLA_MASTER"))
                 for m in ipr.get_links()}
        names = {i: n for i, n, *_ in links}
        addrs = {(names[m["index"]], m.get_attr("IFA_LABEL") or names[m["index"]],
                  ip_address(m.get_attr("IFA_LOCAL") or m.get_attr("IFA_ADDRESS")),
                  m["prefixlen"]) for m in ipr.get_addr()}
    ours = {(k.index, k.name, k.mac, k.up, k.carrier, k.master) for k in pair.rtnl.links()}
    assert ours == links
    assert {(a.device, a.label, a.address, a.prefix) for a in pair.rtnl.addresses()} == addrs
    assert ("rta0", "rta0:1", VIP, 32) in addrs and ("rta1", "rta1", VIP6, 64) in addrs


def test_memory_stays_flat_over_many_requests(pair: Pair) -> None:
    """pyroute2's IPRoute grew RSS by ~12 MiB per 1,000 add/list/remove rounds; ours must not
    grow at all beyond the first rounds (one receive buffer, no per-request allocation kept)."""
    def rss_kib() -> int:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))

    def rounds(n: int) -> None:
        for _ in range(n):
            pair.rtnl.add_address("rta0", VIP, 32, "rta0:1")
            pair.rtnl.addresses()
            pair.rtnl.remove_address("rta0", VIP, 32)

    rounds(100)
    before = rss_kib()
    rounds(1000)
    assert rss_kib() - before < 1024, "RSS grew by more than 1 MiB over 1,000 rounds"
