"""IPVS generic-netlink wire format, reply side: decoders of dump and get replies (no I/O).

Speed matters here: a table of 10^4 destinations arrives as 10^4 messages, and pyroute2's
generic decoder costs ~100 us per message. Every message of one kernel's destination dump has
the same layout for a given length and 8-byte alignment (the alignment decides where the kernel
puts its 64-bit padding attributes), so the first message of each (length, alignment) is walked
attribute by attribute to learn where every field sits, and all later ones are read by one
``Struct.unpack_from``. Services vary more (fwmark or address, scheduler name, pe) and are
walked, except their statistics, which use the same learned-layout trick.

The learned layouts and the value caches (addresses, counters, names, flags) are the state of a
``DumpDecoder``; each ``NetlinkIpvs`` owns one, so two sockets (two namespaces, two kernels)
never share what one of them learned. The module keeps only constants.

Result objects are frozen dataclasses; ``_frozen`` builds them by installing their ``__dict__``
because the generated ``__init__`` (one ``object.__setattr__`` per field) costs more than the
decoding. ``piranha.ipvs.nlref`` is the slow, obvious decoder the tests hold this one to.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address
from operator import itemgetter
from typing import Any, TypeVar

from piranha.errors import PiranhaError
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
from piranha.net.netlink import attrs, error_code

NLMSG = struct.Struct("=IHHII")
_HEAD = struct.Struct("=IH10xB")
_ATTR = struct.Struct("=HH")  # length, type, and the genl command
_U16, _U32, _U64, _BE16, _BE32 = (struct.Struct(f) for f in ("=H", "=I", "=Q", "!H", "!I"))
_FLAGS = struct.Struct("=II")

_new = object.__new__
_T = TypeVar("_T")
#: what the decoders read from: a receive buffer, a view of it, or bytes
Buffer = bytes | bytearray | memoryview  # as piranha.net.netlink.Buffer
STATS_FIELDS = tuple(Stats.__dataclass_fields__)
#: enum members by value, for tuple indexing in the hot loop (forwarding is masked to 3 bits)
_FWD = tuple(Forward(v) if v in Forward._value2member_map_ else Forward.ROUTE for v in range(8))
_TUN_TYPES = tuple(TunType(v) if v in TunType._value2member_map_ else v for v in range(256))
_TUN_FLAGS = tuple(TunFlags(v) for v in range(4))
_FAMILY = {f.value: f for f in Family}
_PROTO = {p.value: p for p in Proto}


class ReplyError(PiranhaError):
    """The kernel answered a request with an error (``errno``)."""

    def __init__(self, errno: int):
        super().__init__(errno)
        self.errno = errno


def _frozen(cls: type[_T], values: dict[str, Any]) -> _T:
    """An instance of frozen dataclass ``cls`` whose fields are exactly ``values``.

    Skips the generated ``__init__`` by installing ``values`` as the instance ``__dict__``;
    right only for dataclasses without ``__slots__``, ``__post_init__`` or field converters
    (tests/unit/test_ipvs_nldump.py checks the result equals the constructor's). ``values`` is
    taken over, not copied.
    """
    obj = _new(cls)
    object.__setattr__(obj, "__dict__", values)
    return obj


def _str(buf: Buffer, span: tuple[int, int]) -> str:
    return bytes(buf[span[0]:span[1]]).split(b"\0", 1)[0].decode()


def _quick_v4(raw: bytes) -> IPv4Address:
    """IPv4Address(raw[:4]) at half the cost: the constructor re-checks what the kernel sent."""
    addr = _new(IPv4Address)
    addr._ip = int.from_bytes(raw[:4], "big")  # type: ignore[attr-defined]  # its one slot
    return addr


def _safe_v4(raw: bytes) -> IPv4Address:
    return IPv4Address(bytes(raw[:4]))


def _v4_maker() -> Callable[[bytes], IPv4Address]:
    """The quick way relies on ipaddress internals (one slot, _ip): use it only if it works."""
    try:
        sample, real = _quick_v4(b"\x0a\x00\x00\x01"), IPv4Address("10.0.0.1")
    except (AttributeError, TypeError):
        return _safe_v4
    same = sample == real and str(sample) == str(real) and hash(sample) == hash(real)
    return _quick_v4 if same else _safe_v4


_V4_OF = _v4_maker()

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

    def read(self, buf: Buffer, off: int) -> tuple[Any, ...]:
        """The fields of the message at ``off``, in field order (defaults for absent ones)."""
        if self.direct:
            return self.struct.unpack_from(buf, off)
        fields: tuple[Any, ...] = self.getter(self.struct.unpack_from(buf, off) + self.tail)
        return fields


def _stats_spots(buf: Buffer, spans: dict[int, tuple[int, int]], base: int,
                 first: int, stats64: int, stats32: int) -> list[tuple[int, str, int]]:
    """Spots of the ten counters: from the 64-bit nest when present, else the 32-bit one."""
    codes: tuple[str, ...]
    if stats64 in spans:
        inner, codes = attrs(buf, *spans[stats64]), ("Q",) * 10
    elif stats32 in spans:
        inner, codes = attrs(buf, *spans[stats32]), _STATS32_FMT
    else:
        return []
    return [(inner[i + 1][0] - base, codes[i], first + i) for i in range(10) if i + 1 in inner]


#: service attribute -> (struct format, field index); the counters follow as fields 10..19
_SVC_SPOTS = {W.SVC_AF: ("H", 0), W.SVC_PROTOCOL: ("H", 1), W.SVC_ADDR: ("s", 2),
              W.SVC_PORT: ("H", 3), W.SVC_FWMARK: ("I", 4), W.SVC_SCHED_NAME: ("s", 5),
              W.SVC_PE_NAME: ("s", 6), W.SVC_FLAGS: ("I", 7), W.SVC_TIMEOUT: ("I", 8),
              W.SVC_NETMASK: ("I", 9)}
_SVC_DEFAULTS = (2, 6, b"", 0, 0, b"", b"", 0, 0, None) + (0,) * 10

#: dest attribute -> (struct format, field index); the counters follow as fields 13..22
_DEST_SPOTS = {W.DEST_ADDR: ("16s", 0), W.DEST_PORT: ("H", 1), W.DEST_FWD_METHOD: ("I", 2),
               W.DEST_WEIGHT: ("i", 3), W.DEST_TUN_TYPE: ("B", 4), W.DEST_TUN_PORT: ("H", 5),
               W.DEST_TUN_FLAGS: ("H", 6), W.DEST_U_THRESH: ("I", 7), W.DEST_L_THRESH: ("I", 8),
               W.DEST_ACTIVE_CONNS: ("I", 9), W.DEST_INACT_CONNS: ("I", 10),
               W.DEST_PERSIST_CONNS: ("I", 11), W.DEST_ADDR_FAMILY: ("H", 12)}
_DEST_DEFAULTS = (b"", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0) + (0,) * 10


def _shape(buf: Buffer, off: int, end: int) -> tuple[int, ...]:
    """What fixes a service message's layout: size, alignment, key kind, name lengths.

    Read at the places the kernel puts them (AF first, then FWMARK or PROTOCOL, ADDR, PORT, then
    SCHED_NAME and maybe PE_NAME); ``DumpDecoder._learn_service`` checks that before a layout
    is reused.
    """
    second = _ATTR.unpack_from(buf, off + 12)[1] & W.NLA_TYPE_MASK
    at = off + (20 if second == W.SVC_FWMARK else 48)
    sched = _ATTR.unpack_from(buf, at)[0]
    pe_len, pe_kind = _ATTR.unpack_from(buf, at + ((sched + 3) & ~3))
    pe = pe_len if pe_kind & W.NLA_TYPE_MASK == W.SVC_PE_NAME else 0
    return end - off, off & 7, second, sched, pe


def _prefix(raw: int | None, family: int) -> int:
    if raw is None:
        return 128 if family == Family.INET6 else 32
    if family == Family.INET6:
        return raw  # the kernel keeps an IPv6 prefix length in the netmask field
    mask: int = _BE32.unpack(_U32.pack(raw))[0]
    return 32 - (~mask & 0xFFFFFFFF).bit_length()


def _learn_dest(buf: Buffer, msg: int, off: int, end: int) -> Layout:
    """Walk one destination message and record where each field sits."""
    a = attrs(buf, *attrs(buf, off, end)[W.A_DEST])
    spots = []
    for kind, (code, index) in _DEST_SPOTS.items():
        if kind in a:
            start, stop = a[kind]
            spots.append((start - msg, f"{stop - start}s" if kind == W.DEST_ADDR else code, index))
    spots += _stats_spots(buf, a, msg, 13, W.DEST_STATS64, W.DEST_STATS)
    return Layout(spots, 23, _DEST_DEFAULTS)


#: bounds of the value caches (cleared when exceeded: a table churning through addresses)
ADDR_CACHE, STATS_CACHE = 65536, 4096


class DumpDecoder:
    """Decoder of service and destination dumps, with what it learned from earlier replies.

    State: the layouts learned per message shape, and caches of the immutable values tables
    repeat (addresses, counters, scheduler names, flags). One per socket (``NetlinkIpvs``
    owns one): nothing is shared between instances, and a decoder is not thread-safe.
    """

    __slots__ = ("_v4", "_v6", "_stats", "_svc_layouts", "_names", "_svc_flags",
                 "_dest_layouts")

    def __init__(self) -> None:
        self._v4: dict[bytes, IPv4Address] = {}
        self._v6: dict[bytes, IPv6Address] = {}
        self._stats: dict[tuple[int, ...], Stats] = {}
        self._svc_layouts: dict[tuple[int, ...], Layout] = {}
        self._names: dict[bytes, str] = {}
        self._svc_flags: dict[int, SvcFlags] = {}
        self._dest_layouts: dict[tuple[int, int], Layout] = {}

    def address(self, raw: bytes, family: int) -> IPAddress:
        """The address in a 4- or 16-byte ``nf_inet_addr`` (cached: tables repeat addresses)."""
        if family == Family.INET6:
            v6 = self._v6
            cache6 = v6.get(raw)
            if cache6 is None:
                if len(v6) > ADDR_CACHE:
                    v6.clear()
                cache6 = v6[raw] = IPv6Address(bytes(raw[:16]))
            return cache6
        v4 = self._v4
        cache4 = v4.get(raw)
        if cache4 is None:
            if len(v4) > ADDR_CACHE:
                v4.clear()
            cache4 = v4[raw] = _V4_OF(raw)
        return cache4

    def stats(self, values: tuple[int, ...]) -> Stats:
        """A Stats for ``values``, shared between equal ones (immutable; idle rows repeat)."""
        cache = self._stats
        got = cache.get(values)
        if got is None:
            if len(cache) > STATS_CACHE:
                cache.clear()
            got = cache[values] = _frozen(Stats, dict(zip(STATS_FIELDS, values, strict=True)))
        return got

    def _name(self, raw: bytes) -> str:
        name = self._names.get(raw)
        if name is None:
            name = self._names[raw] = raw.split(b"\0", 1)[0].decode()
        return name

    def _flags(self, raw: int) -> SvcFlags:
        """The flags we report (HASHED is the kernel's bookkeeping), cached: IntFlag() is slow."""
        got = self._svc_flags.get(raw)
        if got is None:
            got = self._svc_flags[raw] = SvcFlags(raw & ~int(SvcFlags.HASHED))
        return got

    # -- services ---------------------------------------------------------------------------

    def _learn_service(self, buf: Buffer, off: int, end: int, shape: tuple[int, ...]) -> Layout:
        """Walk one service message, record where each field sits; keep it if ``shape`` held."""
        a = attrs(buf, *attrs(buf, off, end)[W.A_SERVICE])
        spots = [(a[k][0] - off, f"{a[k][1] - a[k][0]}s" if code == "s" else code, i)
                 for k, (code, i) in _SVC_SPOTS.items() if k in a]
        spots += _stats_spots(buf, a, off, 10, W.SVC_STATS64, W.SVC_STATS)
        layout = Layout(spots, 20, _SVC_DEFAULTS)
        sched = a.get(W.SVC_SCHED_NAME, (0, 0))[0] - 4 - off
        if a.get(W.SVC_AF, (0,))[0] == off + 8 and sched in (20, 48):
            self._svc_layouts[shape] = layout
        return layout

    def service(self, buf: Buffer, off: int, end: int) -> Service:
        """The Service in a NEW_SERVICE reply whose attributes are ``buf[off:end]``."""
        shape = _shape(buf, off, end)
        layout = self._svc_layouts.get(shape) or self._learn_service(buf, off, end, shape)
        f = layout.read(buf, off)
        family = _FAMILY.get(f[0], Family.INET)
        if f[4]:
            key = _frozen(ServiceKey, {"family": family, "protocol": Proto.TCP, "addr": None,
                                       "port": 0, "fwmark": f[4]})
        else:
            port = ((f[3] & 0xFF) << 8) | (f[3] >> 8) if W._LITTLE else f[3]
            key = _frozen(ServiceKey, {"family": family, "protocol": _PROTO.get(f[1], Proto.TCP),
                                       "addr": self.address(f[2], family), "port": port,
                                       "fwmark": 0})
        return _frozen(Service, {
            "key": key, "scheduler": self._name(f[5]), "flags": self._flags(f[7]),
            "timeout": f[8], "netmask": _prefix(f[9], family), "pe_name": self._name(f[6]),
            "stats": self.stats(f[10:]),
        })

    # -- destinations -----------------------------------------------------------------------

    def _dest_layout(self, buf: Buffer, msg: int, length: int) -> Layout:
        layout = self._dest_layouts.get((length, msg & 7))
        if layout is None:
            layout = _learn_dest(buf, msg, msg + 20, msg + length)
            self._dest_layouts[(length, msg & 7)] = layout
        return layout

    def dests(self, buf: Buffer, size: int, family: int, out: list[Dest]) -> bool:
        """Append the destinations of a GET_DEST dump chunk to ``out``; True once DONE is seen.

        ``family`` is the service's, used when an old kernel omits ADDR_FAMILY. This loop runs
        once per destination of the table (10^4 times for a big one), so it is written out
        flat: tuple lookups for the enums, the caches read inline, ``_frozen`` inlined.
        """
        msg, head, append, setattr_ = 0, _HEAD.unpack_from, out.append, object.__setattr__
        v4, v6, fwd, tun_types, tun_flags = self._v4, self._v6, _FWD, _TUN_TYPES, _TUN_FLAGS
        stats_cache, layouts, little = self._stats, self._dest_layouts, W._LITTLE
        shape: tuple[int, int] | None = None  # the previous dest's, and its reader
        unpack: Callable[[Buffer, int], tuple[Any, ...]] = _no_reader
        counters: tuple[int, ...] | None = None
        stats: Stats | None = None
        make_v4 = _V4_OF
        if len(v4) > ADDR_CACHE:  # bounded caches: checked once per chunk, not per address
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
                    layout = layouts.get(shape) or self._dest_layout(buf, msg, length)
                    unpack = layout.struct.unpack_from if layout.direct else layout.read
                f = unpack(buf, msg)
                port, tun_port = f[1], f[5]
                if little:  # ports are big-endian on the wire, read as native
                    port = ((port & 0xFF) << 8) | (port >> 8)
                    tun_port = ((tun_port & 0xFF) << 8) | (tun_port >> 8)
                raw = f[0]
                addr: IPAddress | None
                if (f[12] or family) == 2:
                    addr = v4.get(raw)
                    if addr is None:
                        addr = v4[raw] = make_v4(raw)
                else:
                    addr = v6.get(raw) or self.address(raw, 10)
                if f[13:] != counters:  # neighbours often share counters (idle ones: all zero)
                    counters = f[13:]
                    stats = stats_cache.get(counters) or self.stats(counters)
                dest = _new(Dest)  # _frozen(Dest, ...), inlined: this is the hot loop
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


def _no_reader(buf: Buffer, off: int) -> tuple[Any, ...]:
    raise AssertionError("no layout yet")  # never called: the first dest sets the reader


# -- the small replies ------------------------------------------------------------------------


def _u(buf: Buffer, a: dict[int, tuple[int, int]], kind: int, s: struct.Struct) -> int:
    if kind not in a:
        return 0
    value: int = s.unpack_from(buf, a[kind][0])[0]
    return value


def daemon(buf: Buffer, off: int, end: int) -> Daemon:
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


def info(buf: Buffer, off: int, end: int) -> Info:
    """Version and connection table size from a GET_INFO reply."""
    a = attrs(buf, off, end)
    v = _u(buf, a, W.INFO_VERSION, _U32)
    version = ((v >> 16) & 0xFF, (v >> 8) & 0xFF, v & 0xFF)
    return Info(version, _u(buf, a, W.INFO_CONN_TAB_SIZE, _U32))


def timeouts(buf: Buffer, off: int, end: int) -> Timeouts:
    """The three timeouts from a GET_CONFIG reply."""
    a = attrs(buf, off, end)
    return Timeouts(_u(buf, a, W.A_TIMEOUT_TCP, _U32), _u(buf, a, W.A_TIMEOUT_TCP_FIN, _U32),
                    _u(buf, a, W.A_TIMEOUT_UDP, _U32))
