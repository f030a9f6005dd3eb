"""pulse's lvsd child: start it, learn when its table is programmed, restart it with backoff.

* Readiness: lvsd gets the write end of a pipe (``--ready-fd``) and writes a line once its
  first reconcile is done (Piranha 0.8.6's ``lvs`` semaphore, without the named semaphore).
* Exit: a pidfd in the selector says when lvsd ended; no SIGCHLD handler is needed.
* Restarts follow :class:`~piranha.supervise.policy.RestartPolicy`; the table stays in the
  kernel meanwhile (lvsd never flushes), so a crash costs no traffic. After ``block_after``
  crashes in a row the loop is told lvsd is *failing*, which makes the machine hand over.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
from collections.abc import Sequence
from logging import Logger

from piranha.supervise.policy import RestartPolicy
from piranha.supervise.runner import exit_text


class LvsdProcess:
    """One lvsd at a time, started as ``argv --ready-fd N``."""

    def __init__(self, argv: Sequence[str], log: Logger, *,
                 policy: RestartPolicy | None = None, block_after: int = 3,
                 stop_timeout: float = 30.0) -> None:
        self.argv, self.log = list(argv), log
        self.policy = policy or RestartPolicy(initial=0.5, maximum=30.0, reset_after=60.0)
        self.block_after, self.stop_timeout = block_after, stop_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.pidfd = -1
        self.ready_r = -1
        self.ready = False
        self.wanted = False
        self.streak = 0
        self.started_at = 0.0
        self.restart_at = math.inf
        self._news: list[str] = []

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def filenos(self) -> list[int]:
        return [fd for fd in (self.pidfd, self.ready_r) if fd >= 0]

    def start(self, now: float) -> None:
        """Start lvsd unless it runs; from now on it is restarted when it dies."""
        self.wanted = True
        if self.proc is None:
            self._spawn(now)

    def stop(self) -> None:
        """SIGTERM, wait for it to remove what it owns (SIGKILL after ``stop_timeout``)."""
        self.wanted = False
        self.restart_at = math.inf
        proc = self.proc
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(self.stop_timeout)
        except subprocess.TimeoutExpired:
            self.log.error(f"lvsd {proc.pid} ignored SIGTERM for {self.stop_timeout:g}s: killing")
            proc.kill()
            proc.wait()
        self._forget()

    def reload(self) -> bool:
        """Forward SIGHUP; False when no lvsd runs."""
        if self.proc is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGHUP)
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
        elif fd == self.pidfd:
            self._exited(now)

    def tick(self, now: float) -> None:
        if self.wanted and self.proc is None and now >= self.restart_at:
            self.restart_at = math.inf
            self._spawn(now)

    def next_deadline(self) -> float:
        return self.restart_at if self.wanted and self.proc is None else math.inf

    # ---- helpers ---------------------------------------------------------------------------

    def _spawn(self, now: float) -> None:
        r, w = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(r, False)
        try:
            self.proc = subprocess.Popen([*self.argv, "--ready-fd", str(w)], pass_fds=(w,),
                                         stdin=subprocess.DEVNULL)
        except OSError as exc:
            os.close(r)
            os.close(w)
            self.log.error(f"cannot start lvsd ({self.argv[0]}): {exc}")
            self._crashed(now, 0.0)
            return
        os.close(w)
        self.ready_r, self.ready, self.started_at = r, False, now
        self.pidfd = os.pidfd_open(self.proc.pid)
        self.log.info(f"started lvsd (pid {self.proc.pid})")

    def _exited(self, now: float) -> None:
        proc = self.proc
        if proc is None:
            return
        status = proc.wait()
        raw = (-status & 0x7F) if status < 0 else (status << 8)
        self.log.error(f"Child process {proc.pid} {exit_text(raw)}")
        uptime = now - self.started_at
        self._forget()
        if not self.wanted:
            self._news.append("exited")
        else:
            self._crashed(now, uptime)

    def _crashed(self, now: float, uptime: float) -> None:
        self.streak = self.policy.streak(self.streak, uptime)
        delay = self.policy.delay(self.streak)
        self.restart_at = math.inf if delay is None else now + delay
        if delay is not None:
            self.log.info(f"restarting lvsd in {delay:g}s (failure {self.streak} in a row)")
        self._news.append("failing" if self.streak >= self.block_after else "exited")

    def _forget(self) -> None:
        if self.pidfd >= 0:
            os.close(self.pidfd)
        self.pidfd = -1
        self._close_ready()
        self.proc = None
        self.ready = False

    def _close_ready(self) -> None:
        if self.ready_r >= 0:
            os.close(self.ready_r)
        self.ready_r = -1
