"""ipvsadm's wrap-around sort order, reproduced with glibc's merge sort."""

from __future__ import annotations

import functools
import random
from ipaddress import IPv4Address, ip_address

from piranha.ipvs.types import Dest, Family, Proto, Service, ServiceKey
from piranha.ipvsadm.sort import merge_sort, sort_dests, sort_services, wrap


def dest(addr: str, port: int = 80) -> Dest:
    return Dest(ip_address(addr), port)


def addrs(dests):
    return [str(d.addr) for d in dests]


def test_wrap_is_a_c_int_difference():
    assert wrap(0xC0A80001 - 0x0A000001) < 0
    assert wrap(0x0A000001 - 0x0A000002) == -1


def test_high_addresses_list_before_low_ones():
    assert addrs(sort_dests([dest("10.0.0.1"), dest("192.168.0.1")])) == ["192.168.0.1",
                                                                         "10.0.0.1"]
    assert addrs(sort_dests([dest("10.0.0.2"), dest("10.0.0.1")])) == ["10.0.0.1", "10.0.0.2"]


def test_ports_break_ties():
    assert [d.port for d in sort_dests([dest("10.0.0.1", 90), dest("10.0.0.1", 80)])] == [80, 90]


def test_merge_sort_is_glibc_order_not_a_total_order():
    # three addresses a third of the space apart: a < b < c < a under wrap-around
    a, b, c = (dest(str(IPv4Address(i * 0x55555555 + 1))) for i in range(3))
    # [c, b, a]: sort [b, a] -> [a, b]; merge [c] with it: c < a, so c first
    assert addrs(sort_dests([c, b, a])) == addrs([c, a, b])
    assert addrs(sort_dests([a, b, c])) == addrs([a, b, c])


def test_merge_sort_matches_a_sorted_order_for_transitive_inputs():
    rng = random.Random(7)
    values = [rng.randrange(1000) for _ in range(200)]
    assert merge_sort(values, lambda x, y: x - y) == sorted(values)


def test_merge_sort_is_stable_for_equal_keys():
    items = [(1, "a"), (0, "b"), (1, "c"), (0, "d")]
    assert merge_sort(items, lambda x, y: x[0] - y[0]) == [(0, "b"), (0, "d"), (1, "a"),
                                                           (1, "c")]


def test_services_order_fwmark_family_protocol():
    tcp = Service(ServiceKey.inet(Proto.TCP, ip_address("10.0.0.1"), 80))
    udp = Service(ServiceKey.inet(Proto.UDP, ip_address("10.0.0.1"), 80))
    v6 = Service(ServiceKey.inet(Proto.TCP, ip_address("2001:db8::1"), 80))
    mark7 = Service(ServiceKey.mark(7))
    mark_max = Service(ServiceKey.mark(2**32 - 1, Family.INET6))
    got = sort_services([mark7, v6, udp, tcp, mark_max])
    assert got == [mark_max, tcp, udp, v6, mark7]


def test_ipv6_addresses_compare_word_by_word_with_wrap():
    got = sort_dests([dest("2001:db8::1"), dest("f001:db8::1"), dest("2001:db8::2")])
    assert addrs(got) == ["f001:db8::1", "2001:db8::1", "2001:db8::2"]


def test_python_sorted_would_differ_somewhere():
    """Why merge_sort exists: sorted() with the same comparator gives other orders."""
    rng = random.Random(1)

    def cmp(x: Dest, y: Dest) -> int:
        return wrap(int(x.addr) - int(y.addr))

    differs = 0
    for _ in range(200):
        ds = [dest(str(IPv4Address(rng.randrange(2**32)))) for _ in range(rng.randrange(2, 40))]
        if sorted(ds, key=functools.cmp_to_key(cmp)) != sort_dests(ds):
            differs += 1
    assert differs > 0
