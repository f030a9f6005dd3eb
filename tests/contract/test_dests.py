"""Contract: real servers (add, edit, delete, order, tunnels, thresholds, errors)."""

from __future__ import annotations

import errno
from dataclasses import replace

import pytest

from piranha.ipvs.types import (
    AddDest,
    AddService,
    DelDest,
    DelService,
    EditDest,
    Forward,
    ServiceKey,
    TunFlags,
    TunType,
)
from testkit.ipvs_cases import WEB, WEB6, fails, key, ok, rs, service

DESTS = {
    "masq-thresholds": (WEB, rs(11, 8080, Forward.MASQ, weight=3, u_threshold=100, l_threshold=10)),
    "route": (WEB, rs(12, 80, Forward.ROUTE, weight=1)),
    "local": (WEB, rs(13, 80, Forward.LOCAL, weight=2)),
    "weight-zero": (WEB, rs(14, 80, Forward.ROUTE, weight=0)),
    "ipip": (WEB, rs(15, 80, Forward.TUNNEL)),
    "gue-csum": (WEB, rs(16, 80, Forward.TUNNEL, tun_type=TunType.GUE, tun_port=6080,
                          tun_flags=TunFlags.CSUM)),
    "gue-remcsum": (WEB, rs(17, 80, Forward.TUNNEL, tun_type=TunType.GUE, tun_port=6081,
                             tun_flags=TunFlags.REMCSUM)),
    "gre-csum": (WEB, rs(18, 80, Forward.TUNNEL, tun_type=TunType.GRE, tun_flags=TunFlags.CSUM)),
    "ipv6": (WEB6, rs("2001:db8:200::11", 443, Forward.MASQ, weight=5)),
    "ipv6-in-ipv4-tunnel": (WEB, rs("2001:db8:200::12", 80, Forward.TUNNEL)),
    "ipv4-in-ipv6-tunnel": (WEB6, rs(19, 443, Forward.TUNNEL, tun_type=TunType.GRE)),
    "fwmark-port-zero": (ServiceKey.mark(7), rs(20, 0, Forward.ROUTE)),
    "big-values": (WEB, rs(21, 65535, Forward.MASQ, weight=2**31 - 1, u_threshold=2**31 - 1,
                            l_threshold=2**31 - 1)),
}


@pytest.mark.parametrize("name", DESTS)
def test_a_dest_reads_back_as_added(lab, name):
    k, dest = DESTS[name]
    ok(lab, AddService(service(k)), AddDest(k, dest))
    assert lab.ipvs.dump().dests == {k: (dest,)}
    assert lab.ipvs.get_service(k)[1] == (dest,)


def test_dests_are_listed_newest_first_and_edits_keep_their_place(lab):
    dests = [rs(n) for n in (11, 12, 13, 14)]
    ok(lab, AddService(service()), *(AddDest(WEB, d) for d in dests))
    assert lab.ipvs.dump().dests[WEB] == tuple(reversed(dests))
    edited = rs(12, weight=9, forward=Forward.ROUTE, u_threshold=5, l_threshold=1)
    ok(lab, EditDest(WEB, edited))
    assert lab.ipvs.dump().dests[WEB] == (dests[3], dests[2], edited, dests[0])


def test_edit_can_switch_a_dest_to_a_tunnel_and_back(lab):
    ok(lab, AddService(service()), AddDest(WEB, rs(11)))
    gue = rs(11, forward=Forward.TUNNEL, tun_type=TunType.GUE, tun_port=5555,
             tun_flags=TunFlags.CSUM)
    ok(lab, EditDest(WEB, gue))
    assert lab.ipvs.dump().dests[WEB] == (gue,)
    ok(lab, EditDest(WEB, rs(11)))
    assert lab.ipvs.dump().dests[WEB] == (rs(11),)


def test_delete_dest_and_delete_service(lab):
    ok(lab, AddService(service()), AddDest(WEB, rs(11)), AddDest(WEB, rs(12)),
       DelDest(WEB, rs(11).key))
    assert lab.ipvs.dump().dests[WEB] == (rs(12),)
    ok(lab, DelService(WEB), AddService(service()))
    assert lab.ipvs.dump().dests == {WEB: ()}


def test_the_same_dest_may_serve_several_services(lab):
    other = key(443)
    ok(lab, AddService(service()), AddService(service(other)), AddDest(WEB, rs(11)),
       AddDest(other, rs(11, weight=7)))
    assert lab.ipvs.dump().dests == {WEB: (rs(11),), other: (rs(11, weight=7),)}


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("op", [AddDest(WEB, rs(11)), EditDest(WEB, rs(11)),
                                DelDest(WEB, rs(11).key)], ids=["add", "edit", "del"])
def test_a_dest_op_on_a_missing_service_is_esrch(lab, op):
    ok(lab, AddService(service(key(81))))
    err = fails(lab, op)
    assert (err.errno, err.message) == (errno.ESRCH, "Service not defined")


def test_adding_an_existing_dest_is_eexist(lab):
    ok(lab, AddService(service()), AddDest(WEB, rs(11)))
    err = fails(lab, AddDest(WEB, rs(11, weight=5)))
    assert (err.errno, err.message) == (errno.EEXIST, "Destination already exists")
    assert lab.ipvs.dump().dests[WEB] == (rs(11),)


@pytest.mark.parametrize("op", [EditDest(WEB, rs(12)), DelDest(WEB, rs(11, 81).key)],
                         ids=["edit", "del-other-port"])
def test_a_missing_dest_is_enoent(lab, op):
    ok(lab, AddService(service()), AddDest(WEB, rs(11)))
    err = fails(lab, op)
    assert (err.errno, err.message) == (errno.ENOENT, "No such destination")


@pytest.mark.parametrize("dest", [rs(12, u_threshold=5, l_threshold=6), rs(12, weight=-1)],
                         ids=["lower-above-upper", "negative-weight"])
def test_bad_thresholds_or_weight_are_erange(lab, dest):
    ok(lab, AddService(service()), AddDest(WEB, rs(12)))
    # the range checks come before the existence checks: an existing dest on add...
    err = fails(lab, AddDest(WEB, dest))
    assert (err.errno, err.message) == (errno.ERANGE, "Numerical result out of range")
    # ...and a missing one on edit
    assert fails(lab, EditDest(WEB, replace(dest, addr=rs(19).addr))).errno == errno.ERANGE
    assert fails(lab, AddDest(WEB, replace(dest, addr=rs(19).addr))).errno == errno.ERANGE
    assert lab.ipvs.dump().dests[WEB] == (rs(12),)


def test_an_upper_threshold_over_int_max_is_einval_after_the_range_checks(lab):
    # a check Debian's 6.1 kernel has (later upstream stable): u_threshold is kept as an int
    ok(lab, AddService(service()), AddDest(WEB, rs(12)))
    huge = rs(13, u_threshold=2**31)
    assert fails(lab, AddDest(WEB, huge)).errno == errno.EINVAL
    assert fails(lab, EditDest(WEB, rs(12, u_threshold=2**32 - 1))).errno == errno.EINVAL
    assert fails(lab, AddDest(WEB, rs(13, u_threshold=2**31, l_threshold=2**32 - 1)))\
        .errno == errno.ERANGE
    assert lab.ipvs.dump().dests[WEB] == (rs(12),)


def test_gue_without_a_port_is_einval(lab):
    gue = rs(12, forward=Forward.TUNNEL, tun_type=TunType.GUE, tun_port=0)
    ok(lab, AddService(service()), AddDest(WEB, rs(12)))
    assert fails(lab, AddDest(WEB, rs(13, forward=Forward.TUNNEL, tun_type=TunType.GUE)))\
        .errno == errno.EINVAL
    assert fails(lab, EditDest(WEB, gue)).errno == errno.EINVAL


@pytest.mark.parametrize("forward", [Forward.MASQ, Forward.ROUTE, Forward.LOCAL])
def test_a_dest_of_the_other_family_must_be_a_tunnel(lab, forward):
    ok(lab, AddService(service()), AddService(service(WEB6)))
    assert fails(lab, AddDest(WEB, rs("2001:db8:200::11", 80, forward))).errno == errno.EINVAL
    assert fails(lab, AddDest(WEB6, rs(11, 443, forward))).errno == errno.EINVAL
    assert lab.ipvs.dump().dests == {WEB: (), WEB6: ()}


@pytest.mark.parametrize("addr", ["224.0.0.5", "255.255.255.255", "0.0.0.0"])
def test_a_non_unicast_ipv4_dest_is_einval(lab, addr):
    ok(lab, AddService(service()))
    assert fails(lab, AddDest(WEB, rs(addr))).errno == errno.EINVAL


@pytest.mark.parametrize("addr", ["0.1.2.3", "127.0.0.1", "10.200.0.0", "198.51.100.1"])
def test_odd_but_unicast_ipv4_dests_are_accepted(lab, addr):
    ok(lab, AddService(service()), AddDest(WEB, rs(addr)))
    assert lab.ipvs.dump().dests[WEB] == (rs(addr),)


@pytest.mark.parametrize("addr", ["ff02::1", "::", "fe80::1"])
def test_a_non_unicast_ipv6_dest_is_einval(lab, addr):
    ok(lab, AddService(service(WEB6)))
    assert fails(lab, AddDest(WEB6, rs(addr, 443))).errno == errno.EINVAL
    assert lab.ipvs.dump().dests[WEB6] == ()
