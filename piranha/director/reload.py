"""pulse's SIGHUP: re-read lvs.cf, apply what pulse owns outside the failover machine
(heartbeat sockets, commands, sync daemon, VIPs) and hand the machine its part as a
:class:`~piranha.heartbeat.events.Reconfigure` event. An unusable file changes nothing."""

from __future__ import annotations

from logging import Logger
from typing import TYPE_CHECKING

from piranha.config import LoadResult, load
from piranha.director.build import codec, device_problems, sync_backend, sync_daemon
from piranha.director.plan import PlanError, Settings, settings
from piranha.director.ports import local_addresses
from piranha.errors import ConfigErrors
from piranha.heartbeat.events import Reconfigure
from piranha.heartbeat.transport import BindError, Transport
from piranha.net.rtnl import Rtnl

if TYPE_CHECKING:
    from piranha.director.loop import PulseLoop


class Reload:
    """SIGHUP: re-read lvs.cf and apply what pulse owns (heartbeat paths and key, commands,
    sync daemon, VIPs); the machine's timers and heartbeat mode come back as an event. lvsd
    reloads itself (the machine's ReloadLvsd)."""

    def __init__(self, path: str, rtnl: Rtnl, current: Settings, log: Logger) -> None:
        self.path, self.rtnl, self.current, self.log = path, rtnl, current, log

    def __call__(self, now: float, loop: PulseLoop) -> Reconfigure | None:
        new = _reload(self.path, self.rtnl, self.current, self.log)
        if new is None:
            return None
        old, actuator = self.current, loop.actuator
        if (new.paths, new.port, new.key) != (old.paths, old.port, old.key):
            try:
                fresh = Transport(new.paths, new.port, codec(new))
            except BindError as exc:
                self.log.error(f"reload: {exc}; the running configuration stays")
                return None
            loop.transport.close()
            loop.transport = fresh
            self.log.info("reload: heartbeat paths changed")
        sync = actuator.sync
        if sync is None and new.sync_iface is not None:
            sync = sync_backend(new, self.log)
        actuator.configure(new.active_cmd, new.inactive_cmd, sync_daemon(new), sync)
        actuator.update(new.vips, now)
        self.current = new
        self.log.info(f"reload: {self.path} applied")
        return Reconfigure(now, new.keepalive, new.deadtime, new.key is not None)


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
    problems = device_problems(rtnl, new)
    if problems:
        for line in problems:
            log.error(f"reload: {path}: {line}; the running configuration stays")
        return None
    return new
