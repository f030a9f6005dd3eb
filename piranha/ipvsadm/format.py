"""ipvsadm 1.31's listing and save output, character for character (pure: Table -> text).

Covers ``print_title``, ``print_service_entry`` (every layout: default, ``--stats``,
``--rate``, ``--thresholds``, ``--persistent-conn``, ``--tun-info`` and the ``-S`` rule
format), ``print_largenum``, the version header, ``--timeout`` and ``--daemon``. Names come from
:class:`Namer`, which mirrors ``addrport_to_anyname`` (60-byte buffer, so at most 59
characters); IPv4 service columns are cut to 33 characters and IPv4 dest names to 28, IPv6
never. Sorting follows :mod:`piranha.ipvsadm.sort`; the ``-S`` rule lines come from
:mod:`piranha.ipvsadm.rules` (which lvsd's log uses too).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

from piranha.ipvs.types import (
    Daemon,
    DaemonState,
    Dest,
    Family,
    Forward,
    Info,
    IPAddress,
    Service,
    Stats,
    SvcFlags,
    Table,
    Timeouts,
    TunType,
)
from piranha.ipvsadm.rules import (
    PROTO_OPTION,
    SCHED_BITS,
    c_int,
    dest_rule,
    mask_text,
    ntop,
    sched_flag_words,
    service_rule,
)
from piranha.ipvsadm.sort import sort_dests, sort_services
from piranha.ipvsadm.values import Lookup


class Fmt(enum.IntFlag):
    """ipvsadm's FMT_* printing flags."""

    NONE = 0
    NUMERIC = 0x1
    RULE = 0x2
    STATS = 0x4
    RATE = 0x8
    THRESHOLDS = 0x10
    PERSISTENTCONN = 0x20
    NOSORT = 0x40
    EXACT = 0x80
    TUN_INFO = 0x100


#: internal option name -> the format flag it sets
FMT_OF_OPTION = {"numeric": Fmt.NUMERIC, "stats": Fmt.STATS, "rate": Fmt.RATE,
                 "thresholds": Fmt.THRESHOLDS, "persistent-conn": Fmt.PERSISTENTCONN,
                 "nosort": Fmt.NOSORT, "exact": Fmt.EXACT, "tun-info": Fmt.TUN_INFO}
PROTO_NAME = {6: "TCP", 17: "UDP", 132: "SCTP"}
SERV_PROTO = {6: "tcp", 17: "udp", 132: "sctp"}
FWD_NAME = {Forward.MASQ: "Masq", Forward.LOCAL: "Local", Forward.TUNNEL: "Tunnel",
            Forward.ROUTE: "Route"}
TUN_NAMES = ("ipip", "gue", "gre")
TUN_FLAG_SHORT = ("-c", "+c", "r+c")

_TITLE = "Prot LocalAddress:Port Scheduler Flags\n"
_DEST_TITLE = "  -> RemoteAddress:Port\n"


def fmt_of(options: set[str]) -> Fmt:
    """The format flags a set of list options selects."""
    fmt = Fmt.NONE
    for option in options:
        fmt |= FMT_OF_OPTION.get(option, Fmt.NONE)
    return fmt


def largenum(value: int, fmt: Fmt) -> str:
    """``print_largenum``: 9 columns, K/M/G/T-rounded unless --exact."""
    if fmt & Fmt.EXACT:
        digits = str(value)
        return digits.rjust(9 if len(digits) <= 8 else len(digits) + 1)
    for limit, div, unit in ((10**8, 1, ""), (10**9, 10**3, "K"), (10**11, 10**6, "M"),
                             (10**14, 10**9, "G")):
        if value < limit:
            return f"{value // div:9d}" if not unit else f"{value // div:8d}{unit}"
    return f"{value // 10**12:8d}T"


class Namer:
    """``addrport_to_anyname``: ``addr:port`` (IPv6 bracketed), names unless numeric."""

    def __init__(self, numeric: bool, resolver: Lookup):
        self.numeric = numeric
        self.resolver = resolver
        self._hosts: dict[IPAddress, str] = {}

    def host(self, addr: IPAddress) -> str:
        """The address as printed (host name unless numeric)."""
        if not self.numeric:
            name = self._hosts.get(addr)
            if name is None:
                name = self._hosts[addr] = self.resolver.host_by_addr(addr) or ntop(addr)
            return name
        return ntop(addr)

    def port(self, port: int, proto: int) -> str:
        """The port as printed (service name unless numeric)."""
        if not self.numeric and proto in SERV_PROTO:
            return self.resolver.serv_by_port(port, SERV_PROTO[proto]) or str(port)
        return str(port)

    def addrport(self, addr: IPAddress, port: int, proto: int) -> str:
        """The whole ``addr:port`` text."""
        host = self.host(addr)
        if addr.version == 6:
            host = f"[{host}]"
        return f"{host}:{self.port(port, proto)}"[:59]


def header(info: Info) -> str:
    """The version line of full listings."""
    major, minor, patch = info.version
    return f"IP Virtual Server version {major}.{minor}.{patch} (size={info.conn_tab_size})\n"


def title(fmt: Fmt) -> str:
    """``print_title``: the two column-title lines (nothing for -S)."""
    if fmt & (Fmt.STATS | Fmt.RATE):
        cols = (("Conns", "InPkts", "OutPkts", "InBytes", "OutBytes") if fmt & Fmt.STATS
                else ("CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"))
        return f"{'Prot LocalAddress:Port':<33}" + "".join(f" {c:>8}" for c in cols) + "\n" \
            + _DEST_TITLE
    if fmt & (Fmt.THRESHOLDS | Fmt.PERSISTENTCONN):
        if fmt & Fmt.THRESHOLDS:
            text = f"{'Uthreshold':<10} {'Lthreshold':<10} {'ActiveConn':<10} {'InActConn':<10}"
        else:
            text = f"{'Weight':<9} {'PersistConn':<11} {'ActiveConn':<10} {'InActConn':<10}"
        return f"{'Prot LocalAddress:Port':<33} {text}\n" + _DEST_TITLE
    if fmt & Fmt.TUN_INFO:
        return _TITLE + ("  -> RemoteAddress:Port           Forward TunnelInfo    Weight "
                         "ActiveConn InActConn\n")
    if fmt & Fmt.RULE:
        return ""
    return _TITLE + "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"


def service_name(svc: Service, fmt: Fmt, namer: Namer) -> str:
    """The service column (``FWM  7``, ``TCP  1.2.3.4:80``) or, for -S, its option form."""
    key = svc.key
    v6 = key.family == Family.INET6
    if key.fwmark:
        if fmt & Fmt.RULE:
            return f"-f {c_int(key.fwmark)}" + (" -6" if v6 else "")
        return f"FWM  {c_int(key.fwmark)}" + (" IPv6" if v6 else "")
    assert key.addr is not None
    vname = namer.addrport(key.addr, key.port, key.protocol)
    if fmt & Fmt.RULE:
        return f"{PROTO_OPTION.get(key.protocol, '--xxx-service')} {vname}"
    text = f"{PROTO_NAME.get(key.protocol, '?'):<4} {vname}"
    return text if v6 else text[:33]


def service_plain(svc: Service, name: str) -> str:
    """The service line of the default, --thresholds, --persistent-conn, --tun-info layouts."""
    out = [f"{name} {svc.scheduler}"]
    if svc.flags & SCHED_BITS:
        out.append(f" ({sched_flag_words(svc)})")
    if svc.flags & SvcFlags.PERSISTENT:
        out.append(f" persistent {svc.timeout}")
        mask = mask_text(svc)
        if mask is not None:
            out.append(f" mask {mask}")
        if svc.pe_name:
            out.append(f" pe {svc.pe_name}")
    if svc.flags & SvcFlags.ONEPACKET:
        out.append(" ops")
    return "".join(out)


def _stats5(stats: Stats, fmt: Fmt, rate: bool) -> str:
    """Five largenum columns: counters, or rates with --rate."""
    values = ((stats.cps, stats.inpps, stats.outpps, stats.inbps, stats.outbps) if rate
              else (stats.conns, stats.inpkts, stats.outpkts, stats.inbytes, stats.outbytes))
    return "".join(largenum(v, fmt) for v in values)


def tunnel_info(dest: Dest) -> str:
    """``fwd_tun_info``: ``ipip``, ``gue:PORT:CSUM``, ``gre:CSUM``, else ``n/a``."""
    if dest.forward != Forward.TUNNEL:
        return "n/a"
    flags = TUN_FLAG_SHORT[int(dest.tun_flags)]
    if dest.tun_type == TunType.GUE:
        return f"gue:{dest.tun_port}:{flags}"[:15]
    if dest.tun_type == TunType.GRE:
        return f"gre:{flags}"
    return "ipip"


def dest_line(dest: Dest, fmt: Fmt, dname: str) -> str:
    """One ``  -> `` line in the chosen listing layout."""
    if fmt & Fmt.STATS:
        return f"  -> {dname:<28}{_stats5(dest.stats, fmt, rate=False)}"
    if fmt & Fmt.RATE:
        s = dest.stats
        return (f"  -> {dname:<28} {s.cps:8d} {s.inpps:8d} {s.outpps:8d}"
                f"{largenum(s.inbps, fmt)}{largenum(s.outbps, fmt)}")
    if fmt & Fmt.THRESHOLDS:
        return (f"  -> {dname:<28} {dest.u_threshold:<10} {dest.l_threshold:<10} "
                f"{dest.active_conns:<10} {dest.inact_conns:<10}")
    if fmt & Fmt.PERSISTENTCONN:
        return (f"  -> {dname:<28} {dest.weight:<9} {dest.persist_conns:<11} "
                f"{dest.active_conns:<10} {dest.inact_conns:<10}")
    fwd = FWD_NAME[dest.forward]
    if fmt & Fmt.TUN_INFO:
        return (f"  -> {dname:<28} {fwd:<7} {tunnel_info(dest):<13} {c_int(dest.weight):<6} "
                f"{dest.active_conns:<10} {dest.inact_conns:<10}")
    return (f"  -> {dname:<28} {fwd:<7} {c_int(dest.weight):<6} {dest.active_conns:<10} "
            f"{dest.inact_conns:<10}")


def service_entry(svc: Service, dests: Sequence[Dest], fmt: Fmt, namer: Namer) -> list[str]:
    """``print_service_entry``: the service line and its dest lines (without newlines)."""
    name = service_name(svc, fmt, namer)
    if fmt & Fmt.RULE:
        lines = [service_rule(svc, name)]
    elif fmt & (Fmt.STATS | Fmt.RATE):
        lines = [f"{name:<33}{_stats5(svc.stats, fmt, rate=not fmt & Fmt.STATS)}"]
    else:
        lines = [service_plain(svc, name)]
    if not fmt & Fmt.NOSORT:
        dests = sort_dests(dests)
    # libipvs leaves protocol 0 for fwmark services (the dump has no PROTOCOL for them), so
    # their dests' ports are never looked up as service names
    proto = 0 if svc.key.fwmark else svc.key.protocol
    for dest in dests:
        dname = namer.addrport(dest.addr, dest.port, proto)
        if fmt & Fmt.RULE:
            lines.append(dest_rule(dest, name, dname))
            continue
        if dest.addr.version == 4:
            dname = dname[:28]
        lines.append(dest_line(dest, fmt, dname))
    return lines


def render_services(services: Sequence[Service], table: Table, fmt: Fmt, namer: Namer) -> str:
    """Title lines and every service entry, sorted unless --nosort."""
    if not fmt & Fmt.NOSORT:
        services = sort_services(services)
    lines: list[str] = []
    for svc in services:
        lines.extend(service_entry(svc, table.dests.get(svc.key, ()), fmt, namer))
    body = "".join(line + "\n" for line in lines)
    return title(fmt) + body


def render_timeouts(t: Timeouts) -> str:
    """``--timeout``."""
    return f"Timeout (tcp tcpfin udp): {t.tcp} {t.tcpfin} {t.udp}\n"


def render_daemons(daemons: Sequence[Daemon]) -> str:
    """``--daemon``: one line per running sync daemon, master first."""
    out = []
    for state in (DaemonState.MASTER, DaemonState.BACKUP):
        for d in (d for d in daemons if d.state == state):
            text = f"{state.name.lower()} sync daemon (mcast={d.mcast_ifn}, syncid={d.syncid}"
            if d.sync_maxlen:
                text += f", maxlen={d.sync_maxlen}"
            if d.mcast_group is not None:
                text += f", group={ntop(d.mcast_group)}"
            if d.mcast_port:
                text += f", port={d.mcast_port}"
            if d.mcast_ttl:
                text += f", ttl={d.mcast_ttl}"
            out.append(text + ")\n")
    return "".join(out)
