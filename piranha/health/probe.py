"""One probe of one real server = one call: the I/O edge of nanny (sockets and subprocess).

Key names: :class:`SocketProbe` (TCP/UDP connect, optional send, read until the expectation
is decided), :class:`ProgramProbe` (``send_program``), :func:`probe_for` (the probe nanny runs
for a virtual server, Piranha's default HTTP check included).

Every probe has one deadline, ``clock() + timeout``, covering connect, send and read (or the
whole program run); the clock is injected and defaults to ``time.monotonic``. A probe never
raises for a network or program failure: it returns ``ProbeResult(ok=False, message)`` with
Piranha-style text (``CONNECT to 10.0.0.1:80 timed out``, ``READ to ... timed out``).

Deliberate differences from Piranha 0.8.6 (nanny.c ``pinger``/``external_check``):

* No ICMP echo first: Piranha sent one but never awaited the reply (it only needed root).
* ``send_program``: a program that fails, is killed or times out is DOWN. 0.8.6 counted it
  as UP whenever an expect string was set (``didn't get anything back`` -> healthy).
* ``send_program``: the timeout is real and kills the program's whole process group; 0.8.6's
  ``alarm`` did not interrupt ``waitpid`` (restartable syscalls, rhbz 191787 "monitor script
  hangs").
* ``send_program``: one trailing newline is chopped, not the last byte whatever it was.
* ``send_program`` without ``expect``: the exit status decides (0 = UP); 0.8.6 marked such
  a server DOWN forever, so no working configuration relied on it.
* IPv6 targets work; %h becomes the bare address (``::1``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from piranha.errors import PiranhaError
from piranha.health.expect import (
    Decision,
    Expectation,
    expectation,
    show,
    to_bytes,
    unescape,
)
from piranha.health.types import ProbeResult, Target
from piranha.model import ServiceProtocol, VirtualServer

Clock = Callable[[], float]

#: Piranha's built-in check when the virtual port is 80 and nothing else is configured
DEFAULT_HTTP_SEND = "GET / HTTP/1.0\r\n\r\n"
DEFAULT_HTTP_EXPECT = "HTTP"
#: a reply longer than this is judged as it stands (a regex that has not matched fails)
READ_LIMIT = 64 * 1024


class Probe(Protocol):
    """Does exactly one health check of ``target`` within ``timeout`` seconds."""

    def check(self, target: Target, timeout: float) -> ProbeResult:
        """The result of one probe; never raises for a failing server."""
        ...


class _Failed(PiranhaError):
    """Ends a probe early; the argument is the failure message."""


@dataclass(frozen=True)
class SocketProbe:
    """Connect over TCP or UDP, send ``send`` once, then read until ``expect`` decides."""

    protocol: ServiceProtocol = ServiceProtocol.TCP
    send: bytes | None = None
    expect: Expectation | None = None
    clock: Clock = time.monotonic

    def check(self, target: Target, timeout: float) -> ProbeResult:
        """Run the exchange against ``target``; the deadline covers every step."""
        start = self.clock()
        try:
            ok, message = self._exchange(target, start + timeout)
        except _Failed as failure:
            ok, message = False, str(failure)
        return ProbeResult(ok, message, self.clock() - start)

    def _exchange(self, target: Target, deadline: float) -> tuple[bool, str]:
        udp = self.protocol is ServiceProtocol.UDP
        kind = socket.SOCK_DGRAM if udp else socket.SOCK_STREAM
        try:
            sock = socket.socket(_family(target), kind)
        except OSError as exc:  # no IPv6 in this kernel, out of descriptors, ...
            raise _Failed(f"cannot open a socket to {target}: {_reason(exc)}") from None
        with sock:
            self._connect(sock, target, deadline)
            if self.send is not None:
                self._send(sock, target, self.send, deadline)
            if self.expect is None:
                return True, f"connected to {target}" + _sent(self.send)
            decision = self._read(sock, target, self.expect, deadline, udp)
            return decision.ok, f"READ from {target} {decision.detail}"

    def _left(self, deadline: float) -> float:
        """Seconds left before ``deadline``; TimeoutError once none are (0 means non-blocking)."""
        left = deadline - self.clock()
        if left <= 0:
            raise TimeoutError
        return left

    def _connect(self, sock: socket.socket, target: Target, deadline: float) -> None:
        try:
            sock.settimeout(self._left(deadline))
            sock.connect((str(target.addr), target.port))
        except TimeoutError:
            raise _Failed(f"CONNECT to {target} timed out") from None
        except OSError as exc:
            raise _Failed(f"CONNECT to {target} failed: {_reason(exc)}") from None

    def _send(self, sock: socket.socket, target: Target, data: bytes, deadline: float) -> None:
        try:
            sock.settimeout(self._left(deadline))
            sock.sendall(data)
        except TimeoutError:
            raise _Failed(f"WRITE to {target} timed out") from None
        except OSError as exc:
            raise _Failed(f"WRITE to {target} returned error: {_reason(exc)}") from None

    def _read(self, sock: socket.socket, target: Target, expect: Expectation,
              deadline: float, udp: bool) -> Decision:
        # keep reading: a reply split over several segments or writes must still match
        reply, final = b"", False
        while True:
            decision = expect.decide(reply, final)
            if decision is not None or final:
                break
            chunk = self._recv(sock, target, reply, deadline, udp)
            # an empty TCP read is EOF; an empty UDP datagram is just a datagram
            final = (not chunk and not udp) or len(reply) + len(chunk) >= READ_LIMIT
            reply += chunk
        return decision or Decision(False, f"gave no verdict on {show(reply)}")

    def _recv(self, sock: socket.socket, target: Target, reply: bytes, deadline: float,
              udp: bool) -> bytes:
        try:
            sock.settimeout(self._left(deadline))
            # a UDP datagram must be taken whole: a short buffer would truncate it
            return sock.recv(65535 if udp else 4096)
        except TimeoutError:
            partial = f" after {len(reply)} bytes {show(reply)}" if reply else ""
            raise _Failed(f"READ to {target} timed out{partial}") from None
        except OSError as exc:
            raise _Failed(f"READ from {target} returned error: {_reason(exc)}") from None


@dataclass(frozen=True)
class ProgramProbe:
    """Run ``send_program`` (no shell) and compare its output with ``expect``."""

    command: str
    expect: bytes | None = None
    clock: Clock = time.monotonic

    def check(self, target: Target, timeout: float) -> ProbeResult:
        """Run the program for ``target``; killed with its process group after ``timeout``."""
        start = self.clock()
        ok, message = self._run(program_argv(self.command, target), timeout)
        return ProbeResult(ok, message, self.clock() - start)

    def _run(self, argv: list[str], timeout: float) -> tuple[bool, str]:
        if not argv:
            return False, "send_program is empty"
        try:
            # a session of its own, so a timeout can kill the program and everything it forked
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, start_new_session=True)
        except (OSError, ValueError) as exc:  # ValueError: a NUL byte in an argument
            return False, f"send_program {argv[0]} could not be started: {_reason(exc)}"
        try:
            out, _ = proc.communicate(timeout=max(timeout, 0.0))
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            return False, f"send_program {argv[0]} timed out after {timeout:g} s (killed)"
        return program_verdict(argv[0], proc.returncode, out, self.expect)


def program_argv(command: str, target: Target) -> list[str]:
    """``command`` split on spaces (not tabs), tokens exactly ``%h``/``%p`` replaced."""
    values = {"%h": str(target.addr), "%p": str(target.port)}
    # like strtok(" "): runs of blanks collapse; "host=%h" is not a token and stays as is
    return [values.get(token, token) for token in command.split(" ") if token]


def program_verdict(name: str, status: int, output: bytes,
                    expect: bytes | None) -> tuple[bool, str]:
    """Pass/fail and message for a program that ended with ``status`` and printed ``output``."""
    if status < 0:
        return False, f"send_program {name} was killed by signal {_signal_name(-status)}"
    if status > 0:
        return False, f"send_program {name} exited with status {status}"
    if expect is None:
        return True, f"send_program {name} exited with status 0"
    got = output[:-1] if output.endswith(b"\n") else output
    if got == expect:
        return True, f"send_program {name} printed expected {show(expect)}"
    return False, f"send_program {name} printed {show(got)} (expected {show(expect)})"


def uses_default_http(vs: VirtualServer) -> bool:
    """Whether nanny falls back to its HTTP check (virtual port 80, nothing configured)."""
    nothing = vs.send is None and vs.expect is None and vs.send_program is None
    return nothing and vs.port == 80


def probe_for(vs: VirtualServer, *, translate: bool = True,
              clock: Clock = time.monotonic) -> Probe:
    """The probe nanny runs for the real servers of ``vs``; ``translate=False`` is ``-T``."""
    send, expect = vs.send, vs.expect
    if uses_default_http(vs):
        send, expect = DEFAULT_HTTP_SEND, DEFAULT_HTTP_EXPECT
    if translate:
        send = None if send is None else unescape(send)
        expect = None if expect is None else unescape(expect)
    if vs.send_program is not None:
        # send_program wins over send; its expect is compared exactly (never as a regex)
        return ProgramProbe(vs.send_program, None if expect is None else to_bytes(expect), clock)
    udp = vs.protocol is ServiceProtocol.UDP
    return SocketProbe(vs.protocol, None if send is None else to_bytes(send),
                       expectation(expect, regex=vs.use_regex, udp=udp), clock)


def _family(target: Target) -> socket.AddressFamily:
    return socket.AF_INET if target.addr.version == 4 else socket.AF_INET6


def _sent(data: bytes | None) -> str:
    return "" if data is None else f", sent {len(data)} bytes"


def _reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the program's process group, reap it, and drop its output pipe."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()
