"""Carries out the failover machine's Activate / Deactivate / Announce on this director.

The machine decides; this module does, through injected ports (addresses, frames, the IPVS
sync daemon, commands, lvsd), so unit tests drive it with fakes and the kernel tests with the
real thing. Rules:

* Warm standby (the default): lvsd runs on both directors all the time, so activation only
  waits for lvsd if it is not ready yet (just restarted), then raises the addresses. Cold
  standby (Piranha's way, ``--cold-standby``) starts lvsd on activation and stops it on
  deactivation.
* Order. Activation: ``active_cmd``, then (once lvsd is ready) the NAT router address before
  the VIPs, so replies have their gateway before requests arrive, the first announcements,
  then the sync daemon to master (Piranha switched it before the addresses; stopping the
  kernel's backup thread is slow and nothing waits for it). Deactivation: ``inactive_cmd``,
  sync daemon backup, the VIPs, then the NAT router (the reverse).
* Ownership. pulse removes exactly the addresses it added. An address already on the device
  when pulse activates is left alone on deactivation, and logged: someone else put it there.
  At start, a VIP found with the very label lvs.cf gives it is a leftover of an earlier pulse
  (killed with -9) and is removed.
* Failures of one address or one frame are logged and the rest carries on: a half-raised
  director is better than a dead one, and the log says what is missing.
"""

from __future__ import annotations

import errno
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address
from logging import Logger
from typing import Protocol

from piranha.director.announce import Schedule
from piranha.director.plan import Vip
from piranha.errors import KernelError, PiranhaError
from piranha.ipvs.types import Daemon, DaemonState, Op, StartDaemon, StopDaemon
from piranha.model import IPAddress
from piranha.net.arp import announcement


class AddressPort(Protocol):
    """What pulse needs from rtnetlink (``piranha.net.rtnl.Rtnl`` in production)."""

    def add_address(self, device: str, ip: IPAddress, prefix: int,
                    label: str | None = None) -> bool: ...

    def remove_address(self, device: str, ip: IPAddress, prefix: int) -> bool: ...

    def mac(self, device: str) -> bytes: ...

    def labelled(self, ip: IPAddress) -> tuple[str, str, int] | None:
        """(device, label, prefix) of the interface holding ``ip``, or None."""
        ...


class LvsdPort(Protocol):
    """pulse's lvsd child (``piranha.director.lvsdproc.LvsdProcess`` in production)."""

    @property
    def ready(self) -> bool: ...

    def start(self, now: float) -> None: ...

    def stop(self, now: float) -> None: ...


class SyncPort(Protocol):
    """The IPVS table's sync-daemon commands (an ``IpvsBackend``)."""

    def apply(self, ops: Sequence[Op]) -> list[KernelError]: ...


@dataclass(frozen=True)
class SyncDaemon:
    """``syncdaemon = 1``: the interface and id both roles use."""

    iface: str
    syncid: int


class Actuator:
    """Executes activation and deactivation; the loop calls ``tick`` on every wake-up."""

    def __init__(self, vips: Sequence[Vip], addresses: AddressPort, lvsd: LvsdPort,
                 log: Logger, *, send_frame: Callable[[str, bytes], None],
                 run_command: Callable[[str], None], sync: SyncPort | None = None,
                 sync_daemon: SyncDaemon | None = None, active_cmd: str | None = None,
                 inactive_cmd: str | None = None, warm: bool = True,
                 schedule: Schedule | None = None, ready_timeout: float = 30.0,
                 dry_run: bool = False) -> None:
        self.vips = tuple(vips)
        self.addresses, self.lvsd, self.log = addresses, lvsd, log
        self.send_frame, self.run_command = send_frame, run_command
        self.sync, self.sync_daemon = sync, sync_daemon
        self.active_cmd, self.inactive_cmd = active_cmd, inactive_cmd
        self.warm, self.ready_timeout, self.dry_run = warm, ready_timeout, dry_run
        self.schedule = schedule if schedule is not None else Schedule()
        #: addresses this pulse added and will remove, in the order they were added
        self.raised: list[Vip] = []
        #: activation waiting for lvsd since this time (None: not waiting)
        self.waiting_since: float | None = None
        self.active = False

    # ---- the machine's actions -------------------------------------------------------------

    def startup(self, now: float) -> None:
        """Before the loop: inactive_cmd, sync daemon backup, leftover VIPs removed."""
        self._command(self.inactive_cmd)
        self._sync_role(DaemonState.BACKUP)
        for vip in self.vips:
            self._remove_leftover(vip)
        if self.warm:
            self.lvsd.start(now)

    def activate(self, now: float) -> None:
        self.active = True
        self._command(self.active_cmd)
        if not self.warm:
            self.lvsd.start(now)
        if self.lvsd.ready:
            self._raise_all(now)
        else:
            self.waiting_since = now
            self.log.info("activation: waiting for lvsd to program the table")
        # after the addresses: stopping the kernel's backup sync thread takes a while, and the
        # connections it synced are already in the table
        self._sync_role(DaemonState.MASTER)

    def deactivate(self, now: float) -> None:
        self.active = False
        self.waiting_since = None
        self._command(self.inactive_cmd)
        self._sync_role(DaemonState.BACKUP)
        if not self.warm:
            self.lvsd.stop(now)
        self.schedule.cancel()
        for vip in reversed(self.raised):
            self._remove(vip)
        self.raised = []

    def announce(self, now: float) -> None:
        """Partner claims to be active while we are: active_cmd again, re-add, re-ARP."""
        self._command(self.active_cmd)
        if self.waiting_since is None:
            self._raise_all(now)

    # ---- events from the loop --------------------------------------------------------------

    def lvsd_ready(self, now: float) -> None:
        """lvsd has programmed its table: finish a pending activation."""
        if self.waiting_since is not None:
            self.log.info(f"lvsd ready after {now - self.waiting_since:.2f}s: raising the "
                          "addresses")
            self.waiting_since = None
            self._raise_all(now)

    def tick(self, now: float) -> str | None:
        """Send the announcements due; a failure line if lvsd never got ready in time."""
        for vip in self.schedule.due(now):
            self._send_announcement(vip)
        if self.waiting_since is not None and now - self.waiting_since >= self.ready_timeout:
            self.waiting_since = None
            return f"lvsd did not program the table within {self.ready_timeout:g}s"
        return None

    def next_deadline(self) -> float:
        wait = math.inf if self.waiting_since is None else self.waiting_since + self.ready_timeout
        return min(wait, self.schedule.next_deadline())

    def configure(self, active_cmd: str | None, inactive_cmd: str | None,
                  sync_daemon: SyncDaemon | None, sync: SyncPort | None) -> None:
        """New lvs.cf (SIGHUP): the commands and sync daemon from now on."""
        self.active_cmd, self.inactive_cmd = active_cmd, inactive_cmd
        self.sync_daemon, self.sync = sync_daemon, sync

    def update(self, vips: Sequence[Vip], now: float) -> None:
        """New lvs.cf (SIGHUP): raise the added VIPs and drop the removed ones if active."""
        new = tuple(vips)
        if self.active and self.waiting_since is None:
            gone = [v for v in self.raised if v not in new]
            for vip in reversed(gone):
                self._remove(vip)
            self.schedule.cancel(gone)
            self.raised = [v for v in self.raised if v in new]
            self.vips = new
            self._raise_all(now, only_new=True)
        self.vips = new

    # ---- helpers ---------------------------------------------------------------------------

    def _raise_all(self, now: float, only_new: bool = False) -> None:
        """Add every VIP (again: one removed behind our back comes back) and announce them;
        ``only_new``: just the ones not raised yet (a reload)."""
        fresh = [vip for vip in self.vips
                 if not (only_new and vip in self.raised) and self._add(vip)]
        self.schedule.add(fresh, now)
        for vip in self.schedule.due(now):  # the first burst now, the repeats from the loop
            self._send_announcement(vip)
        if fresh:
            self.log.info(f"raised {', '.join(str(v.ip) for v in fresh)}; announcing")

    def _add(self, vip: Vip) -> bool:
        """Make sure ``vip`` is up; True when it is (and so worth announcing)."""
        if self.dry_run:
            self.log.info(f"would add {vip} ({vip.owner})")
            return False
        try:
            added = self.addresses.add_address(vip.device, vip.ip, vip.prefix, vip.label)
        except (PiranhaError, OSError) as exc:  # logged, carry on
            self.log.error(f"cannot add {vip} ({vip.owner}): {exc}")
            return False
        if added and vip not in self.raised:
            self.raised.append(vip)
        elif not added and vip not in self.raised:
            self.log.warning(f"{vip.ip} is already on {vip.device} (not added by pulse): "
                             "announcing it, but it will not be removed on deactivation")
        return True

    def _remove(self, vip: Vip) -> None:
        try:
            if not self.addresses.remove_address(vip.device, vip.ip, vip.prefix):
                self.log.warning(f"{vip} was already gone")
        except (PiranhaError, OSError) as exc:  # keep removing the others
            self.log.error(f"cannot remove {vip}: {exc}")

    def _remove_leftover(self, vip: Vip) -> None:
        if self.dry_run:
            return
        found = self.addresses.labelled(vip.ip)
        if found is None:
            return
        device, label, prefix = found
        if device == vip.device and vip.label is not None and label == vip.label:
            self.log.warning(f"removing {vip}: left over from an earlier pulse")
            self._remove(Vip(vip.ip, prefix, vip.device, vip.label, vip.owner))

    def _send_announcement(self, vip: Vip) -> None:
        if self.dry_run:
            return
        try:
            frame = announcement(vip.ip, self.addresses.mac(vip.device))
            self.send_frame(vip.device, frame)
        except (PiranhaError, OSError, LookupError) as exc:  # one lost frame, not the others
            kind = "arp" if isinstance(vip.ip, IPv4Address) else "neighbour advertisement"
            self.log.error(f"gratuitous {kind} for {vip.ip} on {vip.device}: {exc}")

    def _command(self, cmd: str | None) -> None:
        if not cmd:
            return
        if self.dry_run:
            self.log.info(f"would run: {cmd}")
            return
        try:
            self.run_command(cmd)
        except OSError as exc:
            self.log.error(f"cannot run {cmd!r}: {exc}")

    def _sync_role(self, role: DaemonState) -> None:
        """Piranha's order: stop backup, stop master, start ``role``."""
        if self.sync_daemon is None or self.sync is None:
            return
        sid = self.sync_daemon.syncid
        ops: list[Op] = [StopDaemon(DaemonState.BACKUP, sid), StopDaemon(DaemonState.MASTER, sid),
                         StartDaemon(Daemon(role, mcast_ifn=self.sync_daemon.iface, syncid=sid))]
        if self.dry_run:
            self.log.info(f"would switch the sync daemon to {role.name.lower()}")
            return
        for err in self.sync.apply(ops):
            if err.errno != errno.ESRCH:  # stopping a daemon that does not run
                self.log.error(f"sync daemon {role.name.lower()}: {err}")
