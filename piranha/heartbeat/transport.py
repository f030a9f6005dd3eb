"""Heartbeat sockets: one UDP socket per path, bound to this director's address on that path.

The I/O edge of the heartbeat: it moves datagrams, the codec judges them. Sockets are
non-blocking and close-on-exec (Piranha's fix for "cannot bind to port 539 after restart":
children must not inherit them). Send errors are returned, not raised: a dead partner makes
the kernel answer ECONNREFUSED, which must never stop the loop.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address

from piranha.errors import PiranhaError
from piranha.heartbeat.packet import Codec, Heartbeat, Magic, Rejected
from piranha.model import IPAddress

#: datagrams read per path and wake-up at most (a flood must not starve the timers)
MAX_READ = 64



@dataclass(frozen=True)
class Path:
    """One heartbeat path: bind to ``local``, send to and accept from ``partner``."""

    name: str  # "public" or "private"
    local: IPAddress
    partner: IPAddress

class BindError(PiranhaError, OSError):
    """A heartbeat address could not be bound; the message names the address and port."""


@dataclass
class _Socket:
    path: Path
    sock: socket.socket


class Transport:
    """The heartbeat sockets of one director; ``fileno`` of each for a selector."""

    def __init__(self, paths: Sequence[Path], port: int, codec: Codec) -> None:
        self.port, self.codec = port, codec
        self._sockets: list[_Socket] = []
        try:
            for path in paths:
                self._sockets.append(_Socket(path, _bind(path, port)))
        except BindError:
            self.close()
            raise

    @property
    def paths(self) -> tuple[Path, ...]:
        return tuple(s.path for s in self._sockets)

    def filenos(self) -> list[int]:
        return [s.sock.fileno() for s in self._sockets]

    def send(self, magic: Magic, wall: float) -> list[str]:
        """Send ``magic`` on every path; the error lines (empty when all went out)."""
        errors = []
        for s in self._sockets:
            data = self.codec.encode(magic, wall)
            try:
                s.sock.sendto(data, (str(s.path.partner), self.port))
            except OSError as exc:
                errors.append(f"heartbeat to {s.path.partner} ({s.path.name}): {exc.strerror}")
        return errors

    def receive(self, fd: int, wall: float) -> list[Heartbeat | Rejected]:
        """Every datagram waiting on socket ``fd``, judged by the codec."""
        out: list[Heartbeat | Rejected] = []
        s = next(s for s in self._sockets if s.sock.fileno() == fd)
        for _ in range(MAX_READ):
            try:
                data, sender = s.sock.recvfrom(512)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:  # ECONNREFUSED from an earlier send: pulse ignores it silently
                continue
            out.append(self.codec.decode(data, sender[0], wall))
        return out

    def close(self) -> None:
        for s in self._sockets:
            with contextlib.suppress(OSError):
                s.sock.close()
        self._sockets = []


def _bind(path: Path, port: int) -> socket.socket:
    family = socket.AF_INET if isinstance(path.local, IPv4Address) else socket.AF_INET6
    sock = socket.socket(family, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
    try:
        sock.bind((str(path.local), port))
    except OSError as exc:
        sock.close()
        raise BindError(exc.errno, f"failed to bind to heartbeat address {path.local} port "
                                   f"{port} ({path.name} path): {exc.strerror}") from None
    return sock
