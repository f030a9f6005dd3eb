"""The nanny -> lvsd report codec: exact wire text, round trips, and every rejection."""

from __future__ import annotations

import json
from ipaddress import ip_address

import pytest

from piranha.health.report import (
    MAX_LINE,
    DestId,
    HealthReport,
    ReportError,
    decode,
    encode,
)
from piranha.health.tracker import Transition
from piranha.health.types import ServerState
from piranha.model import InterfaceAddress, RealServer, ServiceProtocol, VirtualServer

WEB = DestId(ip_address("10.0.0.80"), 80, ServiceProtocol.TCP, ip_address("10.0.0.1"), 8080)
DNS6 = DestId(ip_address("2001:db8::53"), 53, ServiceProtocol.UDP, ip_address("2001:db8::1"), 53)
MARKED = DestId(None, 0, ServiceProtocol.TCP, ip_address("10.0.0.2"), 21, fwmark=7)
GOLDEN = ('{"at":12.5,"dest":{"fwmark":0,"proto":"tcp","rip":"10.0.0.1","rport":8080,'
          '"vip":"10.0.0.80","vport":80},"reason":"READ from 10.0.0.1:8080 got expected '
          'reply \'HTTP\'","state":"UP","v":1,"weight":3}\n')


def test_golden_line() -> None:
    report = HealthReport(WEB, ServerState.UP, 3,
                          "READ from 10.0.0.1:8080 got expected reply 'HTTP'", 12.5)
    assert encode(report) == GOLDEN
    assert decode(GOLDEN) == report


@pytest.mark.parametrize("report", [
    HealthReport(WEB, ServerState.UP, 3, "ok", 0.0),
    HealthReport(WEB, ServerState.DOWN, None, "CONNECT to 10.0.0.1:8080 timed out", 1e9),
    HealthReport(WEB, ServerState.DOWN, 0, "quiesced", 7),
    HealthReport(WEB, ServerState.UP, 0, "configured weight 0", 7),
    HealthReport(DNS6, ServerState.UP, 65535, "load 0.00: weight 60000 -> 65535", -3.25),
    HealthReport(MARKED, ServerState.UP, 1, "line one\nline two \u00e9\u2603 \"quoted\"", 2),
])
def test_round_trip(report: HealthReport) -> None:
    line = encode(report)
    assert line.endswith("\n") and line.count("\n") == 1 and line.isascii()
    assert decode(line) == report
    assert decode(line.encode("ascii")) == report
    assert decode(line.rstrip("\n")) == report


def test_long_reason_is_cut_to_fit_one_atomic_pipe_write() -> None:
    report = HealthReport(WEB, ServerState.DOWN, None, "\u2603" * 5000, 1.0)
    line = encode(report)
    assert len(line) <= MAX_LINE
    back = decode(line)
    assert back.reason.endswith("...") and back.reason.startswith("\u2603" * 100)
    assert back == HealthReport(WEB, ServerState.DOWN, None, back.reason, 1.0)


def test_from_transition() -> None:
    t = Transition(ServerState.UP, ServerState.DOWN, 0, "READ to 10.0.0.1:8080 timed out", 42.0)
    assert HealthReport.from_transition(WEB, t) == HealthReport(
        WEB, ServerState.DOWN, 0, "READ to 10.0.0.1:8080 timed out", 42.0)


def test_dest_for_server() -> None:
    rs = RealServer("web1", ip_address("10.0.0.1"), active=True, port=8080)
    vs = VirtualServer("www", InterfaceAddress(ip_address("10.0.0.80"), "eth0:1"), servers=(rs,))
    assert DestId.for_server(vs, rs) == WEB
    with pytest.raises(ValueError, match="^real server web2 has no address$"):
        DestId.for_server(vs, RealServer("web2"))


@pytest.mark.parametrize(("dest", "text"), [
    (WEB, "tcp 10.0.0.80:80 -> 10.0.0.1:8080"),
    (DNS6, "udp [2001:db8::53]:53 -> [2001:db8::1]:53"),
    (MARKED, "fwmark 7 -> 10.0.0.2:21"),
])
def test_dest_str(dest: DestId, text: str) -> None:
    assert str(dest) == text


def _line(**changes: object) -> str:
    """GOLDEN with some fields replaced (dest.X for dest fields; a value of ... deletes)."""
    data = json.loads(GOLDEN)
    for key, value in changes.items():
        where, name = (data["dest"], key[5:]) if key.startswith("dest_") else (data, key)
        if value is ...:
            del where[name]
        else:
            where[name] = value
    return json.dumps(data)


MALFORMED: list[tuple[str | bytes, str]] = [
    ("", "not JSON: Expecting value"),
    ("hello", "not JSON: Expecting value"),
    ('{"v":1', "not JSON: Expecting ',' delimiter"),
    ("[1, 2]", "expected a JSON object, found list"),
    (GOLDEN + GOLDEN, "more than one line"),
    (GOLDEN.replace("\n", "\r\n"), "more than one line"),
    ("x" * (MAX_LINE + 1), f"line is {MAX_LINE + 1} bytes long, the limit is {MAX_LINE}"),
    (b'{"v":1,"reason":"\xc3\xa9"}', "line is not ASCII"),
    ('{"v":1,"v":1}', "not JSON: duplicate key 'v'"),
    (_line(at="NaN").replace('"NaN"', "NaN"), "not JSON: NaN is not a number"),
    (_line(v=2), "v: unsupported version 2 (expected 1)"),
    (_line(v=True), "v: unsupported version True (expected 1)"),
    (_line(v=1.0), "v: unsupported version 1.0 (expected 1)"),
    (_line(state=...), "report: missing state"),
    (_line(extra=1), "report: unknown extra"),
    (_line(dest=[]), "dest: expected an object, found []"),
    (_line(dest_rport=...), "dest: missing rport"),
    (_line(dest_port=80), "dest: unknown port"),
    (_line(dest_rport=70000), "dest.rport: expected an integer 0..65535, found 70000"),
    (_line(dest_vport="80"), "dest.vport: expected an integer 0..65535, found '80'"),
    (_line(dest_vport=True), "dest.vport: expected an integer 0..65535, found True"),
    (_line(dest_fwmark=-1), "dest.fwmark: expected an integer 0..4294967295, found -1"),
    (_line(dest_rip="10.0.0.256"), "dest.rip: expected an IP address, found '10.0.0.256'"),
    (_line(dest_rip=None), "dest.rip: expected an IP address, found None"),
    (_line(dest_vip=None), "dest.vip: expected an IP address, found None"),  # needs fwmark
    (_line(dest_proto="sctp"), "dest.proto: expected 'tcp' or 'udp', found 'sctp'"),
    (_line(state="up"), "state: expected 'UP' or 'DOWN', found 'up'"),
    (_line(weight=None), "weight: an UP server needs a weight, found null"),
    (_line(weight=-1), "weight: expected an integer 0..65535, found -1"),
    (_line(weight=2.5), "weight: expected an integer 0..65535, found 2.5"),
    (_line(state="DOWN", weight=5),
     "weight: a DOWN server is absent (null) or quiesced (0), found 5"),
    (_line(reason=None), "reason: expected a string, found None"),
    (_line(at="12"), "at: expected a finite number of seconds, found '12'"),
    (_line(at=False), "at: expected a finite number of seconds, found False"),
    (_line(at=1e400).replace("Infinity", "1e400"),
     "at: expected a finite number of seconds, found inf"),
]


@pytest.mark.parametrize(("line", "message"), [pytest.param(*c, id=c[1]) for c in MALFORMED])
def test_malformed_lines_are_rejected(line: str | bytes, message: str) -> None:
    with pytest.raises(ReportError) as caught:
        decode(line)
    assert caught.value.message.startswith(message), caught.value.message
    assert str(caught.value) == f"bad health report: {caught.value.message}"
    assert caught.value.line == line


def test_fwmark_report_may_have_no_vip() -> None:
    assert decode(_line(dest_vip=None, dest_fwmark=7)).dest.vip is None


def test_encode_rejects_a_non_finite_time() -> None:
    with pytest.raises(ValueError):
        encode(HealthReport(WEB, ServerState.UP, 1, "", float("nan")))
