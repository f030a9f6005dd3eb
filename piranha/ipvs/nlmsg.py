"""IPVS generic-netlink wire format, request side: constants and op encoders (no I/O).

Requests carry the attributes ipvsadm 1.31's libipvs sends, in its order and sizes (golden
tests compare with bytes captured from ipvsadm in the kernel lab): nests flagged
NLA_F_NESTED, addresses as 16-byte ``nf_inet_addr``, ports big-endian, the service flags with
mask ~0. Ops that only name a service or a destination send the identifying attributes only.

The hot shapes (service key, destination) are packed by one prebuilt ``struct.Struct`` each,
attribute headers passed as constants, because ``apply()`` encodes 10^4 of them per restore.
"""

from __future__ import annotations

import struct
import sys
from socket import htonl, htons

from piranha.ipvs.types import (
    AddDest,
    AddService,
    Daemon,
    DelDest,
    DelService,
    Dest,
    DestKey,
    EditDest,
    EditService,
    Family,
    Flush,
    Op,
    Service,
    ServiceKey,
    SetTimeouts,
    StartDaemon,
    StopDaemon,
    Timeouts,
    Zero,
)

GENL_NAME = "IPVS"
GENL_VERSION = 1

# netlink header flags and message types
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x2, 0x4, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLA_F_NESTED = 0x8000
NLA_TYPE_MASK = 0x3FFF

# IPVS_CMD_*
(CMD_NEW_SERVICE, CMD_SET_SERVICE, CMD_DEL_SERVICE, CMD_GET_SERVICE, CMD_NEW_DEST, CMD_SET_DEST,
 CMD_DEL_DEST, CMD_GET_DEST, CMD_NEW_DAEMON, CMD_DEL_DAEMON, CMD_GET_DAEMON, CMD_SET_CONFIG,
 CMD_GET_CONFIG, CMD_SET_INFO, CMD_GET_INFO, CMD_ZERO, CMD_FLUSH) = range(1, 18)
# IPVS_CMD_ATTR_*
A_SERVICE, A_DEST, A_DAEMON, A_TIMEOUT_TCP, A_TIMEOUT_TCP_FIN, A_TIMEOUT_UDP = range(1, 7)
# IPVS_SVC_ATTR_*
(SVC_AF, SVC_PROTOCOL, SVC_ADDR, SVC_PORT, SVC_FWMARK, SVC_SCHED_NAME, SVC_FLAGS, SVC_TIMEOUT,
 SVC_NETMASK, SVC_STATS, SVC_PE_NAME, SVC_STATS64) = range(1, 13)
# IPVS_DEST_ATTR_*
(DEST_ADDR, DEST_PORT, DEST_FWD_METHOD, DEST_WEIGHT, DEST_U_THRESH, DEST_L_THRESH,
 DEST_ACTIVE_CONNS, DEST_INACT_CONNS, DEST_PERSIST_CONNS, DEST_STATS, DEST_ADDR_FAMILY,
 DEST_STATS64, DEST_TUN_TYPE, DEST_TUN_PORT, DEST_TUN_FLAGS) = range(1, 16)
# IPVS_DAEMON_ATTR_*
(DAEMON_STATE, DAEMON_MCAST_IFN, DAEMON_SYNC_ID, DAEMON_SYNC_MAXLEN, DAEMON_MCAST_GROUP,
 DAEMON_MCAST_GROUP6, DAEMON_MCAST_PORT, DAEMON_MCAST_TTL) = range(1, 9)
# IPVS_STATS_ATTR_* run 1..10 in Stats field order; 11 is padding for 64-bit alignment
STATS_PAD = 11
# IPVS_INFO_ATTR_*
INFO_VERSION, INFO_CONN_TAB_SIZE = 1, 2

#: nlmsghdr (len, type, flags, seq, pid) + genlmsghdr (cmd, version, reserved)
HEADER = struct.Struct("=IHHIIBBxx")
_LITTLE = sys.byteorder == "little"


def _hdr(kind: int, size: int) -> int:
    """An attribute header (nla_len, nla_type) as one native u32, to pack with ``I``."""
    return (size + 4) | (kind << 16) if _LITTLE else ((size + 4) << 16) | kind


def _pad(n: int) -> int:
    return (n + 3) & ~3


def attr(kind: int, payload: bytes) -> bytes:
    """One attribute: header, payload, zero padding to 4 bytes (nla_len excludes the padding)."""
    size = len(payload)
    return struct.pack("=HH", size + 4, kind) + payload + bytes(_pad(size) - size)


def nest(kind: int, *attrs: bytes) -> bytes:
    """A nested attribute, flagged NLA_F_NESTED as libnl does."""
    return attr(kind | NLA_F_NESTED, b"".join(attrs))


def u8(kind: int, v: int) -> bytes:
    """A u8 attribute."""
    return attr(kind, struct.pack("=B", v))


def u16(kind: int, v: int) -> bytes:
    """A native u16 attribute."""
    return attr(kind, struct.pack("=H", v))


def u32(kind: int, v: int) -> bytes:
    """A native u32 attribute."""
    return attr(kind, struct.pack("=I", v))


def string(kind: int, v: str) -> bytes:
    """A NUL-terminated string attribute."""
    return attr(kind, v.encode() + b"\0")


# -- hot shapes ---------------------------------------------------------------------------------

_KEY = struct.Struct("=I IH2x IH2x I16s IH2x")
_KEY_CONST = (_hdr(A_SERVICE | NLA_F_NESTED, _KEY.size - 4), _hdr(SVC_AF, 2),
              _hdr(SVC_PROTOCOL, 2), _hdr(SVC_ADDR, 16), _hdr(SVC_PORT, 2))
_MARK = struct.Struct("=I IH2x II")
_MARK_CONST = (_hdr(A_SERVICE | NLA_F_NESTED, _MARK.size - 4), _hdr(SVC_AF, 2),
               _hdr(SVC_FWMARK, 4))
_DEST = struct.Struct("=I IH2x I16s IH2x II Ii IB3x IH2x IH2x II II")
_D = (_hdr(A_DEST | NLA_F_NESTED, _DEST.size - 4), _hdr(DEST_ADDR_FAMILY, 2),
      _hdr(DEST_ADDR, 16), _hdr(DEST_PORT, 2), _hdr(DEST_FWD_METHOD, 4), _hdr(DEST_WEIGHT, 4),
      _hdr(DEST_TUN_TYPE, 1), _hdr(DEST_TUN_PORT, 2), _hdr(DEST_TUN_FLAGS, 2),
      _hdr(DEST_U_THRESH, 4), _hdr(DEST_L_THRESH, 4))
_DEST_KEY = struct.Struct("=I IH2x I16s IH2x")
_DEST_KEY_CONST = (_hdr(A_DEST | NLA_F_NESTED, _DEST_KEY.size - 4), _hdr(DEST_ADDR_FAMILY, 2),
                   _hdr(DEST_ADDR, 16), _hdr(DEST_PORT, 2))


def service_key(key: ServiceKey) -> bytes:
    """The SERVICE nest naming ``key``: AF and FWMARK, or AF, PROTOCOL, ADDR and PORT."""
    if key.fwmark:
        a, b, c = _MARK_CONST
        return _MARK.pack(a, b, key.family, c, key.fwmark)
    if key.addr is None:
        raise ValueError(f"service key without address or fwmark: {key}")
    a, b, c, d, e = _KEY_CONST
    return _KEY.pack(a, b, key.family, c, key.protocol, d, key.addr.packed, e, htons(key.port))


def dest_full(d: Dest) -> bytes:
    """The DEST nest of an add/edit: every settable attribute, in libipvs order."""
    h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, h10 = _D
    addr = d.addr
    return _DEST.pack(
        h0, h1, 2 if addr.version == 4 else 10, h2, addr.packed, h3, htons(d.port),
        h4, d.forward, h5, d.weight, h6, d.tun_type, h7, htons(d.tun_port),
        h8, d.tun_flags, h9, d.u_threshold, h10, d.l_threshold,
    )


def dest_key(d: DestKey) -> bytes:
    """The DEST nest naming a destination (for delete)."""
    a, b, c, e = _DEST_KEY_CONST
    addr = d.addr
    return _DEST_KEY.pack(a, b, 2 if addr.version == 4 else 10, c, addr.packed, e, htons(d.port))


# -- the other shapes -------------------------------------------------------------------------


def netmask(svc: Service) -> int:
    """NETMASK as the kernel reads it: a big-endian mask (IPv4) or a native prefix (IPv6)."""
    if svc.key.family == Family.INET6:
        return svc.netmask
    if not 0 <= svc.netmask <= 32:
        raise ValueError(f"IPv4 netmask prefix must be 0..32, got {svc.netmask}")
    return htonl((0xFFFFFFFF << (32 - svc.netmask)) & 0xFFFFFFFF)


def service_full(svc: Service) -> bytes:
    """The SERVICE nest of an add/edit: key, scheduler, pe, flags (mask ~0), timeout, netmask."""
    key = svc.key
    if key.fwmark:
        ident = [u16(SVC_AF, key.family), u32(SVC_FWMARK, key.fwmark)]
    elif key.addr is None:
        raise ValueError(f"service key without address or fwmark: {key}")
    else:
        ident = [u16(SVC_AF, key.family), u16(SVC_PROTOCOL, key.protocol),
                 attr(SVC_ADDR, key.addr.packed.ljust(16, b"\0")),
                 attr(SVC_PORT, struct.pack("!H", key.port))]
    return nest(
        A_SERVICE, *ident, string(SVC_SCHED_NAME, svc.scheduler),
        *([string(SVC_PE_NAME, svc.pe_name)] if svc.pe_name else []),
        attr(SVC_FLAGS, struct.pack("=II", svc.flags, 0xFFFFFFFF)),
        u32(SVC_TIMEOUT, svc.timeout), u32(SVC_NETMASK, netmask(svc)),
    )


def daemon(d: Daemon) -> bytes:
    """The DAEMON nest of a start: state, interface, syncid, then the optional settings."""
    parts = [u32(DAEMON_STATE, d.state), string(DAEMON_MCAST_IFN, d.mcast_ifn),
             u32(DAEMON_SYNC_ID, d.syncid)]
    if d.sync_maxlen:
        parts.append(u16(DAEMON_SYNC_MAXLEN, d.sync_maxlen))
    if d.mcast_port:
        parts.append(u16(DAEMON_MCAST_PORT, d.mcast_port))  # host order, as the kernel keeps it
    if d.mcast_ttl:
        parts.append(u8(DAEMON_MCAST_TTL, d.mcast_ttl))
    if d.mcast_group is not None:
        kind = DAEMON_MCAST_GROUP if d.mcast_group.version == 4 else DAEMON_MCAST_GROUP6
        parts.append(attr(kind, d.mcast_group.packed))
    return nest(A_DAEMON, *parts)


def timeouts(t: Timeouts) -> bytes:
    """SET_CONFIG attributes: all three timeouts (0 leaves one unchanged)."""
    return u32(A_TIMEOUT_TCP, t.tcp) + u32(A_TIMEOUT_TCP_FIN, t.tcpfin) + u32(A_TIMEOUT_UDP, t.udp)


def _zero(op: Zero) -> tuple[int, bytes]:
    return CMD_ZERO, b"" if op.service is None else service_key(op.service)


def _stop(op: StopDaemon) -> tuple[int, bytes]:
    attrs = nest(A_DAEMON, u32(DAEMON_STATE, op.state), u32(DAEMON_SYNC_ID, op.syncid))
    return CMD_DEL_DAEMON, attrs


#: op type -> function returning (command, attributes)
_ENCODERS = {
    AddService: lambda op: (CMD_NEW_SERVICE, service_full(op.service)),
    EditService: lambda op: (CMD_SET_SERVICE, service_full(op.service)),
    DelService: lambda op: (CMD_DEL_SERVICE, service_key(op.key)),
    AddDest: lambda op: (CMD_NEW_DEST, service_key(op.service) + dest_full(op.dest)),
    EditDest: lambda op: (CMD_SET_DEST, service_key(op.service) + dest_full(op.dest)),
    DelDest: lambda op: (CMD_DEL_DEST, service_key(op.service) + dest_key(op.dest)),
    Flush: lambda op: (CMD_FLUSH, b""),
    Zero: _zero,
    SetTimeouts: lambda op: (CMD_SET_CONFIG, timeouts(op.timeouts)),
    StartDaemon: lambda op: (CMD_NEW_DAEMON, daemon(op.daemon)),
    StopDaemon: _stop,
}


def encode(op: Op) -> tuple[int, bytes]:
    """(command, attributes) of the request that performs ``op``; ValueError if unencodable."""
    encoder = _ENCODERS.get(type(op))
    if encoder is None:
        raise TypeError(f"not an IPVS op: {op!r}")
    try:
        return encoder(op)
    except (struct.error, OverflowError) as exc:
        raise ValueError(f"{op!r} cannot be encoded: {exc}") from None


def message(cmd: int, attrs: bytes, family: int, flags: int, seq: int) -> bytes:
    """A whole netlink message (pid 0: the kernel fills in ours)."""
    return HEADER.pack(HEADER.size + len(attrs), family, flags, seq, 0, cmd, GENL_VERSION) + attrs


#: a whole add/edit-dest message for an address-keyed service, packed in one call
_KEYED_DEST = struct.Struct(HEADER.format + _KEY.format[1:] + _DEST.format[1:])


def request(op: Op, family: int, flags: int, seq: int) -> bytes:
    """The whole request message performing ``op``; ValueError/TypeError as ``encode``.

    The bulk of a restore is destination adds to address-keyed services: those are packed by
    one ``Struct`` call, the rest through ``encode``.
    """
    if isinstance(op, (AddDest, EditDest)):
        key, d = op.service, op.dest
        vip = key.addr
        if vip is not None and not key.fwmark:
            cmd = CMD_NEW_DEST if type(op) is AddDest else CMD_SET_DEST
            k0, k1, k2, k3, k4 = _KEY_CONST
            h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, h10 = _D
            try:
                return _KEYED_DEST.pack(
                    _KEYED_DEST.size, family, flags, seq, 0, cmd, GENL_VERSION,
                    k0, k1, key.family, k2, key.protocol, k3, vip.packed, k4, htons(key.port),
                    h0, h1, 2 if d.addr.version == 4 else 10, h2, d.addr.packed, h3,
                    htons(d.port), h4, d.forward, h5, d.weight, h6, d.tun_type, h7,
                    htons(d.tun_port), h8, d.tun_flags, h9, d.u_threshold, h10, d.l_threshold,
                )
            except (struct.error, OverflowError) as exc:
                raise ValueError(f"{op!r} cannot be encoded: {exc}") from None
    cmd, attrs = encode(op)
    return message(cmd, attrs, family, flags, seq)
