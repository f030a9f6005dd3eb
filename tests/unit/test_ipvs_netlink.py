"""NetlinkIpvs pieces that need no IPVS: family errors, bulk receive, request framing."""

from __future__ import annotations

import errno
import socket
import struct
import subprocess
import sys
from ipaddress import IPv4Address

import pytest

from piranha.errors import IpvsUnavailable
from piranha.ipvs import netlink
from piranha.ipvs import nlmsg as W
from piranha.ipvs.nlbulk import Bulk
from piranha.ipvs.types import (
    AddDest,
    Daemon,
    DaemonState,
    Dest,
    Flush,
    Proto,
    ServiceKey,
    StartDaemon,
    StopDaemon,
)


def test_a_kernel_without_the_ipvs_family_says_so_in_one_line(monkeypatch):
    monkeypatch.setattr(netlink.W, "GENL_NAME", "PIRNOFAMILY")
    with pytest.raises(IpvsUnavailable) as caught:
        netlink.NetlinkIpvs()
    assert str(caught.value).startswith("IPVS is not available: the kernel has no 'IPVS'")
    assert "\n" not in str(caught.value)


def test_the_family_id_comes_from_the_kernels_controller_without_pyroute2():
    # nlctrl, the controller itself, has the fixed id 0x10 on every kernel; any other family
    # that is missing is an OSError naming it
    code = ("import socket, sys; from piranha.ipvs import netlink as N; "
            "s = N._new_socket(5.0); print(N._resolve_family(s, 'nlctrl')); "
            "print('pyroute2' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.split() == ["16", "False"]
    with netlink._new_socket(5.0) as sock, pytest.raises(OSError) as caught:
        netlink._resolve_family(sock, "PIRNOFAMILY")
    assert caught.value.errno == errno.ENOENT and "PIRNOFAMILY" in str(caught.value)


def test_bulk_receive_takes_every_queued_datagram_and_flags_oversized_ones():
    bulk = Bulk.create(4, 64)
    assert bulk is not None
    reader, writer = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with reader, writer:
        reader.settimeout(1)
        for data in (b"a" * 10, b"b" * 36, b"c" * 100):
            writer.send(data)
        assert bulk.recv(reader) == [10, 36, -1]
        assert bytes(bulk.view[64:100]) == b"b" * 36
        with pytest.raises(TimeoutError):
            bulk.recv(reader)


def test_requests_carry_consecutive_sequence_numbers_and_ask_for_acks():
    key = ServiceKey.inet(Proto.TCP, IPv4Address("198.51.100.80"), 80)
    ops = [AddDest(key, Dest(IPv4Address("10.0.0.1"), 80)), Flush()]
    msgs = [W.request(op, 40, W.NLM_F_REQUEST | W.NLM_F_ACK, 7 + i) for i, op in enumerate(ops)]
    heads = [struct.unpack_from("=IHHIIB", m) for m in msgs]
    assert [(h[0], h[1], h[2], h[3], h[5]) for h in heads] == [
        (len(msgs[0]), 40, 5, 7, W.CMD_NEW_DEST), (20, 40, 5, 8, W.CMD_FLUSH)]


def ack(seq: int, error: int = 0) -> bytes:
    """What the kernel answers a request with NETLINK_CAP_ACK: header, errno, request header."""
    return struct.pack("=IHHIIi", 36, W.NLMSG_ERROR, 0x100, seq, 0, -error) + bytes(16)


@pytest.mark.parametrize("bulk", [True, False])
def test_acks_are_matched_by_sequence_and_a_missing_one_is_eintr(bulk):
    ours, kernel = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with ours, kernel:
        ours.settimeout(5)
        ipvs = netlink.NetlinkIpvs(sock=ours, family=40, bulk=bulk)
        key = ServiceKey.inet(Proto.TCP, IPv4Address("198.51.100.80"), 80)
        ops = [Flush(), StopDaemon(DaemonState.MASTER),
               AddDest(key, Dest(IPv4Address("10.0.0.1"), 80)), Flush(),
               StartDaemon(Daemon(DaemonState.MASTER, "eth0"))]
        # seqs 0..4 for the ops, 5 for the fence; 1 and 4 get no ack, 2 fails, 3 acks twice
        for seq, error in [(2, errno.ESRCH), (0, 0), (3, 0), (3, errno.EEXIST), (99, 0), (5, 0)]:
            kernel.send(ack(seq, error))
        failures = ipvs.apply(ops)
        # the stop's silence is how the kernel reports stopping a daemon whose thread never ran
        assert [(f.op, f.errno) for f in failures] == [(ops[2], errno.ESRCH),
                                                       (ops[4], errno.EINTR)]
        sent = kernel.recv(1 << 16)
        assert struct.unpack_from("=IHHI", sent, len(sent) - 16) == (16, 1, 5, 5)  # the NOOP fence
