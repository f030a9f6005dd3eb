"""The kernel's side of IPVS dumps: reply datagrams as ip_vs_genl_fill_service/_dest write them.

For decoder tests and the decoder microbench (no kernel needed). Layout rules followed:

* nests are unflagged (``nla_nest_start_noflag``), attributes in the kernel's order;
* with ``pad=True`` (architectures without efficient unaligned access; x86 never pads), a
  64-bit counter (``nla_put_u64_64bit``) is preceded by an empty PAD attribute whenever its
  payload would otherwise not be 8-aligned, counted from the datagram's start (the kernel's skb
  data is 8-aligned), so the same message gets a different layout at a different offset;
* DONE comes in a datagram of its own (``done_inline=True``: appended to the last chunk);
* the 32-bit STATS nest carries conns/inpkts/outpkts and the rates as u32 (truncated), the
  byte counters as u64; STATS64 carries all ten as u64;
* service flags always include HASHED (a listed service is hashed) with mask ~0.

``old=True`` writes what a kernel before 4.x/5.x sends: no STATS64, no tunnel attributes, no
ADDR_FAMILY.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Sequence
from functools import partial

from piranha.ipvs import nlmsg as W
from piranha.ipvs.types import Dest, Family, Service, Stats, SvcFlags

#: the generic-netlink family id written into replies (any value >= 16 will do)
FAMILY_ID = 32
_U64_IN_STATS32 = (4, 5)  # INBYTES, OUTBYTES


class _Message:
    """One reply message being written at datagram offset ``at``."""

    def __init__(self, at: int, pad: bool):
        self.at, self.pad = at, pad
        self.buf = bytearray()

    def pos(self) -> int:
        return self.at + 20 + len(self.buf)  # after nlmsghdr + genlmsghdr

    def put(self, kind: int, payload: bytes) -> None:
        self.buf += W.attr(kind, payload)

    def put_u64(self, kind: int, value: int, pad: int) -> None:
        if self.pad and self.pos() % 8 == 0:  # the payload would sit at 4 mod 8
            self.put(pad, b"")
        self.put(kind, struct.pack("=Q", value))

    def open(self, kind: int) -> int:
        start = len(self.buf)
        self.buf += bytes(4)
        struct.pack_into("=H", self.buf, start + 2, kind)
        return start

    def close(self, start: int) -> None:
        struct.pack_into("=H", self.buf, start, len(self.buf) - start)

    def stats(self, kind32: int, kind64: int, stats: Stats, old: bool) -> None:
        values = [getattr(stats, name) for name in Stats.__dataclass_fields__]
        nest = self.open(kind32)
        for i, v in enumerate(values, 1):
            if i in _U64_IN_STATS32:
                self.put_u64(i, v, W.STATS_PAD)
            else:
                self.put(i, struct.pack("=I", v & 0xFFFFFFFF))
        self.close(nest)
        if not old:
            nest = self.open(kind64)
            for i, v in enumerate(values, 1):
                self.put_u64(i, v, W.STATS_PAD)
            self.close(nest)

    def done(self, cmd: int, seq: int) -> bytes:
        head = W.HEADER.pack(20 + len(self.buf), FAMILY_ID, W.NLM_F_MULTI, seq, 0, cmd, 1)
        return head + bytes(self.buf)


def _netmask(svc: Service) -> bytes:
    if svc.key.family == Family.INET6:
        return struct.pack("=I", svc.netmask)
    return struct.pack("!I", (0xFFFFFFFF << (32 - svc.netmask)) & 0xFFFFFFFF)


def service_message(svc: Service, at: int = 0, seq: int = 7, old: bool = False,
                    pad: bool = False) -> bytes:
    """The NEW_SERVICE dump message of ``svc``, placed at datagram offset ``at``."""
    m, key = _Message(at, pad), svc.key
    nest = m.open(W.A_SERVICE)
    m.put(W.SVC_AF, struct.pack("=H", key.family))
    if key.fwmark:
        m.put(W.SVC_FWMARK, struct.pack("=I", key.fwmark))
    else:
        assert key.addr is not None
        m.put(W.SVC_PROTOCOL, struct.pack("=H", key.protocol))
        m.put(W.SVC_ADDR, key.addr.packed.ljust(16, b"\0"))
        m.put(W.SVC_PORT, struct.pack("!H", key.port))
    m.put(W.SVC_SCHED_NAME, svc.scheduler.encode() + b"\0")
    if svc.pe_name:
        m.put(W.SVC_PE_NAME, svc.pe_name.encode() + b"\0")
    m.put(W.SVC_FLAGS, struct.pack("=II", svc.flags | SvcFlags.HASHED, 0xFFFFFFFF))
    m.put(W.SVC_TIMEOUT, struct.pack("=I", svc.timeout))
    m.put(W.SVC_NETMASK, _netmask(svc))
    m.stats(W.SVC_STATS, W.SVC_STATS64, svc.stats, old)
    m.close(nest)
    return m.done(W.CMD_NEW_SERVICE, seq)


def dest_message(dest: Dest, at: int = 0, seq: int = 7, old: bool = False,
                 pad: bool = False) -> bytes:
    """The NEW_DEST dump message of ``dest``, placed at datagram offset ``at``."""
    m = _Message(at, pad)
    nest = m.open(W.A_DEST)
    m.put(W.DEST_ADDR, dest.addr.packed.ljust(16, b"\0"))
    m.put(W.DEST_PORT, struct.pack("!H", dest.port))
    m.put(W.DEST_FWD_METHOD, struct.pack("=I", dest.forward))
    m.put(W.DEST_WEIGHT, struct.pack("=i", dest.weight))
    if not old:
        m.put(W.DEST_TUN_TYPE, struct.pack("=B", dest.tun_type))
        m.put(W.DEST_TUN_PORT, struct.pack("!H", dest.tun_port))
        m.put(W.DEST_TUN_FLAGS, struct.pack("=H", dest.tun_flags))
    for kind, value in ((W.DEST_U_THRESH, dest.u_threshold), (W.DEST_L_THRESH, dest.l_threshold),
                        (W.DEST_ACTIVE_CONNS, dest.active_conns),
                        (W.DEST_INACT_CONNS, dest.inact_conns),
                        (W.DEST_PERSIST_CONNS, dest.persist_conns)):
        m.put(kind, struct.pack("=I", value))
    if not old:
        m.put(W.DEST_ADDR_FAMILY, struct.pack("=H", 2 if dest.addr.version == 4 else 10))
    m.stats(W.DEST_STATS, W.DEST_STATS64, dest.stats, old)
    m.close(nest)
    return m.done(W.CMD_NEW_DEST, seq)


def done_message(seq: int = 7) -> bytes:
    """NLMSG_DONE (with its int payload, as the kernel sends it)."""
    return struct.pack("=IHHIIi", 20, W.NLMSG_DONE, W.NLM_F_MULTI, seq, 0, 0)


def _pad(data: bytes) -> bytes:
    return data + bytes(((len(data) + 3) & ~3) - len(data))


def datagrams(writers: Iterable[Callable[[int], bytes]], seq: int = 7, chunk: int = 32768,
              done_inline: bool = False) -> list[bytes]:
    """Dump reply datagrams of the messages ``writers`` write (each given its offset), chunked
    like the kernel: a message that would overflow ``chunk`` starts the next datagram; DONE
    comes alone, or ends the last one when ``done_inline`` and it fits."""
    out: list[bytes] = []
    gram = b""
    for write in writers:
        msg = _pad(write(len(gram)))
        if gram and len(gram) + len(msg) > chunk:
            out.append(gram)
            gram = b""
            msg = _pad(write(0))
        gram += msg
    done = done_message(seq)
    if gram and done_inline and len(gram) + len(done) <= chunk:
        out.append(gram + done)
    else:
        out += [gram, done] if gram else [done]
    return out


def service_dump(services: Sequence[Service], seq: int = 7, old: bool = False,
             pad: bool = False, chunk: int = 32768, done_inline: bool = False) -> list[bytes]:
    """The datagrams of a GET_SERVICE dump listing ``services``."""
    writers = [partial(_at(service_message), s, seq=seq, old=old, pad=pad) for s in services]
    return datagrams(writers, seq, chunk, done_inline)


def dest_dump(dests: Sequence[Dest], seq: int = 7, old: bool = False,
             pad: bool = False, chunk: int = 32768, done_inline: bool = False) -> list[bytes]:
    """The datagrams of a GET_DEST dump listing ``dests``."""
    writers = [partial(_at(dest_message), d, seq=seq, old=old, pad=pad) for d in dests]
    return datagrams(writers, seq, chunk, done_inline)


def _at(write: Callable[..., bytes]) -> Callable[..., bytes]:
    """``write`` with the offset last, for partial application of the item first."""
    def call(item: object, at: int, **kw: object) -> bytes:
        return write(item, at, **kw)
    return call
