"""Shared test tables for the piranha-ipvsadm tests: the reference's worked example."""

from __future__ import annotations

from ipaddress import ip_address

from piranha.ipvs.types import (
    Dest,
    Family,
    Forward,
    Info,
    Proto,
    Service,
    ServiceKey,
    Stats,
    SvcFlags,
    Table,
    TunType,
)

INFO = Info((1, 2, 1), 4096)

WEB = ServiceKey.inet(Proto.TCP, ip_address("10.0.0.100"), 80)
TLS = ServiceKey.inet(Proto.TCP, ip_address("10.0.0.100"), 443)
DNS6 = ServiceKey.inet(Proto.UDP, ip_address("2001:db8::53"), 53)
MARK7 = ServiceKey.mark(7)


def lines(*rows: str) -> str:
    """Rows joined with newlines, each ending in one (trailing spaces stay visible)."""
    return "".join(row + "\n" for row in rows)


def example_table(with_stats: bool = False, with_rates: bool = False) -> Table:
    """Three services: TCP :80 (wlc, 2 DR dests), TCP :443 (rr, persistent /24, 2 NAT), FWM 7."""
    def st(conns=0, inpkts=0, outpkts=0, inbytes=0, outbytes=0) -> Stats:
        if with_stats:
            return Stats(conns, inpkts, outpkts, inbytes, outbytes)
        return Stats()

    def rt(cps=0, inpps=0, outpps=0, inbps=0, outbps=0) -> Stats:
        return Stats(cps=cps, inpps=inpps, outpps=outpps, inbps=inbps, outbps=outbps)

    web_stats = st(152311, 1020334, 0, 98765432, 0)
    if with_rates:
        web_stats = rt(12, 85, 0, 6842, 0)
    services = (
        Service(MARK7, "sh", SvcFlags.SCHED1 | SvcFlags.SCHED2, netmask=32),
        Service(TLS, "rr", SvcFlags.PERSISTENT, 360, 24,
                stats=st(123456789, 2000000000, 1999999999, 987654321012, 5000000000000)),
        Service(WEB, "wlc", stats=web_stats),
    )
    a = ip_address
    dest_rate = rt(6, 42, 0, 3421, 0) if with_rates else None
    dests = {
        WEB: (
            Dest(a("10.0.0.12"), 80, Forward.ROUTE, 0, active_conns=3, inact_conns=117,
                 stats=dest_rate or st(30, 150, 0, 12000, 0)),
            Dest(a("10.0.0.11"), 80, Forward.ROUTE, 1, active_conns=12, inact_conns=40,
                 stats=dest_rate or st(120, 600, 0, 48000, 0)),
        ),
        TLS: (
            Dest(a("10.1.0.7"), 8443, Forward.MASQ, 2),
            Dest(a("192.168.1.5"), 8443, Forward.MASQ, 2, 100, 10, active_conns=5,
                 inact_conns=3, persist_conns=4, stats=st(50, 250, 0, 20000, 0)),
        ),
        MARK7: (Dest(a("10.2.0.1"), 0, Forward.TUNNEL, 1, tun_type=TunType.GUE, tun_port=6080),),
    }
    return Table(services, dests)


def save_table() -> Table:
    """The reference's -S example: the worked example plus an IPv6 UDP service and an ipip dest."""
    base = example_table()
    a = ip_address
    dns = Service(DNS6, "rr", SvcFlags.ONEPACKET, netmask=128)
    dests = dict(base.dests)
    dests[DNS6] = (Dest(a("2001:db8::a1"), 53, Forward.MASQ, 1),)
    dests[MARK7] = base.dests[MARK7] + (Dest(a("10.2.0.3"), 0, Forward.TUNNEL, 1),)
    return Table(base.services + (dns,), dests)


FAMILY6 = Family.INET6
