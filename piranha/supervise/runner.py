"""The OS side of supervision: fork, signal and reap (the only os.fork/os.kill user).

``OsRunner.spawn(main, keep_fds)`` forks; the child gets ``PR_SET_PDEATHSIG = SIGTERM`` (it
dies with its parent, as Piranha's nannies did), closes every inherited descriptor except
``keep_fds``, restores default signal dispositions, runs ``main()`` and leaves with
``os._exit(status)``: it never returns into the parent's code, never runs its atexit hooks.
Forking from an already-initialised parent is the point: the child shares every imported
module with it copy-on-write, so its own memory is only what its loop touches.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import signal
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import NoReturn, Protocol

PR_SET_PDEATHSIG, PR_GET_DUMPABLE = 1, 3
_prctl = ctypes.CDLL(None, use_errno=True).prctl
_prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_prctl.restype = ctypes.c_int
# a harmless call now, so ctypes' lazy set-up happens here once and not in every child
_prctl(PR_GET_DUMPABLE, 0, 0, 0, 0)
_OPEN_MAX = os.sysconf("SC_OPEN_MAX")
#: signals lvsd handles; a child must not inherit its handlers
_RESET = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2,
          signal.SIGCHLD, signal.SIGPIPE, signal.SIGALRM)


class ProcessRunner(Protocol):
    """Creates, signals and reaps child processes."""

    def spawn(self, main: Callable[[], int], keep_fds: Iterable[int] = ()) -> int:
        """Start a child running ``main``; its pid."""
        ...

    def spawn_many(self, jobs: Sequence[tuple[Callable[[], int], Iterable[int]]]) -> list[int]:
        """Start one child per (main, keep_fds), together; their pids in order."""
        ...

    def kill(self, pid: int, sig: int) -> None:
        """Send ``sig`` to ``pid`` (a child already gone is not an error)."""
        ...

    def reap(self) -> list[tuple[int, int]]:
        """(pid, wait status) of every child that has ended, without blocking."""
        ...

    def exits_fd(self) -> int | None:
        """A descriptor that turns readable when an exit is to be reaped; None when SIGCHLD
        is the only sign."""
        ...

    @property
    def pending(self) -> bool:
        """True when exits are known but not handed out by :meth:`reap` yet (reap now)."""
        ...


class OsRunner:
    """ProcessRunner on os.fork/os.kill/os.waitpid. ``death_signal``: what a child gets when
    this process dies (None: nothing, the child outlives it, as pulse's lvsd does)."""

    def __init__(self, death_signal: int | None = signal.SIGTERM) -> None:
        self.death_signal = death_signal

    def spawn(self, main: Callable[[], int], keep_fds: Iterable[int] = ()) -> int:
        """Fork a child that runs ``main`` and exits with its status."""
        return self.spawn_many([(main, keep_fds)])[0]

    def spawn_many(self, jobs: Sequence[tuple[Callable[[], int], Iterable[int]]]) -> list[int]:
        """Fork one child per (main, keep_fds), back to back; their pids in order.

        Back to back matters: every page this process writes between two forks becomes private
        to the earlier child, so the loop between the forks writes almost nothing.
        """
        prepared = [(main, sorted(set(keep))) for main, keep in jobs]
        parent = os.getpid()
        gc.freeze()  # keep the collector off the shared pages, in the children and in us
        sys.stdout.flush()
        sys.stderr.flush()
        pids = [0] * len(prepared)
        for i in range(len(prepared)):
            pid = os.fork()
            if pid == 0:
                _run_child(parent, *prepared[i], self.death_signal)
            pids[i] = pid
        return pids

    def kill(self, pid: int, sig: int) -> None:
        """os.kill, ignoring a child that has already gone."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)

    def exits_fd(self) -> None:
        """None: SIGCHLD tells when to reap."""
        return None

    @property
    def pending(self) -> bool:
        """Always False: waitpid finds every exit at once."""
        return False

    def reap(self) -> list[tuple[int, int]]:
        """Every ended child, by waitpid(-1, WNOHANG)."""
        ended: list[tuple[int, int]] = []
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return ended
            if pid == 0:
                return ended
            ended.append((pid, status))


def _run_child(parent: int, main: Callable[[], int], keep: list[int],
               death_signal: int | None = signal.SIGTERM) -> NoReturn:
    """The child's side of a fork: set up, run ``main``, leave with its status."""
    status = 1
    try:
        _child_setup(parent, keep, death_signal)
        result = main()
        status = result & 0xFF if isinstance(result, int) else 0
    except BaseException:  # noqa: B036 - a child must never unwind into the parent's code
        with contextlib.suppress(BaseException):
            import traceback
            traceback.print_exc()
    finally:
        os._exit(status)


def _child_setup(parent: int, keep: list[int],
                 death_signal: int | None = signal.SIGTERM) -> None:
    """Die with the parent (unless ``death_signal`` is None), drop inherited descriptors and
    signal handlers."""
    if death_signal is not None:
        _prctl(PR_SET_PDEATHSIG, death_signal, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)
    signal.set_wakeup_fd(-1)
    for sig in _RESET:
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    low = 3
    for fd in keep:
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, _OPEN_MAX)


def exit_text(status: int) -> str:
    """'exited with status N' or 'killed by SIGNAME' for a wait status."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        return f"killed by {name}"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"
