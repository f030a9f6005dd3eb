"""Reading many netlink datagrams per system call, with recvmmsg(2) through ctypes.

A netlink socket hands out one datagram per ``recv``: one acknowledgement, or one dump chunk.
Under emulation each Python-level system call costs tens of microseconds, so reading the 10^4
acknowledgements of a restore one by one costs as much as the kernel's own work. ``recvmmsg``
fills a vector of fixed-size slots in one call; ``Bulk.recv`` returns how many slots it filled
and their lengths. Where ``recvmmsg`` is missing (not Linux, no libc), ``Bulk`` is None and the
caller reads one datagram at a time.
"""

from __future__ import annotations

import ctypes
import errno
import select
import socket
import struct

MSG_WAITFORONE = 0x10000
MSG_TRUNC = 0x20


class _IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class _MsgHdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32),
                ("iov", ctypes.POINTER(_IoVec)), ("iovlen", ctypes.c_size_t),
                ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                ("flags", ctypes.c_int)]


class _MMsgHdr(ctypes.Structure):
    _fields_ = [("hdr", _MsgHdr), ("len", ctypes.c_uint)]


def _libc() -> ctypes.CDLL | None:
    try:
        # the process's own libc: find_library would load subprocess and may run ldconfig
        libc = ctypes.CDLL(None, use_errno=True)
        libc.recvmmsg.argtypes = [ctypes.c_int, ctypes.POINTER(_MMsgHdr), ctypes.c_uint,
                                  ctypes.c_int, ctypes.c_void_p]
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()


class Bulk:
    """``count`` receive slots of ``size`` bytes each, read by one recvmmsg call."""

    def __init__(self, count: int, size: int):
        self.count, self.size = count, size
        self.buffer = ctypes.create_string_buffer(count * size)
        self.view = memoryview(self.buffer).cast("B")
        base = ctypes.addressof(self.buffer)
        self._iovs = (_IoVec * count)(*(_IoVec(base + i * size, size) for i in range(count)))
        self._hdrs = (_MMsgHdr * count)()
        for i in range(count):
            self._hdrs[i].hdr.iov = ctypes.pointer(self._iovs[i])
            self._hdrs[i].hdr.iovlen = 1
        # (msg_flags, msg_len) of every slot, read in C rather than by ctypes attribute access
        flags_at = _MMsgHdr.hdr.offset + _MsgHdr.flags.offset
        len_at = _MMsgHdr.len.offset
        step = ctypes.sizeof(_MMsgHdr)
        self._results = struct.Struct(f"={flags_at}xi{len_at - flags_at - 4}xI{step - len_at - 4}x")
        self._hdr_view = memoryview(self._hdrs).cast("B")

    @classmethod
    def create(cls, count: int, size: int) -> Bulk | None:
        """A Bulk, or None where recvmmsg is not available."""
        return cls(count, size) if _LIBC is not None else None

    def recv(self, sock: socket.socket, most: int | None = None) -> list[int]:
        """Wait for at least one datagram, take up to ``most`` queued ones; their lengths.

        A datagram too big for its slot reports length -1 (the caller decides what that means).
        """
        libc = _LIBC
        if libc is None:  # create() returns no Bulk then
            raise OSError(errno.ENOSYS, "recvmmsg is not available")
        most = min(most or self.count, self.count)
        fd, timeout = sock.fileno(), sock.gettimeout()
        while True:
            got = libc.recvmmsg(fd, self._hdrs, most, MSG_WAITFORONE | socket.MSG_DONTWAIT, None)
            if got >= 0:
                break
            code = ctypes.get_errno()
            if code == errno.EINTR:
                continue
            if code != errno.EAGAIN:
                raise OSError(code, f"recvmmsg: {errno.errorcode.get(code, code)}")
            # nothing queued yet: wait like a blocking socket with a timeout would
            ready, _, _ = select.select([fd], [], [], timeout)
            if not ready:
                raise TimeoutError("timed out waiting for the kernel's netlink reply")
        results = self._results.iter_unpack(self._hdr_view[:got * self._results.size])
        return [-1 if flags & MSG_TRUNC else size for flags, size in results]
