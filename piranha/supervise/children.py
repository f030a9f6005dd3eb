"""One state machine per supervised child; events and ``now`` in, runner calls out.

States (every change is logged by the caller from the returned events)::

    RUNNING  --exit, stop asked-->      (gone)      expected, no restart
    RUNNING  --exit, not asked-->       BACKOFF     restart at now + policy delay
    RUNNING  --exit, policy gives up--> FATAL       left down, loudly
    BACKOFF  --tick past restart_at-->  RUNNING     spawned again (restarts += 1)
    RUNNING  --stop-->                  STOPPING    SIGTERM sent
    STOPPING --tick past deadline-->    STOPPING    SIGKILL sent (once)
    BACKOFF/FATAL --stop-->             (gone)

The supervisor never reads a clock: every call takes ``now`` (monotonic seconds). The
``make`` callback builds a child's entry point at each (re)start, so a restarted child sees
the current state of the world (for a nanny: the weight lvsd holds for its server).
"""

from __future__ import annotations

import enum
import signal
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from piranha.supervise.policy import RestartPolicy
from piranha.supervise.runner import ProcessRunner

K = TypeVar("K", bound=Hashable)
Main = Callable[[], int]
Make = Callable[[K], tuple[Main, Iterable[int]]]


class ChildState(enum.Enum):
    """Where a supervised child is in its life."""

    #: running; an exit now is a crash
    RUNNING = "running"
    #: asked to stop (SIGTERM sent); an exit now is expected
    STOPPING = "stopping"
    #: crashed; waiting for its restart time
    BACKOFF = "backoff"
    #: crashed too often; left down
    FATAL = "fatal"


@dataclass
class Child(Generic[K]):
    """Book-keeping of one child."""

    key: K
    state: ChildState
    pid: int | None
    started: float
    streak: int = 0
    restarts: int = 0
    restart_at: float = 0.0
    stop_deadline: float = 0.0
    killed: bool = False


@dataclass(frozen=True)
class Exit(Generic[K]):
    """A child ended: whether it was asked to, and what happens next."""

    key: K
    pid: int
    status: int
    expected: bool
    #: seconds until the restart; None = no restart (expected exit, or given up)
    restart_in: float | None


class Supervisor(Generic[K]):
    """Starts, stops, restarts and escalates children through a ProcessRunner."""

    def __init__(self, runner: ProcessRunner, make: Make[K],
                 policy: RestartPolicy | None = None, stop_timeout: float = 5.0) -> None:
        self.runner, self.make = runner, make
        self.policy = policy or RestartPolicy()
        self.stop_timeout = stop_timeout
        self._children: dict[K, Child[K]] = {}
        self._by_pid: dict[int, Child[K]] = {}
        self._stopping: dict[int, Child[K]] = {}
        #: moves whenever a child's pid, state or restart count changes
        self.generation = 0

    def __contains__(self, key: object) -> bool:
        return key in self._children

    def __iter__(self) -> Iterator[Child[K]]:
        return iter(list(self._children.values()))

    def restart_counts(self) -> dict[K, int]:
        """Restarts of every child restarted at least once."""
        return {c.key: c.restarts for c in self._children.values() if c.restarts}

    def get(self, key: K) -> Child[K] | None:
        """The book-keeping of ``key``'s child, if it is supervised."""
        return self._children.get(key)

    def key_of(self, pid: int) -> K | None:
        """Which child ``pid`` is (running ones only: a stopping child no longer speaks for it)."""
        child = self._by_pid.get(pid)
        return child.key if child is not None else None

    def start(self, key: K, now: float) -> int:
        """Spawn the child of ``key`` (replacing nothing: stop the old one first)."""
        return self.start_many([key], now)[0]

    def start_many(self, keys: Iterable[K], now: float) -> list[int]:
        """Spawn the children of ``keys`` together (the runner may fork them back to back)."""
        children: list[Child[K]] = []
        for key in keys:
            if key in self._children or any(c.key == key for c in children):
                raise ValueError(f"{key} is already supervised")
            children.append(Child(key, ChildState.RUNNING, None, now))
        jobs = [self.make(c.key) for c in children]
        pids = self.runner.spawn_many(jobs)
        self.generation += 1
        for child, pid in zip(children, pids, strict=True):
            self._children[child.key] = child
            child.pid, child.started = pid, now
            self._by_pid[pid] = child
        return list(pids)

    def stop(self, key: K, now: float) -> None:
        """SIGTERM the child of ``key`` and forget it; SIGKILL follows if it lingers."""
        child = self._children.pop(key, None)
        if child is None:
            return
        self.generation += 1
        if child.pid is not None and child.state is ChildState.RUNNING:
            self._by_pid.pop(child.pid, None)
            child.state, child.stop_deadline = ChildState.STOPPING, now + self.stop_timeout
            self._stopping[child.pid] = child
            self.runner.kill(child.pid, signal.SIGTERM)

    def exited(self, pid: int, status: int, now: float) -> Exit[K] | None:
        """Account for a reaped child; None if ``pid`` was not one of ours."""
        stopped = self._stopping.pop(pid, None)
        if stopped is not None:
            return Exit(stopped.key, pid, status, True, None)
        child = self._by_pid.pop(pid, None)
        if child is None:
            return None
        self.generation += 1
        child.pid = None
        child.streak = self.policy.streak(child.streak, now - child.started)
        delay = self.policy.delay(child.streak)
        if delay is None:
            child.state = ChildState.FATAL
        else:
            child.state, child.restart_at = ChildState.BACKOFF, now + delay
        return Exit(child.key, pid, status, False, delay)

    def tick(self, now: float) -> list[Child[K]]:
        """Restart children whose backoff ended, SIGKILL stuck ones; the restarted children."""
        restarted = []
        for child in list(self._children.values()):
            if child.state is ChildState.BACKOFF and now >= child.restart_at:
                child.restarts += 1
                self._spawn(child, now)
                restarted.append(child)
        for pid in self.stuck(now):
            self._stopping[pid].killed = True
            self.runner.kill(pid, signal.SIGKILL)
        return restarted

    def stuck(self, now: float) -> list[int]:
        """Pids of stopped children that ignored SIGTERM: :meth:`tick` SIGKILLs them now."""
        return [pid for pid, c in self._stopping.items()
                if not c.killed and now >= c.stop_deadline]

    def next_deadline(self) -> float | None:
        """The earliest ``now`` at which :meth:`tick` has something to do."""
        times = [c.restart_at for c in self._children.values() if c.state is ChildState.BACKOFF]
        times += [c.stop_deadline for c in self._stopping.values() if not c.killed]
        return min(times, default=None)

    def stopping(self) -> int:
        """How many stopped children have not exited yet."""
        return len(self._stopping)

    def _spawn(self, child: Child[K], now: float) -> int:
        main, keep = self.make(child.key)
        pid = self.runner.spawn(main, keep)
        child.pid, child.state, child.started, child.killed = pid, ChildState.RUNNING, now, False
        self.generation += 1
        self._by_pid[pid] = child
        return pid
