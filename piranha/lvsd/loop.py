"""lvsd's daemon loop: one selector over the report socket, the signal pipe and the control
socket, plus a reconcile timer. It moves bytes and signals; the engine decides.

* reports: datagrams from nannies on a Unix socket with SO_PASSCRED, so each carries the
  sender's pid from the kernel (a report from a nanny that lvsd already replaced is ignored);
* signals: handlers do nothing but wake the loop (``signal.set_wakeup_fd`` writes the number);
  SIGHUP reloads, SIGTERM/SIGINT shut down, SIGCHLD reaps;
* every wake-up ends with: reap children, restarts due, reconcile if anything happened or the
  timer fired, then :meth:`Daemon._publish`: the state file and the status snapshot, each
  rewritten only when what it shows changed (the engine itself writes no file).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import selectors
import signal
import socket
import struct
from collections.abc import Callable
from logging import Logger
from typing import TYPE_CHECKING

from piranha.config import LoadResult
from piranha.errors import ConfigErrors
from piranha.health.report import HealthReport, ReportError, decode_message
from piranha.lvsd import control, statefile
from piranha.lvsd.engine import Engine
from piranha.lvsd.events import Watchers
from piranha.lvsd.view import snapshot
from piranha.ratelimit import LogLimiter
from piranha.supervise.runner import ProcessRunner
from piranha.supervise.zygote import ZygoteDied

if TYPE_CHECKING:  # prometheus_client costs ~0.1 s to import: only lvsd_metrics loads it
    from piranha.lvsd.metrics import Sample
    from piranha.metrics import Endpoint

_HANDLED = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGCHLD)
_CREDS = struct.Struct("3i")
#: reports read per wake-up at most (then the loop turns once and comes back)
MAX_REPORTS = 4096


def _wake(signum: int, frame: object) -> None:
    """Signal handler: nothing; the wakeup fd carries the signal number to the loop."""


class Daemon:
    """Runs an engine until SIGTERM or a hard shutdown."""

    def __init__(self, engine: Engine, runner: ProcessRunner, reports: socket.socket,
                 listener: socket.socket | None, log: Logger, *,
                 load: Callable[[str], LoadResult], status_path: str | None,
                 state_path: str | None = None, reconcile_interval: float = 5.0,
                 clock: Callable[[], float],
                 on_ready: Callable[[], None] | None = None,
                 exporter: Endpoint[Sample] | None = None) -> None:
        self.engine, self.runner, self.reports, self.listener = engine, runner, reports, listener
        self.log, self.load, self.status_path = log, load, status_path
        self.interval, self.clock = reconcile_interval, clock
        self.on_ready = on_ready
        self.exporter = exporter
        self.sampled: tuple[object, ...] | None = None
        self.stats_seen = 0  # check-count reports taken (they move the metrics, not the table)
        self.keeper = statefile.Keeper(state_path, log.error, log.info)
        self.bad_reports = LogLimiter(clock)
        self.published: tuple[int, ...] | None = None
        self.kept: tuple[object, ...] | None = None
        self.sel = selectors.DefaultSelector()
        self.watchers = Watchers(self.sel)
        self.clients = control.Clients(self.sel, engine.control, clock, watchers=self.watchers)
        self.wake_r = -1

    def run(self) -> int:
        """Start the engine and serve; lvsd's exit status."""
        self._install_signals()
        self.sel.register(self.reports, selectors.EVENT_READ)
        if self.listener is not None:
            self.sel.register(self.listener, selectors.EVENT_READ)
        exits = self.runner.exits_fd()
        if exits is not None:  # a zygote reports exits on a socket
            self.sel.register(exits, selectors.EVENT_READ)
        try:
            return self._serve()
        except ZygoteDied as exc:
            self.log.error(f"{exc}: no nanny can be (re)started; shutting down")
            return self._stop(1)

    def _serve(self) -> int:
        """The loop proper."""
        self.engine.start(self.keeper.load())
        self._publish()
        if self.on_ready is not None:  # the table is programmed: pulse may raise the VIPs
            self.on_ready()
        next_timer = self.clock() + self.interval
        while True:
            wait = min(next_timer, self.engine.next_deadline() or math.inf,
                       self.clients.next_deadline() or math.inf) - self.clock()
            if self.runner.pending:
                wait = 0.0
            signums, reported, woke = self._wait(max(0.0, wait))
            for pid, status in self.runner.reap():
                if self.engine.on_exit(pid, status):
                    return self._stop(1)
            if signal.SIGTERM in signums or signal.SIGINT in signums:
                self.log.info(f"shutting down due to signal {max(signums)}")
                return self._stop(0)
            if signal.SIGHUP in signums:
                try:
                    self._reload()
                except Exception:  # noqa: BLE001 - a reload never takes the running lvsd down
                    self.log.exception("reload: unexpected failure; the running configuration "
                                       "stays")
            self.engine.tick()
            timer = self.clock() >= next_timer
            if reported or timer or not woke:
                self.engine.reconcile()
            if timer:
                next_timer = self.clock() + self.interval
            self._publish()

    def _wait(self, timeout: float) -> tuple[list[int], bool, bool]:
        """(signals, whether a report changed something, whether anything woke us)."""
        signums: list[int] = []
        reported = False
        events = self.sel.select(timeout)
        for key, mask in events:
            if key.fd == self.wake_r:
                with contextlib.suppress(BlockingIOError):
                    signums += list(os.read(self.wake_r, 256))
            elif key.fileobj is self.reports:
                reported = self._read_reports() or reported
            elif key.fileobj is self.listener:
                self.clients.accept(self.listener)
            elif key.data is self.clients:
                self.clients.readable(key.fileobj)
            elif key.data is self.watchers:
                self.watchers.ready(key.fileobj, mask)
        self.clients.expire()
        return signums, reported, bool(events)

    def _read_reports(self) -> bool:
        changed = False
        for _ in range(MAX_REPORTS):
            try:
                data, ancdata, _, _ = self.reports.recvmsg(8192, socket.CMSG_SPACE(_CREDS.size))
            except BlockingIOError:
                break
            pid = next((_CREDS.unpack(d[:_CREDS.size])[0] for lvl, typ, d in ancdata
                        if lvl == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS), 0)
            try:
                report = decode_message(data)
            except ReportError as exc:
                text = self.bad_reports.line("report",
                                             f"pid {pid}: {exc}: {exc.line!r}")
                if text is not None:
                    self.log.warning(text)
                continue
            if isinstance(report, HealthReport):
                changed = self.engine.on_report(pid, report) or changed
            else:
                self.stats_seen += self.engine.on_stats(pid, report)
        return changed

    def _reload(self) -> None:
        path = self.engine.config_path
        try:
            result = self.load(path)
        except ConfigErrors as exc:
            self.log.error(f"reload: {path} is invalid; the running configuration stays")
            for line in exc.report().splitlines():
                self.log.error(f"reload: {line}")
            return
        for warning in result.warnings:
            self.log.warning(f"reload: {warning}")
        if result.cluster == self.engine.cluster:
            self.log.info(f"reload: {path} unchanged")
            return
        if result.cluster.lvsd_metrics != self.engine.cluster.lvsd_metrics:
            self.log.warning(f"reload: lvsd_metrics changed to {result.cluster.lvsd_metrics}; "
                             "the endpoint moves when lvsd restarts")
        self.engine.reload(result.cluster)

    def _stop(self, code: int) -> int:
        """Stop nannies, remove owned entries, wait for the nannies; ``code``."""
        self.engine.shutdown()
        self.keeper.keep(self.engine.saved_state())
        limit = self.clock() + 2 * self.engine.supervisor.stop_timeout + 1
        while self.engine.supervisor.stopping() and self.clock() < limit:
            with contextlib.suppress(BlockingIOError, OSError):
                while self.reports.recv(8192):  # keep nannies from blocking on a full queue
                    pass
            with contextlib.suppress(ZygoteDied):
                for pid, status in self.runner.reap():
                    self.engine.on_exit(pid, status)
            self.engine.tick()
            self.sel.select(0.05)
        if self.status_path is not None:  # nothing of ours is in the table any more
            with contextlib.suppress(OSError):
                os.unlink(self.status_path)
        self.clients.close()
        self.watchers.close()
        if self.listener is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.listener.getsockname())
        return code

    def _install_signals(self) -> None:
        self.wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        for sig in _HANDLED:
            signal.signal(sig, _wake)
        self.sel.register(self.wake_r, selectors.EVENT_READ)

    def _publish(self) -> None:
        """Send the turn's events to the watchers, persist the state file, rewrite the status
        snapshot and hand the metrics endpoint a new sample, each only if what it shows
        changed."""
        self.watchers.publish(self.engine.take_events())
        kept = self.engine.state_generation()
        # building the state means every owned key: not every turn; a failed write is retried
        if kept != self.kept and self.keeper.keep(self.engine.saved_state()):
            self.kept = kept
        generation = self.engine.generation()
        # every reconcile dumps a new table (fresh IPVS counters): a new sample for scrapes
        sampled = (generation, id(self.engine.table), self.stats_seen)
        if self.exporter is not None and sampled != self.sampled:
            self.sampled = sampled
            self.exporter.publish(self.engine)
        if self.status_path is None or generation == self.published:
            return
        self.published = generation
        snap = snapshot(self.engine.view(), os.getpid(), self.engine.wall())
        text = json.dumps(snap, sort_keys=True) + "\n"
        try:
            statefile.write_atomic(self.status_path, text, 0o644, sync=False)
        except OSError as exc:
            self.log.error(f"cannot write status snapshot {self.status_path}: {exc}")
