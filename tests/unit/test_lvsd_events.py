"""lvsd's event stream: a watcher that stops reading is dropped once its backlog is full, a
reading one gets every line, a hang-up is noticed, and the engine emits health, drain,
reload and nanny events."""

from __future__ import annotations

import json
import selectors
import socket

from piranha.health.types import ServerState
from piranha.lvsd.control import Request
from piranha.lvsd.events import Watchers, line
from testkit.lvsd import conf, dest, make_lab, server


def pair() -> tuple[socket.socket, socket.socket]:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    return ours, theirs


def test_a_watcher_that_stops_reading_is_dropped_and_a_reader_gets_everything():
    sel = selectors.DefaultSelector()
    watchers = Watchers(sel, backlog=64 * 1024)
    slow, slow_peer = pair()
    fast, fast_peer = pair()
    watchers.add(slow, b"hello\n")
    watchers.add(fast, b"hello\n")
    fast_peer.setblocking(False)
    got = b""
    event = {"event": "health", "reason": "x" * 500}
    for _ in range(400):  # ~200 KB: far more than the socket buffer and the backlog
        watchers.publish([event])
        for key, mask in sel.select(0):
            watchers.ready(key.fileobj, mask)
        while True:
            try:
                got += fast_peer.recv(1 << 16, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
    assert len(watchers) == 1  # the slow one is gone, lvsd kept nothing for it
    assert slow.fileno() == -1
    fast_peer.settimeout(5)
    while got.count(b"\n") < 401:
        for key, mask in sel.select(1):
            watchers.ready(key.fileobj, mask)
        got += fast_peer.recv(1 << 16)
    assert got == b"hello\n" + line(event) * 400
    fast_peer.close()
    for key, mask in sel.select(1):  # the hang-up reads as readable
        watchers.ready(key.fileobj, mask)
    assert len(watchers) == 0 and not sel.get_map()
    slow_peer.close()


def test_the_engine_tells_health_drain_and_reload_events():
    text = conf(server("rs1", 1) + server("rs2", 2))
    lab = make_lab(text)
    lab.engine.take_events()
    lab.report(dest(1), ServerState.UP, 1)
    lab.report(dest(1), ServerState.DOWN, None, reason="connect: refused")
    health = [e for e in lab.engine.take_events() if e["event"] == "health"]
    assert [(e["server"], e["to"]) for e in health] == [("rs1", "UP"), ("rs1", "DOWN")]
    assert health[-1]["reason"] == "connect: refused" and health[-1]["weight"] is None
    assert health[-1]["virtual"] == "web" and health[-1]["address"] == "10.200.0.1:80"
    lab.report(dest(2), ServerState.UP, 1)
    lab.engine.take_events()
    lab.control(Request("drain", "web", "rs2", 0))
    lab.engine.reconcile()
    assert any(e["event"] == "drained" and e["server"] == "rs2"
               for e in lab.engine.take_events())
    from testkit.lvsd import cluster
    lab.engine.reload(cluster(text.replace("10.200.0.2", "10.200.0.3")))
    assert [e["event"] for e in lab.engine.take_events()] == ["reload"]
    assert lab.engine.take_events() == []
    json.dumps(health)  # JSON-able as they go on the wire
