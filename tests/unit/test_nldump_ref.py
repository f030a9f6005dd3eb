"""The fast dump decoder (nldump) against the slow reference one (nlref), on every captured kernel
reply and on random tables encoded as the kernel encodes them (testkit.nlkernel).

Results are compared by ``repr``: it shows every field, the live counters and statistics the
types leave out of ``==`` included, and the enum types (a bare int would show).
"""

from __future__ import annotations

import socket
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from piranha.ipvs import nldump as D
from piranha.ipvs import nlmsg as W
from piranha.ipvs import nlref as R
from piranha.ipvs.netlink import NetlinkIpvs
from piranha.ipvs.types import (
    Dest,
    Family,
    Forward,
    IPAddress,
    Proto,
    Service,
    ServiceKey,
    Stats,
    SvcFlags,
    TunFlags,
    TunType,
)
from piranha.net import netlink as N
from testkit import nlkernel as K

REPLIES = Path(__file__).parents[1] / "data" / "netlink" / "replies"
GOLDEN = sorted(REPLIES.glob("*.hex"))


def load(path: Path) -> bytes:
    return bytes.fromhex("".join(line for line in path.read_text().splitlines()
                                 if not line.startswith("#")))


def fast_services(dec: D.DumpDecoder, grams: list[bytes]) -> list[Service]:
    """The services of a dump's datagrams, read as NetlinkIpvs._dump reads them."""
    out: list[Service] = []
    for gram in grams:
        for kind, _seq, off, end in N.messages(gram, len(gram)):
            if kind == W.NLMSG_DONE:
                return out
            if kind >= 16:
                out.append(dec.service(gram, off + 4, end))
    raise AssertionError("no DONE")


def fast_dests(dec: D.DumpDecoder, grams: list[bytes], family: int) -> list[Dest]:
    """The destinations of a dump's datagrams, read as NetlinkIpvs._dests reads them."""
    out: list[Dest] = []
    for gram in grams:
        if dec.dests(gram, len(gram), family, out):
            return out
    raise AssertionError("no DONE")


def reprs(items: list[Service] | list[Dest]) -> list[str]:
    return [repr(item) for item in items]


# -- the captured replies -----------------------------------------------------------------------


def test_the_golden_replies_are_there():
    assert len(GOLDEN) >= 19


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_a_golden_reply_decodes_identically(path):
    gram = load(path)
    msgs = [(kind, gram[off], off, end) for kind, _seq, off, end in N.messages(gram, len(gram))]
    cmds = {cmd for kind, cmd, _off, _end in msgs if kind >= 16}
    dec = D.DumpDecoder()
    if cmds == {W.CMD_NEW_SERVICE}:
        assert reprs(fast_services(dec, [gram, K.done_message()])) == reprs(R.services([gram]))
    elif cmds == {W.CMD_NEW_DEST}:
        for family in (Family.INET, Family.INET6):  # ADDR_FAMILY is there: no difference
            assert reprs(fast_dests(dec, [gram, K.done_message()], family)) \
                == reprs(R.dests([gram], family))
    elif not cmds:  # a DONE
        assert [kind for kind, *_ in msgs] == [W.NLMSG_DONE]
        assert dec.dests(gram, len(gram), 2, []) is True and R.dests([gram], 2) == []
    else:  # GET_INFO, GET_CONFIG, GET_DAEMON replies: one kind of message each
        ((cmd,),) = (cmds,)
        fast, ref = {W.CMD_NEW_DAEMON: (D.daemon, R.daemon), W.CMD_SET_INFO: (D.info, R.info),
                     W.CMD_SET_CONFIG: (D.timeouts, R.timeouts)}[cmd]
        for _kind, _cmd, off, end in msgs:
            assert repr(fast(gram, off + 4, end)) == repr(ref(gram[off + 4:end]))


def test_the_golden_listing_decodes_to_what_ipvsadm_printed():
    svcs = R.services([load(REPLIES / "list-stats-1.hex")])
    keys = [s.key for s in svcs]
    assert ServiceKey.inet(Proto.TCP, IPv4Address("198.51.100.80"), 80) in keys
    assert ServiceKey.mark(7) in keys and ServiceKey.mark(8, Family.INET6) in keys
    assert svcs[0].stats.conns == 2 and svcs[0].stats.inbytes == 120
    dests = R.dests([load(REPLIES / "list-stats-3.hex")], 2)
    assert {str(d.addr) for d in dests} == {f"10.200.0.{i}" for i in range(11, 15)}


def test_the_encoder_writes_what_the_kernel_wrote():
    # byte for byte, but for the port id (the capturing socket's), which the decoders ignore
    for name, count in (("list-stats-1", None), ("list-stats-3", 2)):
        gram = load(REPLIES / f"{name}.hex")
        seq = next(N.messages(gram, len(gram)))[1]
        if count is None:
            mine = K.service_dump(R.services([gram]), seq=seq)[0]
        else:
            mine = K.dest_dump(R.dests([gram], count), seq=seq)[0]
        unpid = bytearray(gram)
        for _kind, _seq, off, _end in N.messages(gram, len(gram)):
            unpid[off - 4:off] = bytes(4)
        assert mine == bytes(unpid)


# -- random tables ------------------------------------------------------------------------------

u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)
v4 = st.builds(IPv4Address, u32)
v6 = st.builds(IPv6Address, st.integers(0, 2**128 - 1))
stats = st.builds(Stats, *([u64] * 10))
name = st.text("abcdefghijklmnopqrstuvwxyz_-0123456789", min_size=1, max_size=15)
flags = st.sampled_from([0, 1, 4, 5, 8, 0x18, 0x38, 0x3D]).map(SvcFlags)


@st.composite
def services(draw: st.DrawFn) -> Service:
    family = draw(st.sampled_from([Family.INET, Family.INET6]))
    if draw(st.booleans()):
        key = ServiceKey.mark(draw(st.integers(1, 2**32 - 1)), family)
    else:
        addr: IPAddress = draw(v4 if family == Family.INET else v6)
        key = ServiceKey.inet(draw(st.sampled_from(list(Proto))), addr, draw(st.integers(0, 65535)))
    netmask = draw(st.integers(0, 32 if family == Family.INET else 128))
    return Service(key, draw(st.sampled_from(["rr", "wlc", "sh", "mh"]) | name), draw(flags),
                   draw(u32), netmask, draw(st.sampled_from(["", "sip"]) | name), draw(stats))


@st.composite
def dests(draw: st.DrawFn, addrs: st.SearchStrategy[IPAddress]) -> Dest:
    return Dest(draw(addrs), draw(st.integers(0, 65535)), draw(st.sampled_from(list(Forward))),
                draw(st.integers(-2**31, 2**31 - 1)), draw(u32), draw(u32),
                draw(st.sampled_from(list(TunType))), draw(st.integers(0, 65535)),
                TunFlags(draw(st.integers(0, 3))), draw(u32), draw(u32), draw(u32), draw(stats))


#: how the kernel may have written a dump: padded (not x86), old (no STATS64/tunnel/AF), the
#: datagram size (small ones split a dump in several), DONE appended to the last chunk or not
kernels = st.fixed_dictionaries({"pad": st.booleans(), "old": st.booleans(),
                                 "chunk": st.sampled_from([400, 1000, 4096, 32768]),
                                 "done_inline": st.booleans()})
#: one decoder through all examples: what it learns from one table must not spoil the next
SHARED = D.DumpDecoder()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(services(), max_size=12), kernels)
def test_random_services_decode_identically(svcs, kernel):
    grams = K.service_dump(svcs, **kernel)
    ref = reprs(R.services(grams))
    assert reprs(fast_services(D.DumpDecoder(), grams)) == ref
    assert reprs(fast_services(SHARED, grams)) == ref
    if not kernel["old"]:  # everything the table holds survives the round trip
        assert ref == reprs(svcs)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), kernels)
def test_random_dests_decode_identically(data, kernel):
    family = data.draw(st.sampled_from([Family.INET, Family.INET6]))
    # an old kernel sends no ADDR_FAMILY: its destinations are of the service's family
    mixed = v4 | v6 if not kernel["old"] else (v4 if family == Family.INET else v6)
    ds = data.draw(st.lists(dests(mixed), max_size=30))
    grams = K.dest_dump(ds, **kernel)
    ref = reprs(R.dests(grams, family))
    assert reprs(fast_dests(D.DumpDecoder(), grams, family)) == ref
    assert reprs(fast_dests(SHARED, grams, family)) == ref
    if not kernel["old"]:
        assert ref == reprs(ds)


# -- decoder state ------------------------------------------------------------------------------


def test_decoders_share_no_state():
    svc = Service(ServiceKey.inet(Proto.TCP, IPv4Address("198.51.100.80"), 80), "rr")
    dest = Dest(IPv4Address("10.200.0.11"), 80)
    first, second = D.DumpDecoder(), D.DumpDecoder()
    a1 = fast_dests(first, K.dest_dump([dest]), 2)[0]
    a2 = fast_dests(first, K.dest_dump([dest]), 2)[0]
    b = fast_dests(second, K.dest_dump([dest]), 2)[0]
    assert a1.addr is a2.addr and a1.stats is a2.stats  # one decoder's caches at work...
    assert b.addr is not a1.addr and b.stats is not a1.stats  # ...which the other does not see
    (s1,) = fast_services(first, K.service_dump([svc]))
    (s2,) = fast_services(second, K.service_dump([svc]))
    assert s1 == s2 == svc
    assert s1.key.addr is not s2.key.addr
    assert first.__slots__ == second.__slots__ and all(
        getattr(first, slot) is not getattr(second, slot) for slot in first.__slots__)


def test_each_netlink_ipvs_owns_its_decoder():
    pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM) for _ in range(2)]
    try:
        one, two = (NetlinkIpvs(sock=a, family=K.FAMILY_ID, bulk=False) for a, _b in pairs)
        assert isinstance(one._decoder, D.DumpDecoder)
        assert one._decoder is not two._decoder
    finally:
        for a, b in pairs:
            a.close()
            b.close()
