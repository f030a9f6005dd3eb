"""lvsd's control socket: root-only runtime commands that lvs.cf does not hold.

Protocol: a client connects to the Unix stream socket, sends ONE JSON object on one line,
reads ONE JSON object back, and the connection closes::

    {"cmd": "drain", "virtual": "web", "server": "web1", "timeout": 300}
    {"ok": true, "message": "web/web1 10.0.0.11:80: draining (deadline in 300 s)"}

Commands: ``drain`` (``timeout`` optional, seconds), ``enable``, ``ping``, and ``watch``: the
answer is followed by one line per event while the connection lasts (:mod:`piranha.lvsd.events`).
The socket file is
mode 0600 and every peer's uid is checked (SO_PEERCRED): root, or lvsd's own user.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import socket
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from piranha import defaults
from piranha.errors import PiranhaError
from piranha.lvsd.events import Watchers
from piranha.text import JsonError, strict_json

DEFAULT_PATH = defaults.LVSD_SOCKET
MAX_REQUEST = 4096
#: default drain deadline, seconds
DRAIN_TIMEOUT = defaults.DRAIN_TIMEOUT
COMMANDS = ("drain", "enable", "ping", "watch")


class RequestError(PiranhaError, ValueError):
    """A request that is not one of the commands, with what is wrong."""


@dataclass(frozen=True)
class Request:
    """One parsed command."""

    cmd: str
    virtual: str = ""
    server: str = ""
    timeout: float = DRAIN_TIMEOUT


def parse(line: bytes) -> Request:
    """The request in ``line``; RequestError saying what is wrong."""
    try:
        data = strict_json(line.decode("utf-8"))
    except (UnicodeDecodeError, JsonError) as exc:
        raise RequestError(f"not a JSON request: {exc}") from None
    if not isinstance(data, dict) or data.get("cmd") not in COMMANDS:
        raise RequestError(f"unknown command (expected one of {', '.join(COMMANDS)})")
    cmd = data["cmd"]
    if cmd in ("ping", "watch"):
        return Request(cmd)
    virtual, server = data.get("virtual"), data.get("server")
    if not isinstance(virtual, str) or not isinstance(server, str) or not virtual or not server:
        raise RequestError(f"{cmd} needs 'virtual' and 'server' (names or addresses)")
    timeout = data.get("timeout", DRAIN_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout >= 0:
        raise RequestError(f"timeout must be a number of seconds >= 0, got {timeout!r}")
    return Request(cmd, virtual, server, float(timeout))


def reply(ok: bool, message: str) -> bytes:
    """A response line."""
    return json.dumps({"ok": ok, "message": message}).encode("utf-8") + b"\n"


def bind(path: str) -> socket.socket:
    """A listening socket at ``path`` (stale file replaced), mode 0600, non-blocking."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), mode=0o755, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    old = os.umask(0o177)
    try:
        sock.bind(path)
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    sock.listen(16)
    sock.setblocking(False)
    return sock


def peer_uid(conn: socket.socket) -> int:
    """The uid of the process at the other end (SO_PEERCRED)."""
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


#: control connections served at once (more are told "busy" and closed)
MAX_CLIENTS = 8
#: seconds a client has to send its whole request line
REQUEST_DEADLINE = 2.0


@dataclass
class _Client:
    conn: socket.socket
    deadline: float
    data: bytes = b""


class Clients:
    """The control socket's connections, served from lvsd's loop without ever blocking it:
    each is non-blocking in ``sel``, has ``REQUEST_DEADLINE`` seconds for its request line,
    and at most ``MAX_CLIENTS`` are open at once."""

    def __init__(self, sel: selectors.BaseSelector,
                 dispatch: Callable[[Request], tuple[bool, str]], clock: Callable[[], float],
                 limit: int = MAX_CLIENTS, deadline: float = REQUEST_DEADLINE,
                 watchers: Watchers | None = None) -> None:
        self.sel, self.dispatch, self.clock, self.watchers = sel, dispatch, clock, watchers
        self.limit, self.deadline = limit, deadline
        self._open: dict[int, _Client] = {}

    def __len__(self) -> int:
        return len(self._open)

    def accept(self, listener: socket.socket) -> None:
        """Take every waiting connection."""
        while True:
            try:
                conn, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            conn.setblocking(False)
            if peer_uid(conn) not in (0, os.geteuid()):
                _answer(conn, False, "permission denied: root only")
            elif len(self._open) >= self.limit:
                _answer(conn, False, f"busy: {self.limit} control clients already connected")
            else:
                self._open[conn.fileno()] = _Client(conn, self.clock() + self.deadline)
                self.sel.register(conn, selectors.EVENT_READ, self)

    def readable(self, conn: socket.socket) -> None:
        """Read what ``conn`` sent; answer once its line is complete."""
        client = self._open.get(conn.fileno())
        if client is None:
            return
        try:
            chunk = conn.recv(MAX_REQUEST)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        client.data += chunk
        if chunk and b"\n" not in client.data and len(client.data) < MAX_REQUEST:
            return
        self._drop(client)
        try:
            req = parse(client.data.split(b"\n", 1)[0])
        except RequestError as exc:
            _answer(conn, False, str(exc))
            return
        if req.cmd != "watch":
            _answer(conn, *self.dispatch(req))
        elif self.watchers is None or self.watchers.full():
            _answer(conn, False, "busy: no more watchers at once")
        else:
            self.watchers.add(conn, reply(True, "watching: one JSON line per event follows"))

    def expire(self) -> None:
        """Close the connections whose deadline passed."""
        now = self.clock()
        for client in [c for c in self._open.values() if now >= c.deadline]:
            self._drop(client)
            _answer(client.conn, False, f"request not complete within {self.deadline:g} s")

    def next_deadline(self) -> float | None:
        return min((c.deadline for c in self._open.values()), default=None)

    def close(self) -> None:
        for client in list(self._open.values()):
            self._drop(client)
            client.conn.close()

    def _drop(self, client: _Client) -> None:
        self._open.pop(client.conn.fileno(), None)
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(client.conn)


def _answer(conn: socket.socket, ok: bool, message: str) -> None:
    """Send the reply without waiting (it fits any socket buffer) and close."""
    with conn, contextlib.suppress(OSError):
        conn.send(reply(ok, message), socket.MSG_DONTWAIT)


def _read_line(conn: socket.socket) -> bytes:
    data = b""
    while b"\n" not in data and len(data) < MAX_REQUEST:
        chunk = conn.recv(MAX_REQUEST)
        if not chunk:
            break
        data += chunk
    return data.split(b"\n", 1)[0]


def request(path: str, payload: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
    """Send ``payload`` to lvsd at ``path``; its answer (OSError when lvsd is not there)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(json.dumps(payload).encode("utf-8") + b"\n")
        answer = _read_line(sock)
    data: dict[str, Any] = json.loads(answer.decode("utf-8")) if answer else {}
    if not isinstance(data.get("ok"), bool):
        raise OSError(f"lvsd gave no valid answer: {answer!r}")
    return data


def watch(path: str, timeout: float = 10.0) -> Iterator[str]:
    """Watch lvsd at ``path``: each event line as it comes, until lvsd closes (OSError when
    lvsd is not there or refuses)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(b'{"cmd": "watch"}\n')
        stream = sock.makefile("rb")
        first = stream.readline(MAX_REQUEST)
        answer = json.loads(first.decode("utf-8")) if first else {}
        if answer.get("ok") is not True:
            raise OSError(answer.get("message") or f"lvsd gave no valid answer: {first!r}")
        sock.settimeout(None)  # events come when they happen
        for raw in stream:
            yield raw.decode("ascii", "replace").rstrip("\n")
