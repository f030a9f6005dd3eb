"""Real servers on 127.0.0.1 and ::1 for the probe tests, each in its own threads.

``Servers.tcp(handler, host)`` and ``Servers.udp(handler, host)`` return a port; the
``servers`` fixture (conftest.py) closes them all when the test ends. Handlers are built
with the helpers below (``reply``, ``silent``, ...), so a test reads as what the server does.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable

TcpHandler = Callable[[socket.socket], None]
UdpHandler = Callable[[bytes], bytes | None]
HOSTS = ["127.0.0.1", "::1"]


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


class Servers:
    """Starts loopback servers for one test and closes them all afterwards."""

    def __init__(self) -> None:
        self.sockets: list[socket.socket] = []
        #: every request a TCP or UDP server received, in order
        self.received: list[bytes] = []

    def tcp(self, handler: TcpHandler, host: str = "127.0.0.1") -> int:
        """Listen on ``host``; run ``handler`` for each connection in a thread."""
        sock = self._bind(host, socket.SOCK_STREAM)
        sock.listen(8)
        threading.Thread(target=self._accept, args=(sock, handler), daemon=True).start()
        return int(sock.getsockname()[1])

    def udp(self, handler: UdpHandler, host: str = "127.0.0.1") -> int:
        """Bind a UDP port on ``host``; answer each datagram with ``handler``'s result."""
        sock = self._bind(host, socket.SOCK_DGRAM)
        threading.Thread(target=self._datagrams, args=(sock, handler), daemon=True).start()
        return int(sock.getsockname()[1])

    def closed_port(self, host: str = "127.0.0.1") -> int:
        """A TCP port that refuses: bound (so nobody else takes it) but not listening."""
        return int(self._bind(host, socket.SOCK_STREAM).getsockname()[1])


    def close(self) -> None:
        """Close every socket this test opened."""
        for sock in self.sockets:
            sock.close()

    def _bind(self, host: str, kind: int) -> socket.socket:
        sock = socket.socket(_family(host), kind)
        sock.bind((host, 0))
        self.sockets.append(sock)
        return sock

    def _accept(self, sock: socket.socket, handler: TcpHandler) -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            self.sockets.append(conn)
            threading.Thread(target=self._serve, args=(conn, handler), daemon=True).start()

    def _serve(self, conn: socket.socket, handler: TcpHandler) -> None:
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            handler(conn)
        except OSError:
            pass  # the probe hung up first: normal for a failed or finished probe

    def _datagrams(self, sock: socket.socket, handler: UdpHandler) -> None:
        while True:
            try:
                data, peer = sock.recvfrom(65535)
            except OSError:
                return
            self.received.append(data)
            answer = handler(data)
            if answer is not None:
                sock.sendto(answer, peer)


def read_request(conn: socket.socket, servers: Servers) -> None:
    """Wait (briefly) for the client's request and remember it."""
    conn.settimeout(1.0)
    try:
        servers.received.append(conn.recv(4096))
    except TimeoutError:
        servers.received.append(b"")


def hold_open(conn: socket.socket) -> None:
    """Keep the connection until the client closes it (so EOF never decides a probe)."""
    conn.settimeout(5.0)
    while conn.recv(4096):
        pass


def reply(servers: Servers, *chunks: bytes, delay: float = 0.0, first: float = 0.0,
          close: bool = False) -> TcpHandler:
    """A handler: read the request, wait ``first``, write chunks ``delay`` apart."""
    def handler(conn: socket.socket) -> None:
        read_request(conn, servers)
        time.sleep(first)
        for i, chunk in enumerate(chunks):
            if i:
                time.sleep(delay)
            conn.sendall(chunk)
        if close:
            conn.close()
        else:
            hold_open(conn)
    return handler


def silent(servers: Servers) -> TcpHandler:
    """A handler that accepts and never answers."""
    def handler(conn: socket.socket) -> None:
        read_request(conn, servers)
        hold_open(conn)
    return handler


def backlog_full(host: str) -> tuple[socket.socket, list[socket.socket]]:
    """A listener whose accept queue is full, so a new connect hangs in SYN_SENT."""
    family = _family(host)
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.bind((host, 0))
    sock.listen(0)
    fillers = []
    for _ in range(3):
        filler = socket.socket(family, socket.SOCK_STREAM)
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(sock.getsockname())
        fillers.append(filler)
    time.sleep(0.05)  # let the handshakes that can complete fill the queue
    return sock, fillers


def free_udp_port(host: str = "127.0.0.1") -> int:
    """A UDP port nobody listens on (it answers with ICMP port unreachable)."""
    # a bound UDP socket would queue the datagram silently, so the port must be free
    with socket.socket(_family(host), socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
