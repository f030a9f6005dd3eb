"""What pulse owns on a director, from lvs.cf alone: election, heartbeat paths, VIPs."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from piranha.config import loads
from piranha.director.plan import PlanError, Vip, is_master, paths, settings, vips
from piranha.heartbeat.transport import Path

BASE = """\
primary = 198.51.100.1
backup_active = 1
backup = 198.51.100.2
keepalive = 0.5
deadtime = 1.5
network = {network}
{extra}
virtual web {{
     active = 1
     address = 198.51.100.10 eth0:1
     vip_nmask = 255.255.255.0
     server a {{
         address = 10.200.0.11
         active = 1
     }}
}}
virtual web443 {{
     active = 1
     address = 198.51.100.10 eth0:1
     port = 443
     server a {{
         address = 10.200.0.11
         active = 1
     }}
}}
virtual dns {{
     active = 1
     address = 198.51.100.53 eth0
     port = 53
     protocol = udp
     server a {{
         address = 10.200.0.11
         active = 1
     }}
}}
virtual off {{
     active = 0
     address = 198.51.100.99 eth0:9
     server a {{
         address = 10.200.0.11
         active = 1
     }}
}}
"""


def cluster(network: str = "direct", extra: str = ""):  # type: ignore[no-untyped-def]
    return loads(BASE.format(network=network, extra=extra)).cluster


IP = ip_address


def test_the_director_holding_primary_is_the_master() -> None:
    c = cluster()
    assert is_master(c, {IP("198.51.100.1"), IP("10.200.0.1")})
    assert not is_master(c, {IP("198.51.100.2")})


def test_paths_public_only_when_private_is_the_same() -> None:
    c = cluster()
    assert paths(c, True) == (Path("public", IP("198.51.100.1"), IP("198.51.100.2")),)
    assert paths(c, False) == (Path("public", IP("198.51.100.2"), IP("198.51.100.1")),)


def test_paths_private_when_given() -> None:
    c = cluster(extra="primary_private = 10.200.0.1\nbackup_private = 10.200.0.2")
    assert paths(c, False) == (Path("public", IP("198.51.100.2"), IP("198.51.100.1")),
                               Path("private", IP("10.200.0.2"), IP("10.200.0.1")))


def test_a_lone_master_has_no_paths() -> None:
    c = loads(BASE.format(network="direct", extra="").replace("backup_active = 1",
                                                              "backup_active = 0")).cluster
    assert paths(c, True) == ()


def test_a_host_that_is_neither_director_is_told_which_key_is_missing() -> None:
    c = loads(BASE.format(network="direct", extra="").replace("backup = 198.51.100.2\n", "")
              .replace("backup_active = 1", "backup_active = 0")).cluster
    with pytest.raises(PlanError) as caught:
        settings(c, {IP("192.0.2.7")})  # holds neither address; primary is set
    assert str(caught.value) == ("this host does not hold primary (198.51.100.1) and backup "
                                 "is not set: it is neither director (set backup = IP on the "
                                 "backup)")


def test_vips_are_distinct_active_addresses_with_their_masks() -> None:
    assert vips(cluster()) == (
        Vip(IP("198.51.100.10"), 24, "eth0", "eth0:1", "virtual web"),
        Vip(IP("198.51.100.53"), 32, "eth0", None, "virtual dns"),
    )


def test_nat_router_comes_first_under_nat_only() -> None:
    extra = "nat_router = 10.200.0.254 eth1:1\nnat_nmask = 255.255.255.0"
    assert vips(cluster("nat", extra))[0] == Vip(IP("10.200.0.254"), 24, "eth1", "eth1:1",
                                                 "nat_router")
    assert all(v.owner != "nat_router" for v in vips(cluster("direct", extra)))


def test_settings_refuse_a_vip_that_is_our_own_address() -> None:
    c = loads(BASE.format(network="direct", extra="").replace(
        "198.51.100.53 eth0", "198.51.100.2 eth0")).cluster
    with pytest.raises(PlanError, match=r"virtual dns: 198.51.100.2 is this director's own "):
        settings(c, {IP("198.51.100.2")})
    assert settings(c, {IP("198.51.100.1")}).master  # the master's own address is .1


def test_settings_carry_timers_key_and_watched_links() -> None:
    extra = "monitor_links = 1\nheartbeat_key = 0123456789abcdef\nsyncdaemon = 1\nsyncd_id = 7"
    s = settings(cluster(extra=extra), {IP("198.51.100.2")})
    assert (s.master, s.keepalive, s.deadtime, s.key) == (False, 0.5, 1.5, b"0123456789abcdef")
    assert s.watched == {"Primary": IP("198.51.100.2")}
    assert (s.sync_iface, s.sync_id) == ("eth0", 7)
    assert s.partners == ("198.51.100.1",)
    assert settings(cluster(), {IP("198.51.100.1")}).sync_iface is None
