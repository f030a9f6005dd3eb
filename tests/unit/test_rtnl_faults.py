"""link_faults: Piranha's monitor_links rule over plain Link/Addr values (no kernel)."""

from __future__ import annotations

import sys
from ipaddress import ip_address

from piranha.net.rtnl import Addr, Link, holder_of, link_faults

PRIMARY, PRIVATE = ip_address("198.51.100.1"), ip_address("10.200.0.1")
V6 = ip_address("2001:db8::1")


def link(index: int, name: str, up: bool = True, carrier: bool = True,
         master: int | None = None) -> Link:
    return Link(index, name, b"\x02\x00\x00\x00\x00\x01", up, carrier, master)


def addr(device: str, ip: str, prefix: int = 24, label: str | None = None) -> Addr:
    return Addr(device, label or device, ip_address(ip), prefix)


ADDRS = [addr("eth0", "198.51.100.1"), addr("eth1", "10.200.0.1", label="eth1:0"),
         addr("eth0", "2001:db8::1", 64)]


def test_all_links_fine() -> None:
    links = [link(1, "lo"), link(2, "eth0"), link(3, "eth1")]
    assert link_faults(links, ADDRS, {"Primary": PRIMARY, "Private": PRIVATE}) == []


def test_no_carrier_is_a_fault_named_after_the_role_and_device() -> None:
    links = [link(2, "eth0"), link(3, "eth1", carrier=False)]
    assert link_faults(links, ADDRS, {"Primary": PRIMARY, "Private": PRIVATE}) == [
        "Private NIC: link down (eth1)"]


def test_admin_down_is_a_fault_and_order_follows_watched() -> None:
    links = [link(2, "eth0", up=False, carrier=False), link(3, "eth1", up=False)]
    assert link_faults(links, ADDRS, {"Private": PRIVATE, "Primary": PRIMARY}) == [
        "Private NIC: link down (eth1)", "Primary NIC: link down (eth0)"]


def test_unheld_address_counts_as_up() -> None:
    links = [link(2, "eth0", carrier=False)]
    assert link_faults(links, ADDRS, {"Primary": ip_address("198.51.100.99")}) == []


def test_link_missing_from_the_dump_counts_as_up() -> None:
    assert link_faults([], ADDRS, {"Primary": PRIMARY}) == []


def test_ipv6_address_is_looked_up_too() -> None:
    links = [link(2, "eth0", carrier=False)]
    assert link_faults(links, ADDRS, {"Primary": V6}) == ["Primary NIC: link down (eth0)"]


def test_bond_is_judged_not_its_slaves() -> None:
    # the address lives on bond0; a dead slave does not matter while the bond has carrier
    links = [link(2, "eth0", carrier=False, master=4), link(3, "eth1", master=4),
             link(4, "bond0")]
    addrs = [addr("bond0", "198.51.100.1")]
    assert link_faults(links, addrs, {"Primary": PRIMARY}) == []
    links[2] = link(4, "bond0", carrier=False)
    assert link_faults(links, addrs, {"Primary": PRIMARY}) == ["Primary NIC: link down (bond0)"]


def test_alias_label_does_not_matter_the_device_does() -> None:
    links = [link(3, "eth1", carrier=False)]
    assert link_faults(links, ADDRS, {"Private": PRIVATE}) == ["Private NIC: link down (eth1)"]


def test_holder_of_first_match_and_none() -> None:
    both = [addr("eth0", "198.51.100.1"), addr("eth1", "198.51.100.1")]
    assert holder_of(both, PRIMARY) == both[0]
    assert holder_of(both, ip_address("198.51.100.2")) is None
    # an IPv4 address never equals an IPv6 one, even the mapped form
    assert holder_of(both, ip_address("::ffff:198.51.100.1")) is None


def test_importing_the_module_does_not_import_pyroute2() -> None:
    # the product speaks rtnetlink itself: pyroute2 (0.3-0.6 s to import here, ~28 s in the
    # emulated VM) is only the tests' oracle
    import subprocess
    from pathlib import Path

    code = "import sys, piranha.net.rtnl; print('pyroute2' in sys.modules)"
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=root)
    assert out.stdout.strip() == "False"
