"""What pulse builds from its settings: the heartbeat codec, the sync daemon and its table,
lvsd's command line, and the checks that name what cannot work here."""

from __future__ import annotations

import argparse
import os
import stat
import sys
from logging import Logger

from piranha.director.actuator import SyncDaemon, SyncPort
from piranha.director.plan import Settings
from piranha.errors import PiranhaError
from piranha.heartbeat.packet import AuthCodec, Codec, PlainCodec
from piranha.model import Cluster, Network
from piranha.net.rtnl import Rtnl

LVSD = "/usr/sbin/lvsd"
IP_FORWARD = "/proc/sys/net/ipv4/ip_forward"


def codec(mine: Settings) -> Codec:
    if mine.key is not None:
        return AuthCodec(mine.key, mine.partners, primary=mine.master)
    return PlainCodec(mine.partners)


def sync_daemon(mine: Settings) -> SyncDaemon | None:
    return None if mine.sync_iface is None else SyncDaemon(mine.sync_iface, mine.sync_id)


def sync_backend(mine: Settings, log: Logger) -> SyncPort | None:
    """The kernel's IPVS table for the sync daemon commands (only with syncdaemon = 1)."""
    if mine.sync_iface is None:
        return None
    from piranha.ipvs.netlink import NetlinkIpvs
    try:
        return NetlinkIpvs()
    except (PiranhaError, OSError) as exc:
        log.error(f"syncdaemon = 1 but the IPVS table cannot be opened: {exc}")
        return None


def lvsd_argv(args: argparse.Namespace) -> list[str]:
    """lvsd's command line as Piranha built it (--nofork, or --nodaemon under pulse -n)."""
    prog = [args.lvsd] if args.lvsd else default_lvsd()
    argv = [*prog, "--nodaemon" if args.nodaemon else "--nofork", "-c", args.configfile]
    if args.verbose:
        argv.append("-v")
    return argv + list(args.lvsd_option)


def default_lvsd() -> list[str]:
    """Piranha's path, else the lvsd script installed beside this pulse, else this
    interpreter running piranha.lvs (``python -m piranha.pulse``)."""
    if os.path.exists(LVSD):
        return [LVSD]
    if os.path.basename(sys.argv[0]) == "pulse":
        beside = os.path.join(os.path.dirname(os.path.abspath(sys.argv[0])), "lvsd")
        if os.path.isfile(beside) and os.access(beside, os.X_OK):
            return [beside]
    return [sys.executable, "-m", "piranha.lvs"]


def device_problems(rtnl: Rtnl, mine: Settings) -> list[str]:
    """VIP devices that do not exist (the address could never be raised)."""
    out = []
    for vip in mine.vips:
        if rtnl.link(vip.device) is None:
            out.append(f"{vip.owner}: address {vip.ip} is on device {vip.label or vip.device}, "
                       f"but this director has no interface {vip.device}")
    return out


def notes(args: argparse.Namespace, cluster: Cluster) -> list[str]:
    """Warnings worth a line at start: IP forwarding for NAT, a readable heartbeat key."""
    out = []
    if cluster.network is Network.NAT:
        out += ip_forward(args.ip_forward, args.test_start)
    if cluster.heartbeat_key:
        mode = os.stat(args.configfile).st_mode
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            out.append(f"{args.configfile} holds heartbeat_key but is readable by other users "
                       f"(mode {stat.S_IMODE(mode):o}); chmod 600 it")
    return out


def ip_forward(policy: str, dry_run: bool) -> list[str]:
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
