"""ZygoteRunner: children forked by a small, quiet process that lvsd forks once, early.

Why not fork nannies from lvsd itself? Every page lvsd writes after a fork (its loop, its
status snapshots, its reference counts) stops being shared with the children forked before,
and a child's own allocations land in free slots scattered over lvsd's large heap. The
zygote is forked right after start-up (everything imported, the nanny loop rehearsed), then
only waits: its heap stays compact and untouched, so each nanny's private memory is what
its own loop writes.

Protocol on a SOCK_SEQPACKET pair (one message = one pickle, between our own processes):
``("spawn", [(main, keep_fds), ...])`` -> ``("pids", [pid, ...])``, the children forked back to
back (see :meth:`OsRunner.spawn_many`); unsolicited ``("exit", pid, status)`` for
every child the zygote reaps. ``main`` must be picklable (a ``functools.partial`` of a module
function). Children get the same set-up as :class:`~piranha.supervise.runner.OsRunner`'s and
die with the zygote (PR_SET_PDEATHSIG), which dies with lvsd.
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import select
import signal
import socket
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from piranha.errors import PiranhaError
from piranha.supervise.runner import OsRunner, _child_setup

_MAX = 1 << 18  # one pickled spawn request; SEQPACKET keeps it whole
#: spawn requests per message (a nanny's is ~500 bytes pickled)
BATCH = 100


class ZygoteDied(PiranhaError, RuntimeError):
    """The zygote process is gone: no child can be started any more."""


def _noop(signum: int, frame: object) -> None:
    """SIGCHLD handler: the wakeup fd does the work."""


class ZygoteRunner:
    """ProcessRunner whose spawns happen in the zygote; kill and reap work by pid as usual."""

    def __init__(self, keep_fds: Iterable[int] = ()) -> None:
        self._ctl, theirs = socket.socketpair(socket.AF_UNIX,
                                              socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                _child_setup(parent, sorted({theirs.fileno(), *keep_fds}))
                status = _zygote(theirs)
            finally:
                os._exit(status)
        theirs.close()
        self.pid = pid
        self._exits: list[tuple[int, int]] = []

    def exits_fd(self) -> int:
        """The descriptor to watch: readable when the zygote reports an exit."""
        return self._ctl.fileno()

    @property
    def pending(self) -> bool:
        """True when exits were read (during a spawn) but not handed out by reap() yet."""
        return bool(self._exits)

    def spawn(self, main: Callable[[], int], keep_fds: Iterable[int] = ()) -> int:
        """Have the zygote fork a child running ``main``; its pid."""
        return self.spawn_many([(main, keep_fds)])[0]

    def spawn_many(self, jobs: Sequence[tuple[Callable[[], int], Iterable[int]]]) -> list[int]:
        """Have the zygote fork one child per (main, keep_fds), in batches; the pids."""
        pids: list[int] = []
        for start in range(0, len(jobs), BATCH):
            batch = [(main, sorted(set(keep))) for main, keep in jobs[start:start + BATCH]]
            self._send(("spawn", batch))
            while True:
                message = self._recv(block=True)
                assert message is not None  # a blocking receive returns a message or raises
                if message[0] == "pids":
                    pids += message[1]
                    break
                self._exits.append((message[1], message[2]))
        return pids

    def kill(self, pid: int, sig: int) -> None:
        """os.kill, ignoring a child that has already gone."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)

    def reap(self) -> list[tuple[int, int]]:
        """Exits the zygote reported; ZygoteDied once the zygote itself is gone."""
        while True:
            message = self._recv(block=False)
            if message is None:
                break
            self._exits.append((message[1], message[2]))
        exits, self._exits = self._exits, []
        return exits

    def close(self) -> None:
        """Stop the zygote (its children get SIGTERM through PDEATHSIG) and reap it."""
        self._ctl.close()
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)

    def _send(self, message: tuple[Any, ...]) -> None:
        try:
            self._ctl.send(pickle.dumps(message))
        except OSError as exc:
            raise ZygoteDied(f"the zygote (pid {self.pid}) is gone: {exc}") from None

    def _recv(self, block: bool) -> tuple[Any, ...] | None:
        try:
            data = self._ctl.recv(_MAX, 0 if block else socket.MSG_DONTWAIT)
        except BlockingIOError:
            return None
        except OSError as exc:
            raise ZygoteDied(f"the zygote (pid {self.pid}) is gone: {exc}") from None
        if not data:
            raise ZygoteDied(f"the zygote (pid {self.pid}) is gone")
        message: tuple[Any, ...] = pickle.loads(data)
        return message


def _zygote(ctl: socket.socket) -> int:
    """The zygote's loop: spawn on request, report every exit; ends when lvsd goes."""
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    signal.signal(signal.SIGCHLD, _noop)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    runner = OsRunner()
    gc.freeze()
    while True:
        readable, _, _ = select.select([ctl.fileno(), wake_r], [], [])
        if wake_r in readable:
            with contextlib.suppress(BlockingIOError):
                os.read(wake_r, 256)
            for pid, status in runner.reap():
                ctl.send(pickle.dumps(("exit", pid, status)))
        if ctl.fileno() in readable:
            data = ctl.recv(_MAX)
            if not data:
                return 0
            _, jobs = pickle.loads(data)
            ctl.send(pickle.dumps(("pids", runner.spawn_many(jobs))))
