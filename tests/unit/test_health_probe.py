"""The pure parts of the probes: escapes, reply matchers, send_program argv and verdict."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from piranha.health.expect import (
    AnyReply,
    Decision,
    Pattern,
    Prefix,
    expectation,
    show,
    unescape,
)
from piranha.health.probe import (
    ProgramProbe,
    SocketProbe,
    probe_for,
    program_argv,
    program_verdict,
    uses_default_http,
)
from piranha.health.types import Target
from piranha.model import ServiceProtocol, VirtualServer


@pytest.mark.parametrize(("text", "result"), [
    ("GET / HTTP/1.0\\r\\n\\r\\n", "GET / HTTP/1.0\r\n\r\n"),
    ("a\\tb\\'c\\\"d", "a\tb'c\"d"),
    ("a\\\\n", "a\\n"),          # \\ first, then a plain n: left to right, no overlap
    ("a\\\\\\n", "a\\\n"),
    ("\\d+\\.\\w", "\\d+\\.\\w"),  # unknown escapes stay (Piranha looped for ever here)
    ("end\\", "end\\"),
    ("\\", "\\"),
    ("", ""),
])
def test_unescape(text: str, result: str) -> None:
    assert unescape(text) == result


@pytest.mark.parametrize(("data", "text"), [
    (b"HTTP", "'HTTP'"),
    (b"a\r\n\x00\xff", "'a\\r\\n\\x00\\xff'"),
    (b"it's", '"it\'s"'),
    (b"x" * 49, f"'{'x' * 48}'... (49 bytes)"),
])
def test_show(data: bytes, text: str) -> None:
    assert show(data) == text


@pytest.mark.parametrize(("reply", "final", "decision"), [
    (b"", False, None),
    (b"HT", False, None),
    (b"HT", True, Decision(False, "was too short: got 2 of 4 bytes 'HT' (expected 'HTTP')")),
    (b"", True, Decision(False, "was too short: got 0 of 4 bytes '' (expected 'HTTP')")),
    (b"HX", False, Decision(False, "got unexpected reply 'HX' (expected 'HTTP')")),
    (b"HTTP", False, Decision(True, "got expected reply 'HTTP'")),
    (b"HTTP/1.0 200", True, Decision(True, "got expected reply 'HTTP'")),
    (b"http/1.0", False, Decision(False, "got unexpected reply 'http/1.0' (expected 'HTTP')")),
])
def test_prefix(reply: bytes, final: bool, decision: Decision | None) -> None:
    assert Prefix(b"HTTP").decide(reply, final) == decision


def test_empty_prefix_passes_at_once() -> None:
    assert Prefix(b"").decide(b"", False) == Decision(True, "got expected reply ''")


@pytest.mark.parametrize(("reply", "final", "ok"), [
    (b"", False, None), (b"", True, False), (b"\x00", False, True)])
def test_any_reply(reply: bytes, final: bool, ok: bool | None) -> None:
    decision = AnyReply().decide(reply, final)
    assert (decision.ok if decision else None) == ok


@pytest.mark.parametrize(("regex", "reply", "final", "ok"), [
    (rb"200 OK", b"HTTP/1.1 200 OK", False, True),    # anywhere in the reply
    (rb"^HTTP", b"xHTTP", False, None),               # a non-match is only final at the
    (rb"^HTTP", b"xHTTP", True, False),               # end of the reply
    (rb"a.b", b"a\nb", False, True),                  # POSIX: '.' matches a newline
    (rb"^OK$", b"OK\r\n", True, False),               # '$' is the end of the reply,
    (rb"^OK$", b"OK\n", True, True),                  # or (Python) before a final newline
    (rb"(?i)ok", b"OK", False, True),
    (rb"^HTTP/1\.[[:digit:]] 2[[:digit:]]{2}", b"HTTP/1.1 204", False, True),  # POSIX class
    (rb"^[[:alpha:]]+[^[:space:]]$", b"OK!", True, True),
    (rb"[[:punct:]]", b"ab c", True, False),
])
def test_pattern(regex: bytes, reply: bytes, final: bool, ok: bool | None) -> None:
    decision = Pattern.compile(regex).decide(reply, final)
    assert (decision.ok if decision else None) == ok


def test_bad_pattern_always_fails() -> None:
    pattern = Pattern.compile(b"(oops")
    assert pattern.regex is None
    decision = pattern.decide(b"oops", False)
    assert decision is not None and not decision.ok
    assert decision.detail.startswith("cannot be checked: invalid expect regex '(oops' (")


@pytest.mark.parametrize(("expect", "regex", "udp", "matcher"), [
    (None, False, False, None),
    (None, False, True, AnyReply()),
    ("*", False, False, AnyReply()),
    ("*", False, True, AnyReply()),
    ("HTTP", False, False, Prefix(b"HTTP")),
    ("\u00e9", False, False, Prefix(b"\xc3\xa9")),
])
def test_expectation(expect: str | None, regex: bool, udp: bool, matcher: object) -> None:
    assert expectation(expect, regex=regex, udp=udp) == matcher


def test_expectation_regex_mode_has_no_wildcard() -> None:
    # like nanny: '*' is the wildcard only in plain mode; as a regex it does not compile
    matcher = expectation("*", regex=True, udp=False)
    assert isinstance(matcher, Pattern) and matcher.regex is None


V4 = Target(ip_address("10.0.0.1"), 8080)
V6 = Target(ip_address("2001:db8::1"), 53)


@pytest.mark.parametrize(("command", "target", "argv"), [
    ("/usr/bin/check %h %p", V4, ["/usr/bin/check", "10.0.0.1", "8080"]),
    ("/usr/bin/check  -H  %h\t%p", V4, ["/usr/bin/check", "-H", "%h\t%p"]),  # tab: one token
    ("/c host=%h %p%p %h", V6, ["/c", "host=%h", "%p%p", "2001:db8::1"]),
    ("  ", V4, []),
])
def test_program_argv(command: str, target: Target, argv: list[str]) -> None:
    assert program_argv(command, target) == argv


@pytest.mark.parametrize(("status", "output", "expect", "ok", "message"), [
    (0, b"OK\n", b"OK", True, "send_program /c printed expected 'OK'"),
    (0, b"OK", b"OK", True, "send_program /c printed expected 'OK'"),
    (0, b"OK\n\n", b"OK", False, "send_program /c printed 'OK\\n' (expected 'OK')"),
    (0, b"", b"", True, "send_program /c printed expected ''"),
    (0, b"\n", b"", True, "send_program /c printed expected ''"),
    (0, b"down\n", b"OK", False, "send_program /c printed 'down' (expected 'OK')"),
    (1, b"OK\n", b"OK", False, "send_program /c exited with status 1"),   # 0.8.6: healthy
    (-9, b"", b"OK", False, "send_program /c was killed by signal SIGKILL"),
    (-200, b"", b"OK", False, "send_program /c was killed by signal 200"),
    (0, b"anything", None, True, "send_program /c exited with status 0"),
    (2, b"", None, False, "send_program /c exited with status 2"),
])
def test_program_verdict(status: int, output: bytes, expect: bytes | None, ok: bool,
                         message: str) -> None:
    assert program_verdict("/c", status, output, expect) == (ok, message)


def test_empty_program_fails() -> None:
    result = ProgramProbe("   ").check(V4, 1.0)
    assert (result.ok, result.message) == (False, "send_program is empty")


# --- probe_for: which probe nanny runs for a virtual server ---------------------------------

def clock() -> float:
    return 0.0


@pytest.mark.parametrize(("vs", "probe"), [
    (VirtualServer("www"),
     SocketProbe(ServiceProtocol.TCP, b"GET / HTTP/1.0\r\n\r\n", Prefix(b"HTTP"), clock)),
    (VirtualServer("www", port=8080), SocketProbe(ServiceProtocol.TCP, None, None, clock)),
    (VirtualServer("www", send="HEAD / HTTP/1.0\\r\\n\\r\\n"),          # port 80, send set
     SocketProbe(ServiceProtocol.TCP, b"HEAD / HTTP/1.0\r\n\r\n", None, clock)),
    (VirtualServer("www", expect="SSH-"),
     SocketProbe(ServiceProtocol.TCP, None, Prefix(b"SSH-"), clock)),
    (VirtualServer("dns", port=53, protocol=ServiceProtocol.UDP, send="q"),
     SocketProbe(ServiceProtocol.UDP, b"q", AnyReply(), clock)),
    (VirtualServer("rx", port=25, expect="^220 ", use_regex=True),
     SocketProbe(ServiceProtocol.TCP, None, Pattern.compile(b"^220 "), clock)),
    (VirtualServer("prog", send="ignored", expect="OK\\n", send_program="/bin/check %h"),
     ProgramProbe("/bin/check %h", b"OK\n", clock)),
    (VirtualServer("prog", send_program="/bin/check"), ProgramProbe("/bin/check", None, clock)),
])
def test_probe_for(vs: VirtualServer, probe: object) -> None:
    assert probe_for(vs, clock=clock) == probe


def test_probe_for_suppress_keeps_backslashes() -> None:
    vs = VirtualServer("raw", port=7, send="a\\n", expect="b\\t")
    assert probe_for(vs, translate=False, clock=clock) == SocketProbe(
        ServiceProtocol.TCP, b"a\\n", Prefix(b"b\\t"), clock)


def test_default_http_uses_the_virtual_port() -> None:
    assert uses_default_http(VirtualServer("www", port=80))
    assert not uses_default_http(VirtualServer("www", port=443))
    assert not uses_default_http(VirtualServer("www", send_program="/bin/true"))


def test_socket_probe_with_no_time_left_times_out_without_io() -> None:
    ticks = iter([0.0, 5.0, 5.0])   # start, deadline check, end
    probe = SocketProbe(clock=lambda: next(ticks))
    result = probe.check(V4, 1.0)
    assert (result.ok, result.message, result.duration) == (
        False, "CONNECT to 10.0.0.1:8080 timed out", 5.0)


def test_program_with_a_nul_byte_is_not_started() -> None:
    result = ProgramProbe("/bin/echo a\x00b").check(V4, 1.0)
    assert (result.ok, result.message) == (
        False, "send_program /bin/echo could not be started: embedded null byte")
