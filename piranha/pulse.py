"""pulse: the heartbeat and failover daemon, one per director.

Thin wiring: options, the start-up checks (each a clear error naming the file or option),
then :class:`piranha.director.loop.PulseLoop` around the failover machine
(:mod:`piranha.heartbeat.machine`), the heartbeat sockets, the actuator and lvsd.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from logging import Logger
from typing import TYPE_CHECKING

from piranha import daemon, sdnotify
from piranha.director import build
from piranha.director.actuator import Actuator
from piranha.director.announce import Schedule
from piranha.director.loop import Clocks, PulseLoop
from piranha.director.lvsdproc import LvsdProcess
from piranha.director.options import parser
from piranha.director.plan import PlanError, Settings, settings
from piranha.director.ports import Commands, RtnlAddresses, RtnlLinks, local_addresses
from piranha.director.reload import Reload
from piranha.director.status import StatusFile
from piranha.director.testplan import NOTHING_TO_DO, test_plan
from piranha.heartbeat.machine import FailoverMachine
from piranha.heartbeat.transport import BindError, Transport
from piranha.lvsd import logs
from piranha.model import Cluster, ServiceType
from piranha.net.arp import FrameSender
from piranha.net.rtnl import Rtnl

if TYPE_CHECKING:
    from piranha.director.metrics import Sample
    from piranha.metrics import Endpoint


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``pulse``."""
    args = parser().parse_args(argv)
    if args.announce < 1:
        return _fail("--announce must be at least 1")
    result = daemon.load_or_exit(args.configfile, "pulse")
    cluster = result.cluster
    if cluster.service is ServiceType.FOS:
        return _fail(f"{args.configfile}: service = fos is not supported by this pulse")
    if not cluster.active_virtuals():
        return _fail(f"no active lvs services defined in {args.configfile}")
    with Rtnl() as rtnl:  # a fresh one after daemonizing: its socket belongs to one thread
        try:
            mine = settings(cluster, local_addresses(rtnl))
        except PlanError as exc:
            return _fail(f"{args.configfile}: {exc}")
        problems = build.device_problems(rtnl, mine)
    if problems:
        return _fail("\n".join(f"{args.configfile}: {p}" for p in problems))
    notes = build.notes(args, cluster)
    if args.test_start:
        print("\n".join(test_plan(args, cluster, mine, notes)))
        return 0
    if not mine.master and not cluster.backup_active:
        print(f"pulse: {NOTHING_TO_DO}", file=sys.stderr)
        return 0
    try:
        transport = Transport(mine.paths, mine.port, build.codec(mine))
    except BindError as exc:
        print(f"pulse: {exc}", file=sys.stderr)
        return _fail("cannot create heartbeat socket. running as root?")
    metrics = None
    if cluster.pulse_metrics is not None:  # bound here, so a busy port is told on the terminal
        from piranha.director.metrics import endpoint

        metrics = endpoint()
        try:
            metrics.bind(cluster.pulse_metrics)
        except OSError as exc:
            transport.close()
            return _fail(f"{args.configfile}: pulse_metrics = {cluster.pulse_metrics}: "
                         f"cannot listen: {exc.strerror or exc}")
    if not args.nodaemon:
        daemon.daemonize(nofork=False)
    log = logs.setup(args.nodaemon, args.verbose, "pulse")
    for warning in result.warnings:
        log.warning(str(warning))
    for line in notes:
        log.warning(line)
    daemon.write_pidfile(args.pidfile, "pulse")
    log.info(f"STARTING PULSE AS {'MASTER' if mine.master else 'BACKUP'}")
    try:
        return _run(args, cluster, mine, Rtnl(), transport, log, metrics)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(args.pidfile)


def _run(args: argparse.Namespace, cluster: Cluster, mine: Settings, rtnl: Rtnl,
         transport: Transport, log: Logger, metrics: Endpoint[Sample] | None) -> int:
    warm = not args.cold_standby
    machine = FailoverMachine(keepalive=mine.keepalive, deadtime=mine.deadtime,
                              master=mine.master, backup_active=cluster.backup_active,
                              force_active=args.forceactive, authenticated=mine.key is not None,
                              warm_standby=warm)
    lvsd = LvsdProcess(build.lvsd_argv(args), log, block_after=3 if warm else 1)
    sync = build.sync_backend(mine, log)
    frames = FrameSender()
    actuator = Actuator(
        mine.vips, RtnlAddresses(rtnl), lvsd, log, send_frame=frames, run_command=Commands(),
        sync=sync, sync_daemon=build.sync_daemon(mine), active_cmd=mine.active_cmd,
        inactive_cmd=mine.inactive_cmd, warm=warm,
        schedule=Schedule(count=args.announce), ready_timeout=args.lvsd_timeout)
    links = RtnlLinks(rtnl, mine.watched) if mine.watched else None
    status = StatusFile(args.status_file, mine, machine, actuator, log)
    loop = PulseLoop(machine, transport, actuator, lvsd, log,
                     Clocks(time.monotonic, time.time), links=links, on_state=status.changed,
                     metrics=metrics)
    if metrics is not None:  # after daemonizing: a fork keeps no thread
        metrics.start()
        log.info(f"metrics: serving http://{cluster.pulse_metrics}/metrics")
    loop.reload = Reload(args.configfile, rtnl, mine, log)
    sdnotify.notify(f"READY=1\nSTATUS=started as {'master' if mine.master else 'backup'}"
                    f"\nMAINPID={os.getpid()}")
    try:
        return loop.run()
    finally:
        status.remove()
        if metrics is not None:
            metrics.close()
        sdnotify.notify("STOPPING=1")
        if links is not None:
            links.close()
        frames.close()
        rtnl.close()


def _fail(message: str) -> int:
    print(f"pulse: {message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
