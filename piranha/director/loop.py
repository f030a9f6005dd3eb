"""pulse's daemon loop: one selector over the heartbeat sockets, the signal pipe, lvsd's pidfd
and readiness pipe, and the link watch; timers from the machine, the announcement schedule and
lvsd's restart backoff. It moves bytes and signals; the machine decides, the actuator does.

Each wake-up: read every heartbeat waiting and give the valid ones to the machine (before any
Tick, as pulse's select loop does), handle lvsd's news and signals, then deliver a Tick when a
machine timer is due, and run the actuator's and lvsd's timers.
"""

from __future__ import annotations

import contextlib
import math
import os
import select
import selectors
import signal
from collections.abc import Callable
from dataclasses import dataclass
from logging import Logger
from typing import TYPE_CHECKING, Protocol

from piranha.director.actuator import Actuator
from piranha.director.counters import PulseCounters
from piranha.director.lvsdproc import LvsdProcess
from piranha.heartbeat.events import (
    Action,
    Activate,
    Announce,
    Deactivate,
    DirectorState,
    Event,
    LinkDown,
    LinkUp,
    LvsdExited,
    LvsdReady,
    PeerHeard,
    Reconfigure,
    ReloadLvsd,
    SendHeartbeat,
    Start,
    Terminate,
    Tick,
)
from piranha.heartbeat.machine import FailoverMachine
from piranha.heartbeat.packet import Heartbeat, Reason
from piranha.heartbeat.transport import Transport
from piranha.ratelimit import LogLimiter

if TYPE_CHECKING:  # prometheus_client costs ~0.1 s to import: only pulse_metrics loads it
    from piranha.director.metrics import Sample
    from piranha.metrics import Endpoint

_HANDLED = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)
#: rejections of one kind are logged at most once per this many seconds (a flood of forged
#: packets must not flood syslog)
REJECT_LOG_INTERVAL = 10.0


class LinkMonitor(Protocol):
    """monitor_links: the current fault lines, and a descriptor that wakes us on changes."""

    def faults(self) -> list[str]: ...

    def fileno(self) -> int: ...

    def drain(self) -> bool: ...


class Reloader(Protocol):
    """SIGHUP: re-read lvs.cf and apply what pulse owns outside the machine; the machine's
    part as an event, or None when the file is unusable (nothing changed)."""

    def __call__(self, now: float, loop: PulseLoop) -> Reconfigure | None: ...


@dataclass
class Clocks:
    monotonic: Callable[[], float]
    wall: Callable[[], float]


def _wake(signum: int, frame: object) -> None:
    """Signal handler: nothing; the wakeup fd carries the signal number to the loop."""


class PulseLoop:
    """Runs one director until SIGTERM/SIGINT; ``run`` returns pulse's exit status."""

    def __init__(self, machine: FailoverMachine, transport: Transport, actuator: Actuator,
                 lvsd: LvsdProcess, log: Logger, clocks: Clocks, *,
                 links: LinkMonitor | None = None, reload: Reloader | None = None,
                 on_state: Callable[[DirectorState], None] | None = None,
                 link_poll: float = 1.0, metrics: Endpoint[Sample] | None = None) -> None:
        self.machine, self.transport, self.actuator, self.lvsd = machine, transport, actuator, lvsd
        self.log, self.clocks, self.links, self.reload = log, clocks, links, reload
        self.on_state = on_state
        self.link_poll = link_poll
        self.sel = selectors.DefaultSelector()
        self.wake_r = -1
        self._registered: set[int] = set()
        self._link_faults: list[str] = []
        self._next_link_check = math.inf
        self._rejects = LogLimiter(clocks.monotonic, REJECT_LOG_INTERVAL)
        self.counters = PulseCounters(started=clocks.wall())
        self.metrics = metrics
        self._published = -1

    # ---- the loop --------------------------------------------------------------------------

    def run(self) -> int:
        self._install_signals()
        now = self.clocks.monotonic()
        self.actuator.startup(now)
        self._handle(Start(now))
        self._lvsd_news(now)
        self._publish()
        if self.links is not None:
            self._next_link_check = now
        while self.machine.state is not DirectorState.TERMINATED:
            self._sync_selector()
            wait = self._next_deadline() - self.clocks.monotonic()
            ready = self.sel.select(max(0.0, min(wait, 3600.0)))
            now = self.clocks.monotonic()
            signums: list[int] = []
            for key, _ in ready:
                signums += self._readable(key.fd, now)
            if signal.SIGTERM in signums or signal.SIGINT in signums:
                sig = signal.SIGTERM if signal.SIGTERM in signums else signal.SIGINT
                self._handle(Terminate(now, int(sig)))
                break
            if signal.SIGHUP in signums:
                self._hangup(now)
            self._lvsd_news(now)
            self._timers(now)
            self._publish()
        self._stop_lvsd()
        self.transport.close()
        return 0

    def _next_deadline(self) -> float:
        return min(self.machine.next_deadline(), self.actuator.next_deadline(),
                   self.lvsd.next_deadline(), self._next_link_check)

    def _readable(self, fd: int, now: float) -> list[int]:
        if fd == self.wake_r:
            with contextlib.suppress(BlockingIOError):
                return list(os.read(fd, 256))
            return []
        if fd in self.transport.filenos():
            for result in self.transport.receive(fd, self.clocks.wall()):
                if isinstance(result, Heartbeat):
                    self.counters.heard(self.clocks.wall())
                    self._handle(PeerHeard(now, result))
                else:
                    self.counters.reject(result.reason)
                    self._rejected(str(result), result.reason, now)
        elif fd in self.lvsd.filenos():
            self.lvsd.on_readable(fd, now)
        elif self.links is not None and fd == self.links.fileno() and self.links.drain():
            self._check_links(now)
        return []

    def _lvsd_news(self, now: float) -> None:
        for news in self.lvsd.news():
            if news == "ready":
                self.actuator.lvsd_ready(now)
                self._handle(LvsdReady(now))
            elif news == "failing":
                self.counters.lvsd_exited()
                self._handle(LvsdExited(now, f"lvsd failed {self.lvsd.streak} times in a row"))
            elif news == "exited":
                self.counters.lvsd_exited()
                if not self.actuator.warm and self.machine.active:
                    self._handle(LvsdExited(now, "lvsd exited"))

    def _timers(self, now: float) -> None:
        self.lvsd.tick(now)
        self._lvsd_news(now)
        failure = self.actuator.tick(now)
        if failure is not None:
            self._handle(LvsdExited(now, failure))
        if now >= self._next_link_check:
            self._check_links(now)
        if now >= self.machine.next_deadline():
            self._handle(Tick(now))

    # ---- events into the machine, actions out ----------------------------------------------

    def _handle(self, event: Event) -> None:
        step = self.machine.handle(event)
        if step.reason:
            self.log.info(step.reason)
        for action in step.actions:
            self._execute(action, event.now)
        if step.after is not step.before:
            self.counters.entered(step.after)
            if self.on_state is not None:
                self.on_state(step.after)

    def _execute(self, action: Action, now: float) -> None:
        match action:
            case SendHeartbeat(magic=magic):
                self.counters.sent()
                for line in self.transport.send(magic, self.clocks.wall()):
                    self.log.debug(line)
            case Activate():
                self.actuator.activate(now)
            case Deactivate():
                self.actuator.deactivate(now)
            case Announce():
                self.actuator.announce(now)
            case ReloadLvsd():
                if self.lvsd.reload():
                    self.log.info("SIGHUP forwarded to lvsd")

    def _publish(self) -> None:
        """Hand the metrics endpoint a new sample when a count or the state moved."""
        if self.metrics is not None and self.counters.generation != self._published:
            self._published = self.counters.generation
            self.metrics.publish(self)

    def _hangup(self, now: float) -> None:
        try:
            event = None if self.reload is None else self.reload(now, self)
        except Exception:  # noqa: BLE001 - a reload never takes the running pulse down
            self.log.exception("reload: unexpected failure; the running configuration stays")
            return
        if event is not None:
            self._handle(event)

    def _stop_lvsd(self) -> None:
        """Stop lvsd and wait (without blocking on it) until it removed its table and exited:
        SIGKILL after its stop timeout, given up a second after that."""
        now = self.clocks.monotonic()
        self.lvsd.stop(now)
        limit = now + self.lvsd.supervisor.stop_timeout + 1.0
        while self.lvsd.stopping() and now < limit:
            fds = self.lvsd.filenos()
            wait = max(0.0, min(limit, self.lvsd.next_deadline()) - now)
            readable = select.select(fds, [], [], min(wait, 0.1))[0]
            now = self.clocks.monotonic()
            for fd in readable:
                self.lvsd.on_readable(fd, now)
            self.lvsd.tick(now)
        if self.lvsd.stopping():
            self.log.error(f"lvsd {self.lvsd.supervisor.stop_timeout:g}s after SIGTERM and a "
                           "SIGKILL still not reaped; leaving it")

    def _check_links(self, now: float) -> None:
        assert self.links is not None
        self._next_link_check = now + self.link_poll
        faults = self.links.faults()
        if faults == self._link_faults:
            return
        was_down, self._link_faults = bool(self._link_faults), faults
        if faults and not was_down:
            self._handle(LinkDown(now, "; ".join(faults)))
        elif not faults and was_down:
            self._handle(LinkUp(now))

    def _rejected(self, line: str, reason: Reason, now: float) -> None:
        if reason is Reason.UNEXPECTED_SENDER:  # pulse logs these only with -v
            self.log.debug(line)
            return
        text = self._rejects.line(reason.name, line)
        if text is not None:
            self.log.warning(text)

    # ---- plumbing --------------------------------------------------------------------------

    def _install_signals(self) -> None:
        self.wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        for sig in _HANDLED:
            signal.signal(sig, _wake)

    def _sync_selector(self) -> None:
        """Register exactly the descriptors that exist now. lvsd's come and go and a closed
        one's number may be reused at once, so everything is registered afresh each turn (a
        handful of descriptors, a few wake-ups per second)."""
        wanted = {self.wake_r, *self.transport.filenos(), *self.lvsd.filenos()}
        if self.links is not None:
            wanted.add(self.links.fileno())
        for fd in self._registered:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self.sel.unregister(fd)
        for fd in wanted:
            self.sel.register(fd, selectors.EVENT_READ)
        self._registered = wanted
