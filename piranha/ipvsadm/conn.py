"""``ipvsadm -Lc``: the connection table, read from ``/proc/net/ip_vs_conn`` (pure formatting).

The first proc line is the kernel's header and is skipped; every other line is split like
ipvsadm's ``sscanf("%s %s %hX %s %hX %s %hX %s %d %s %s")``: protocol, client address (hex
IPv4 or IPv6 text), hex port, virtual address and port, destination address and port, state,
expiry seconds, and optionally the persistence engine name and data.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from piranha.ipvs.types import IPAddress
from piranha.ipvsadm.format import Namer
from piranha.ipvsadm.values import inet_pton4, inet_pton6, strtol

CONN_PROC_FILE = "/proc/net/ip_vs_conn"
_PROTO = {"TCP": 6, "UDP": 17, "SCTP": 132}


def conn_header(persistent: bool) -> str:
    """The two header lines."""
    head = "IPVS connection entries\n"
    if persistent:
        return head + (f"pro expire {'state':<11} {'source':<18} {'virtual':<18} "
                       f"{'destination':<18} {'pe name':<16} pe_data\n")
    return head + f"pro expire {'state':<11} {'source':<18} {'virtual':<18} destination\n"


def _addr(text: str) -> IPAddress:
    """An address field: IPv6 text, IPv4 text, or the kernel's hex IPv4."""
    addr = inet_pton6(text) or inet_pton4(text)
    if addr is not None:
        return addr
    digits = ""
    for c in text.strip():
        if c not in "0123456789abcdefABCDEF":
            break
        digits += c
    return IPv4Address(int(digits or "0", 16) & 0xFFFFFFFF)


def _hex_port(text: str) -> int:
    """A ``%hX`` field (truncated to 16 bits)."""
    return int(text, 16) & 0xFFFF


@dataclass(frozen=True)
class Conn:
    """One line of the proc file, as ipvsadm's sscanf splits it."""

    proto_text: str
    proto: int
    client: tuple[IPAddress, int]
    virtual: tuple[IPAddress, int]
    dest: tuple[IPAddress, int]
    state: str
    expires: int
    pe_name: str | None = None
    pe_data: str | None = None


def parse_conn(line: str) -> Conn | None:
    """One proc line, or None for a line without the nine fields."""
    f = line.split()
    if len(f) < 9:
        return None
    client, virtual = _addr(f[1]), _addr(f[3])
    if isinstance(client, IPv6Address) and not isinstance(virtual, IPv6Address):
        virtual = IPv6Address(0)
    pe = (f[9], f[10]) if len(f) >= 11 else (None, None)
    return Conn(f[0], _PROTO.get(f[0], 0), (client, _hex_port(f[2])),
                (virtual, _hex_port(f[4])), (_addr(f[5]), _hex_port(f[6])), f[7],
                _c_uint(f[8]), *pe)


def _c_uint(text: str) -> int:
    """A ``%d`` field stored in an unsigned int."""
    value, used, _ = strtol(text)
    return value & 0xFFFFFFFF if used else 0


def conn_row(conn: Conn, persistent: bool, namer: Namer) -> str:
    """One connection line of the listing."""
    cname = namer.addrport(*conn.client, conn.proto)
    vname = namer.addrport(*conn.virtual, conn.proto)
    dname = namer.addrport(*conn.dest, conn.proto)
    expire = f"{conn.expires // 60:02d}:{conn.expires % 60:02d}"
    head = f"{conn.proto_text:<3} {expire:<6} {conn.state:<11} {cname:<18} {vname:<18}"
    if persistent and conn.pe_name is not None:
        return f"{head} {dname:<16} {conn.pe_name:<18} {conn.pe_data}\n"
    return f"{head} {dname}\n"


def render_conns(lines: Iterable[str], persistent: bool, namer: Namer) -> str:
    """Header plus one row per proc line (the kernel's own header already dropped)."""
    out = [conn_header(persistent)]
    for line in lines:
        conn = parse_conn(line)
        if conn is not None:
            out.append(conn_row(conn, persistent, namer))
    return "".join(out)
