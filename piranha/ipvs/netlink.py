"""NetlinkIpvs: the kernel's IPVS table over generic netlink, on a socket of our own.

pyroute2 is not used here. Its IPVS helper sends one request at a time and decodes ~100 us per
message, and what remained (entering a namespace, resolving the family id once per socket) cost
``import pyroute2``, which loads the whole library: 0.2-0.3 s on a host and ~28 s in the
emulated VM of the kernel tier, on every lvsd and piranha-ipvsadm start. So:

* the socket is created in the asked namespace with setns(2), and the IPVS family id comes from
  one CTRL_CMD_GETFAMILY request to the generic-netlink controller;

* ``apply`` encodes every op first (nothing is sent if one cannot be encoded), each with its
  own sequence number and NLM_F_ACK, then sends them in batches: one ``send()`` of up to
  ``batch`` requests plus an NLMSG_NOOP "fence". The kernel runs the whole batch inside that
  ``send()`` and keeps going after a failed request; the acks (36 bytes each with
  NETLINK_CAP_ACK) are read back in bulk with recvmmsg (``nlbulk``) up to the fence's, and
  matched to ops by sequence number. A request without an ack returned -EINTR, which netlink
  never acknowledges (IPVS: a sync daemon stopped before its thread first ran). The receive
  buffer is sized for a full batch: an overflowing queue would drop acks.
* dumps are decoded by this socket's own ``nldump.DumpDecoder`` straight from the receive
  buffer (the layouts it learns and the values it caches are this kernel's).
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from piranha.errors import IpvsUnavailable, KernelError
from piranha.ipvs import nldump as D
from piranha.ipvs import nlmsg as W
from piranha.ipvs.backend import kernel_error
from piranha.ipvs.types import (
    Daemon,
    Dest,
    Info,
    Op,
    Query,
    Service,
    ServiceKey,
    StopDaemon,
    Table,
    Timeouts,
)
from piranha.net import netlink as N

if TYPE_CHECKING:
    from piranha.ipvs.nlbulk import Bulk

NETLINK_GENERIC = 16
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
SO_SNDBUFFORCE, SO_RCVBUFFORCE = 32, 33
CLONE_NEWNET = 0x40000000
NETNS_RUN_DIR = "/var/run/netns"
#: the generic-netlink controller (linux/genetlink.h): its id, command and attributes
GENL_ID_CTRL, CTRL_CMD_GETFAMILY = 0x10, 3
CTRL_ATTR_FAMILY_ID, CTRL_ATTR_FAMILY_NAME = 1, 2
NLM_F_REQUEST = 1
GENL_HEADER = 4  # cmd, version, reserved
#: socket buffers we ask for (the FORCE variants need CAP_NET_ADMIN, which IPVS needs anyway)
BUFFER_BYTES = 8 << 20
#: worst-case receive-queue cost of one acknowledgement (skb truesize), for batch sizing
ACK_COST = 1024
_ACK = D.NLMSG.size + 4 + D.NLMSG.size  # header, errno, the request's header (capped)
#: one recvmmsg slot per ack: (type, seq, error) out of a 64-byte slot
_ACK_SLOT = struct.Struct("=4xH2xI4xi44x")
ACK_SLOTS = 1024
_SEQ = 0xFFFFFFFF
_T = TypeVar("_T")
#: reads the attributes of one reply message: (buffer, offset, end)
_Reader = Callable[[memoryview, int, int], _T]
#: an NLMSG_NOOP header: every batch ends with one, acked once the batch is done
_NOOP = struct.Struct("=IHHII")


def _open_socket(netns: str | None, timeout: float) -> socket.socket:
    """A bound generic-netlink socket, created inside ``netns`` (a name under /var/run/netns,
    or a path) when one is named; this thread returns to its own namespace afterwards."""
    if netns is None:
        return _new_socket(timeout)
    target = os.open(netns if "/" in netns else os.path.join(NETNS_RUN_DIR, netns), os.O_RDONLY)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        _setns(target)
        try:
            return _new_socket(timeout)  # a socket stays in the namespace it was born in
        finally:
            _setns(home)
    finally:
        os.close(home)
        os.close(target)


def _setns(fd: int) -> None:
    """setns(2) into the network namespace ``fd`` (os.setns from Python 3.12, else libc)."""
    call = getattr(os, "setns", None)
    if call is not None:
        call(fd, CLONE_NEWNET)
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"setns: {os.strerror(code)}")


def _new_socket(timeout: float) -> socket.socket:
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_GENERIC)
    try:
        sock.bind((0, 0))
        sizes = ((SO_SNDBUFFORCE, socket.SO_SNDBUF), (SO_RCVBUFFORCE, socket.SO_RCVBUF))
        for force, plain in sizes:
            try:
                sock.setsockopt(socket.SOL_SOCKET, force, BUFFER_BYTES)
            except PermissionError:  # not privileged: take what net.core.*mem_max allows
                sock.setsockopt(socket.SOL_SOCKET, plain, BUFFER_BYTES)
        sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
        sock.settimeout(timeout)
    except BaseException:
        sock.close()
        raise
    return sock


def _resolve_family(sock: socket.socket, name: str | None = None) -> int:
    """The id of family ``name`` (default IPVS), asked of the generic-netlink controller.

    Only a reply from the kernel (port 0) to this request (its sequence number) counts."""
    name = name or W.GENL_NAME
    seq = 1
    sock.send(W.message(CTRL_CMD_GETFAMILY, W.string(CTRL_ATTR_FAMILY_NAME, name),
                        GENL_ID_CTRL, NLM_F_REQUEST, seq))
    while True:
        data, (port, _groups) = sock.recvfrom(1 << 16)
        if port != 0:
            continue
        for kind, got, off, end in N.messages(data, len(data)):
            if got != seq:
                continue
            if kind == W.NLMSG_ERROR:
                code = N.error_code(data, off)
                if code == errno.ENOENT and name == W.GENL_NAME:
                    raise IpvsUnavailable(
                        "IPVS is not available: the kernel has no 'IPVS' generic netlink family "
                        "(load the ip_vs module, or use a kernel built with CONFIG_IP_VS)")
                raise OSError(code, f"resolving the {name} netlink family: {os.strerror(code)}")
            if kind == GENL_ID_CTRL:
                span = N.attrs(data, off + GENL_HEADER, end).get(CTRL_ATTR_FAMILY_ID)
                if span is not None and span[1] - span[0] >= 2:
                    return int(struct.unpack_from("=H", data, span[0])[0])
                raise OSError(errno.EPROTO, f"the netlink controller's reply has no id for {name}")


class NetlinkIpvs:
    """IpvsBackend on the kernel's table (of ``netns``, or of this process's namespace).

    ``batch``: most requests per send. ``bulk=False``: one datagram per recv, as where recvmmsg
    is missing. ``sock`` and ``family``: an already open socket and the family id to use on it
    (tests pass a socketpair end).
    """

    def __init__(self, netns: str | None = None, *, batch: int = 1024, timeout: float = 120.0,
                 bulk: bool = True, sock: socket.socket | None = None, family: int | None = None):
        self._sock = sock or _open_socket(netns, timeout)
        try:
            self.family = family or _resolve_family(self._sock)
        except BaseException:
            self._sock.close()
            raise
        self._seq = 0
        self._decoder = D.DumpDecoder()
        self._buf = bytearray(1 << 16)  # > the 32 KiB the kernel puts in one dump skb
        self._view = memoryview(self._buf)
        # recvmmsg's buffers (and ctypes) only once acks are read: a listing never needs them
        self._make_bulk = bulk
        self._ack_bulk: Bulk | None = None
        rcvbuf = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        self._batch = max(1, min(batch, rcvbuf // ACK_COST))
        self._max_bytes = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) - 64

    def close(self) -> None:
        """Close the socket."""
        self._view.release()
        self._sock.close()

    def __enter__(self) -> NetlinkIpvs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _next_seq(self) -> int:
        seq = self._seq
        self._seq = (seq + 1) & _SEQ
        return seq

    # -- writes -------------------------------------------------------------------------------

    def apply(self, ops: Sequence[Op]) -> list[KernelError]:
        """Apply ``ops`` in order; return the ones that failed (the others stay applied)."""
        base, flags = self._seq, W.NLM_F_REQUEST | W.NLM_F_ACK
        # every op is encoded, with its own sequence number, before anything is sent
        msgs = [W.request(op, self.family, flags, (base + i) & _SEQ) for i, op in enumerate(ops)]
        self._seq = (base + len(msgs)) & _SEQ
        failures: list[KernelError] = []
        start = 0
        while start < len(msgs):
            end = self._batch_end(msgs, start)
            fence = self._next_seq()
            # the kernel runs the whole batch inside this send, then acks the NOOP fence
            self._sock.sendall(b"".join(msgs[start:end]) + _NOOP.pack(16, 1, flags, fence, 0))
            for index, code in self._acks((base + start) & _SEQ, end - start, fence):
                if code != errno.EINTR or not isinstance(ops[start + index], StopDaemon):
                    failures.append(kernel_error(ops[start + index], code))
            start = end
        return failures

    def _batch_end(self, msgs: list[bytes], start: int) -> int:
        """Where the batch from ``start`` ends: at most ``batch`` messages and a send buffer."""
        end, size, limit = start, 0, min(len(msgs), start + self._batch)
        while end < limit and (end == start or size + len(msgs[end]) <= self._max_bytes):
            size += len(msgs[end])
            end += 1
        return end

    def _acks(self, seq0: int, count: int, fence: int) -> list[tuple[int, int]]:
        """(index, errno) of the failed ones among ``count`` requests numbered from ``seq0``.

        Reads up to the fence's ack. A request the kernel did not ack at all returned -EINTR,
        which netlink_rcv_skb() answers with silence: IPVS does that when a sync daemon is
        stopped before its thread ever ran (kthread_stop() says -EINTR; the daemon is stopped).
        """
        failed, acked = [], bytearray(count)
        while True:
            for kind, seq, code in self._read_acks():
                if kind != W.NLMSG_ERROR:
                    continue
                if seq == fence:
                    failed += [(i, errno.EINTR) for i in range(count) if not acked[i]]
                    failed.sort()
                    return failed
                index = (seq - seq0) & _SEQ
                if index < count and not acked[index]:  # else: a stray reply of an earlier call
                    acked[index] = 1
                    if code:
                        failed.append((index, code))

    def _read_acks(self) -> list[tuple[int, int, int]]:
        """(type, seq, errno) of the next queued replies: all of them with recvmmsg."""
        if self._make_bulk:
            from piranha.ipvs.nlbulk import Bulk

            self._ack_bulk, self._make_bulk = Bulk.create(ACK_SLOTS, _ACK_SLOT.size), False
        bulk = self._ack_bulk
        if bulk is None:
            size = self._sock.recv_into(self._buf)
            return [(kind, seq, N.error_code(self._view, off) if kind == W.NLMSG_ERROR else 0)
                    for kind, seq, off, _end in N.messages(self._view, size)]
        sizes = bulk.recv(self._sock)
        slots = _ACK_SLOT.iter_unpack(bulk.view[:len(sizes) * bulk.size])
        return [(kind, seq, -err) for size, (kind, seq, err) in zip(sizes, slots, strict=True)
                if size >= _ACK]

    # -- reads --------------------------------------------------------------------------------

    def _request(self, cmd: int, attrs: bytes, flags: int) -> int:
        seq = self._next_seq()
        self._sock.send(W.message(cmd, attrs, self.family, W.NLM_F_REQUEST | flags, seq))
        return seq

    def _recv(self) -> memoryview:
        """The next reply datagram (valid until the next call).

        Dumps use plain ``recv_into``: a destination dump is one chunk and one DONE, and two
        C-level calls beat one recvmmsg through ctypes for two datagrams.
        """
        return self._view[:self._sock.recv_into(self._buf)]

    def _dump(self, cmd: int, attrs: bytes, query: Query, take: _Reader[None]) -> None:
        """Run a dump, calling ``take(view, offset, end)`` on each message's attributes."""
        seq = self._request(cmd, attrs, W.NLM_F_DUMP)
        while True:
            gram = self._recv()
            for kind, mseq, off, end in N.messages(gram, len(gram)):
                if mseq != seq:
                    continue
                if kind == W.NLMSG_DONE:
                    return
                if kind == W.NLMSG_ERROR:
                    raise kernel_error(query, N.error_code(gram, off))
                take(gram, off + 4, end)

    def _get(self, cmd: int, attrs: bytes, query: Query, read: _Reader[_T]) -> _T:
        """Send a GET (doit) request; ``read(view, offset, end)`` of the reply's attributes."""
        seq = self._request(cmd, attrs, 0)
        while True:
            gram = self._recv()
            for kind, mseq, off, end in N.messages(gram, len(gram)):
                if mseq != seq:
                    continue
                if kind == W.NLMSG_ERROR:
                    raise kernel_error(query, N.error_code(gram, off))
                return read(gram, off + 4, end)

    def _services(self) -> list[Service]:
        out: list[Service] = []
        decode = self._decoder.service
        self._dump(W.CMD_GET_SERVICE, b"", Query("dump"),
                   lambda view, off, end: out.append(decode(view, off, end)))
        return out

    def _dests(self, key: ServiceKey) -> tuple[Dest, ...]:
        """The destinations of ``key`` (none if it does not exist: the kernel dumps nothing)."""
        out: list[Dest] = []
        self._request(W.CMD_GET_DEST, W.service_key(key), W.NLM_F_DUMP)
        try:
            recv, buf, family = self._sock.recv_into, self._buf, key.family
            decode = self._decoder.dests
            while not decode(buf, recv(buf), family, out):
                pass
        except D.ReplyError as exc:
            raise kernel_error(Query("service", key), exc.errno) from None
        return tuple(out)

    def dump(self) -> Table:
        """Every service (kernel order) with its destinations (kernel order: newest first)."""
        services = self._services()
        return Table(tuple(services), {s.key: self._dests(s.key) for s in services})

    def get_service(self, key: ServiceKey) -> tuple[Service, tuple[Dest, ...]]:
        """One service and its destinations; KernelError(ESRCH) when absent."""
        svc = self._get(W.CMD_GET_SERVICE, W.service_key(key), Query("service", key),
                        self._decoder.service)
        return svc, self._dests(key)

    def info(self) -> Info:
        """IPVS version and connection table size."""
        return self._get(W.CMD_GET_INFO, b"", Query("info"), D.info)

    def timeouts(self) -> Timeouts:
        """The current connection timeouts."""
        return self._get(W.CMD_GET_CONFIG, b"", Query("timeouts"), D.timeouts)

    def daemons(self) -> list[Daemon]:
        """Running sync daemons, master first."""
        out: list[Daemon] = []
        self._dump(W.CMD_GET_DAEMON, b"", Query("daemons"),
                   lambda view, off, end: out.append(D.daemon(view, off, end)))
        return out
