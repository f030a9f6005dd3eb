"""nanny: health-checks one real server and reports its transitions to lvsd.

Two ways to run it:

* forked by lvsd (:func:`forked_main`): no exec, no imports; the child of an lvsd that has
  already imported everything runs the loop and sends one datagram per transition (the
  report codec of :mod:`piranha.health.report`) on the socket lvsd gave it;
* by hand, with Piranha's command line (:func:`main`, section 4.1 of the reference): the
  same loop, reports printed on stdout as JSON lines, Piranha-style log lines on syslog
  (stderr with ``-n``). nanny never writes the IPVS table: lvsd does; ``-I`` and ``-M`` are
  accepted for compatibility and unused.

Signals: SIGUSR1 forces DOWN, SIGUSR2 forces UP (both freeze probing until SIGHUP), SIGHUP
returns to normal probing, SIGTERM/SIGINT end the nanny (it leaves the table to lvsd).
Handlers only wake the loop: the signal number travels through ``signal.set_wakeup_fd``.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import math
import os
import select
import signal
import socket
import subprocess
import sys
import syslog
import time
from collections.abc import Callable
from ipaddress import ip_address

from piranha.health.check import CheckSpec
from piranha.health.nannyloop import NannyLoop
from piranha.health.report import DestId, HealthReport, StatsReport, encode, encode_stats
from piranha.health.types import ServerState
from piranha.health.weights import load_argv, parse_load, parse_ruptime
from piranha.model import ServiceProtocol

VERSION = "nanny 1.46"
_STOP = (signal.SIGTERM, signal.SIGINT)
#: calls after which CPython 3.11 has quickened a function (its warm-up is 8 calls)
_QUICKEN = 16
_WATCHED = (signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP) + _STOP


def _ignore(signum: int, frame: object) -> None:
    """Handler that does nothing: the wakeup fd carries the signal number."""


class Waker:
    """Signals delivered as bytes on a pipe, so one select() waits for time and signals."""

    def __init__(self) -> None:
        self.read_fd, write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        for sig in _WATCHED:
            signal.signal(sig, _ignore)

    def wait(self, timeout: float, also: list[socket.socket]) -> tuple[list[int], bool]:
        """Signals received within ``timeout`` s, and whether a socket in ``also`` is writable."""
        delay = None if math.isinf(timeout) else timeout
        readable, writable, _ = select.select([self.read_fd], also, [], delay)
        signums: list[int] = []
        if readable:
            with contextlib.suppress(BlockingIOError):
                signums = list(os.read(self.read_fd, 64))
        return signums, bool(writable)


class DatagramSender:
    """Sends reports as datagrams to lvsd; keeps them in order while lvsd's queue is full."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.backlog: list[bytes] = []

    def __call__(self, report: HealthReport) -> None:
        self.backlog.append(encode(report).encode("ascii"))
        self.flush()

    def stats(self, report: StatsReport) -> None:
        """Send check counts now or never: the next ones carry them too (cumulative)."""
        if not self.backlog:
            with contextlib.suppress(BlockingIOError):
                self.sock.send(encode_stats(report).encode("ascii"), socket.MSG_DONTWAIT)

    def flush(self) -> None:
        """Send what is queued until lvsd's receive queue is full."""
        while self.backlog:
            try:
                self.sock.send(self.backlog[0], socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            del self.backlog[0]


def serve(loop: NannyLoop, waker: Waker, sender: DatagramSender | None = None) -> int:
    """Run ``loop`` until SIGTERM/SIGINT; the exit status (0)."""
    while True:
        wait = loop.step()
        pending = sender is not None and bool(sender.backlog)
        also = [sender.sock] if sender is not None and pending else []
        signums, writable = waker.wait(wait, also)
        if writable and sender is not None:
            sender.flush()
        for signum in signums:
            if signum in _STOP:
                return 0
            loop.on_signal(signum)


def load_reader(spec: CheckSpec) -> Callable[[], float | None] | None:
    """A function reading the server's load with ``spec.loadcmd``; None without one."""
    if spec.loadcmd is None:
        return None
    host = str(spec.dest.rip)
    argv = load_argv(spec.loadcmd, host)
    if argv is None:
        return None
    ruptime = os.path.basename(spec.loadcmd) == "ruptime"

    def read() -> float | None:
        try:
            out = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                                 timeout=spec.timeout, check=False).stdout
        except (OSError, subprocess.SubprocessError):
            return None
        text = out.decode("utf-8", "replace")
        return parse_ruptime(text, [host]) if ruptime else parse_load(text)

    return read


def build(spec: CheckSpec, adopt: int | None, sock: socket.socket) -> tuple[NannyLoop,
                                                                          DatagramSender]:
    """The loop and the report sender of a nanny checking ``spec``, reporting on ``sock``."""
    sender = DatagramSender(sock)
    loop = NannyLoop(spec, spec.tracker(adopt), spec.probe(), sender, time.monotonic,
                     load_reader(spec), sender.stats)
    return loop, sender


def forked_main(spec: CheckSpec, adopt: int | None, sock: socket.socket) -> int:
    """Entry point of a nanny forked by lvsd: check ``spec``, report on ``sock``."""
    loop, sender = build(spec, adopt, sock)
    return serve(loop, Waker(), sender)


class _Rehearsal(Waker):
    """A waker for :func:`rehearse`: no signal handlers; SIGUSR1/2, SIGHUP, then SIGTERM."""

    def __init__(self, cycles: int, listener: socket.socket) -> None:
        self.read_fd, self.write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.left, self.listener = cycles, listener

    def wait(self, timeout: float, also: list[socket.socket]) -> tuple[list[int], bool]:
        """Accept what the probe connected, play the script, never sleep."""
        with contextlib.suppress(BlockingIOError):
            while True:
                self.listener.accept()[0].close()
        self.left -= 1
        script = {3: signal.SIGUSR1, 2: signal.SIGUSR2, 1: signal.SIGHUP, 0: signal.SIGTERM}
        if self.left in script:
            os.write(self.write_fd, bytes([script[self.left]]))
        return super().wait(0.0, also)


def rehearse(cycles: int = 300) -> None:
    """Run the nanny loop ``cycles`` times in this process against a loopback socket of its own.

    Why: Python 3.11's interpreter writes into a code object on each of its first calls (the
    warm-up counter) and while it specializes its instructions (inline caches). A nanny forked
    from a parent that never ran its code would do those writes itself, privately copying every
    page they touch (~350 KiB per nanny). So the loop runs ``cycles`` times and the set-up a
    nanny runs once (:func:`build`, the socket wrapper) runs often enough to be quickened too.
    lvsd calls this once before forking the zygote; nothing leaves 127.0.0.1.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(cycles)
        dest = DestId(None, 0, ServiceProtocol.TCP, ip_address("127.0.0.1"),
                      listener.getsockname()[1], 1)
        spec = CheckSpec("rehearsal", "rehearsal", dest, timeout=1.0, reentry=0.0)
        clock = itertools.count(0.0, 2.0)
        sender = DatagramSender(theirs)
        waker = _Rehearsal(cycles, listener)
        loop = NannyLoop(spec, spec.tracker(None), spec.probe(), sender, lambda: next(clock))
        serve(loop, waker, sender)
        os.close(waker.read_fd)
        os.close(waker.write_fd)
        for _ in range(_QUICKEN):  # what a nanny runs once: past the warm-up of each function
            build(spec, 5, socket.socket(fileno=os.dup(theirs.fileno())))[1].sock.close()
    finally:
        for sock in (listener, mine, theirs):
            sock.close()


def forked_main_fd(spec: CheckSpec, adopt: int | None, fd: int) -> int:
    """:func:`forked_main` with the report socket given by descriptor (picklable for zygotes)."""
    return forked_main(spec, adopt, socket.socket(fileno=fd))


# -- the command line (Piranha 0.8.6's popt options) ---------------------------------------


def parser() -> argparse.ArgumentParser:
    """nanny's options, as lvsd passed them to Piranha's nanny."""
    p = argparse.ArgumentParser(prog="nanny", add_help=False, allow_abbrev=False,
                                description="health-check one real server for lvsd")
    a = p.add_argument
    a("-h", "--server", required=True, metavar="IP", help="real server to check")
    a("-p", "--port", type=int, default=80, help="virtual port (default 80)")
    a("-r", "--rport", type=int, help="real server port (default: --port)")
    a("-V", "--virtaddress", metavar="IP", help="virtual address")
    a("-f", "--fwmark", type=int, default=0, help="firewall mark of the service")
    a("-u", "--udp", action="store_true", help="check over UDP")
    a("-t", "--interval", type=float, default=10.0, help="seconds between checks and timeout")
    a("-a", "--reentrytime", type=float, default=None, help="re-admission delay (180)")
    a("-w", "--weight", type=int, default=1, help="configured weight")
    a("-S", "--scale", type=int, default=10, help="load-driven weight cap factor")
    a("-U", "--loadcmd", default="none", help="load command (none, rup, ruptime, rsh, ...)")
    a("-M", "--method", default="m", help="forwarding method (m, g, i; unused)")
    a("-I", "--ipvsadm", default="/sbin/ipvsadm", help="ipvsadm path (unused)")
    a("-s", "--send_string", help="text to send")
    a("-x", "--expect_string", help="expected reply (prefix, '*', or regex)")
    a("--regex", action="store_true", help="expect is an extended regex")
    a("-e", "--send_program", help="external check; %%h = address, %%p = port")
    a("-T", "--suppress", action="store_true", help="do not translate escapes")
    a("-q", "--quiesce_server", action="store_true", help="weight 0 instead of removal")
    a("--lvs", action="store_true", help="LVS service type")
    a("--fos", action="store_true", help="failover service type (unsupported)")
    a("-n", "--nodaemon", action="store_true", help="log to stderr, not syslog")
    a("-c", "--nofork", action="store_true", help="accepted; nanny never forks")
    a("--test-start", "--norun", action="store_true", help="accepted (nanny never writes IPVS)")
    a("-v", "--verbose", action="store_true", help="log every probe result")
    a("--version", action="version", version=VERSION)
    a("-?", "--help", "--usage", action="help", help="show this help")
    return p


def spec_from_args(args: argparse.Namespace) -> CheckSpec:
    """The CheckSpec a Piranha nanny command line describes."""
    rip = ip_address(args.server)
    vip = ip_address(args.virtaddress) if args.virtaddress else None
    proto = ServiceProtocol.UDP if args.udp else ServiceProtocol.TCP
    rport = args.rport if args.rport is not None else args.port
    reentry = 180.0 if args.reentrytime is None else args.reentrytime
    return CheckSpec("nanny", args.server, DestId(vip, args.port, proto, rip, rport, args.fwmark),
                     proto, args.send_string, args.expect_string, args.regex, args.send_program,
                     args.interval, reentry, args.weight, args.quiesce_server,
                     None if args.loadcmd == "none" else args.loadcmd,
                     translate=not args.suppress, scale=args.scale)


class _Printer:
    """Standalone reporting: JSON report on stdout, Piranha-style line in the log."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self.log = log

    def __call__(self, report: HealthReport) -> None:
        sys.stdout.write(encode(report))
        sys.stdout.flush()
        real = f"{report.dest.rip}:{report.dest.rport}"
        if report.state is ServerState.UP:
            self.log(f"[ active ] making {real} available (weight {report.weight}): "
                     f"{report.reason}")
        else:
            self.log(f"[inactive] shutting down {real} due to connection failure: "
                     f"{report.reason}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``nanny``."""
    args = parser().parse_args(argv)
    if args.fos or not args.lvs:
        print("nanny: unknown service type (only --lvs is supported)", file=sys.stderr)
        return 1
    try:
        spec = spec_from_args(args)
        spec.tracker()
    except ValueError as exc:
        print(f"nanny: {exc}", file=sys.stderr)
        return 1
    log = _logger(args.nodaemon)
    log(f"starting LVS client monitor for {spec.dest.vip}:{spec.dest.vport} -> "
        f"{spec.target}")
    loop = NannyLoop(spec, spec.tracker(), spec.probe(), _Printer(log), time.monotonic,
                     load_reader(spec))
    return serve(loop, Waker())


def _logger(nodaemon: bool) -> Callable[[str], None]:
    if nodaemon:
        return lambda line: print(f"nanny: {line}", file=sys.stderr, flush=True)
    syslog.openlog("nanny", syslog.LOG_PID, syslog.LOG_DAEMON)
    return lambda line: syslog.syslog(syslog.LOG_INFO, line)


if __name__ == "__main__":
    sys.exit(main())
