"""A ProcessRunner that runs nothing."""

from __future__ import annotations

import itertools
import signal
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field


@dataclass
class FakeRunner:
    """ProcessRunner that records spawns and kills; tests end children with ``exit``."""

    spawned: list[tuple[int, Callable[[], int]]] = field(default_factory=list)
    killed: list[tuple[int, int]] = field(default_factory=list)
    ended: list[tuple[int, int]] = field(default_factory=list)
    _pids: Iterable[int] = field(default_factory=lambda: itertools.count(100))

    def spawn(self, main: Callable[[], int], keep_fds: Iterable[int] = ()) -> int:
        pid = next(iter(self._pids))
        self.spawned.append((pid, main))
        return pid

    def spawn_many(self, jobs: Sequence[tuple[Callable[[], int], Iterable[int]]]) -> list[int]:
        return [self.spawn(main, keep) for main, keep in jobs]

    def exits_fd(self) -> None:
        return None

    @property
    def pending(self) -> bool:
        return False

    def kill(self, pid: int, sig: int) -> None:
        self.killed.append((pid, sig))

    def reap(self) -> list[tuple[int, int]]:
        out, self.ended = self.ended, []
        return out

    def terms(self) -> list[int]:
        """Pids sent SIGTERM."""
        return [p for p, s in self.killed if s == signal.SIGTERM]
