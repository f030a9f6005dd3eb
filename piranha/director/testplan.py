"""``pulse -t``: what pulse would do on this director, step by step, touching nothing."""

from __future__ import annotations

import argparse

from piranha.director.build import lvsd_argv
from piranha.director.plan import Settings
from piranha.heartbeat.packet import PlainCodec
from piranha.heartbeat.transport import BindError, Path, Transport
from piranha.model import Cluster, IPAddress

#: what pulse says, and does (it exits 0), on a backup with backup_active = 0
NOTHING_TO_DO = "this director is the backup and backup_active = 0: nothing to do"


def test_plan(args: argparse.Namespace, cluster: Cluster, mine: Settings,
               notes: list[str]) -> list[str]:
    """``-t``: what pulse would do here, step by step, touching nothing."""
    role = "master" if mine.master else "backup"
    lines = [f"pulse: {args.configfile}: this director is the {role}"]
    if not mine.master and not cluster.backup_active:
        return [*lines, f"pulse: {NOTHING_TO_DO}"]
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
    lines.append(f"pulse: standby: {standby}; lvsd: {' '.join(lvsd_argv(args))}")
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
