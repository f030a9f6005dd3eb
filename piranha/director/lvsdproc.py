"""pulse's lvsd child, supervised like every child (:mod:`piranha.supervise`).

* Start: the runner forks and the child execs ``argv --ready-fd N`` (stdin /dev/null). lvsd
  outlives a pulse that dies (no death signal): its table keeps forwarding, and the next
  pulse's lvsd adopts it.
* Readiness: lvsd gets the write end of a pipe and writes a line once its first reconcile is
  done (Piranha 0.8.6's ``lvs`` semaphore, without the named semaphore).
* Exit: a pidfd in the selector says when lvsd ended; it is reaped through the runner and
  accounted by the :class:`~piranha.supervise.children.Supervisor`, which restarts it with
  backoff. The table stays in the kernel meanwhile (lvsd never flushes), so a crash costs no
  traffic. After ``block_after`` crashes in a row the loop is told lvsd is *failing*, which
  makes the machine hand over.
* Stop never blocks: SIGTERM now, SIGKILL from :meth:`LvsdProcess.tick` once ``stop_timeout``
  passed. A start asked while the old lvsd is still removing its table waits for its exit, so
  two lvsds never write the table at once.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
from collections.abc import Iterable, Sequence
from logging import Logger

from piranha.supervise.children import Main, Supervisor
from piranha.supervise.policy import RestartPolicy
from piranha.supervise.runner import OsRunner, ProcessRunner, exit_text

LVSD = "lvsd"
#: the exit status of a child whose exec failed (as a shell reports it)
EXEC_FAILED = 127


class LvsdProcess:
    """One lvsd at a time, started as ``argv --ready-fd N``."""

    def __init__(self, argv: Sequence[str], log: Logger, *,
                 runner: ProcessRunner | None = None, policy: RestartPolicy | None = None,
                 block_after: int = 3, stop_timeout: float = 30.0) -> None:
        self.argv, self.log = list(argv), log
        self.runner = runner or OsRunner(death_signal=None)
        policy = policy or RestartPolicy(initial=0.5, maximum=30.0, reset_after=60.0)
        self.supervisor: Supervisor[str] = Supervisor(self.runner, self._make, policy,
                                                      stop_timeout)
        self.block_after = block_after
        self.ready_r = -1
        self.ready = False
        self.wanted = False
        self.streak = 0
        self._start_when_stopped = False
        self._pidfds: dict[int, int] = {}  # pid -> pidfd, running and stopping children
        self._ready_w = -1
        self._news: list[str] = []

    @property
    def pid(self) -> int | None:
        child = self.supervisor.get(LVSD)
        return None if child is None else child.pid

    def filenos(self) -> list[int]:
        return [*self._pidfds.values(), *([self.ready_r] if self.ready_r >= 0 else [])]

    def start(self, now: float) -> None:
        """Start lvsd unless it runs; from now on it is restarted when it dies."""
        self.wanted = True
        if LVSD in self.supervisor:
            return
        if self.supervisor.stopping():  # the old one is still removing its table
            self._start_when_stopped = True
            return
        self.supervisor.start(LVSD, now)
        self._started()

    def stop(self, now: float) -> None:
        """SIGTERM lvsd (SIGKILL follows from :meth:`tick` after ``stop_timeout``)."""
        self.wanted, self._start_when_stopped = False, False
        self.supervisor.stop(LVSD, now)
        self._close_ready()
        self.ready = False

    def stopping(self) -> bool:
        """True while a stopped lvsd has not exited yet."""
        return self.supervisor.stopping() > 0

    def reload(self) -> bool:
        """Forward SIGHUP; False when no lvsd runs."""
        pid = self.pid
        if pid is None:
            return False
        self.runner.kill(pid, signal.SIGHUP)
        return True

    def news(self) -> list[str]:
        """What happened since the last call, in order: "ready", "exited" or "failing"."""
        out, self._news = self._news, []
        return out

    def on_readable(self, fd: int, now: float) -> None:
        """Handle a wake-up on one of :meth:`filenos` (results in :meth:`news`)."""
        if fd == self.ready_r:
            data = b""
            with contextlib.suppress(BlockingIOError):
                data = os.read(fd, 64)
            if data and not self.ready:
                self.ready = True
                self._news.append("ready")
            if not data:  # lvsd closed the pipe: no more news from it
                self._close_ready()
        elif fd in self._pidfds.values():
            self._reap(now)

    def tick(self, now: float) -> None:
        """Restart a crashed lvsd whose backoff ended; SIGKILL one that ignores SIGTERM."""
        for pid in self.supervisor.stuck(now):
            self.log.error(f"lvsd {pid} ignored SIGTERM for {self.supervisor.stop_timeout:g}s: "
                           "killing")
        if self.supervisor.tick(now):
            self._started()

    def next_deadline(self) -> float:
        due = self.supervisor.next_deadline()
        return math.inf if due is None else due

    # ---- helpers ---------------------------------------------------------------------------

    def _make(self, key: str) -> tuple[Main, Iterable[int]]:
        r, w = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(r, False)
        self._close_ready()
        self.ready_r, self._ready_w, self.ready = r, w, False
        argv = [*self.argv, "--ready-fd", str(w)]

        def main() -> int:
            os.set_inheritable(w, True)
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            try:
                os.execvp(argv[0], argv)
            except OSError as exc:
                os.write(2, f"pulse: cannot start lvsd ({argv[0]}): {exc}\n".encode())
            return EXEC_FAILED
        return main, [w]

    def _started(self) -> None:
        """After a spawn: drop our copy of the pipe's write end, watch the child's exit."""
        if self._ready_w >= 0:
            os.close(self._ready_w)
            self._ready_w = -1
        pid = self.pid
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self._pidfds[pid] = os.pidfd_open(pid)
        self.log.info(f"started lvsd (pid {pid})")

    def _reap(self, now: float) -> None:
        for pid, status in self.runner.reap():
            pidfd = self._pidfds.pop(pid, None)
            if pidfd is not None:
                os.close(pidfd)
            ended = self.supervisor.exited(pid, status, now)
            if ended is None:  # not lvsd (an active_cmd, say)
                continue
            if ended.expected:
                if self._start_when_stopped and self.wanted:
                    self._start_when_stopped = False
                    self.start(now)
                continue
            self.log.error(f"Child process {pid} {exit_text(status)}")
            self._close_ready()
            self.ready = False
            child = self.supervisor.get(LVSD)
            self.streak = 0 if child is None else child.streak
            if ended.restart_in is not None:
                self.log.info(f"restarting lvsd in {ended.restart_in:g}s "
                              f"(failure {self.streak} in a row)")
            self._news.append("failing" if self.streak >= self.block_after else "exited")

    def _close_ready(self) -> None:
        if self.ready_r >= 0:
            os.close(self.ready_r)
        self.ready_r = -1
