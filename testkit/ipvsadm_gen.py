"""Hypothesis strategies for IPVS tables the kernel accepts, and restore scripts that build them.

A :class:`GenTable` is a list of services, each with real servers (and thresholds, which -S
does not save). :func:`restore_script` writes it as ``ipvsadm -R`` input in varied but
equivalent spellings (long/short options, clustering, ``--opt=value``, ports left to default,
a leading ``ipvsadm`` token), so both tools' parsers see the same odd forms;
:func:`canonical_save` is what ``ipvsadm -Sn`` must print after restoring it.

Addresses stay inside the test namespaces' ranges (198.51.100.0/24, 10.200.0.0/24,
2001:db8::/32) and avoid the namespace's own and broadcast addresses (the kernel turns a local
real server into ``Local`` and refuses broadcast ones). IPv6 addresses vary their second
32-bit word over the whole range, and fwmarks span 1..2**32-1, so the wrap-around sort order
(including its non-transitive cycles) gets exercised.

That order is not a total order, so what ipvsadm prints depends on the order the kernel dumps
the table in: :func:`canonical_save` sorts :func:`kernel_order`, not the generation order.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address

from hypothesis import strategies as st

from piranha.ipvs.fake import service_bucket
from piranha.ipvs.types import (
    Dest,
    Family,
    Forward,
    IPAddress,
    Proto,
    Service,
    ServiceKey,
    SvcFlags,
    Table,
    TunFlags,
    TunType,
)
from piranha.ipvsadm.format import Fmt, Namer, render_services
from testkit.lookup import StaticLookup

SCHEDULERS = ("rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf",
              "mh")
INT_MAX = 2**31 - 1
#: the namespace's own addresses (a dest there would become "Local")
OWN = {IPv4Address("198.51.100.1"), IPv4Address("10.200.0.1"), IPv6Address("2001:db8:100::1")}


@dataclass
class GenDest:
    """A real server and its thresholds."""

    dest: Dest


@dataclass
class GenService:
    """A virtual service and its real servers."""

    service: Service
    dests: list[Dest] = field(default_factory=list)


@dataclass
class GenTable:
    """A whole table to restore."""

    services: list[GenService]

    def table(self) -> Table:
        """As a piranha Table."""
        return Table(tuple(g.service for g in self.services),
                     {g.service.key: tuple(g.dests) for g in self.services})


def ipv4() -> st.SearchStrategy[IPAddress]:
    """A usable IPv4 address in the two test /24s."""
    return st.builds(lambda net, host: IPv4Address(f"{net}.{host}"),
                     st.sampled_from(["198.51.100", "10.200.0"]), st.integers(2, 254))


def ipv6() -> st.SearchStrategy[IPAddress]:
    """An IPv6 address in 2001:db8::/32 whose second 32-bit word takes any value."""
    return st.builds(lambda hi, lo: IPv6Address((0x20010DB8 << 96) | (hi << 64) | lo),
                     st.integers(0, 2**32 - 1), st.integers(2, 2**16))


PORTS = st.one_of(st.sampled_from([21, 22, 25, 53, 80, 443, 3306, 5060, 8080]),
                  st.integers(1, 65535))


@st.composite
def services(draw: st.DrawFn) -> Service:
    """One virtual service with flags its scheduler and protocol allow."""
    kind = draw(st.sampled_from(["tcp4", "udp4", "sctp4", "tcp6", "udp6", "fwm4", "fwm6"]))
    v6 = kind.endswith("6")
    if kind.startswith("fwm"):
        mark = draw(st.one_of(st.integers(1, 20), st.integers(1, 2**32 - 1)))
        key = ServiceKey.mark(mark, Family.INET6 if v6 else Family.INET)
    else:
        proto = {"tcp": Proto.TCP, "udp": Proto.UDP, "sctp": Proto.SCTP}[kind[:-1]]
        key = ServiceKey.inet(proto, draw(ipv6() if v6 else ipv4()), draw(PORTS))
    sched = draw(st.sampled_from(SCHEDULERS))
    flags, timeout, netmask, pe = SvcFlags.NONE, 0, 128 if v6 else 32, ""
    if draw(st.booleans()):
        flags |= SvcFlags.PERSISTENT
        timeout = draw(st.one_of(st.just(360), st.integers(1, 86400 * 31)))
        netmask = draw(st.integers(1, 128 if v6 else 32))
        pe = draw(st.sampled_from(["", "", "sip"]))
    if (key.fwmark or key.protocol == Proto.UDP) and draw(st.booleans()):
        flags |= SvcFlags.ONEPACKET
    bits = (SvcFlags.SCHED1, SvcFlags.SCHED2) if sched in ("sh", "mh") else (
        SvcFlags.SCHED1, SvcFlags.SCHED2, SvcFlags.SCHED3)
    for bit in bits:
        if draw(st.integers(0, 3)) == 0:
            flags |= bit
    return Service(key, sched, flags, timeout, netmask, pe)


@st.composite
def dests_for(draw: st.DrawFn, svc: Service) -> list[Dest]:
    """0..4 real servers the kernel accepts for ``svc``."""
    out: dict[tuple[IPAddress, int], Dest] = {}
    v6 = svc.key.family == Family.INET6
    for _ in range(draw(st.integers(0, 4))):
        forward = draw(st.sampled_from([Forward.MASQ, Forward.ROUTE, Forward.TUNNEL]))
        other_family = forward == Forward.TUNNEL and draw(st.integers(0, 5)) == 0
        addr = draw(ipv4() if v6 == other_family else ipv6())
        port = draw(PORTS) if forward == Forward.MASQ or svc.key.fwmark else svc.key.port
        if svc.key.fwmark and draw(st.booleans()):
            port = 0
        u = draw(st.one_of(st.just(0), st.integers(0, INT_MAX)))
        low = draw(st.integers(0, u))
        tun = {}
        if forward == Forward.TUNNEL:
            kind = draw(st.sampled_from([TunType.IPIP, TunType.GUE, TunType.GRE]))
            flags = TunFlags.NOCSUM
            if kind == TunType.GUE:
                flags = draw(st.sampled_from(list(TunFlags)))
            elif kind == TunType.GRE:
                flags = draw(st.sampled_from([TunFlags.NOCSUM, TunFlags.CSUM]))
            tun = {"tun_type": kind, "tun_flags": flags,
                   "tun_port": draw(st.integers(1, 65535)) if kind == TunType.GUE else 0}
        weight = draw(st.one_of(st.integers(0, 10), st.integers(0, INT_MAX)))
        if addr not in OWN:
            out[(addr, port)] = Dest(addr, port, forward, weight, u, low, **tun)
    return list(out.values())


@st.composite
def tables(draw: st.DrawFn, min_services: int = 0, max_services: int = 6) -> GenTable:
    """A table of distinct services, each with its real servers."""
    seen: dict[ServiceKey, GenService] = {}
    for svc in draw(st.lists(services(), min_size=min_services, max_size=max_services)):
        if svc.key not in seen:
            seen[svc.key] = GenService(svc, draw(dests_for(svc)))
    return GenTable(list(seen.values()))


_NUMERIC = Namer(True, StaticLookup({}, {}))


def kernel_order(table: GenTable, salt: int = 0) -> Table:
    """The table as the kernel dumps it once :func:`restore_script` has built it.

    ``ipvs_cmp_services`` and ``ipvs_cmp_dests`` are no total order (a difference of exactly
    2**31 compares "less" both ways, and there are cycles), so ipvsadm's sorted output depends
    on this input order. The kernel walks its address-hashed table before its fwmark table,
    bucket by bucket (``salt``: see :func:`piranha.ipvs.fake.service_bucket`), newest first in a
    bucket, and lists each service's real servers newest first.
    """
    born = {g.service.key: i for i, g in enumerate(table.services)}
    order = sorted(table.services,
                   key=lambda g: (service_bucket(g.service.key, salt), -born[g.service.key]))
    return Table(tuple(g.service for g in order),
                 {g.service.key: tuple(reversed(g.dests)) for g in order})


def canonical_save(table: GenTable, salt: int = 0) -> str:
    """What ``ipvsadm -Sn`` prints for the table (thresholds are not saved).

    Exact for a namespace whose bucket salt is ``salt``; the orders of most tables do not
    depend on it (only wrap-around ties and cycles across buckets do).
    """
    t = kernel_order(table, salt)
    return render_services(t.services, t, Fmt.RULE | Fmt.NUMERIC, _NUMERIC)


def _service_words(rng: random.Random, rule_name: str) -> str:
    """``-t addr`` / ``-f 7 -6`` spelled one of the equivalent ways."""
    opt, _, rest = rule_name.partition(" ")
    long = {"-t": "--tcp-service", "-u": "--udp-service", "-f": "--fwmark-service",
            "--sctp-service": "--sctp-service"}[opt]
    value, _, six = rest.partition(" ")
    six = f" {rng.choice(['-6', '--ipv6'])}" if six else ""
    form = rng.randrange(3)
    if form == 0 or opt == "--sctp-service":
        return f"{rng.choice([opt, long])} {value}{six}"
    if form == 1:
        return f"{long}={value}{six}"
    return f"{opt}{value}{six}"


def restore_script(table: GenTable, rng: random.Random) -> str:
    """``-R`` input building the table, thresholds included, in varied spellings."""
    lines = []
    for g in table.services:
        rule = render_services([g.service], Table((g.service,), {g.service.key: ()}),
                               Fmt.RULE | Fmt.NUMERIC, _NUMERIC).rstrip("\n")
        name = rule[3:rule.index(" -s ")]
        key = g.service.key
        if key.fwmark:  # -S prints marks >= 2**31 negative (1.31's %d), -A wants them unsigned
            name_in = f"-f {key.fwmark}" + (" -6" if key.family == Family.INET6 else "")
            svc_words = _service_words(rng, name_in)
        else:
            svc_words = _service_words(rng, name)
        lines.append(_service_line(rng, rule, svc_words))
        for d in g.dests:
            dline = render_services([g.service], Table((g.service,), {g.service.key: (d,)}),
                                    Fmt.RULE | Fmt.NUMERIC, _NUMERIC).splitlines()[1]
            lines.append(_dest_line(rng, dline, name, svc_words, d))
    prefix = lambda: "ipvsadm " if rng.randrange(8) == 0 else ""  # noqa: E731
    return "".join(prefix() + line + "\n" for line in lines)


def _service_line(rng: random.Random, rule: str, svc_words: str) -> str:
    """An ``-A`` line equivalent to ``rule``."""
    words = rule.split(" -s ", 1)[1].split(" ")
    sched, rest = words[0], " ".join(words[1:])
    cmd = rng.choice(["-A", "--add-service"])
    sched_part = rng.choice([f"-s {sched}", f"--scheduler={sched}", f"-s{sched}"])
    if rest.startswith("-p "):
        form = rng.randrange(4)
        if form == 0 and rest.split(" ")[1] == "360":
            rest = "-p" + rest[len("-p 360"):]  # the default timeout
        elif form == 1:
            rest = "-p" + rest[3:]  # -p600
        elif form == 2:
            rest = "--persistent=" + rest[3:]
    return " ".join(x for x in (cmd, svc_words, sched_part, rest) if x)


def _dest_line(rng: random.Random, dline: str, name: str, svc_words: str, d: Dest) -> str:
    """An ``-a`` line equivalent to ``dline``, plus the thresholds."""
    rest = dline[len(f"-a {name} -r "):]
    dest, fwd, _, weight, *tunnel = rest.split(" ")
    cmd = rng.choice(["-a", "--add-server"])
    fwd = rng.choice([fwd, {"-g": "--gatewaying", "-m": "--masquerading",
                            "-i": "--ipip"}[fwd]])
    svc_port = dline.split(" -r ")[0].rsplit(":", 1)[-1] if ":" in name else "0"
    if dest.endswith(f":{svc_port}") and rng.randrange(2):
        dest = dest.rsplit(":", 1)[0].strip("[]")  # the port defaults to the service's
    parts = [cmd, svc_words, rng.choice(["-r", "--real-server"]), dest, fwd]
    if fwd in ("-g", "--gatewaying") and rng.randrange(2):
        parts.remove(fwd)  # -g is the default
    if weight != "1" or rng.randrange(2):
        parts.append(rng.choice([f"-w {weight}", f"--weight={weight}", f"-w{weight}"]))
    if d.u_threshold:
        parts.append(f"-x {d.u_threshold}")
    if d.l_threshold:
        parts.append(f"--l-threshold {d.l_threshold}")
    if tunnel and (tunnel != ["--tun-type", "ipip"] or rng.randrange(2)):
        parts.extend(tunnel)
    return " ".join(parts)
