"""lvsd's small parts: op text, the forgiving rule, control protocol, state file, status text."""

from __future__ import annotations

import errno
import functools
import json
import os
import signal
import time
from ipaddress import ip_address

import pytest

from piranha.errors import KernelError
from piranha.ipvs.types import (
    AddDest,
    AddService,
    DelDest,
    DelService,
    Dest,
    DestKey,
    EditDest,
    Forward,
    Proto,
    Service,
    ServiceKey,
    SetTimeouts,
    SvcFlags,
    Timeouts,
)
from piranha.ipvsadm.rules import op_text
from piranha.lvsd import control, statefile, status
from piranha.lvsd.apply import already_done
from piranha.lvsd.book import Drain
from piranha.supervise.runner import exit_text
from piranha.supervise.zygote import ZygoteRunner
from testkit.lvsd import dest

KEY = ServiceKey.inet(Proto.TCP, ip_address("198.51.100.80"), 80)
KEY6 = ServiceKey.inet(Proto.UDP, ip_address("2001:db8::80"), 53)
MARK = ServiceKey.mark(7)
D = Dest(ip_address("10.0.0.1"), 8080, Forward.MASQ, 3)


@pytest.mark.parametrize(("op", "text"), [
    (AddService(Service(KEY, "wlc")), "ipvsadm -A -t 198.51.100.80:80 -s wlc"),
    (AddService(Service(KEY, "rr", SvcFlags.PERSISTENT, 300, 24)),
     "ipvsadm -A -t 198.51.100.80:80 -s rr -p 300 -M 255.255.255.0"),
    (AddService(Service(MARK, "wlc", SvcFlags.PERSISTENT, 60, 32)),
     "ipvsadm -A -f 7 -s wlc -p 60"),
    (DelService(KEY6), "ipvsadm -D -u [2001:db8::80]:53"),
    (AddDest(KEY, D), "ipvsadm -a -t 198.51.100.80:80 -r 10.0.0.1:8080 -m -w 3"),
    (EditDest(MARK, Dest(ip_address("10.0.0.1"), 0, Forward.ROUTE, 0)),
     "ipvsadm -e -f 7 -r 10.0.0.1:0 -g -w 0"),
    (DelDest(KEY, DestKey(ip_address("10.0.0.1"), 8080)),
     "ipvsadm -d -t 198.51.100.80:80 -r 10.0.0.1:8080"),
    (SetTimeouts(Timeouts(900, 120, 300)), "ipvsadm --set 900 120 300"),
])
def test_op_text(op, text) -> None:
    assert op_text(op) == text


def test_already_done_is_exactly_eexist_on_add_and_enoent_esrch_on_delete() -> None:
    def err(op, code):
        return KernelError(op, code, "x")
    add, dele = AddDest(KEY, D), DelDest(KEY, D.key)
    assert already_done(err(add, errno.EEXIST))
    assert already_done(err(AddService(Service(KEY)), errno.EEXIST))
    assert already_done(err(dele, errno.ENOENT)) and already_done(err(dele, errno.ESRCH))
    assert already_done(err(DelService(KEY), errno.ESRCH))
    assert not already_done(err(add, errno.EINVAL))
    assert not already_done(err(EditDest(KEY, D), errno.ENOENT))


def test_control_requests() -> None:
    assert control.parse(b'{"cmd": "drain", "virtual": "web", "server": "web1"}') == \
        control.Request("drain", "web", "web1", control.DRAIN_TIMEOUT)
    assert control.parse(b'{"cmd": "ping"}') == control.Request("ping")
    for bad, message in [(b"nope", "not a JSON request"), (b'{"cmd": "rm"}', "unknown command"),
                         (b'{"cmd": "enable", "virtual": "web"}', "needs 'virtual' and"),
                         (b'{"cmd": "drain", "virtual": "a", "server": "b", "timeout": -1}',
                          "timeout must be")]:
        with pytest.raises(control.RequestError, match=message):
            control.parse(bad)
    assert json.loads(control.reply(True, "fine")) == {"ok": True, "message": "fine"}


def serve_until(clients: control.Clients, sel, listener, done) -> None:
    """Run the loop's part of the control socket until ``done()``."""
    deadline = time.monotonic() + 10
    while not done():
        assert time.monotonic() < deadline, "control clients still open after 10 s"
        for key, _ in sel.select(0.05):
            if key.fileobj is listener:
                clients.accept(listener)
            elif key.data is clients:
                clients.readable(key.fileobj)
        clients.expire()


def test_control_socket_round_trip_and_mode(tmp_path) -> None:
    import selectors
    import threading

    path = str(tmp_path / "run" / "lvsd.sock")
    listener = control.bind(path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ)
    clients = control.Clients(sel, lambda req: (True, f"{req.cmd} {req.server}"), time.monotonic)
    answers: list[dict] = []
    thread = threading.Thread(target=lambda: answers.append(control.request(
        path, {"cmd": "enable", "virtual": "web", "server": "web2"})))
    thread.start()
    serve_until(clients, sel, listener, lambda: answers)
    thread.join(5)
    listener.close()
    assert answers == [{"ok": True, "message": "enable web2"}]


def test_a_slow_control_client_never_blocks_the_others(tmp_path) -> None:
    import selectors
    import socket

    path = str(tmp_path / "lvsd.sock")
    listener = control.bind(path)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ)
    now = [100.0]
    clients = control.Clients(sel, lambda req: (True, req.cmd), lambda: now[0], limit=3)
    slow = [socket.socket(socket.AF_UNIX) for _ in range(3)]
    for s in slow:
        s.connect(path)
        s.sendall(b'{"cmd": "pi')  # never finishes its line
    clients.accept(listener)
    assert len(clients) == 3
    extra = socket.socket(socket.AF_UNIX)
    extra.connect(path)
    clients.accept(listener)
    assert json.loads(extra.recv(4096)) == {"ok": False,
                                            "message": "busy: 3 control clients already connected"}
    serve_until(clients, sel, listener, lambda: True)  # one turn: nothing blocks
    now[0] += control.REQUEST_DEADLINE
    clients.expire()
    assert len(clients) == 0
    assert json.loads(slow[0].recv(4096))["message"] == "request not complete within 2 s"
    fast = socket.socket(socket.AF_UNIX)
    fast.connect(path)
    fast.sendall(b'{"cmd": "ping"}\n')
    clients.accept(listener)
    serve_until(clients, sel, listener, lambda: len(clients) == 0)
    assert json.loads(fast.recv(4096)) == {"ok": True, "message": "ping"}
    for s in (*slow, extra, fast, listener):
        s.close()


def test_state_file_round_trip(tmp_path) -> None:
    saved = statefile.SavedState({KEY, KEY6, MARK}, {dest(11): Drain(1.0, 301.0, True)})
    path = str(tmp_path / "state.json")
    statefile.save(path, saved)
    assert statefile.load(path) == saved
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert statefile.load(str(tmp_path / "missing.json")) == statefile.SavedState()
    (tmp_path / "bad.json").write_text('{"version": 9}')
    with pytest.raises(ValueError, match="unsupported state file version 9"):
        statefile.load(str(tmp_path / "bad.json"))


def test_status_render() -> None:
    now = time.time()
    snap = {"version": 1, "pid": 42, "config": "lvs.cf", "started": now - 100, "written": now,
            "ops_applied": 3, "virtuals": [{
                "name": "web", "service": "-t 198.51.100.80:80", "scheduler": "wlc",
                "persistent": 0, "sorry_server": {"address": "10.0.0.99", "in_table": False},
                "servers": [
                    {"name": "web1", "address": "10.0.0.1:80", "state": "UP", "weight": 3,
                     "since": now - 30, "reason": "connected", "conns": 0, "drain": None,
                     "nanny": {"pid": 7, "state": "running", "restarts": 0}},
                    {"name": "web2", "address": "10.0.0.2:80", "state": "UP", "weight": 0,
                     "since": now - 30, "reason": "", "conns": 4,
                     "drain": {"state": "draining", "started": now - 5, "deadline": now + 55},
                     "nanny": {"pid": 8, "state": "running", "restarts": 2}}]}]}
    text = status.render(snap, now)
    assert text.splitlines()[0] == ("lvsd pid 42, config lvs.cf, snapshot 0s old, 3 kernel "
                                    "operations since start")
    assert "virtual web: -t 198.51.100.80:80 scheduler wlc" in text
    assert "web1         10.0.0.1:80            UP    weight 3     since " in text
    assert 'DRAINING (4 connections, deadline in 55s) nanny running (restarts 2)' in text
    assert "sorry server 10.0.0.99: not in the table" in text


def test_zygote_runner_spawns_reaps_and_kills() -> None:
    runner = ZygoteRunner()
    try:
        pid = runner.spawn(functools.partial(int, "3"))
        sleeper = runner.spawn(functools.partial(time.sleep, 30))
        exits: list[tuple[int, int]] = []
        deadline = time.monotonic() + 10
        while len(exits) < 1 and time.monotonic() < deadline:
            exits += runner.reap()
            time.sleep(0.01)
        assert exits == [(pid, 3 << 8)] and exit_text(exits[0][1]) == "exited with status 3"
        runner.kill(sleeper, signal.SIGTERM)
        while len(exits) < 2 and time.monotonic() < deadline:
            exits += runner.reap()
            time.sleep(0.01)
        assert exits[1][0] == sleeper and exit_text(exits[1][1]) == "killed by SIGTERM"
    finally:
        runner.close()


def test_op_text_is_the_save_line_of_ipvsadm() -> None:
    from piranha.ipvs.types import Table
    from piranha.ipvsadm.format import Fmt, Namer, render_services
    from testkit.lookup import StaticLookup

    v6 = ServiceKey.inet(Proto.TCP, ip_address("2001:db8::80"), 443)
    services = (Service(KEY, "rr", SvcFlags.PERSISTENT, 300, 24),
                Service(v6, "sh", SvcFlags.PERSISTENT | SvcFlags.SCHED1, 60, 64))
    dests = {KEY: (D,), v6: (Dest(ip_address("2001:db8::11"), 443, Forward.TUNNEL, 2),)}
    saved = render_services(list(services), Table(services, dests), Fmt.RULE | Fmt.NUMERIC,
                            Namer(True, StaticLookup({}, {})))
    ours = [op_text(AddService(s))[len("ipvsadm "):] for s in services]
    ours += [op_text(AddDest(k, d))[len("ipvsadm "):] for k, ds in dests.items() for d in ds]
    assert sorted(saved.splitlines()) == sorted(ours)
    assert "-M 255.255.255.0" in ours[0] and "-M 64 -b sh-fallback" in ours[1]


@pytest.mark.parametrize("bomb", ["[" * 5000, '{"a":' * 5000, "[" * 17 + "]" * 17])
def test_deep_json_is_refused_before_parsing(bomb: str) -> None:
    from piranha.health.report import ReportError, decode

    with pytest.raises(control.RequestError, match="nested deeper than 16"):
        control.parse(bomb[:control.MAX_REQUEST].encode())
    with pytest.raises(ReportError, match="nested deeper than 16"):
        decode(bomb[:4000].encode())


def test_brackets_inside_strings_do_not_count_as_depth() -> None:
    from piranha.text import json_depth

    assert json_depth('{"cmd": "ping", "x": "[[[[[[[[[[[[[[[[[[[[\\"[["}') == 1
    assert control.parse(b'{"cmd": "ping", "pad": "' + b"[" * 100 + b'"}').cmd == "ping"


@pytest.mark.parametrize(("line", "why"), [
    (b'{"cmd": "drain", "virtual": "web", "server": "web1", "timeout": Infinity}',
     "Infinity is not a number"),
    (b'{"cmd": "drain", "virtual": "web", "server": "web1", "timeout": NaN}', "NaN is not"),
    (b'{"cmd": "ping", "cmd": "drain", "virtual": "web", "server": "web1"}',
     "duplicate key 'cmd'"),
])
def test_control_requests_are_strict_json(line: bytes, why: str) -> None:
    with pytest.raises(control.RequestError, match=why):
        control.parse(line)
