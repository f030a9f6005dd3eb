"""Netlink framing shared by the kernel adapters (rtnetlink here, generic netlink for IPVS):
message and attribute walking, attribute encoding, error codes. Pure, no I/O.

The adapters speak netlink themselves rather than through pyroute2: ``import pyroute2`` loads
the whole library (372 modules: 0.3-0.6 s on a host, ~28 s in the emulated VM), and its
``IPRoute`` grew pulse's memory by ~12 MiB per 1,000 address requests (measured: RSS, not
Python objects; see bench/soak_bench.py). pyroute2 stays in the tests as an independent oracle.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

NLMSG = struct.Struct("=IHHII")  # length, type, flags, seq, pid
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 0x1, 0x2, 0x4
NLM_F_DUMP = 0x300
NLM_F_EXCL, NLM_F_CREATE = 0x200, 0x400
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLA_F_NESTED = 0x8000
NLA_TYPE_MASK = 0x3FFF

_ATTR = struct.Struct("=HH")
_ERR = struct.Struct("=i")
Buffer = bytes | bytearray | memoryview


def messages(buf: Buffer, size: int) -> Iterator[tuple[int, int, int, int]]:
    """(type, seq, payload offset, end) of each netlink message in ``buf[:size]``."""
    off = 0
    while off + 16 <= size:
        length, kind, _flags, seq, _pid = NLMSG.unpack_from(buf, off)
        if length < 16:
            raise ValueError(f"malformed netlink message at offset {off}: length {length}")
        yield kind, seq, off + 16, off + length
        off += (length + 3) & ~3


def error_code(buf: Buffer, payload: int) -> int:
    """The errno of an NLMSG_ERROR payload (0 for an acknowledgement)."""
    code: int = _ERR.unpack_from(buf, payload)[0]
    return -code


def attrs(buf: Buffer, off: int, end: int) -> dict[int, tuple[int, int]]:
    """Attribute type -> (payload start, payload end) for the attributes in ``buf[off:end]``."""
    out: dict[int, tuple[int, int]] = {}
    while off + 4 <= end:
        length, kind = _ATTR.unpack_from(buf, off)
        if length < 4:
            break
        out[kind & NLA_TYPE_MASK] = (off + 4, off + length)
        off += (length + 3) & ~3
    return out


def attr(kind: int, payload: bytes) -> bytes:
    """One attribute, padded to 4 bytes."""
    return _ATTR.pack(4 + len(payload), kind) + payload + b"\0" * (-len(payload) % 4)


def message(kind: int, flags: int, seq: int, payload: bytes) -> bytes:
    """One netlink message (port id 0: the kernel fills in ours)."""
    return NLMSG.pack(16 + len(payload), kind, flags, seq, 0) + payload
