"""lvsd's event stream: control-socket clients that sent ``{"cmd": "watch"}`` get one JSON
line per change from then on (``piranha events`` prints them)::

    {"event": "health", "time": 1764771234.5, "virtual": "web", "server": "web1",
     "address": "10.0.0.11:80", "from": "UP", "to": "DOWN", "weight": null,
     "reason": "connect to 10.0.0.11:80: refused"}

Events: ``health`` (a state or weight change), ``drained`` (a drained entry removed),
``reload`` (a reload changed the configuration), ``nanny`` (a checker died and is restarted).
Lines are written without blocking lvsd's loop: each watcher has a backlog of at most
:data:`MAX_BACKLOG` bytes, and one that falls that far behind (or hangs up) is dropped. At
most :data:`MAX_WATCHERS` watch at once.
"""

from __future__ import annotations

import contextlib
import json
import selectors
import socket
from collections.abc import Iterable, Mapping
from typing import Any

MAX_WATCHERS = 8
MAX_BACKLOG = 256 * 1024


def line(event: Mapping[str, Any]) -> bytes:
    """One event as its line (ASCII: a reason can never break the framing)."""
    return json.dumps(event, sort_keys=True, ensure_ascii=True).encode("ascii") + b"\n"


class Watchers:
    """The connections that watch, registered in lvsd's selector with ``data=self``."""

    def __init__(self, sel: selectors.BaseSelector, limit: int = MAX_WATCHERS,
                 backlog: int = MAX_BACKLOG) -> None:
        self.sel, self.limit, self.backlog = sel, limit, backlog
        self._out: dict[socket.socket, bytearray] = {}

    def __len__(self) -> int:
        return len(self._out)

    def full(self) -> bool:
        return len(self._out) >= self.limit

    def add(self, conn: socket.socket, first: bytes) -> None:
        """Watch from now on; ``first`` (the answer to the request) goes out first."""
        self._out[conn] = bytearray()
        self.sel.register(conn, selectors.EVENT_READ, self)
        self._send(conn, first)

    def publish(self, events: Iterable[Mapping[str, Any]]) -> None:
        """Queue ``events`` to every watcher and write what the sockets take now."""
        data = b"".join(line(e) for e in events)
        if data:
            for conn in list(self._out):
                self._send(conn, data)

    def ready(self, conn: socket.socket, mask: int) -> None:
        """The selector's news about ``conn``: writable (send more) or readable (a watcher
        sends nothing, so it hung up, or is talking nonsense: either way it goes)."""
        if mask & selectors.EVENT_READ:
            self._drop(conn)
        elif conn in self._out:
            self._send(conn, b"")

    def close(self) -> None:
        for conn in list(self._out):
            self._drop(conn)

    def _send(self, conn: socket.socket, data: bytes) -> None:
        out = self._out.get(conn)
        if out is None:
            return
        out += data
        try:
            sent = conn.send(out, socket.MSG_DONTWAIT) if out else 0
        except BlockingIOError:
            sent = 0
        except OSError:
            self._drop(conn)
            return
        del out[:sent]
        if len(out) > self.backlog:  # it stopped reading: lvsd will not hold its news
            self._drop(conn)
            return
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if out else 0)
        with contextlib.suppress(KeyError, ValueError):
            self.sel.modify(conn, events, self)

    def _drop(self, conn: socket.socket) -> None:
        self._out.pop(conn, None)
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(conn)
        conn.close()
