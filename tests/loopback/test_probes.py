"""Probes against real servers on 127.0.0.1 and ::1 (no root, no network beyond loopback)."""

from __future__ import annotations

import os
import stat
import time
from ipaddress import ip_address
from pathlib import Path

import pytest

from lab.loopback import HOSTS, Servers, backlog_full, free_udp_port, reply, silent
from piranha.health.expect import AnyReply, Pattern, Prefix
from piranha.health.probe import ProgramProbe, SocketProbe, probe_for
from piranha.health.types import ProbeResult, Target
from piranha.model import InterfaceAddress, ServiceProtocol, VirtualServer

T = 0.3  # probe timeout: long enough for loopback, short enough to keep the file fast
MARGIN = 0.2  # how late a timed-out probe may return
HTTP = Prefix(b"HTTP")


def target(host: str, port: int) -> Target:
    return Target(ip_address(host), port)


def tcp(host: str, port: int, expect: object = HTTP, send: bytes | None = b"GET\r\n",
        timeout: float = T) -> ProbeResult:
    probe = SocketProbe(ServiceProtocol.TCP, send, expect)  # type: ignore[arg-type]
    return probe.check(target(host, port), timeout)


def udp(host: str, port: int, expect: object, send: bytes | None = b"PING",
        timeout: float = T) -> ProbeResult:
    probe = SocketProbe(ServiceProtocol.UDP, send, expect)  # type: ignore[arg-type]
    return probe.check(target(host, port), timeout)


def assert_timed_out(result: ProbeResult, timeout: float = T) -> None:
    assert not result.ok
    assert timeout - 0.01 <= result.duration < timeout + MARGIN, result


# --- TCP ------------------------------------------------------------------------------------

@pytest.mark.parametrize("host", HOSTS)
def test_refused(servers: Servers, host: str) -> None:
    port = servers.closed_port(host)
    result = tcp(host, port)
    assert result == ProbeResult(False, f"CONNECT to {target(host, port)} failed: "
                                        "Connection refused", result.duration)
    assert result.duration < T


@pytest.mark.parametrize("host", HOSTS)
def test_connect_timeout(host: str) -> None:
    listener, fillers = backlog_full(host)
    port = listener.getsockname()[1]
    try:
        result = tcp(host, port)
    finally:
        for sock in [listener, *fillers]:
            sock.close()
    if not result.message.startswith("CONNECT"):
        pytest.skip(f"this kernel completed a connect to a full backlog: {result.message}")
    assert result.message == f"CONNECT to {target(host, port)} timed out"
    assert_timed_out(result)


@pytest.mark.parametrize("host", HOSTS)
def test_silent_server_times_out(servers: Servers, host: str) -> None:
    port = servers.tcp(silent(servers), host)
    result = tcp(host, port)
    assert result.message == f"READ to {target(host, port)} timed out"
    assert_timed_out(result)


@pytest.mark.parametrize("host", HOSTS)
def test_slow_server_passes(servers: Servers, host: str) -> None:
    port = servers.tcp(reply(servers, b"HTTP/1.0 200 OK\r\n", first=T / 2), host)
    result = tcp(host, port)
    assert result.ok, result
    assert result.message == f"READ from {target(host, port)} got expected reply 'HTTP'"
    assert T / 2 <= result.duration < T + MARGIN  # ok is what matters; CI may be slow


@pytest.mark.parametrize("host", HOSTS)
def test_correct_reply_decides_without_waiting_for_eof(servers: Servers, host: str) -> None:
    port = servers.tcp(reply(servers, b"HTTP/1.1 200 OK\r\n"), host)  # keeps the line open
    result = tcp(host, port)
    assert result.ok
    assert result.duration < T  # the held-open line never reached EOF: no timeout
    assert servers.received == [b"GET\r\n"]


@pytest.mark.parametrize("host", HOSTS)
def test_wrong_reply_shows_what_came(servers: Servers, host: str) -> None:
    port = servers.tcp(reply(servers, b"SSH-2.0-OpenSSH_9.6\r\n"), host)
    result = tcp(host, port)
    assert result == ProbeResult(False, f"READ from {target(host, port)} got unexpected reply "
                                        "'SSH-2.0-OpenSSH_9.6\\r\\n' (expected 'HTTP')",
                                 result.duration)
    assert result.duration < T  # the first wrong byte decides, not EOF or the timeout


def test_short_reply_then_close_is_too_short(servers: Servers) -> None:
    port = servers.tcp(reply(servers, b"HT", close=True))
    result = tcp("127.0.0.1", port)
    assert result.message == (f"READ from 127.0.0.1:{port} was too short: got 2 of 4 bytes "
                              "'HT' (expected 'HTTP')")


def test_long_wrong_reply_is_truncated_in_the_message(servers: Servers) -> None:
    port = servers.tcp(reply(servers, b"X" * 100, close=True))
    result = tcp("127.0.0.1", port)
    assert result.message == (f"READ from 127.0.0.1:{port} got unexpected reply "
                              f"'{'X' * 48}'... (100 bytes) (expected 'HTTP')")


@pytest.mark.parametrize("host", HOSTS)
def test_reply_split_across_writes_still_matches(servers: Servers, host: str) -> None:
    chunks = (b"H", b"TT", b"P/1.0 200 OK\r\n")
    port = servers.tcp(reply(servers, *chunks, delay=0.05), host)
    result = tcp(host, port, expect=Prefix(b"HTTP/1.0 200"))
    assert result.ok, result
    assert result.duration >= 0.1  # it really waited for the later writes


def test_deadline_covers_the_whole_exchange(servers: Servers) -> None:
    # writes at 0, 0.125, 0.25 and 0.375 s: every gap < T, the fourth write after T
    port = servers.tcp(reply(servers, b"H", b"T", b"T", b"P", delay=0.125))
    result = tcp("127.0.0.1", port)
    assert result.message == f"READ to 127.0.0.1:{port} timed out after 3 bytes 'HTT'"
    assert_timed_out(result)


def test_connect_only_without_expect(servers: Servers) -> None:
    port = servers.tcp(silent(servers))
    result = tcp("127.0.0.1", port, expect=None, send=b"QUIT\r\n")
    assert result.message == f"connected to 127.0.0.1:{port}, sent 6 bytes"
    assert result.ok


@pytest.mark.parametrize("host", HOSTS)
def test_regex_match(servers: Servers, host: str) -> None:
    port = servers.tcp(reply(servers, b"HTTP/1.1 ", b"200 OK\r\n", delay=0.05), host)
    result = tcp(host, port, expect=Pattern.compile(rb"^HTTP/1\.[01] 200"))
    assert result.ok, result
    assert result.message.endswith("matched regex '^HTTP/1\\\\.[01] 200'")


def test_regex_mismatch(servers: Servers) -> None:
    port = servers.tcp(reply(servers, b"HTTP/1.1 503 Busy\r\n", close=True))
    result = tcp("127.0.0.1", port, expect=Pattern.compile(rb"^HTTP/1\.[01] 200"))
    assert result.message == (f"READ from 127.0.0.1:{port} got 'HTTP/1.1 503 Busy\\r\\n' "
                              "(no match for regex '^HTTP/1\\\\.[01] 200')")


def test_invalid_regex_always_fails(servers: Servers) -> None:
    port = servers.tcp(reply(servers, b"anything"))
    result = tcp("127.0.0.1", port, expect=Pattern.compile(b"(unclosed"))
    assert not result.ok
    assert "invalid expect regex '(unclosed'" in result.message


def test_star_accepts_any_reply(servers: Servers) -> None:
    port = servers.tcp(reply(servers, b"\x00"))
    assert tcp("127.0.0.1", port, expect=AnyReply()).ok


def test_star_needs_a_byte(servers: Servers) -> None:
    port = servers.tcp(reply(servers, close=True))
    result = tcp("127.0.0.1", port, expect=AnyReply())
    assert result.message == f"READ from 127.0.0.1:{port} got no reply (connection closed)"


# --- UDP ------------------------------------------------------------------------------------

@pytest.mark.parametrize("host", HOSTS)
def test_udp_answering(servers: Servers, host: str) -> None:
    port = servers.udp(lambda data: b"PONG " + data, host)
    result = udp(host, port, Prefix(b"PONG PING"))
    assert result.ok, result
    assert servers.received == [b"PING"]


@pytest.mark.parametrize("host", HOSTS)
def test_udp_not_answering(servers: Servers, host: str) -> None:
    port = servers.udp(lambda data: None, host)
    result = udp(host, port, AnyReply())
    assert result.message == f"READ to {target(host, port)} timed out"
    assert_timed_out(result)


@pytest.mark.parametrize("host", HOSTS)
def test_udp_closed_port_is_refused(host: str) -> None:
    port = free_udp_port(host)
    result = udp(host, port, AnyReply())
    assert result.message == (f"READ from {target(host, port)} returned error: "
                              "Connection refused")


def test_udp_without_expect_needs_an_answer(servers: Servers) -> None:
    vs = VirtualServer("dns", port=53, protocol=ServiceProtocol.UDP, send="ping")
    port = servers.udp(lambda data: b"x")
    assert probe_for(vs).check(target("127.0.0.1", port), T).ok


# --- probe_for: default HTTP check and escape translation ---------------------------------

def test_default_http_probe_on_port_80(servers: Servers) -> None:
    port = servers.tcp(reply(servers, b"HTTP/1.0 200 OK\r\n\r\n", close=True))
    vs = VirtualServer("www", address=InterfaceAddress(ip_address("192.0.2.80"), "eth0:1"))
    result = probe_for(vs).check(target("127.0.0.1", port), T)  # rport differs: fine
    assert result.ok, result
    assert servers.received == [b"GET / HTTP/1.0\r\n\r\n"]


def test_escapes_are_translated(servers: Servers) -> None:
    port = servers.tcp(reply(servers, b"+OK\tready\r\n"))
    vs = VirtualServer("pop", port=port, send="NOOP\\r\\n", expect="+OK\\tready")
    assert probe_for(vs).check(target("127.0.0.1", port), T).ok
    assert servers.received == [b"NOOP\r\n"]


def test_suppress_sends_backslashes_verbatim(servers: Servers) -> None:
    port = servers.tcp(reply(servers, b"x"))
    vs = VirtualServer("raw", port=port, send="A\\r\\n", expect="*")
    assert probe_for(vs, translate=False).check(target("127.0.0.1", port), T).ok
    assert servers.received == [b"A\\r\\n"]


# --- send_program ---------------------------------------------------------------------------

def script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def run(command: str, expect: bytes | None, host: str = "127.0.0.1", port: int = 80,
        timeout: float = T) -> ProbeResult:
    return ProgramProbe(command, expect).check(target(host, port), timeout)


def test_program_prints_expected(tmp_path: Path) -> None:
    prog = script(tmp_path, "ok", "echo OK")
    result = run(prog, b"OK")
    assert result == ProbeResult(True, f"send_program {prog} printed expected 'OK'",
                                 result.duration)


def test_program_without_newline_still_matches(tmp_path: Path) -> None:
    assert run(script(tmp_path, "ok", "printf OK"), b"OK").ok


def test_program_only_one_newline_is_chopped(tmp_path: Path) -> None:
    prog = script(tmp_path, "two", "printf 'OK\\n\\n'")
    result = run(prog, b"OK")
    assert result.message == f"send_program {prog} printed 'OK\\n' (expected 'OK')"


def test_program_prints_wrong_text(tmp_path: Path) -> None:
    prog = script(tmp_path, "bad", "echo 'service down'")
    result = run(prog, b"OK")
    assert result.message == f"send_program {prog} printed 'service down' (expected 'OK')"
    assert not result.ok


def test_program_exit_nonzero_is_down_even_with_expect(tmp_path: Path) -> None:
    # Piranha 0.8.6 counted this as healthy because an expect string was set
    prog = script(tmp_path, "fail", "echo OK; exit 3")
    result = run(prog, b"OK")
    assert result.message == f"send_program {prog} exited with status 3"
    assert not result.ok


def test_program_exit_status_decides_without_expect(tmp_path: Path) -> None:
    assert run(script(tmp_path, "t", "exit 0"), None).ok
    assert not run(script(tmp_path, "f", "exit 1"), None).ok


def test_program_not_found(tmp_path: Path) -> None:
    result = run(str(tmp_path / "missing"), b"OK")
    assert result.message == (f"send_program {tmp_path / 'missing'} could not be started: "
                              "No such file or directory")


def test_program_hanging_is_killed_with_its_children(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    prog = script(tmp_path, "hang", f"echo OK\nsleep 30 &\necho $! > {pidfile}\nsleep 30")
    result = run(prog, b"OK")
    assert result.message == f"send_program {prog} timed out after 0.3 s (killed)"
    assert_timed_out(result)
    assert not alive(int(pidfile.read_text())), "the background child survived"


def test_program_gets_host_and_port(tmp_path: Path) -> None:
    prog = script(tmp_path, "args", 'echo "$1|$2|$3"')
    assert run(f"{prog}  %h %p  host=%h", b"10.9.8.7|8080|host=%h", "10.9.8.7", 8080).ok
    assert run(f"{prog} %h %p", b"::1|53|", "::1", 53).ok


def test_program_runs_without_a_shell(tmp_path: Path) -> None:
    prog = script(tmp_path, "args", 'echo "$#:$1"')
    # a shell would expand $HOME and split on the tab; execvp passes both through
    assert run(f"{prog} $HOME\tx", b"1:$HOME\tx").ok


def alive(pid: int) -> bool:
    """Whether ``pid`` is still a running (not zombie) process, after a short grace."""
    stat_file = Path(f"/proc/{pid}/stat")
    for _ in range(50):
        try:
            state = stat_file.read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return False
        if state in ("Z", "X"):
            return False
        time.sleep(0.02)
    return os.path.exists(stat_file)
