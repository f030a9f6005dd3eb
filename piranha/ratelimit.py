"""Log lines that anyone on the LAN (or any process) can provoke, limited per kind: at most one
line per kind per interval, cut to a readable length, with the count of what was held back."""

from __future__ import annotations

import math
from collections.abc import Callable

#: characters of a limited line that are kept (the rest is cut with "...")
MAX_TEXT = 300


class LogLimiter:
    """``line(kind, text)``: the text to log now, or None while ``kind`` is quiet."""

    def __init__(self, clock: Callable[[], float], interval: float = 10.0) -> None:
        self.clock, self.interval = clock, interval
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def line(self, kind: str, text: str) -> str | None:
        now = self.clock()
        if now - self._last.get(kind, -math.inf) < self.interval:
            self._held[kind] = self._held.get(kind, 0) + 1
            return None
        self._last[kind] = now
        text = text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "..."
        held = self._held.pop(kind, 0)
        if held:
            text += f" ({held} more like it in the last {self.interval:g} s not logged)"
        return text
