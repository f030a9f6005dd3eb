"""When to (re)announce the VIPs: an immediate burst and repeats, like Piranha's 5 x 1 s (pure).

The daemon loop asks :meth:`Schedule.due` on every wake-up and sends what it returns, so
announcing never blocks the heartbeats (Piranha forked a grandchild that slept between ARPs).
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Iterable

from piranha.director.plan import Vip


class Schedule:
    """Pending announcements, ``count`` per VIP, ``interval`` seconds apart."""

    def __init__(self, count: int = 5, interval: float = 1.0) -> None:
        if count < 1 or interval < 0:
            raise ValueError("count must be >= 1 and interval >= 0")
        self.count, self.interval = count, interval
        self._heap: list[tuple[float, int, Vip]] = []
        self._order = itertools.count()  # tie-breaker: equal times keep insertion order

    def add(self, vips: Iterable[Vip], now: float) -> None:
        """Announce each of ``vips`` now and ``count - 1`` more times; replaces earlier plans."""
        fresh = list(dict.fromkeys(vips))
        self.cancel(fresh)
        for vip in fresh:
            for i in range(self.count):
                heapq.heappush(self._heap, (now + i * self.interval, next(self._order), vip))

    def cancel(self, vips: Iterable[Vip] | None = None) -> None:
        """Forget pending announcements of ``vips`` (all of them when None)."""
        if vips is None:
            self._heap = []
            return
        drop = set(vips)
        self._heap = [e for e in self._heap if e[2] not in drop]
        heapq.heapify(self._heap)

    def due(self, now: float) -> list[Vip]:
        """The announcements whose time has come, in schedule order."""
        out = []
        while self._heap and self._heap[0][0] <= now:
            out.append(heapq.heappop(self._heap)[2])
        return out

    def next_deadline(self) -> float:
        return self._heap[0][0] if self._heap else math.inf

    def __len__(self) -> int:
        return len(self._heap)
