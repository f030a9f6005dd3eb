"""The reply decoder on synthetic messages: learned layouts, old kernels, fast object building."""

from __future__ import annotations

import dataclasses
import struct
from ipaddress import IPv4Address, IPv6Address

import pytest

from piranha.ipvs import nldump as D
from piranha.ipvs import nlmsg as W
from piranha.ipvs.types import (
    Daemon,
    Dest,
    Forward,
    Proto,
    Service,
    ServiceKey,
    Stats,
    TunFlags,
    TunType,
)
from piranha.net import netlink as N

FAMILY = 32


def kattr(kind: int, payload: bytes) -> bytes:
    """An attribute as the kernel writes it (nests unflagged)."""
    return W.attr(kind, payload)


def counters(values: list[int], wide: bool, start: int) -> bytes:
    """A stats nest body; u64 values get a PAD attribute first when the kernel would add one."""
    out = b""
    for i, v in enumerate(values, 1):
        if wide or i in (4, 5):
            if (start + len(out) + 4) % 8:  # payload must start 8-aligned
                out += kattr(W.STATS_PAD, b"")
            out += kattr(i, struct.pack("=Q", v))
        else:
            out += kattr(i, struct.pack("=I", v))
    return out


def genl(cmd: int, attrs: bytes, at: int = 0) -> bytes:
    """A reply message (seq 7) holding ``attrs``."""
    return struct.pack("=IHHIIBBxx", 20 + len(attrs), FAMILY, W.NLM_F_MULTI, 7, 0, cmd, 1) + attrs


def dest_message(at: int, *, old: bool = False, port: int = 8080,
                 stats: list[int] | None = None) -> bytes:
    """A NEW_DEST dump message placed at buffer offset ``at`` (which decides the padding)."""
    stats = stats or list(range(1, 11))
    body = [kattr(W.DEST_ADDR, IPv4Address("10.200.0.11").packed + bytes(12)),
            kattr(W.DEST_PORT, struct.pack("!H", port)), kattr(W.DEST_FWD_METHOD, b"\2\0\0\0"),
            kattr(W.DEST_WEIGHT, struct.pack("=i", 7))]
    if not old:
        body += [kattr(W.DEST_TUN_TYPE, b"\1"), kattr(W.DEST_TUN_PORT, struct.pack("!H", 6080)),
                 kattr(W.DEST_TUN_FLAGS, struct.pack("=H", 1))]
    body += [kattr(W.DEST_U_THRESH, struct.pack("=I", 100)), kattr(W.DEST_L_THRESH, b"\x0a\0\0\0"),
             kattr(W.DEST_ACTIVE_CONNS, b"\3\0\0\0"), kattr(W.DEST_INACT_CONNS, b"\4\0\0\0"),
             kattr(W.DEST_PERSIST_CONNS, b"\5\0\0\0")]
    if not old:
        body.append(kattr(W.DEST_ADDR_FAMILY, b"\2\0"))
    head = at + 20 + 4 + sum(map(len, body))  # where the STATS nest's payload starts
    body.append(kattr(W.DEST_STATS, small := counters(stats, False, head + 4)))
    if not old:
        body.append(kattr(W.DEST_STATS64, counters(stats, True, head + 4 + len(small) + 4)))
    return genl(W.CMD_NEW_DEST, kattr(W.A_DEST, b"".join(body)))


EXPECTED = Dest(IPv4Address("10.200.0.11"), 8080, Forward.TUNNEL, 7, 100, 10, TunType.GUE, 6080,
                TunFlags.CSUM, 3, 4, 5, Stats(*range(1, 11)))


def decode_dests(buf: bytes) -> list[Dest]:
    out: list[Dest] = []
    assert D.DumpDecoder().dests(buf, len(buf), 2, out) is False
    return out


def filler(size: int) -> bytes:
    """A message of another type, which the decoder skips, to place the next one."""
    return struct.pack("=IHHII", size, 0x30, 0, 0, 0) + bytes(size - 16)


@pytest.mark.parametrize("at", [16, 20])
def test_a_dest_decodes_at_either_alignment(at):
    got = decode_dests(filler(at) + dest_message(at))
    assert got == [EXPECTED]
    assert got[0].active_conns == 3 and got[0].stats == Stats(*range(1, 11))


def test_consecutive_dests_at_alternating_alignments_share_nothing_wrong():
    first = dest_message(0, port=1)
    second = dest_message(len(first), port=2, stats=[9] * 10)
    got = decode_dests(first + second)
    assert [d.port for d in got] == [1, 2]
    assert got[1].stats == Stats(*[9] * 10)


def test_an_old_kernel_dest_without_tunnel_attrs_or_stats64():
    (got,) = decode_dests(dest_message(0, old=True))
    assert got == dataclasses.replace(EXPECTED, tun_type=TunType.IPIP, tun_port=0,
                                      tun_flags=TunFlags.NOCSUM)
    assert got.stats == Stats(*range(1, 11))


def test_done_and_error_end_a_dest_dump():
    done = struct.pack("=IHHIIi", 20, W.NLMSG_DONE, W.NLM_F_MULTI, 7, 0, 0)
    out: list[Dest] = []
    assert D.DumpDecoder().dests(dest_message(0) + done, 356 + 20 + 1000, 2, out) is True
    error = struct.pack("=IHHIIi", 36, W.NLMSG_ERROR, 0, 7, 0, -3) + bytes(16)
    with pytest.raises(D.ReplyError) as caught:
        D.DumpDecoder().dests(error, len(error), 2, [])
    assert caught.value.errno == 3


def test_a_malformed_length_is_refused():
    with pytest.raises(ValueError, match="malformed"):
        list(N.messages(struct.pack("=IHHII", 8, 0, 0, 0, 0), 16))


def test_an_old_kernel_service_without_stats64():
    svc = kattr(W.A_SERVICE, b"".join([
        kattr(W.SVC_AF, b"\2\0"), kattr(W.SVC_PROTOCOL, b"\x11\0"),
        kattr(W.SVC_ADDR, IPv4Address("198.51.100.80").packed + bytes(12)),
        kattr(W.SVC_PORT, struct.pack("!H", 53)), kattr(W.SVC_SCHED_NAME, b"rr\0"),
        kattr(W.SVC_FLAGS, struct.pack("=II", 0x3, 0xFFFFFFFF)),
        kattr(W.SVC_TIMEOUT, struct.pack("=I", 300)),
        kattr(W.SVC_NETMASK, struct.pack("!I", 0xFFFFFF00)),
        kattr(W.SVC_STATS, counters([5] * 10, False, 0)),
    ]))
    got = D.DumpDecoder().service(svc, 0, len(svc))
    assert got == Service(ServiceKey.inet(Proto.UDP, IPv4Address("198.51.100.80"), 53), "rr",
                          flags=1, timeout=300, netmask=24)
    assert got.stats == Stats(*[5] * 10)


def test_a_daemon_with_an_ipv6_group():
    body = kattr(W.A_DAEMON, b"".join([
        kattr(W.DAEMON_STATE, b"\2\0\0\0"), kattr(W.DAEMON_MCAST_IFN, b"pub0\0"),
        kattr(W.DAEMON_SYNC_ID, b"\6\0\0\0"), kattr(W.DAEMON_SYNC_MAXLEN, struct.pack("=H", 1452)),
        kattr(W.DAEMON_MCAST_PORT, struct.pack("=H", 8848)), kattr(W.DAEMON_MCAST_TTL, b"\1"),
        kattr(W.DAEMON_MCAST_GROUP6, IPv6Address("ff02::1:81").packed)]))
    assert D.daemon(body, 0, len(body)) == Daemon(2, "pub0", 6, 1452, IPv6Address("ff02::1:81"),
                                                   8848, 1)


@pytest.mark.parametrize("cls", [Service, ServiceKey, Dest, Stats])
def test_fast_building_makes_the_same_objects_as_the_constructor(cls):
    # the decoder installs __dict__ directly; that is only right while the types do no more
    assert not hasattr(cls, "__post_init__")
    assert not hasattr(cls, "__slots__")
    sample = {"Service": Service(ServiceKey.mark(3)), "ServiceKey": ServiceKey.mark(3),
              "Dest": EXPECTED, "Stats": Stats(*range(10))}[cls.__name__]
    fields = {f.name: getattr(sample, f.name) for f in dataclasses.fields(cls)}
    made = D._frozen(cls, fields)
    assert made == sample and repr(made) == repr(sample) and hash(made) == hash(sample)


def test_addresses_and_counters_are_shared_value_objects():
    raw = IPv4Address("10.0.0.9").packed + bytes(12)
    dec = D.DumpDecoder()
    assert dec.address(raw, 2) is dec.address(bytes(raw), 2) == IPv4Address("10.0.0.9")
    assert dec.address(IPv6Address("2001:db8::9").packed, 10) == IPv6Address("2001:db8::9")
    assert dec.stats((0,) * 10) is dec.stats((0,) * 10) == Stats()
