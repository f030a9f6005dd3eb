"""Golden tests for the pure ipvsadm formatter: the reference's worked examples, byte for byte."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from piranha.ipvs.types import Dest, Forward, Proto, Service, ServiceKey, SvcFlags, Table, TunType
from piranha.ipvsadm.format import Fmt, Namer, header, largenum, render_services
from testkit.lookup import StaticLookup
from testkit.tables import DNS6, INFO, MARK7, example_table, lines, save_table

NUMERIC = Namer(True, StaticLookup({}, {}))


def listing(table: Table, fmt: Fmt, namer: Namer = NUMERIC) -> str:
    """Header + titles + services, like ``ipvsadm -L``."""
    return header(INFO) + render_services(table.services, table, fmt, namer)


def test_default_listing_is_byte_exact():
    assert listing(example_table(), Fmt.NUMERIC) == lines(
        "IP Virtual Server version 1.2.1 (size=4096)",
        "Prot LocalAddress:Port Scheduler Flags",
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
        "TCP  10.0.0.100:80 wlc",
        "  -> 10.0.0.11:80                 Route   1      12         40        ",
        "  -> 10.0.0.12:80                 Route   0      3          117       ",
        "TCP  10.0.0.100:443 rr persistent 360 mask 255.255.255.0",
        "  -> 192.168.1.5:8443             Masq    2      5          3         ",
        "  -> 10.1.0.7:8443                Masq    2      0          0         ",
        "FWM  7 sh (sh-fallback,sh-port)",
        "  -> 10.2.0.1:0                   Tunnel  1      0          0         ",
    )


def test_stats_listing_rounds_large_numbers():
    assert listing(example_table(with_stats=True), Fmt.NUMERIC | Fmt.STATS) == lines(
        "IP Virtual Server version 1.2.1 (size=4096)",
        "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes",
        "  -> RemoteAddress:Port",
        "TCP  10.0.0.100:80                  152311  1020334        0 98765432        0",
        "  -> 10.0.0.11:80                      120      600        0    48000        0",
        "  -> 10.0.0.12:80                       30      150        0    12000        0",
        "TCP  10.0.0.100:443                123456K    2000M    1999M     987G    5000G",
        "  -> 192.168.1.5:8443                   50      250        0    20000        0",
        "  -> 10.1.0.7:8443                       0        0        0        0        0",
        "FWM  7                                   0        0        0        0        0",
        "  -> 10.2.0.1:0                          0        0        0        0        0",
    )


def test_exact_stats_expand_the_columns():
    out = listing(example_table(with_stats=True), Fmt.NUMERIC | Fmt.STATS | Fmt.EXACT)
    assert out.splitlines()[3] == (
        "TCP  10.0.0.100:80                  152311  1020334        0 98765432        0")
    assert out.splitlines()[6] == (
        "TCP  10.0.0.100:443               123456789 2000000000 1999999999 987654321012"
        " 5000000000000")


def test_rate_listing():
    out = listing(example_table(with_rates=True), Fmt.NUMERIC | Fmt.RATE)
    assert out.splitlines(keepends=True)[:6] == lines(
        "IP Virtual Server version 1.2.1 (size=4096)",
        "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS",
        "  -> RemoteAddress:Port",
        "TCP  10.0.0.100:80                      12       85        0     6842        0",
        "  -> 10.0.0.11:80                        6       42        0     3421        0",
        "  -> 10.0.0.12:80                        6       42        0     3421        0",
    ).splitlines(keepends=True)


def test_thresholds_listing():
    out = listing(example_table(), Fmt.NUMERIC | Fmt.THRESHOLDS)
    assert out.splitlines(keepends=True)[:3] + out.splitlines(keepends=True)[6:9] == \
        lines(
            "IP Virtual Server version 1.2.1 (size=4096)",
            "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn ",
            "  -> RemoteAddress:Port",
            "TCP  10.0.0.100:443 rr persistent 360 mask 255.255.255.0",
            "  -> 192.168.1.5:8443             100        10         5          3         ",
            "  -> 10.1.0.7:8443                0          0          0          0         ",
        ).splitlines(keepends=True)


def test_persistent_conn_listing():
    out = listing(example_table(), Fmt.NUMERIC | Fmt.PERSISTENTCONN).splitlines(keepends=True)
    assert out[:3] + out[6:9] == lines(
        "IP Virtual Server version 1.2.1 (size=4096)",
        "Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn ",
        "  -> RemoteAddress:Port",
        "TCP  10.0.0.100:443 rr persistent 360 mask 255.255.255.0",
        "  -> 192.168.1.5:8443             2         4           5          3         ",
        "  -> 10.1.0.7:8443                2         0           0          0         ",
    ).splitlines(keepends=True)


def test_tun_info_listing():
    base = example_table()
    dests = dict(base.dests)
    dests[MARK7] = base.dests[MARK7] + (Dest(ip_address("10.2.0.2"), 0, Forward.ROUTE, 1),)
    table = Table((base.services[0],), dests)
    assert listing(table, Fmt.NUMERIC | Fmt.TUN_INFO) == lines(
        "IP Virtual Server version 1.2.1 (size=4096)",
        "Prot LocalAddress:Port Scheduler Flags",
        "  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn",
        "FWM  7 sh (sh-fallback,sh-port)",
        "  -> 10.2.0.1:0                   Tunnel  gue:6080:-c   1      0          0         ",
        "  -> 10.2.0.2:0                   Route   n/a           1      0          0         ",
    )


def test_save_format():
    table = save_table()
    assert render_services(table.services, table, Fmt.RULE | Fmt.NUMERIC, NUMERIC) == lines(
        "-A -t 10.0.0.100:80 -s wlc",
        "-a -t 10.0.0.100:80 -r 10.0.0.11:80 -g -w 1",
        "-a -t 10.0.0.100:80 -r 10.0.0.12:80 -g -w 0",
        "-A -t 10.0.0.100:443 -s rr -p 360 -M 255.255.255.0",
        "-a -t 10.0.0.100:443 -r 192.168.1.5:8443 -m -w 2",
        "-a -t 10.0.0.100:443 -r 10.1.0.7:8443 -m -w 2",
        "-A -u [2001:db8::53]:53 -s rr -o",
        "-a -u [2001:db8::53]:53 -r [2001:db8::a1]:53 -m -w 1",
        "-A -f 7 -s sh -b sh-fallback,sh-port",
        "-a -f 7 -r 10.2.0.1:0 -i -w 1 --tun-type gue --tun-port 6080 --tun-nocsum",
        "-a -f 7 -r 10.2.0.3:0 -i -w 1 --tun-type ipip",
    )


@pytest.mark.parametrize(("value", "text"), [
    (0, "        0"), (99_999_999, " 99999999"), (100_000_000, "  100000K"),
    (999_999_999, "  999999K"), (1_000_000_000, "    1000M"), (99_999_999_999, "   99999M"),
    (100_000_000_000, "     100G"), (99_999_999_999_999, "   99999G"),
    (100_000_000_000_000, "     100T"), (2**64 - 1, "18446744T"),
])
def test_largenum_rounding(value, text):
    assert largenum(value, Fmt.NONE) == text


@pytest.mark.parametrize(("value", "text"), [
    (0, "        0"), (12_345_678, " 12345678"), (123_456_789, " 123456789"),
    (2**64 - 1, " 18446744073709551615"),
])
def test_largenum_exact(value, text):
    assert largenum(value, Fmt.EXACT) == text


def test_names_are_resolved_and_ipv4_columns_truncated():
    long_name = "ip-172-20-39-170.us-west-2.compute.internal"
    resolver = StaticLookup(
        {long_name: ip_address("172.20.39.170"),
         "ip-172-20-35-14.us-west-2.compute.internal": ip_address("172.20.35.14")},
        {("http", "tcp"): 80})
    key = ServiceKey.inet(Proto.TCP, ip_address("172.20.39.170"), 80)
    table = Table((Service(key, "rr"),),
                  {key: (Dest(ip_address("172.20.35.14"), 80, Forward.MASQ, 1),)})
    out = render_services(table.services, table, Fmt.NONE, Namer(False, resolver))
    assert out.splitlines(keepends=True)[2:] == lines(
        "TCP  ip-172-20-39-170.us-west-2.c rr",
        "  -> ip-172-20-35-14.us-west-2.co Masq    1      0          0         ",
    ).splitlines(keepends=True)


def test_ipv6_names_are_never_truncated_and_push_columns():
    key = ServiceKey.inet(Proto.TCP, ip_address("2001:db8:1234:5678:9abc:def0:1234:5678"), 8080)
    dest = Dest(ip_address("2001:db8:1234:5678:9abc:def0:1234:9999"), 8080, Forward.MASQ, 1)
    table = Table((Service(key, "wlc", netmask=128),), {key: (dest,)})
    out = render_services(table.services, table, Fmt.NUMERIC | Fmt.STATS, NUMERIC)
    assert out.splitlines(keepends=True)[2:] == lines(
        "TCP  [2001:db8:1234:5678:9abc:def0:1234:5678]:8080        0        0        0        0"
        "        0",
        "  -> [2001:db8:1234:5678:9abc:def0:1234:9999]:8080        0        0        0        0"
        "        0",
    ).splitlines(keepends=True)


def test_names_longer_than_59_characters_are_cut():
    name = "a" * 70
    resolver = StaticLookup({name: ip_address("2001:db8::1")}, {})
    namer = Namer(False, resolver)
    assert namer.addrport(ip_address("2001:db8::1"), 80, 6) == "[" + "a" * 58


def test_ipv6_fwmark_persistent_mask_and_pe():
    key = ServiceKey.mark(2**32 - 1, DNS6.family)
    svc = Service(key, "wrr", SvcFlags.PERSISTENT | SvcFlags.ONEPACKET, 600, 64, "sip")
    table = Table((svc,), {})
    assert render_services([svc], table, Fmt.NUMERIC, NUMERIC).splitlines()[2] == \
        "FWM  -1 IPv6 wrr persistent 600 mask 64 pe sip ops"
    assert render_services([svc], table, Fmt.RULE, NUMERIC) == \
        "-A -f -1 -6 -s wrr -p 600 -M 64 --pe sip -o\n"


def test_sched3_with_sh_prints_empty_flag_list():
    svc = Service(MARK7, "sh", SvcFlags.SCHED3)
    assert render_services([svc], Table((svc,), {}), Fmt.NUMERIC, NUMERIC).splitlines()[2] == \
        "FWM  7 sh ()"
    assert render_services([svc], Table((svc,), {}), Fmt.RULE, NUMERIC) == "-A -f 7 -s sh -b \n"


def test_tunnel_rules_for_every_type_and_checksum():
    dests = (
        Dest(ip_address("10.0.0.1"), 0, Forward.TUNNEL, 3, tun_type=TunType.GRE, tun_flags=1),
        Dest(ip_address("10.0.0.2"), 0, Forward.TUNNEL, 3, tun_type=TunType.GUE, tun_port=1,
             tun_flags=2),
        Dest(ip_address("10.0.0.3"), 0, Forward.LOCAL, 3),
    )
    table = Table((Service(MARK7, "rr"),), {MARK7: dests})
    assert render_services(table.services, table, Fmt.RULE, NUMERIC).splitlines()[1:] == [
        "-a -f 7 -r 10.0.0.1:0 -i -w 3 --tun-type gre --tun-csum",
        "-a -f 7 -r 10.0.0.2:0 -i -w 3 --tun-type gue --tun-port 1 --tun-remcsum",
        "-a -f 7 -r 10.0.0.3:0 -g -w 3",
    ]
    out = render_services(table.services, table, Fmt.TUN_INFO | Fmt.NUMERIC, NUMERIC)
    assert [line[34:48] for line in out.splitlines()[3:]] == [
        "Tunnel  gre:+c", "Tunnel  gue:1:", "Local   n/a   "]


def test_fwmark_dest_ports_are_never_named():
    resolver = StaticLookup({}, {("domain", "tcp"): 53, ("domain", "udp"): 53})
    dest = Dest(ip_address("10.0.0.1"), 53, Forward.MASQ, 1)
    table = Table((Service(MARK7, "rr"),), {MARK7: (dest,)})
    out = render_services(table.services, table, Fmt.NONE, Namer(False, resolver))
    assert out.splitlines()[3].startswith("  -> 10.0.0.1:53 ")
    key = ServiceKey.inet(Proto.UDP, ip_address("10.0.0.9"), 53)
    table = Table((Service(key, "rr"),), {key: (dest,)})
    out = render_services(table.services, table, Fmt.NONE, Namer(False, resolver))
    assert out.splitlines()[2:] == ["UDP  10.0.0.9:domain rr",
                                    "  -> 10.0.0.1:domain              Masq    1      0          0"
                                    "         "]
