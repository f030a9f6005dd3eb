"""IPVS generic-netlink wire format, reply side: decoders of dump and get replies (no I/O).

Speed matters here: a table of 10^4 destinations arrives as 10^4 messages, and pyroute2's
generic decoder costs ~100 us per message. Every message of one kernel's destination dump has
the same layout for a given length and 8-byte alignment (the alignment decides where the kernel
puts its 64-bit padding attributes), so the first message of each (length, alignment) is walked
attribute by attribute to learn where every field sits, and all later ones are read by one
``Struct.unpack_from``. Services vary more (fwmark or address, scheduler name, pe) and are
walked, except their statistics, which use the same learned-layout trick.

Result objects are frozen dataclasses; ``_make`` fills their ``__dict__`` directly because the
generated ``__init__`` (one ``object.__setattr__`` per field) costs more than the decoding.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv6Address
from operator import itemgetter
from typing import Any

from piranha.ipvs import nlmsg as W
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

NLMSG = struct.Struct("=IHHII")
_HEAD = struct.Struct("=IH10xB")  # length, type, and the genl command
_ATTR = struct.Struct("=HH")
_U16, _U32, _U64, _BE16, _BE32 = (struct.Struct(f) for f in ("=H", "=I", "=Q", "!H", "!I"))
_FLAGS = struct.Struct("=II")
_ERR = struct.Struct("=i")

_new = object.__new__
STATS_FIELDS = tuple(Stats.__dataclass_fields__)
#: enum members by value, for tuple indexing in the hot loop (forwarding is masked to 3 bits)
_FWD = tuple(Forward(v) if v in Forward._value2member_map_ else Forward.ROUTE for v in range(8))
_TUN_TYPES = tuple(TunType(v) if v in TunType._value2member_map_ else v for v in range(256))
_TUN_FLAGS = tuple(TunFlags(v) for v in range(4))
_FAMILY = {f.value: f for f in Family}
_PROTO = {p.value: p for p in Proto}


class ReplyError(Exception):
    """The kernel answered a request with an error (``errno``)."""

    def __init__(self, errno: int):
        super().__init__(errno)
        self.errno = errno


def _make(cls: type, values: dict[str, Any]) -> Any:
    """An instance of frozen dataclass ``cls`` with exactly ``values`` (skips ``__init__``)."""
    obj = _new(cls)
    obj.__dict__.update(values)
    return obj


def messages(buf: bytes | bytearray | memoryview, size: int) -> Iterator[tuple[int, int, int, int]]:
    """(type, seq, payload offset, end) of each netlink message in ``buf[:size]``."""
    off = 0
    while off + 16 <= size:
        length, kind, _flags, seq, _pid = NLMSG.unpack_from(buf, off)
        if length < 16:
            raise ValueError(f"malformed netlink message at offset {off}: length {length}")
        yield kind, seq, off + 16, off + length
        off += (length + 3) & ~3


def error_code(buf: bytes | bytearray | memoryview, payload: int) -> int:
    """The errno of an NLMSG_ERROR payload (0 for an acknowledgement)."""
    return -_ERR.unpack_from(buf, payload)[0]


def attrs(buf: bytes | bytearray | memoryview, off: int, end: int) -> dict[int, tuple[int, int]]:
    """Attribute type -> (payload start, payload end) for the attributes in ``buf[off:end]``."""
    out = {}
    while off + 4 <= end:
        length, kind = _ATTR.unpack_from(buf, off)
        if length < 4:
            break
        out[kind & W.NLA_TYPE_MASK] = (off + 4, off + length)
        off += (length + 3) & ~3
    return out


def _str(buf: Any, span: tuple[int, int]) -> str:
    return bytes(buf[span[0]:span[1]]).split(b"\0", 1)[0].decode()


_V4: dict[bytes, IPv4Address] = {}
_V6: dict[bytes, IPv6Address] = {}


def _quick_v4(raw: bytes) -> IPv4Address:
    """IPv4Address(raw[:4]) at half the cost: the constructor re-checks what the kernel sent."""
    addr = _new(IPv4Address)
    addr._ip = int.from_bytes(raw[:4], "big")
    return addr


def _safe_v4(raw: bytes) -> IPv4Address:
    return IPv4Address(bytes(raw[:4]))


# the quick way relies on ipaddress internals (one slot, _ip): use it only if it still works
try:
    _sample = _quick_v4(b"\x0a\x00\x00\x01")
    _V4_OF = _quick_v4 if (_sample == IPv4Address("10.0.0.1") and str(_sample) == "10.0.0.1"
                           and hash(_sample) == hash(IPv4Address("10.0.0.1"))) else _safe_v4
except (AttributeError, TypeError):
    _V4_OF = _safe_v4


def address(raw: bytes, family: int) -> IPAddress:
    """The address in a 4- or 16-byte ``nf_inet_addr`` (cached: tables repeat addresses)."""
    if family == Family.INET6:
        cache6 = _V6.get(raw)
        if cache6 is None:
            if len(_V6) > 65536:
                _V6.clear()
            cache6 = _V6[raw] = IPv6Address(bytes(raw[:16]))
        return cache6
    cache4 = _V4.get(raw)
    if cache4 is None:
        if len(_V4) > 65536:
            _V4.clear()
        cache4 = _V4[raw] = _V4_OF(raw)
    return cache4


# -- learned layouts ----------------------------------------------------------------------------

#: 32-bit STATS: conns, inpkts, outpkts are u32, bytes u64, rates u32
_STATS32_FMT = ("I", "I", "I", "Q", "Q", "I", "I", "I", "I", "I")


class Layout:
    """Where the fields of one message shape sit: one Struct, then a reorder to field order."""

    def __init__(self, spots: list[tuple[int, str, int]], nfields: int, defaults: tuple[Any, ...]):
        # spots: (offset from the message start, struct format, field index)
        spots = sorted(spots)
        fmt, pos, order = ["="], 0, {}
        for i, (offset, code, index) in enumerate(spots):
            if offset < pos:
                raise ValueError("overlapping attributes")
            fmt.append(f"{offset - pos}x{code}" if offset > pos else code)
            pos = offset + struct.calcsize("=" + code)
            order[index] = i
        self.struct = struct.Struct("".join(fmt))
        missing = iter(range(len(spots), len(spots) + nfields))
        self.getter = itemgetter(*(order[i] if i in order else next(missing)
                                   for i in range(nfields)))
        self.tail = tuple(defaults[i] for i in range(nfields) if i not in order)
        #: the common case: every field present, already in field order (no reorder needed)
        self.direct = not self.tail and all(order[i] == i for i in range(nfields))

    def read(self, buf: Any, off: int) -> tuple[Any, ...]:
        """The fields of the message at ``off``, in field order (defaults for absent ones)."""
        if self.direct:
            return self.struct.unpack_from(buf, off)
        return self.getter(self.struct.unpack_from(buf, off) + self.tail)  # type: ignore[no-any-return]


def _stats_spots(buf: Any, spans: dict[int, tuple[int, int]], base: int,
                 first: int, stats64: int, stats32: int) -> list[tuple[int, str, int]]:
    """Spots of the ten counters: from the 64-bit nest when present, else the 32-bit one."""
    if stats64 in spans:
        inner, codes = attrs(buf, *spans[stats64]), ("Q",) * 10
    elif stats32 in spans:
        inner, codes = attrs(buf, *spans[stats32]), _STATS32_FMT
    else:
        return []
    return [(inner[i + 1][0] - base, codes[i], first + i) for i in range(10) if i + 1 in inner]


_STATS_CACHE: dict[tuple[int, ...], Stats] = {}


def _stats_of(values: tuple[int, ...]) -> Stats:
    """A Stats for ``values``, shared between equal ones (they are immutable; idle rows repeat)."""
    got = _STATS_CACHE.get(values)
    if got is None:
        if len(_STATS_CACHE) > 4096:
            _STATS_CACHE.clear()
        got = _STATS_CACHE[values] = _make(Stats, dict(zip(STATS_FIELDS, values, strict=True)))
    return got


# -- services -------------------------------------------------------------------------------

#: service attribute -> (struct format, field index); the counters follow as fields 10..19
_SVC_SPOTS = {W.SVC_AF: ("H", 0), W.SVC_PROTOCOL: ("H", 1), W.SVC_ADDR: ("s", 2),
              W.SVC_PORT: ("H", 3), W.SVC_FWMARK: ("I", 4), W.SVC_SCHED_NAME: ("s", 5),
              W.SVC_PE_NAME: ("s", 6), W.SVC_FLAGS: ("I", 7), W.SVC_TIMEOUT: ("I", 8),
              W.SVC_NETMASK: ("I", 9)}
_SVC_DEFAULTS = (2, 6, b"", 0, 0, b"", b"", 0, 0, None) + (0,) * 10
_SVC_LAYOUTS: dict[tuple[int, ...], Layout] = {}
_NAMES: dict[bytes, str] = {}


def _shape(buf: Any, off: int, end: int) -> tuple[int, ...]:
    """What fixes a service message's layout: size, alignment, key kind, name lengths.

    Read at the places the kernel puts them (AF first, then FWMARK or PROTOCOL, ADDR, PORT, then
    SCHED_NAME and maybe PE_NAME); ``_learn_service`` checks that before a layout is reused.
    """
    second = _ATTR.unpack_from(buf, off + 12)[1] & W.NLA_TYPE_MASK
    at = off + (20 if second == W.SVC_FWMARK else 48)
    sched = _ATTR.unpack_from(buf, at)[0]
    pe_len, pe_kind = _ATTR.unpack_from(buf, at + ((sched + 3) & ~3))
    pe = pe_len if pe_kind & W.NLA_TYPE_MASK == W.SVC_PE_NAME else 0
    return end - off, off & 7, second, sched, pe


def _learn_service(buf: Any, off: int, end: int, shape: tuple[int, ...]) -> Layout:
    """Walk one service message, record where each field sits; cache it if ``shape`` held."""
    a = attrs(buf, *attrs(buf, off, end)[W.A_SERVICE])
    spots = [(a[k][0] - off, f"{a[k][1] - a[k][0]}s" if code == "s" else code, i)
             for k, (code, i) in _SVC_SPOTS.items() if k in a]
    spots += _stats_spots(buf, a, off, 10, W.SVC_STATS64, W.SVC_STATS)
    layout = Layout(spots, 20, _SVC_DEFAULTS)
    sched = a.get(W.SVC_SCHED_NAME, (0, 0))[0] - 4 - off
    if a.get(W.SVC_AF, (0,))[0] == off + 8 and sched in (20, 48):
        _SVC_LAYOUTS[shape] = layout
    return layout


def _name(raw: bytes) -> str:
    name = _NAMES.get(raw)
    if name is None:
        name = _NAMES[raw] = raw.split(b"\0", 1)[0].decode()
    return name


def _prefix(raw: int | None, family: int) -> int:
    if raw is None:
        return 128 if family == Family.INET6 else 32
    if family == Family.INET6:
        return raw  # the kernel keeps an IPv6 prefix length in the netmask field
    mask = _BE32.unpack(_U32.pack(raw))[0]
    return 32 - (~mask & 0xFFFFFFFF).bit_length()


_SVC_FLAGS: dict[int, SvcFlags] = {}


def _flags(raw: int) -> SvcFlags:
    """The flags we report (HASHED is the kernel's bookkeeping), cached: IntFlag() is slow."""
    got = _SVC_FLAGS.get(raw)
    if got is None:
        got = _SVC_FLAGS[raw] = SvcFlags(raw & ~int(SvcFlags.HASHED))
    return got


def service(buf: Any, off: int, end: int) -> Service:
    """The Service in a NEW_SERVICE reply whose attributes are ``buf[off:end]``."""
    shape = _shape(buf, off, end)
    layout = _SVC_LAYOUTS.get(shape) or _learn_service(buf, off, end, shape)
    f = layout.read(buf, off)
    family = _FAMILY.get(f[0], Family.INET)
    if f[4]:
        key = _make(ServiceKey, {"family": family, "protocol": Proto.TCP, "addr": None,
                                 "port": 0, "fwmark": f[4]})
    else:
        port = ((f[3] & 0xFF) << 8) | (f[3] >> 8) if W._LITTLE else f[3]
        key = _make(ServiceKey, {"family": family, "protocol": _PROTO.get(f[1], Proto.TCP),
                                 "addr": address(f[2], family), "port": port, "fwmark": 0})
    return _make(Service, {
        "key": key, "scheduler": _name(f[5]), "flags": _flags(f[7]),
        "timeout": f[8], "netmask": _prefix(f[9], family), "pe_name": _name(f[6]),
        "stats": _stats_of(f[10:]),
    })


# -- destinations ---------------------------------------------------------------------------

#: dest attribute -> (struct format, field index); the counters follow as fields 13..22
_DEST_SPOTS = {W.DEST_ADDR: ("16s", 0), W.DEST_PORT: ("H", 1), W.DEST_FWD_METHOD: ("I", 2),
               W.DEST_WEIGHT: ("i", 3), W.DEST_TUN_TYPE: ("B", 4), W.DEST_TUN_PORT: ("H", 5),
               W.DEST_TUN_FLAGS: ("H", 6), W.DEST_U_THRESH: ("I", 7), W.DEST_L_THRESH: ("I", 8),
               W.DEST_ACTIVE_CONNS: ("I", 9), W.DEST_INACT_CONNS: ("I", 10),
               W.DEST_PERSIST_CONNS: ("I", 11), W.DEST_ADDR_FAMILY: ("H", 12)}
_DEST_DEFAULTS = (b"", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0) + (0,) * 10
_DEST_LAYOUTS: dict[tuple[int, int], Layout] = {}


def _learn_dest(buf: Any, msg: int, off: int, end: int) -> Layout:
    """Walk one destination message and record where each field sits."""
    a = attrs(buf, *attrs(buf, off, end)[W.A_DEST])
    spots = []
    for kind, (code, index) in _DEST_SPOTS.items():
        if kind in a:
            start, stop = a[kind]
            spots.append((start - msg, f"{stop - start}s" if kind == W.DEST_ADDR else code, index))
    spots += _stats_spots(buf, a, msg, 13, W.DEST_STATS64, W.DEST_STATS)
    return Layout(spots, 23, _DEST_DEFAULTS)


def _dest_layout(buf: Any, msg: int, length: int) -> Layout:
    layout = _DEST_LAYOUTS.get((length, msg & 7))
    if layout is None:
        layout = _DEST_LAYOUTS[(length, msg & 7)] = _learn_dest(buf, msg, msg + 20, msg + length)
    return layout


def dests(buf: Any, size: int, family: int, out: list[Dest]) -> bool:
    """Append the destinations of a GET_DEST dump chunk to ``out``; True once DONE is seen.

    ``family`` is the service's, used when an old kernel omits ADDR_FAMILY. This loop runs once
    per destination of the table (10^4 times for a big one), so it is written out flat: tuple
    lookups for the enums, the caches read inline, the generated ``__init__`` skipped.
    """
    msg, head, append, setattr_ = 0, _HEAD.unpack_from, out.append, object.__setattr__
    v4, v6, fwd, tun_types, tun_flags = _V4, _V6, _FWD, _TUN_TYPES, _TUN_FLAGS
    stats_cache, little = _STATS_CACHE, W._LITTLE
    shape, unpack, counters, stats = None, None, None, None  # the previous dest's, reused
    make_v4 = _V4_OF
    if len(v4) > 65536:  # bounded caches: checked once per chunk, not per address
        v4.clear()
    while msg + 20 <= size:
        length, kind, cmd = head(buf, msg)
        if kind == W.NLMSG_DONE:
            return True
        if kind == W.NLMSG_ERROR:
            raise ReplyError(error_code(buf, msg + 16))
        if length < 16:
            raise ValueError(f"malformed netlink message at offset {msg}: length {length}")
        if kind >= 16 and cmd == W.CMD_NEW_DEST:
            if (length, msg & 7) != shape:
                shape = (length, msg & 7)
                layout = _DEST_LAYOUTS.get(shape) or _dest_layout(buf, msg, length)
                unpack = layout.struct.unpack_from if layout.direct else layout.read
            f = unpack(buf, msg)
            port, tun_port = f[1], f[5]
            if little:  # ports are big-endian on the wire, read as native
                port = ((port & 0xFF) << 8) | (port >> 8)
                tun_port = ((tun_port & 0xFF) << 8) | (tun_port >> 8)
            raw = f[0]
            if (f[12] or family) == 2:
                addr = v4.get(raw)
                if addr is None:
                    addr = v4[raw] = make_v4(raw)
            else:
                addr = v6.get(raw) or address(raw, 10)
            if f[13:] != counters:  # neighbours often share counters (idle ones are all zero)
                counters = f[13:]
                stats = stats_cache.get(counters) or _stats_of(counters)
            dest = _new(Dest)
            setattr_(dest, "__dict__", {
                "addr": addr, "port": port, "forward": fwd[f[2] & 7], "weight": f[3],
                "u_threshold": f[7], "l_threshold": f[8],
                "tun_type": tun_types[f[4]], "tun_port": tun_port,
                "tun_flags": tun_flags[f[6]] if f[6] < 4 else TunFlags(f[6]),
                "active_conns": f[9], "inact_conns": f[10], "persist_conns": f[11],
                "stats": stats,
            })
            append(dest)
        msg += (length + 3) & ~3
    return False


# -- the small replies ------------------------------------------------------------------------


def _u(buf: Any, a: dict[int, tuple[int, int]], kind: int, s: struct.Struct) -> int:
    return s.unpack_from(buf, a[kind][0])[0] if kind in a else 0  # type: ignore[no-any-return]


def daemon(buf: Any, off: int, end: int) -> Daemon:
    """The Daemon in a NEW_DAEMON dump message."""
    a = attrs(buf, *attrs(buf, off, end)[W.A_DAEMON])
    group: IPAddress | None = None
    if W.DAEMON_MCAST_GROUP in a:
        group = IPv4Address(bytes(buf[a[W.DAEMON_MCAST_GROUP][0]:a[W.DAEMON_MCAST_GROUP][1]]))
    elif W.DAEMON_MCAST_GROUP6 in a:
        group = IPv6Address(bytes(buf[a[W.DAEMON_MCAST_GROUP6][0]:a[W.DAEMON_MCAST_GROUP6][1]]))
    return Daemon(
        state=DaemonState(_u(buf, a, W.DAEMON_STATE, _U32)),
        mcast_ifn=_str(buf, a[W.DAEMON_MCAST_IFN]) if W.DAEMON_MCAST_IFN in a else "",
        syncid=_u(buf, a, W.DAEMON_SYNC_ID, _U32),
        sync_maxlen=_u(buf, a, W.DAEMON_SYNC_MAXLEN, _U16),
        mcast_group=group,
        mcast_port=_u(buf, a, W.DAEMON_MCAST_PORT, _U16),
        mcast_ttl=_u(buf, a, W.DAEMON_MCAST_TTL, struct.Struct("=B")),
    )


def info(buf: Any, off: int, end: int) -> Info:
    """Version and connection table size from a GET_INFO reply."""
    a = attrs(buf, off, end)
    v = _u(buf, a, W.INFO_VERSION, _U32)
    version = ((v >> 16) & 0xFF, (v >> 8) & 0xFF, v & 0xFF)
    return Info(version, _u(buf, a, W.INFO_CONN_TAB_SIZE, _U32))


def timeouts(buf: Any, off: int, end: int) -> Timeouts:
    """The three timeouts from a GET_CONFIG reply."""
    a = attrs(buf, off, end)
    return Timeouts(_u(buf, a, W.A_TIMEOUT_TCP, _U32), _u(buf, a, W.A_TIMEOUT_TCP_FIN, _U32),
                    _u(buf, a, W.A_TIMEOUT_UDP, _U32))
