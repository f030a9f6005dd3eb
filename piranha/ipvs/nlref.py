"""The reference IPVS reply decoder: slow and obvious, the oracle ``nldump`` is tested against.

This is a test oracle, not a code path: nothing piranha runs imports it. ``nldump`` decodes
dumps fast by learning message layouts and caching values; this module says what the answer
must be, attribute by attribute, with the types' own constructors: each message's attributes
are parsed into a dict, nests recursively, and every field read by name with its default when
absent. tests/unit/test_nldump_ref.py decodes the captured kernel replies (tests/data/netlink)
and random tables encoded as the kernel does (testkit.nlkernel) with both and requires
identical results.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv6Address

from piranha.ipvs import nlmsg as W
from piranha.ipvs.nldump import ReplyError
from piranha.ipvs.types import (
    Daemon,
    DaemonState,
    Dest,
    Family,
    Forward,
    Info,
    IPAddress,
    Proto,
    Service,
    ServiceKey,
    Stats,
    SvcFlags,
    Timeouts,
    TunFlags,
    TunType,
)

_NLMSG = struct.Struct("=IHHII")
_ATTR = struct.Struct("=HH")
#: struct formats of the ten counters in a 32-bit STATS nest (the byte counts are u64)
_STATS32 = ("=I", "=I", "=I", "=Q", "=Q", "=I", "=I", "=I", "=I", "=I")


# -- decoding ---------------------------------------------------------------------------------

Attrs = dict[int, bytes]


def parse(data: bytes) -> Attrs:
    """Attribute type -> payload of the attributes in ``data`` (a repeated type: the last)."""
    out: Attrs = {}
    off = 0
    while off + 4 <= len(data):
        length, kind = _ATTR.unpack_from(data, off)
        if length < 4:
            break
        out[kind & W.NLA_TYPE_MASK] = data[off + 4:off + length]
        off += (length + 3) & ~3
    return out


def _num(a: Attrs, kind: int, fmt: str, default: int = 0) -> int:
    if kind not in a:
        return default
    value: int = struct.unpack_from(fmt, a[kind])[0]
    return value


def _name(a: Attrs, kind: int) -> str:
    return a.get(kind, b"").split(b"\0", 1)[0].decode()


def address(raw: bytes, family: int) -> IPAddress:
    """The address in an ``nf_inet_addr``: its first 16 bytes for IPv6, else its first 4."""
    if family == Family.INET6:
        return IPv6Address(raw[:16])
    return IPv4Address(raw[:4])


def stats(a: Attrs, wide: int, narrow: int) -> Stats:
    """The counters: from the 64-bit nest ``wide`` when present, else the 32-bit ``narrow``."""
    if wide in a:
        nest, formats = parse(a[wide]), ("=Q",) * 10
    elif narrow in a:
        nest, formats = parse(a[narrow]), _STATS32
    else:
        return Stats()
    return Stats(*(_num(nest, i + 1, fmt) for i, fmt in enumerate(formats)))


def prefix(a: Attrs, family: Family) -> int:
    """The netmask as a prefix length: IPv6 sends the length, IPv4 a big-endian mask."""
    if W.SVC_NETMASK not in a:
        return 128 if family == Family.INET6 else 32
    if family == Family.INET6:
        return _num(a, W.SVC_NETMASK, "=I")
    mask = _num(a, W.SVC_NETMASK, "!I")
    return 32 - (~mask & 0xFFFFFFFF).bit_length()


def service(data: bytes) -> Service:
    """The Service in the attributes of a NEW_SERVICE message."""
    a = parse(parse(data)[W.A_SERVICE])
    af = _num(a, W.SVC_AF, "=H", Family.INET)
    family = Family(af) if af in (Family.INET, Family.INET6) else Family.INET
    fwmark = _num(a, W.SVC_FWMARK, "=I")
    if fwmark:
        key = ServiceKey(family, Proto.TCP, None, 0, fwmark)
    else:
        proto = _num(a, W.SVC_PROTOCOL, "=H", Proto.TCP)
        protocol = Proto(proto) if proto in Proto._value2member_map_ else Proto.TCP
        key = ServiceKey(family, protocol, address(a.get(W.SVC_ADDR, b""), family),
                         _num(a, W.SVC_PORT, "!H"), 0)
    flags = SvcFlags(_num(a, W.SVC_FLAGS, "=I") & ~SvcFlags.HASHED)
    return Service(key, _name(a, W.SVC_SCHED_NAME), flags, _num(a, W.SVC_TIMEOUT, "=I"),
                   prefix(a, family), _name(a, W.SVC_PE_NAME),
                   stats(a, W.SVC_STATS64, W.SVC_STATS))


def dest(data: bytes, family: int) -> Dest:
    """The Dest in the attributes of a NEW_DEST message (``family``: the service's)."""
    a = parse(parse(data)[W.A_DEST])
    af = _num(a, W.DEST_ADDR_FAMILY, "=H") or family  # old kernels omit it
    forward = _num(a, W.DEST_FWD_METHOD, "=I") & 7
    tun_type = _num(a, W.DEST_TUN_TYPE, "=B")
    return Dest(
        addr=address(a[W.DEST_ADDR], Family.INET if af == Family.INET else Family.INET6),
        port=_num(a, W.DEST_PORT, "!H"),
        forward=Forward(forward) if forward in Forward._value2member_map_ else Forward.ROUTE,
        weight=_num(a, W.DEST_WEIGHT, "=i"),
        u_threshold=_num(a, W.DEST_U_THRESH, "=I"),
        l_threshold=_num(a, W.DEST_L_THRESH, "=I"),
        tun_type=TunType(tun_type) if tun_type in TunType._value2member_map_ else tun_type,  # type: ignore[arg-type]
        tun_port=_num(a, W.DEST_TUN_PORT, "!H"),
        tun_flags=TunFlags(_num(a, W.DEST_TUN_FLAGS, "=H")),
        active_conns=_num(a, W.DEST_ACTIVE_CONNS, "=I"),
        inact_conns=_num(a, W.DEST_INACT_CONNS, "=I"),
        persist_conns=_num(a, W.DEST_PERSIST_CONNS, "=I"),
        stats=stats(a, W.DEST_STATS64, W.DEST_STATS),
    )


def replies(gram: bytes) -> Iterable[tuple[int, int, bytes]]:
    """(type, genl command, attributes) of each message of one datagram; stops at DONE.

    An error message raises ReplyError; its command is reported as 0, and so is a message
    too short for a generic-netlink header.
    """
    off = 0
    while off + 16 <= len(gram):
        length, kind, _flags, _seq, _pid = _NLMSG.unpack_from(gram, off)
        if length < 16:
            raise ValueError(f"malformed netlink message at offset {off}: length {length}")
        if kind == W.NLMSG_DONE:
            return
        if kind == W.NLMSG_ERROR:
            raise ReplyError(-struct.unpack_from("=i", gram, off + 16)[0])
        cmd = gram[off + 16] if length >= 20 else 0
        yield kind, cmd, bytes(gram[off + 20:off + length])
        off += (length + 3) & ~3


def services(grams: Iterable[bytes]) -> list[Service]:
    """The services of a GET_SERVICE dump's datagrams."""
    return [service(data) for gram in grams for kind, cmd, data in replies(gram)
            if kind >= 16 and cmd == W.CMD_NEW_SERVICE]


def dests(grams: Iterable[bytes], family: int) -> list[Dest]:
    """The destinations of a GET_DEST dump's datagrams (``family``: the service's)."""
    return [dest(data, family) for gram in grams for kind, cmd, data in replies(gram)
            if kind >= 16 and cmd == W.CMD_NEW_DEST]


def daemon(data: bytes) -> Daemon:
    """The Daemon in the attributes of a NEW_DAEMON message."""
    a = parse(parse(data)[W.A_DAEMON])
    group: IPAddress | None = None
    if W.DAEMON_MCAST_GROUP in a:
        group = IPv4Address(a[W.DAEMON_MCAST_GROUP])
    elif W.DAEMON_MCAST_GROUP6 in a:
        group = IPv6Address(a[W.DAEMON_MCAST_GROUP6])
    return Daemon(
        state=DaemonState(_num(a, W.DAEMON_STATE, "=I")),
        mcast_ifn=_name(a, W.DAEMON_MCAST_IFN),
        syncid=_num(a, W.DAEMON_SYNC_ID, "=I"),
        sync_maxlen=_num(a, W.DAEMON_SYNC_MAXLEN, "=H"),
        mcast_group=group,
        mcast_port=_num(a, W.DAEMON_MCAST_PORT, "=H"),
        mcast_ttl=_num(a, W.DAEMON_MCAST_TTL, "=B"),
    )


def info(data: bytes) -> Info:
    """Version and connection table size in the attributes of a GET_INFO reply."""
    a = parse(data)
    v = _num(a, W.INFO_VERSION, "=I")
    return Info(((v >> 16) & 0xFF, (v >> 8) & 0xFF, v & 0xFF), _num(a, W.INFO_CONN_TAB_SIZE, "=I"))


def timeouts(data: bytes) -> Timeouts:
    """The three timeouts in the attributes of a GET_CONFIG reply."""
    a = parse(data)
    return Timeouts(_num(a, W.A_TIMEOUT_TCP, "=I"), _num(a, W.A_TIMEOUT_TCP_FIN, "=I"),
                    _num(a, W.A_TIMEOUT_UDP, "=I"))
