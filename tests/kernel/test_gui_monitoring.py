"""piranha-gui's CONTROL/MONITORING page shows the real IPVS table: health, weight, connections.

Three namespaces, as in test_lvsd_restart: client C -- director D (VIP 198.51.100.180, NAT)
-- real server R. In D run lvsd (netlink IPVS) and piranha-gui on 127.0.0.1:3636 (its default
port). The test logs in over plain HTTP (the CSRF token from the login form), makes a few
connections from C through the VIP, and reads the monitoring page until it shows the service,
the real server UP at its weight, and the connections the kernel counted.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlencode

import pytest

from lab.lvsd import ROOT, Listener, Lvsd, close_tables, nat_triangle, wait_for
from piranha.gui import passwd

PASSWORD = "kernel tier password"
PORT = 3636
CONNECTIONS = 5
CONFIG = """primary = 198.51.100.129
network = nat
virtual web {
    active = 1
    address = 198.51.100.180 dc:1
    port = 8080
    timeout = 1
    reentry = 1
    server rs1 {
        address = 10.200.0.130
        active = 1
        weight = 3
    }
}
"""


@pytest.fixture
def topology(netns_factory, tmp_path):
    d, c, r = nat_triangle(netns_factory)
    server = Listener(r, "10.200.0.130", 8080)
    lvsd = Lvsd(d, tmp_path, CONFIG)
    gui: subprocess.Popen[bytes] | None = None
    try:
        lvsd.start()
        gui = start_gui(d, tmp_path, lvsd)
        yield d, c, lvsd
    finally:
        if gui is not None:
            gui.send_signal(signal.SIGTERM)
            assert gui.wait(60) == 0, (tmp_path / "gui.log").read_text()
        if lvsd.proc is not None:
            lvsd.stop(signal.SIGTERM)
        server.stop()
        close_tables()


def start_gui(ns, tmp: Path, lvsd: Lvsd) -> subprocess.Popen[bytes]:
    """piranha-gui inside ``ns`` on 127.0.0.1:3636, watching ``lvsd``."""
    pw = tmp / "piranha.passwd"
    passwd.write(str(pw), passwd.make_hash(PASSWORD))
    argv = ["ip", "netns", "exec", ns.name, sys.executable, "-m", "piranha.gui.cli", "-n",
            "-c", str(lvsd.cf), "--passwd-file", str(pw), "--pidfile", str(tmp / "gui.pid"),
            "--lvsd-pidfile", str(lvsd.pidfile), "--lvsd-status", str(lvsd.status),
            "--pulse-pidfile", str(tmp / "pulse.pid"), "--pulse-status",
            str(tmp / "pulse.status.json")]
    with open(tmp / "gui.log", "wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"piranha-gui exited: {(tmp / 'gui.log').read_text()}")
        with contextlib.suppress(OSError):
            request(ns, "GET", "/login")
            return True
        return False

    wait_for("piranha-gui to answer", up, 90, step=0.2)
    return proc


def request(ns, method: str, path: str, form: dict[str, str] | None = None,
            cookies: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    """One HTTP request to the GUI in ``ns``: status, headers, body."""
    headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in (cookies or {}).items())}
    body = None
    if form is not None:
        body = urlencode(form)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
    with ns.entered():
        conn.connect()  # the socket belongs to the namespace it was made in
    try:
        conn.request(method, path, body, headers)
        reply = conn.getresponse()
        got = {k.lower(): v for k, v in reply.getheaders()}
        got["set-cookie"] = "\n".join(v for k, v in reply.getheaders()
                                      if k.lower() == "set-cookie")
        return reply.status, got, reply.read().decode()
    finally:
        conn.close()


def cookies_of(headers: dict[str, str]) -> dict[str, str]:
    return dict(line.split(";")[0].split("=", 1) for line in headers["set-cookie"].splitlines())


def log_in(ns) -> dict[str, str]:
    """The session cookie, after logging in like a browser does."""
    status, headers, body = request(ns, "GET", "/control")
    assert (status, headers["location"]) == (302, "/login")
    status, headers, body = request(ns, "GET", "/login")
    token = re.search(r'name="csrf" value="([^"]+)"', body)
    assert status == 200 and token
    jar = cookies_of(headers)
    status, headers, _ = request(ns, "POST", "/login", {"csrf": token.group(1),
                                                        "password": PASSWORD}, jar)
    assert (status, headers["location"]) == (303, "/control")
    return {"piranha_session": cookies_of(headers)["piranha_session"]}


ROW = re.compile(r'<tr class="rs" data-name="rs1" data-address="10.200.0.130:8080" '
                 r'data-state="(\w*)" data-weight="(\w*)" data-conns="(\d*)">')


def test_monitoring_page_shows_the_kernel_table(topology):
    d, c, lvsd = topology
    wait_for("rs1 UP in lvsd's snapshot", lambda: lvsd.server("rs1")["state"] == "UP", 30)
    session = log_in(d)
    for n in range(CONNECTIONS):
        with c.entered():
            client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        with client:
            client.settimeout(10)
            client.connect(("198.51.100.180", 8080))
            client.sendall(b"ping %d\n" % n)
            assert client.recv(64) == b"ping %d\n" % n
    page = ""

    def counted() -> bool:
        nonlocal page
        status, _, page = request(d, "GET", "/control?refresh=0", cookies=session)
        assert status == 200
        row = ROW.search(page)
        return row is not None and row.groups() == ("UP", "3", str(CONNECTIONS))

    wait_for(f"{CONNECTIONS} connections on the monitoring page", counted, 30, step=0.5)
    assert 'data-service="TCP 198.51.100.180:8080" data-name="web"' in page
    assert "lvsd running" in page and "pulse not running" in page
    assert "The live IPVS table is not available" not in page
