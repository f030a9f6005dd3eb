"""Check counts: what a nanny counts (durations, lateness, failures by reason, last success),
their wire form, lvsd keeping them across nanny restarts, and the metrics they become."""

from __future__ import annotations

import socket
import threading
from ipaddress import ip_address

import pytest

from piranha.health.expect import Prefix
from piranha.health.nannyloop import NannyLoop
from piranha.health.probe import SocketProbe
from piranha.health.report import ReportError, StatsReport, decode_message, encode_stats
from piranha.health.stats import BUCKETS, REASONS, CheckStats, failure_reason
from piranha.health.types import ProbeResult, ServerState, Target
from piranha.lvsd.metrics import endpoint
from piranha.model import ServiceProtocol
from testkit.lvsd import conf, dest, make_lab, server
from tests.unit.test_nanny_loop import Script, spec


def listener(reply: bytes | None) -> tuple[socket.socket, int]:
    """A loopback TCP server answering ``reply`` (None: accepts and says nothing)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)

    def serve() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            if reply is not None:
                conn.sendall(reply)
                conn.close()
            else:
                threading.Timer(3, conn.close).start()
    threading.Thread(target=serve, daemon=True).start()
    return sock, sock.getsockname()[1]


def test_real_probe_failures_are_classed_by_reason():
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    http = SocketProbe(ServiceProtocol.TCP, b"GET / HTTP/1.0\r\n\r\n", Prefix(b"HTTP"))
    here = ip_address("127.0.0.1")
    refused = http.check(Target(here, port), 1.0)
    wrong, wrong_port = listener(b"SSH-2.0-nope\r\n")
    silent, silent_port = listener(None)
    try:
        unexpected = http.check(Target(here, wrong_port), 1.0)
        timed_out = http.check(Target(here, silent_port), 0.2)
    finally:
        wrong.close()
        silent.close()
    assert not refused.ok and failure_reason(refused.message) == "refused"
    assert not unexpected.ok and failure_reason(unexpected.message) == "unexpected_reply"
    assert not timed_out.ok and failure_reason(timed_out.message) == "timeout"
    assert failure_reason("send_program exited 1") == "program"


def test_counts_histograms_and_sums():
    st = CheckStats().record(ProbeResult(True, "ok", 0.003), 0.0, 10.0)
    st = st.record(ProbeResult(False, "CONNECT to x timed out", 2.0), 0.7, 12.0)
    assert st.checks == 2 and st.last_ok == 10.0
    assert st.failures[REASONS.index("timeout")] == 1 and sum(st.failures) == 1
    assert st.duration[BUCKETS.index(0.005)] == 1 and st.duration[BUCKETS.index(5.0)] == 1
    assert st.duration_sum == pytest.approx(2.003) and st.lateness_sum == pytest.approx(0.7)
    assert st.lateness[0] == 1 and st.lateness[BUCKETS.index(1.0)] == 1
    both = st.plus(CheckStats().record(ProbeResult(True, "ok", 20.0), 0.0, 30.0))
    assert both.checks == 3 and both.duration[-1] == 1 and both.last_ok == 30.0


def test_the_nanny_sends_counts_with_its_first_check_and_then_every_ten_seconds():
    clock, sent, stats = [0.0], [], []
    spec_ = spec()
    loop = NannyLoop(spec_, spec_.tracker(None), Script(clock, [True] * 30), sent.append,
                     lambda: clock[0], send_stats=stats.append)
    for _ in range(25):
        loop.step()
        clock[0] += 1.0
    assert [round(s.at) for s in stats] == [0, 10, 20]
    assert stats[-1].stats.checks == 21 and stats[-1].dest == spec_.dest


def test_the_wire_form_round_trips_and_refuses_what_it_should():
    report = StatsReport(dest(1), CheckStats().record(ProbeResult(False, "refused", 0.1),
                                                      0.25, 5.0), 7.5)
    line = encode_stats(report)
    assert decode_message(line) == report
    for bad, field in ((line.replace('"checks":1', '"checks":-1'), "checks"),
                       (line.replace('"failures":[1,0,0,0,0]', '"failures":[1,0]'), "failures"),
                       (line.replace('"duration_sum":0.1', '"duration_sum":-1'), "duration_sum"),
                       (line.replace('"kind":"stats"', '"kind":"stats","x":1'), "unknown x")):
        assert bad != line
        with pytest.raises(ReportError, match=field):
            decode_message(bad)


def test_lvsd_keeps_counts_across_a_nanny_restart_and_exports_them():
    lab = make_lab(conf(server("rs1", 1)))
    lab.report(dest(1), ServerState.UP, 1)
    first = CheckStats().record(ProbeResult(True, "ok", 0.01), 0.0, 100.0)
    assert lab.engine.on_stats(lab.pid(dest(1)), StatsReport(dest(1), first, 100.0))
    assert not lab.engine.on_stats(4242, StatsReport(dest(1), first, 100.0))  # not its nanny
    old = lab.pid(dest(1))
    assert not lab.engine.on_exit(old, 9)  # killed: restarted after its backoff
    lab.clock.now += 5.0
    lab.engine.tick()
    assert lab.pid(dest(1)) != old
    again = CheckStats().record(ProbeResult(False, "CONNECT to x failed: refused", 0.02),
                                0.5, 200.0)
    assert lab.engine.on_stats(lab.pid(dest(1)), StatsReport(dest(1), again, 200.0))
    total = lab.engine.check_totals[dest(1)]
    assert total.checks == 2 and total.last_ok == 100.0
    exporter = endpoint()
    exporter.publish(lab.engine)
    text = exporter.text().decode()
    assert 'piranha_check_duration_seconds_count{virtual_server="web",server="rs1",' in text
    assert ',reason="refused"} 1' in text
    assert 'piranha_virtual_check_duration_seconds_bucket{virtual_server="web",le="+Inf"} 2' \
        in text
    import shutil
    import subprocess
    promtool = shutil.which("promtool")
    assert promtool
    lint = subprocess.run([promtool, "check", "metrics"], input=text, text=True,
                          capture_output=True, timeout=60)
    assert lint.returncode == 0, lint.stdout + lint.stderr
