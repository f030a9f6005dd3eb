"""lvsd: keeps the IPVS table true to lvs.cf and to the health of every real server.

Thin wiring: options, daemonising, the kernel backend, the report socket, the control
socket, then :class:`piranha.lvsd.loop.Daemon` around :class:`piranha.lvsd.engine.Engine`.
Nannies are forked by a zygote that this process forks once, after everything is imported
and the nanny loop was rehearsed (see :mod:`piranha.supervise.zygote`), so a nanny costs
only the memory its own loop writes.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import socket
import sys
import time
from collections.abc import Callable
from logging import Logger
from typing import TYPE_CHECKING

from piranha import daemon, nanny
from piranha.config import load
from piranha.errors import PiranhaError
from piranha.health.check import CheckSpec
from piranha.ipvs.backend import IpvsBackend
from piranha.ipvs.types import Table
from piranha.ipvsadm.rules import op_text
from piranha.lvsd import control, logs, status
from piranha.lvsd.engine import Engine, check_specs
from piranha.lvsd.loop import Daemon
from piranha.model import Cluster, Listen
from piranha.reconcile import desired, owned_keys, plan, set_timeouts
from piranha.supervise.children import Main
from piranha.supervise.zygote import ZygoteRunner

if TYPE_CHECKING:
    from piranha.lvsd.metrics import Sample
    from piranha.metrics import Endpoint

PIDFILE = "/var/run/lvs.pid"
STATE_FILE = "/var/lib/piranha/lvsd.state.json"


def parser() -> argparse.ArgumentParser:
    """lvsd's options: Piranha's (-c, -n, --nofork, -t, -v) plus the paths of its files."""
    p = daemon.parser("lvsd", "LVS table daemon", "lvs 1.38")
    p.add_argument("--nofork", action="store_true", help="daemon mode without forking")
    p.add_argument("--pidfile", default=PIDFILE, help=f"pid file (default {PIDFILE})")
    p.add_argument("--status-file", default=status.DEFAULT_PATH,
                   help=f"status snapshot (default {status.DEFAULT_PATH})")
    p.add_argument("--control-socket", default=control.DEFAULT_PATH,
                   help=f"root-only control socket (default {control.DEFAULT_PATH})")
    p.add_argument("--state-file", default=STATE_FILE,
                   help=f"drains and owned services across restarts (default {STATE_FILE})")
    p.add_argument("--reconcile-interval", type=float, default=5.0, metavar="SECONDS",
                   help="compare the kernel's table with the wanted one this often (default 5)")
    p.add_argument("--ready-fd", type=int, default=None, metavar="FD",
                   help="write a line to FD and close it once the table is programmed (pulse)")
    # tests and the scale benchmark on a host without IPVS: an in-memory table (lost at exit)
    p.add_argument("--backend", choices=("netlink", "fake"), default="netlink",
                   help=argparse.SUPPRESS)
    return p


def test_plan(cluster: Cluster) -> list[str]:
    """What lvsd would do on an empty table with every real server up (``-t``)."""
    lines = []
    for vs in cluster.active_virtuals():
        servers = sum(1 for s in vs.servers if s.active)
        lines.append(f"lvs: virtual service {vs.name}: {servers} active real servers")
    weights = {dest: spec.weight for dest, spec in check_specs(cluster).items()}
    timeouts = set_timeouts(cluster)
    for op in [*([timeouts] if timeouts else []),
               *plan(Table(), desired(cluster, weights), owned_keys(cluster))]:
        lines.append(f"lvs: would run: {op_text(op)}")
    return lines


def nanny_factory(fd: int) -> Callable[[CheckSpec, int | None], tuple[Main, list[int]]]:
    """How the engine starts a nanny: nanny.forked_main_fd on the report socket ``fd``."""
    def make(spec: CheckSpec, adopt: int | None) -> tuple[Main, list[int]]:
        return functools.partial(nanny.forked_main_fd, spec, adopt, fd), [fd]
    return make


def _report_pair() -> tuple[socket.socket, socket.socket]:
    """(lvsd's end, the nannies' end) of the report socket; lvsd's end sees sender pids."""
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    mine.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    mine.setblocking(False)
    return mine, theirs


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``lvsd``."""
    args = parser().parse_args(argv)
    result = daemon.load_or_exit(args.configfile, "lvsd")
    if args.test_start:
        print("\n".join(test_plan(result.cluster)))
        return 0
    if not args.nodaemon:
        daemon.daemonize(args.nofork)
    log = logs.setup(args.nodaemon, args.verbose)
    try:
        backend = _backend(args.backend)
    except (PiranhaError, OSError) as exc:
        log.error(f"cannot open the kernel's IPVS table: {exc}")
        return 1
    mine, theirs = _report_pair()
    try:
        listener = control.bind(args.control_socket)
    except OSError as exc:
        log.error(f"cannot open the control socket {args.control_socket}: {exc}")
        return 1
    daemon.write_pidfile(args.pidfile, "lvsd")
    nanny.rehearse()  # before the zygote forks: see its docstring
    runner = ZygoteRunner(keep_fds=[theirs.fileno()])
    engine = Engine(result.cluster, args.configfile, backend, runner,
                    nanny_factory(theirs.fileno()), log, clock=time.monotonic, wall=time.time)
    log.info(f"starting: {args.configfile}, {len(engine.specs)} real servers")
    exporter = None
    try:
        where = result.cluster.lvsd_metrics
        if where is not None:  # before the first reconcile: a bad endpoint changes nothing
            exporter = _metrics_endpoint(where, args.configfile, log)
            if exporter is None:
                return 1
        return Daemon(engine, runner, mine, listener, log, load=load,
                      status_path=args.status_file, state_path=args.state_file,
                      reconcile_interval=args.reconcile_interval,
                      clock=time.monotonic, on_ready=_ready_notifier(args.ready_fd),
                      exporter=exporter).run()
    finally:
        if exporter is not None:
            exporter.close()
        runner.close()
        with contextlib.suppress(OSError):
            os.unlink(args.pidfile)


def _metrics_endpoint(where: Listen, path: str, log: Logger) -> Endpoint[Sample] | None:
    """The Prometheus endpoint lvs.cf asks for, listening; None (logged) if it cannot."""
    from piranha.lvsd.metrics import endpoint

    exporter = endpoint()
    try:
        exporter.serve(where)
    except OSError as exc:
        log.error(f"{path}: lvsd_metrics = {where}: cannot listen: {exc.strerror or exc}")
        return None
    log.info(f"metrics: serving http://{where}/metrics")
    return exporter


def _ready_notifier(fd: int | None) -> Callable[[], None] | None:
    """Tell pulse (the parent) that the first reconcile is done: one line on ``fd``."""
    if fd is None:
        return None
    os.set_inheritable(fd, False)  # nannies must not hold pulse's pipe open

    def notify() -> None:
        with contextlib.suppress(OSError):
            os.write(fd, b"ready\n")
        with contextlib.suppress(OSError):
            os.close(fd)
    return notify


def _backend(kind: str) -> IpvsBackend:
    """The kernel's table (netlink), or an in-memory one for tests and benchmarks."""
    if kind == "fake":
        from piranha.ipvs.fake import FakeIpvs
        return FakeIpvs()
    from piranha.ipvs.netlink import NetlinkIpvs
    return NetlinkIpvs()


if __name__ == "__main__":
    sys.exit(main())
