"""pulse: the heartbeat and failover daemon, one per director.

Thin wiring: options, the start-up checks (each a clear error naming the file or option),
then :class:`piranha.director.loop.PulseLoop` around the failover machine
(:mod:`piranha.heartbeat.machine`), the heartbeat sockets, the actuator and lvsd.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import stat
import sys
import time
from logging import Logger

from piranha import daemon, sdnotify
from piranha.config import LoadResult, load
from piranha.director.actuator import Actuator, SyncDaemon, SyncPort
from piranha.director.announce import Schedule
from piranha.director.loop import Clocks, PulseLoop
from piranha.director.lvsdproc import LvsdProcess
from piranha.director.plan import Path, PlanError, Settings, settings
from piranha.director.ports import Commands, RtnlAddresses, RtnlLinks, local_addresses
from piranha.errors import ConfigErrors, PiranhaError
from piranha.heartbeat.events import State
from piranha.heartbeat.machine import FailoverMachine
from piranha.heartbeat.packet import AuthCodec, Codec, PlainCodec
from piranha.heartbeat.transport import BindError, Transport
from piranha.lvsd import logs
from piranha.lvsd.statefile import write_atomic
from piranha.model import Cluster, IPAddress, Network, ServiceType
from piranha.net.arp import FrameSender
from piranha.net.rtnl import Rtnl

PIDFILE = "/var/run/pulse.pid"
STATUS_FILE = "/var/run/piranha/pulse.status.json"
LVSD = "/usr/sbin/lvsd"
IP_FORWARD = "/proc/sys/net/ipv4/ip_forward"


def parser() -> argparse.ArgumentParser:
    """Piranha's options (-c, -n, -t, -v, --forceactive, --lvsd) plus piranha's own."""
    p = daemon.parser("pulse", "LVS director heartbeat and failover daemon", "pulse 1.56")
    p.add_argument("--forceactive", action="store_true", help="become active at start")
    p.add_argument("--lvsd", default=None, metavar="PATH",
                   help=f"lvsd to run (default {LVSD}, else the lvsd installed with pulse)")
    p.add_argument("--norun", dest="test_start", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--pidfile", default=PIDFILE, help=f"pid file (default {PIDFILE})")
    p.add_argument("--status-file", default=STATUS_FILE,
                   help=f"role and state for piranha-gui and scripts (default {STATUS_FILE})")
    p.add_argument("--cold-standby", action="store_true",
                   help="Piranha's way: start lvsd only when this director becomes active")
    p.add_argument("--lvsd-option", action="append", default=[], metavar="ARG",
                   help="extra argument for lvsd (repeatable), e.g. --lvsd-option=--pidfile=F")
    p.add_argument("--lvsd-timeout", type=float, default=30.0, metavar="SECONDS",
                   help="how long activation waits for lvsd to program the table (default 30)")
    p.add_argument("--ip-forward", choices=("warn", "set"), default="warn",
                   help="network = nat needs net.ipv4.ip_forward = 1: warn (default) or set it")
    p.add_argument("--announce", type=int, default=5, metavar="N",
                   help="gratuitous ARPs per address on activation (default 5, 1 s apart)")
    return p


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
        problems = _device_problems(rtnl, mine)
    if problems:
        return _fail("\n".join(f"{args.configfile}: {p}" for p in problems))
    notes = _notes(args, cluster)
    if args.test_start:
        print("\n".join(_test_plan(args, cluster, mine, notes)))
        return 0
    if not mine.master and not cluster.backup_active:
        print("pulse: this director is the backup and backup_active = 0: nothing to do",
              file=sys.stderr)
        return 0
    try:
        transport = Transport(mine.paths, mine.port, _codec(mine))
    except BindError as exc:
        print(f"pulse: {exc}", file=sys.stderr)
        return _fail("cannot create heartbeat socket. running as root?")
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
        return _run(args, cluster, mine, Rtnl(), transport, log)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(args.pidfile)


def _run(args: argparse.Namespace, cluster: Cluster, mine: Settings, rtnl: Rtnl,
         transport: Transport, log: Logger) -> int:
    warm = not args.cold_standby
    machine = FailoverMachine(keepalive=mine.keepalive, deadtime=mine.deadtime,
                              master=mine.master, backup_active=cluster.backup_active,
                              force_active=args.forceactive, authenticated=mine.key is not None,
                              warm_standby=warm)
    lvsd = LvsdProcess(_lvsd_argv(args), log, block_after=3 if warm else 1)
    sync = _sync_backend(mine, log)
    frames = FrameSender()
    actuator = Actuator(
        mine.vips, RtnlAddresses(rtnl), lvsd, log, send_frame=frames, run_command=Commands(),
        sync=sync, sync_daemon=_sync(mine), active_cmd=mine.active_cmd,
        inactive_cmd=mine.inactive_cmd, warm=warm,
        schedule=Schedule(count=args.announce), ready_timeout=args.lvsd_timeout)
    links = RtnlLinks(rtnl, mine.watched) if mine.watched else None
    status = StatusFile(args.status_file, mine, machine, actuator, log)
    loop = PulseLoop(machine, transport, actuator, lvsd, log,
                     Clocks(time.monotonic, time.time), links=links, on_state=status.changed)
    loop.reload = Reload(args.configfile, rtnl, mine, loop, log)
    sdnotify.notify(f"READY=1\nSTATUS=started as {'master' if mine.master else 'backup'}"
                    f"\nMAINPID={os.getpid()}")
    try:
        return loop.run()
    finally:
        status.remove()
        sdnotify.notify("STOPPING=1")
        if links is not None:
            links.close()
        frames.close()
        rtnl.close()


class Reload:
    """SIGHUP: re-read lvs.cf and apply what pulse owns (heartbeat paths and key, timers,
    commands, sync daemon, VIPs); an unusable file changes nothing. lvsd reloads itself."""

    def __init__(self, path: str, rtnl: Rtnl, current: Settings, loop: PulseLoop,
                 log: Logger) -> None:
        self.path, self.rtnl, self.current, self.loop, self.log = path, rtnl, current, loop, log

    def __call__(self, now: float) -> bool:
        new = _reload(self.path, self.rtnl, self.current, self.log)
        if new is None:
            return False
        old, loop, actuator = self.current, self.loop, self.loop.actuator
        if (new.paths, new.port, new.key) != (old.paths, old.port, old.key):
            try:
                fresh = Transport(new.paths, new.port, _codec(new))
            except BindError as exc:
                self.log.error(f"reload: {exc}; the running configuration stays")
                return False
            loop.transport.close()
            loop.transport = fresh
            loop.machine.authenticated = new.key is not None
            self.log.info("reload: heartbeat paths changed")
        loop.machine.keepalive, loop.machine.deadtime = new.keepalive, new.deadtime
        actuator.active_cmd, actuator.inactive_cmd = new.active_cmd, new.inactive_cmd
        actuator.sync_daemon = _sync(new)
        if actuator.sync is None and new.sync_iface is not None:
            actuator.sync = _sync_backend(new, self.log)
        actuator.update(new.vips, now)
        self.current = new
        self.log.info(f"reload: {self.path} applied")
        return True


def _reload(path: str, rtnl: Rtnl, old: Settings, log: Logger) -> Settings | None:
    """The new settings from ``path``, or None (logged) when they cannot be applied."""
    try:
        result: LoadResult = load(path)
    except ConfigErrors as exc:
        log.error(f"reload: {path} is invalid; the running configuration stays")
        for line in exc.report().splitlines():
            log.error(f"reload: {line}")
        return None
    try:
        new = settings(result.cluster, local_addresses(rtnl))
    except PlanError as exc:
        log.error(f"reload: {path}: {exc}; the running configuration stays")
        return None
    if new.master != old.master:
        log.error(f"reload: {path} makes this director the "
                  f"{'master' if new.master else 'backup'}; that needs a restart of pulse")
        return None
    problems = _device_problems(rtnl, new)
    if problems:
        for line in problems:
            log.error(f"reload: {path}: {line}; the running configuration stays")
        return None
    return new


class StatusFile:
    """pulse's state for the GUI and scripts, rewritten atomically on every state change:
    ``{"pid", "role", "state", "since", "faults", "vips", "partner"}``; removed at exit."""

    def __init__(self, path: str, mine: Settings, machine: FailoverMachine, actuator: Actuator,
                 log: Logger) -> None:
        self.path, self.mine, self.machine, self.actuator, self.log = (
            path, mine, machine, actuator, log)

    def changed(self, state: State) -> None:
        sdnotify.notify(f"STATUS={state.value}")
        self.log.debug(f"state: {state.value}")
        doc = {"pid": os.getpid(), "role": "master" if self.mine.master else "backup",
               "state": state.value, "since": time.time(),
               "faults": sorted(f.value for f in self.machine.faults),
               "vips": [str(v.ip) for v in self.actuator.vips],
               "partner": self.mine.partners[0] if self.mine.partners else None}
        try:
            write_atomic(self.path, json.dumps(doc, sort_keys=True) + "\n", 0o644, sync=False)
        except OSError as exc:
            self.log.error(f"cannot write {self.path}: {exc}")

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.path)


def _codec(mine: Settings) -> Codec:
    if mine.key is not None:
        return AuthCodec(mine.key, mine.partners)
    return PlainCodec(mine.partners)


def _sync(mine: Settings) -> SyncDaemon | None:
    return None if mine.sync_iface is None else SyncDaemon(mine.sync_iface, mine.sync_id)


def _sync_backend(mine: Settings, log: Logger) -> SyncPort | None:
    """The kernel's IPVS table for the sync daemon commands (only with syncdaemon = 1)."""
    if mine.sync_iface is None:
        return None
    from piranha.ipvs.netlink import NetlinkIpvs
    try:
        return NetlinkIpvs()
    except (PiranhaError, OSError) as exc:
        log.error(f"syncdaemon = 1 but the IPVS table cannot be opened: {exc}")
        return None


def _lvsd_argv(args: argparse.Namespace) -> list[str]:
    """lvsd's command line as Piranha built it (--nofork, or --nodaemon under pulse -n)."""
    prog = [args.lvsd] if args.lvsd else _default_lvsd()
    argv = [*prog, "--nodaemon" if args.nodaemon else "--nofork", "-c", args.configfile]
    if args.verbose:
        argv.append("-v")
    return argv + list(args.lvsd_option)


def _default_lvsd() -> list[str]:
    """Piranha's path, else the lvsd script installed beside this pulse, else this
    interpreter running piranha.lvs (``python -m piranha.pulse``)."""
    if os.path.exists(LVSD):
        return [LVSD]
    if os.path.basename(sys.argv[0]) == "pulse":
        beside = os.path.join(os.path.dirname(os.path.abspath(sys.argv[0])), "lvsd")
        if os.path.isfile(beside) and os.access(beside, os.X_OK):
            return [beside]
    return [sys.executable, "-m", "piranha.lvs"]


def _device_problems(rtnl: Rtnl, mine: Settings) -> list[str]:
    """VIP devices that do not exist (the address could never be raised)."""
    out = []
    for vip in mine.vips:
        if rtnl.link(vip.device) is None:
            out.append(f"{vip.owner}: address {vip.ip} is on device {vip.label or vip.device}, "
                       f"but this director has no interface {vip.device}")
    return out


def _notes(args: argparse.Namespace, cluster: Cluster) -> list[str]:
    """Warnings worth a line at start: IP forwarding for NAT, a readable heartbeat key."""
    out = []
    if cluster.network is Network.NAT:
        out += _ip_forward(args.ip_forward, args.test_start)
    if cluster.heartbeat_key:
        mode = os.stat(args.configfile).st_mode
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            out.append(f"{args.configfile} holds heartbeat_key but is readable by other users "
                       f"(mode {stat.S_IMODE(mode):o}); chmod 600 it")
    return out


def _ip_forward(policy: str, dry_run: bool) -> list[str]:
    try:
        with open(IP_FORWARD, encoding="ascii") as f:
            on = f.read().strip() == "1"
    except OSError as exc:
        return [f"network = nat: cannot read {IP_FORWARD}: {exc.strerror}"]
    if on:
        return []
    if policy == "set" and not dry_run:
        try:
            with open(IP_FORWARD, "w", encoding="ascii") as f:
                f.write("1\n")
            return ["network = nat: set net.ipv4.ip_forward = 1 (--ip-forward=set)"]
        except OSError as exc:
            return [f"network = nat: cannot set {IP_FORWARD}: {exc.strerror}"]
    return ["network = nat but net.ipv4.ip_forward = 0: real servers' replies will not be "
            "forwarded (set it, or start pulse with --ip-forward=set)"]


def _test_plan(args: argparse.Namespace, cluster: Cluster, mine: Settings,
               notes: list[str]) -> list[str]:
    """``-t``: what pulse would do here, step by step, touching nothing."""
    role = "master" if mine.master else "backup"
    lines = [f"pulse: {args.configfile}: this director is the {role}"]
    if not mine.paths:
        lines.append("pulse: no partner (backup_active = 0): no heartbeats; active after "
                     f"deadtime ({mine.deadtime:g}s)")
    fmt = "authenticated (heartbeat_key)" if mine.key else "plain (Piranha 0.8.6 format)"
    for p in mine.paths:
        lines.append(f"pulse: heartbeat {p.name}: {p.local} -> {p.partner} udp/{mine.port}, "
                     f"{fmt}, every {mine.keepalive:g}s, partner dead after {mine.deadtime:g}s")
        lines.append(f"pulse: heartbeat {p.name}: {_bind_check(p.local, mine.port)}")
    standby = ("cold (lvsd started on activation)" if args.cold_standby
               else "warm (lvsd runs on both directors)")
    lines.append(f"pulse: standby: {standby}; lvsd: {' '.join(_lvsd_argv(args))}")
    if mine.inactive_cmd:
        lines.append(f"pulse: at start: would run {mine.inactive_cmd}")
    if mine.sync_iface:
        lines.append(f"pulse: sync daemon: backup on {mine.sync_iface} (syncid {mine.sync_id}),"
                     " master while active")
    if mine.active_cmd:
        lines.append(f"pulse: on activation: would run {mine.active_cmd}")
    for vip in mine.vips:
        lines.append(f"pulse: on activation: would add {vip} ({vip.owner}) and announce it "
                     f"{args.announce} times")
    if mine.watched:
        watched = ", ".join(f"{k} {v}" for k, v in mine.watched.items())
        lines.append(f"pulse: monitor_links: {watched}")
    lines += [f"pulse: warning: {n}" for n in notes]
    from piranha.lvs import test_plan
    return lines + test_plan(cluster)


def _bind_check(ip: IPAddress, port: int) -> str:
    """Whether the heartbeat address can be bound now (closed again at once)."""
    try:
        Transport([Path("check", ip, ip)], port, PlainCodec(())).close()
    except BindError as exc:
        return f"cannot bind now: {exc.strerror} (is pulse already running?)"
    return "address can be bound"


def _fail(message: str) -> int:
    print(f"pulse: {message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
