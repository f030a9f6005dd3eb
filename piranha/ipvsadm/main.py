"""``piranha-ipvsadm``: an ipvsadm 1.31-compatible command line over piranha's IPVS backend.

Same arguments, same output bytes, same exit statuses (0, 1, 2, 255) as Debian bookworm's
ipvsadm 1.31; see docs/ipvsadm-json.md for the ``--json`` addition. Commands become the
same :mod:`piranha.ipvs.types` operations the reconciler emits and go through
``IpvsBackend.apply``; listings are pure formatting of ``backend.dump()``.

Differences by design: the backend is opened only when a command needs the kernel, so
``-h``, ``-v``, argument errors and ``-c`` work without IPVS (ipvsadm initialises IPVS
first and exits 2 without it), and that failure adds a hint line; ``-R`` is batched (see
:mod:`piranha.ipvsadm.restore`); non-contiguous IPv4 ``-M`` masks are refused (see
:mod:`piranha.ipvsadm.ops`).
"""

from __future__ import annotations

import errno as E
import os
import sys
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import IO

from piranha.errors import IpvsUnavailable, KernelError
from piranha.ipvs.backend import IpvsBackend, strerror
from piranha.ipvs.types import Table
from piranha.ipvsadm.args import parse
from piranha.ipvsadm.commands import Command, Exit
from piranha.ipvsadm.format import (
    Fmt,
    Namer,
    fmt_of,
    header,
    render_daemons,
    render_services,
    render_timeouts,
)
from piranha.ipvsadm.ops import MUTATING, command_op, service_key
from piranha.ipvsadm.values import Lookup, SystemLookup

HINT = ("piranha-ipvsadm: hint: the kernel has no usable IPVS: load the ip_vs module "
        "(`modprobe ip_vs`, as root); this project's development and CI machines have no IPVS "
        "in their kernel, run kernel commands in the VM harness (scripts/vm-pytest.sh)\n")


def init_failure(exc: BaseException | None = None) -> Exit:
    """ipvsadm's ``Can't initialize ipvs`` failure (exit 2), plus piranha's hint line."""
    code = getattr(exc, "errno", None) or E.ENOPROTOOPT
    return Exit(2, f"Can't initialize ipvs: {strerror(None, code)}\n"
                   "Are you sure that IP Virtual Server is built in the kernel or as module?\n"
                   + HINT)


def _jsonout() -> ModuleType:
    """The JSON renderer, imported only for --json (it loads json): a plain listing, what
    scripts run most, starts without it."""
    from piranha.ipvsadm import jsonout

    return jsonout


def open_kernel_backend() -> IpvsBackend:
    """The netlink backend (opens a generic-netlink socket of its own)."""
    from piranha.ipvs.netlink import NetlinkIpvs

    return NetlinkIpvs()


class Session:
    """One invocation: streams, resolver, /proc path, and the lazily opened backend."""

    def __init__(self, backend: IpvsBackend | None, stdout: IO[str], stderr: IO[str],
                 stdin: IO[str] | None, resolver: Lookup, conn_path: str | None,
                 env: Mapping[str, str] | None):
        self._backend, self._opened = backend, False
        self.stdout, self.stderr, self.stdin = stdout, stderr, stdin
        self.resolver, self.conn_path, self.env = resolver, conn_path, env

    def backend(self) -> IpvsBackend:
        """The backend, opened on first use."""
        if self._backend is None:
            self._backend, self._opened = open_kernel_backend(), True
        return self._backend

    def close(self) -> None:
        """Close the backend if this session opened it."""
        close = getattr(self._backend, "close", None)
        if self._opened and callable(close):
            close()

    def namer(self, ce: Command) -> Namer:
        """Address/port naming for this command's -n."""
        return Namer(ce.has("numeric"), self.resolver)


def run(ce: Command, s: Session, prog: str) -> int:
    """Execute one parsed command; return its exit status."""
    if ce.cmd in MUTATING:
        op = command_op(ce)
        failures = s.backend().apply([op])
        if failures:
            s.stderr.write(strerror(op, failures[0].errno) + "\n")
            return 255
        return 0
    if ce.cmd == "restore":
        text = s.stdin.read() if s.stdin else sys.stdin.buffer.read().decode(
            "utf-8", "surrogateescape")
        env = dict(s.env) if s.env is not None else None
        from piranha.ipvsadm.restore import restore
        return restore(text, prog, s.resolver, s.backend, lambda c: run(c, s, prog),
                       s.stderr.write, env)
    if ce.cmd == "save":
        return list_all(s, Fmt.RULE | fmt_of(ce.options), ce)
    return list_command(ce, s)


def list_command(ce: Command, s: Session) -> int:
    """``-L``: connections, one service, timeouts, daemons or the whole table."""
    fmt, as_json = fmt_of(ce.options), ce.has("json")
    if ce.has("connection"):
        return list_conns(ce, s, fmt, as_json)
    if ce.has("service-address"):
        try:
            svc, dests = s.backend().get_service(service_key(ce.svc))
        except KernelError as exc:
            raise Exit(1, _list_error(exc.errno)) from None
        table = Table((svc,), {svc.key: dests})
        if as_json:
            s.stdout.write(_jsonout().table_doc(None, table, [svc], bool(fmt & Fmt.NOSORT)))
        else:
            s.stdout.write(render_services([svc], table, fmt, s.namer(ce)))
        return 0
    try:
        if ce.has("timeout"):
            t = s.backend().timeouts()
            s.stdout.write(_jsonout().timeouts_doc(t) if as_json else render_timeouts(t))
            return 0
        if ce.has("daemon"):
            d = s.backend().daemons()
            s.stdout.write(_jsonout().daemons_doc(d) if as_json else render_daemons(d))
            return 0
    except KernelError:
        raise Exit(1) from None  # ipvsadm says nothing when these reads fail
    return list_all(s, fmt, ce)


def list_all(s: Session, fmt: Fmt, ce: Command | None) -> int:
    """The whole table: header (unless -S), titles, services and their dests."""
    try:
        info = s.backend().info()
    except KernelError as exc:
        raise init_failure(exc) from None
    as_json = ce is not None and ce.has("json")
    if not fmt & Fmt.RULE and not as_json:
        s.stdout.write(header(info))
    try:
        table = s.backend().dump()
    except KernelError as exc:
        raise Exit(1, _list_error(exc.errno)) from None
    if as_json:
        s.stdout.write(_jsonout().table_doc(info, table, table.services, bool(fmt & Fmt.NOSORT)))
        return 0
    numeric = ce is not None and ce.has("numeric")
    s.stdout.write(render_services(table.services, table, fmt, Namer(numeric, s.resolver)))
    return 0


def list_conns(ce: Command, s: Session, fmt: Fmt, as_json: bool) -> int:
    """``-Lc``: the connection table from /proc."""
    from piranha.ipvsadm.conn import CONN_PROC_FILE, parse_conn, render_conns

    try:
        with open(s.conn_path or CONN_PROC_FILE, encoding="latin-1") as f:
            first, rest = f.readline(), f.readlines()
    except OSError:
        raise Exit(1, f"cannot open file {CONN_PROC_FILE}\n") from None
    if not first:
        raise Exit(1, f"unexpected input from {CONN_PROC_FILE}\n")
    if as_json:
        s.stdout.write(_jsonout().conns_doc([c for c in map(parse_conn, rest) if c is not None]))
    else:
        s.stdout.write(render_conns(rest, bool(fmt & Fmt.PERSISTENTCONN), s.namer(ce)))
    return 0


def _list_error(errno: int) -> str:
    """The message for a failed service/dest read (``No such service`` for ESRCH)."""
    return ("No such service" if errno == E.ESRCH else strerror(None, errno)) + "\n"


def main(argv: Sequence[str] | None = None, backend: IpvsBackend | None = None,
         stdin: IO[str] | None = None, stdout: IO[str] | None = None,
         stderr: IO[str] | None = None, *, prog: str | None = None,
         resolver: Lookup | None = None, conn_path: str | None = None,
         env: Mapping[str, str] | None = None) -> int:
    """Run one ipvsadm command line (``argv`` without the program name); return the status."""
    args = list(sys.argv[1:] if argv is None else argv)
    prog = prog or (sys.argv[0] if argv is None else "piranha-ipvsadm")
    out, err = stdout or _byte_transparent(sys.stdout), stderr or _byte_transparent(sys.stderr)
    s = Session(backend, out, err, stdin, resolver or SystemLookup(), conn_path,
                os.environ if env is None else env)
    try:
        if not args:
            return list_all(s, Fmt.NONE, None)
        return run(parse([prog, *args], s.resolver, s.env), s, prog)
    except Exit as exc:
        out.write(exc.stdout)
        err.write(exc.stderr)
        return exc.status
    except IpvsUnavailable as exc:
        err.write(init_failure(exc).stderr)
        return 2
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())  # no second error at exit
        return 1
    finally:
        s.close()
        out.flush()


def _byte_transparent(stream: IO[str]) -> IO[str]:
    """``stream`` writing undecodable argv/stdin bytes back as they came (like C's stdio)."""
    reconfigure = getattr(stream, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(errors="surrogateescape")
    return stream


if __name__ == "__main__":
    sys.exit(main())
