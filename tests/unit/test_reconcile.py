"""desired() and plan(): Piranha's table semantics and a minimal, ordered diff."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import ip_address

from piranha.config import loads
from piranha.health.report import DestId
from piranha.ipvs.types import (
    AddDest,
    AddService,
    DelDest,
    DelService,
    Dest,
    DestKey,
    EditDest,
    EditService,
    Family,
    Forward,
    Proto,
    Service,
    ServiceKey,
    SvcFlags,
    Table,
)
from piranha.model import Cluster
from piranha.reconcile import desired, owned_keys, plan, service_key

BASE = """\
primary = 203.0.113.10
network = {network}
virtual www {{
     active = 1
     address = 203.0.113.80 eth0:1
     port = 80
     scheduler = rr
     {extra}
     server web1 {{
         address = 192.168.10.11
         active = 1
         weight = 3
         port = 8080
     }}
     server web2 {{
         address = 192.168.10.12
         active = 1
         weight = 1
     }}
     server off {{
         address = 192.168.10.13
         active = 0
     }}
}}
"""
VIP = ip_address("203.0.113.80")
WEB1, WEB2, SORRY = (ip_address(f"192.168.10.{n}") for n in (11, 12, 50))
KEY = ServiceKey.inet(Proto.TCP, VIP, 80)


def cluster(network: str = "nat", extra: str = "") -> Cluster:
    return loads(BASE.format(network=network, extra=extra), "t.cf").cluster


def ids(c: Cluster) -> dict[str, DestId]:
    vs = c.virtuals[0]
    return {rs.name: DestId.for_server(vs, rs) for rs in vs.servers if rs.address}


def test_only_reported_servers_are_in_the_table() -> None:
    c = cluster()
    table = desired(c, {ids(c)["web1"]: 3})
    assert table.services == (Service(KEY, "rr", SvcFlags.NONE, 0, 32),)
    assert table.dests[KEY] == (Dest(WEB1, 8080, Forward.MASQ, 3),)


def test_quiesced_server_stays_with_weight_zero_and_down_server_is_absent() -> None:
    c = cluster()
    table = desired(c, {ids(c)["web1"]: 0, ids(c)["web2"]: None})
    assert table.dests[KEY] == (Dest(WEB1, 8080, Forward.MASQ, 0),)


def test_inactive_server_is_never_in_the_table() -> None:
    c = cluster()
    table = desired(c, {ids(c)["web2"]: 1, ids(c)["off"]: 5})
    assert [d.addr for d in table.dests[KEY]] == [WEB2]


def test_direct_routing_uses_the_service_port_like_ipvsadm() -> None:
    c = cluster("direct")
    table = desired(c, {ids(c)["web1"]: 3})
    assert table.dests[KEY] == (Dest(WEB1, 80, Forward.ROUTE, 3),)


def test_fwmark_service_keeps_real_server_ports_and_persistence() -> None:
    c = cluster("tunnel", "fwmark = 8\n     persistent = 600\n     pmask = 255.255.255.0")
    table = desired(c, {ids(c)["web1"]: 3})
    mark = ServiceKey.mark(8, Family.INET)
    assert table.services == (Service(mark, "rr", SvcFlags.PERSISTENT, 600, 24),)
    assert table.dests[mark] == (Dest(WEB1, 8080, Forward.TUNNEL, 3),)


SHARED_MARK = """\
primary = 203.0.113.10
network = direct
virtual http {{
     active = 1
     address = 203.0.113.80 eth0:1
     port = 80
     fwmark = 80
     persistent = 300
     server web1 {{
         address = 192.168.10.11
         active = 1
     }}
}}
virtual https {{
     active = 1
     address = 203.0.113.80 eth0:1
     port = 443
     fwmark = 80
     persistent = 300
     {extra}
     server web1 {{
         address = 192.168.10.11
         active = 1
     }}
     server web2 {{
         address = 192.168.10.12
         active = 1
     }}
}}
"""


def test_virtuals_sharing_a_fwmark_are_one_service_with_the_servers_of_both() -> None:
    # Red Hat's HTTP + HTTPS recipe: one mark for both ports, as Piranha ran it
    c = loads(SHARED_MARK.format(extra=""), "t.cf").cluster
    http, https = c.virtuals
    weights = {DestId.for_server(vs, rs): 1 for vs in c.virtuals for rs in vs.servers}
    table = desired(c, weights)
    mark = ServiceKey.mark(80, Family.INET)
    assert table.services == (Service(mark, "wlc", SvcFlags.PERSISTENT, 300, 32),)
    assert table.dests[mark] == (Dest(WEB1, 80, Forward.ROUTE, 1),
                                 Dest(WEB1, 443, Forward.ROUTE, 1),
                                 Dest(WEB2, 443, Forward.ROUTE, 1))
    assert owned_keys(c) == {mark}
    # one server down in one virtual only takes out that virtual's entry
    del weights[DestId.for_server(https, https.servers[0])]
    assert [(d.addr, d.port) for d in desired(c, weights).dests[mark]] == [
        (WEB1, 80), (WEB2, 443)]
    assert plan(Table(), desired(c, weights), owned_keys(c))[0] == AddService(table.services[0])


def test_a_shared_mark_with_a_conflicting_setting_names_both_virtuals() -> None:
    import pytest

    from piranha.errors import ConfigErrors
    with pytest.raises(ConfigErrors) as caught:
        loads(SHARED_MARK.format(extra="scheduler = rr"), "t.cf")
    assert [str(e) for e in caught.value.errors] == [
        "t.cf:14:1: error: virtual 'https' shares fwmark 80 with virtual 'http' (line 3) but "
        "sets scheduler = rr where it has wlc: virtuals sharing a mark are one IPVS service"]


def test_sorry_server_is_in_exactly_when_no_real_server_has_weight() -> None:
    c = cluster(extra="sorry_server = 192.168.10.50")
    i = ids(c)
    sorry = Dest(SORRY, 80, Forward.MASQ, 1)
    assert desired(c, {}).dests[KEY] == (sorry,)
    assert desired(c, {i["web1"]: 0}).dests[KEY] == (Dest(WEB1, 8080, Forward.MASQ, 0), sorry)
    assert desired(c, {i["web2"]: 1}).dests[KEY] == (Dest(WEB2, 80, Forward.MASQ, 1),)


def test_plan_from_empty_table_adds_service_then_dests() -> None:
    c = cluster()
    want = desired(c, {ids(c)["web1"]: 3, ids(c)["web2"]: 1})
    ops = plan(Table(), want, owned_keys(c))
    assert ops == [AddService(want.services[0]),
                   AddDest(KEY, Dest(WEB1, 8080, Forward.MASQ, 3)),
                   AddDest(KEY, Dest(WEB2, 80, Forward.MASQ, 1))]


def test_plan_of_equal_tables_is_empty_even_with_live_counters() -> None:
    c = cluster()
    want = desired(c, {ids(c)["web1"]: 3})
    busy = replace(want.dests[KEY][0], active_conns=12, inact_conns=40)
    actual = Table(want.services, {KEY: (busy,)})
    assert plan(actual, want, owned_keys(c)) == []


def test_one_changed_weight_is_one_edit() -> None:
    c = cluster()
    before = desired(c, {ids(c)["web1"]: 3, ids(c)["web2"]: 1})
    after = desired(c, {ids(c)["web1"]: 5, ids(c)["web2"]: 1})
    assert plan(before, after, owned_keys(c)) == [
        EditDest(KEY, Dest(WEB1, 8080, Forward.MASQ, 5))]


def test_drift_is_repaired_and_foreign_services_are_left_alone() -> None:
    c = cluster()
    want = desired(c, {ids(c)["web1"]: 3})
    foreign = Service(ServiceKey.inet(Proto.UDP, VIP, 53), "wlc")
    stray = Dest(ip_address("10.9.9.9"), 80, Forward.MASQ, 1)
    actual = Table((replace(want.services[0], scheduler="wlc"), foreign),
                   {KEY: (stray,), foreign.key: (stray,)})
    assert plan(actual, want, owned_keys(c)) == [
        EditService(want.services[0]),
        AddDest(KEY, Dest(WEB1, 8080, Forward.MASQ, 3)),
        DelDest(KEY, DestKey(stray.addr, 80)),
    ]


def test_virtual_removed_on_reload_is_deleted_last() -> None:
    old = cluster()
    new = loads("primary = 203.0.113.10\n", "t.cf").cluster
    actual = desired(old, {ids(old)["web1"]: 3})
    assert plan(actual, desired(new, {}), owned_keys(old, new)) == [DelService(KEY)]


def test_service_key_of_ipv6_fwmark() -> None:
    text = BASE.format(network="nat", extra="fwmark = 3").replace("203.0.113.80", "2001:db8::80")
    text = text.replace("192.168.10.1", "2001:db8:1::1")
    vs = loads(text, "t.cf").cluster.virtuals[0]
    assert service_key(vs) == ServiceKey.mark(3, Family.INET6)
