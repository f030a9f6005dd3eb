"""Killing lvsd and starting it again keeps an established TCP connection through the VIP.

Three namespaces: client C (198.51.100.130) -- director D (VIP 198.51.100.180, NAT) -- real
server R (10.200.0.130, default route via D). A connection is established through the VIP;
lvsd is SIGKILLed (its nannies die with it) and started again: it adopts the table instead of
flushing it, and the same connection still carries data.
"""

from __future__ import annotations

import signal
import socket

import pytest

from lab.lvsd import Listener, Lvsd, close_tables, nat_triangle, table, wait_for, weights

VIP = "198.51.100.180:8080"
RS = "10.200.0.130:8080"
CONFIG = """primary = 198.51.100.129
network = nat
virtual web {
    active = 1
    address = 198.51.100.180 dc:1
    port = 8080
    timeout = 1
    reentry = 2
    server rs1 {
        address = 10.200.0.130
        active = 1
    }
}
"""


@pytest.fixture
def topology(netns_factory, tmp_path):
    d, c, r = nat_triangle(netns_factory)
    server = Listener(r, "10.200.0.130", 8080)
    lvsd = Lvsd(d, tmp_path, CONFIG)
    yield d, c, lvsd
    if lvsd.proc is not None:
        lvsd.stop(signal.SIGKILL)
    server.stop()
    close_tables()


def echo(sock: socket.socket, data: bytes) -> bytes:
    sock.sendall(data)
    got = b""
    while len(got) < len(data):
        chunk = sock.recv(4096)
        if not chunk:
            break
        got += chunk
    return got


def test_lvsd_restart_keeps_an_established_connection(topology):
    d, c, lvsd = topology
    lvsd.start()
    wait_for("the real server in", lambda: weights(d) == {f"{VIP} {RS}": 1}, 30)
    with c.entered():
        client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with client:
        client.settimeout(10)
        client.connect(("198.51.100.180", 8080))
        assert echo(client, b"hello\n") == b"hello\n"

        before = table(d)
        lvsd.stop(signal.SIGKILL)
        assert table(d) == before  # nannies died with lvsd and touched nothing
        lvsd.start()
        wait_for("the nanny's first report", lambda: lvsd.server("rs1")["reported"], 30)
        assert "adopted from the kernel at weight 1: UP" in lvsd.log()
        assert lvsd.ops() == []  # nothing flushed, nothing re-added
        assert table(d) == before
        assert echo(client, b"still there\n") == b"still there\n"
    assert lvsd.stop(signal.SIGTERM) == 0
