"""Lines anyone can provoke are limited per kind, cut, and counted."""

from __future__ import annotations

from piranha.ratelimit import MAX_TEXT, LogLimiter
from testkit.clock import Clock


def test_one_line_per_kind_per_interval_with_the_count_held_back() -> None:
    clock = Clock()
    limiter = LogLimiter(clock, interval=10.0)
    assert limiter.line("BAD_MAC", "heartbeat authentication failed") is not None
    assert [limiter.line("BAD_MAC", f"sequence {n}") for n in range(10_000)] == [None] * 10_000
    assert limiter.line("REPLAYED", "replayed") == "replayed"  # another kind: its own budget
    clock.now += 10.0
    assert limiter.line("BAD_MAC", "again") == ("again (10000 more like it in the last 10 s "
                                                "not logged)")


def test_a_huge_line_is_cut() -> None:
    text = LogLimiter(Clock()).line("report", "x" * 1_000_000)
    assert text is not None and len(text) == MAX_TEXT + 3 and text.endswith("...")
