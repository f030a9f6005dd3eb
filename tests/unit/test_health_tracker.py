"""HealthTracker, weight arithmetic and load parsing: pure, table-driven, no sleeping."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from piranha.health.tracker import HealthTracker, Mode, Transition
from piranha.health.types import ProbeResult, ServerState
from piranha.health.weights import (
    adjust_period,
    initial_weight,
    load_argv,
    load_weight,
    parse_load,
    parse_ruptime,
    slow_start,
    whole_ratio,
)
from piranha.model import RealServer, VirtualServer

UP, DOWN = ServerState.UP, ServerState.DOWN
GOOD = ProbeResult(True, "READ from 10.0.0.1:80 got expected reply 'HTTP'")
BAD = ProbeResult(False, "CONNECT to 10.0.0.1:80 timed out")


def tracker(weight: int = 1, interval: float = 10, reentry: float = 180,
            **kw: bool) -> HealthTracker:
    return HealthTracker(weight=weight, interval=interval, reentry=reentry, **kw)


def feed(t: HealthTracker, script: str, start: float = 0.0) -> list[tuple[float, Transition]]:
    """Feed '+' (good) and '-' (bad) probes one interval apart; the transitions with times."""
    out = []
    for i, mark in enumerate(script):
        now = start + i * t.interval
        change = t.observe(GOOD if mark == "+" else BAD, now)
        if change is not None:
            out.append((now, change))
    return out


def summary(changes: list[tuple[float, Transition]]) -> list[tuple[float, str, int | None]]:
    return [(at, c.new.value, c.weight) for at, c in changes]


# --- count_thresh = floor(reentry / interval) --------------------------------------------

@pytest.mark.parametrize(("reentry", "interval", "thresh"), [
    (180, 10, 18),
    (25, 10, 2),     # integer division, like nanny.c
    (180, 7, 25),
    (5, 10, 0),
    (0, 10, 0),
    (1, 0.3, 3),
    (0.3, 0.1, 3),   # 0.3 / 0.1 is 2.9999999999999996 in binary floating point
    (0.7, 0.1, 7),   # and 0.7 / 0.1 is 6.999999999999999
    (2.5, 0.5, 5),
])
def test_count_thresh(reentry: float, interval: float, thresh: int) -> None:
    assert tracker(interval=interval, reentry=reentry).count_thresh == thresh
    assert whole_ratio(reentry, interval) == thresh


@pytest.mark.parametrize(("script", "expected"), [
    # first good probe admits a new server at once (weight 1 >> 5 -> 1)
    ("+", [(0, "UP", 1)]),
    # a failure before the first success costs a whole reentry: 3 good probes (30 / 10)
    ("-+++", [(30, "UP", 1)]),
    ("-++-+++", [(60, "UP", 1)]),
    # one failure takes an UP server down; then 3 good probes in a row again
    ("++-++++", [(0, "UP", 1), (20, "DOWN", None), (50, "UP", 1)]),
    ("+-+-+++", [(0, "UP", 1), (10, "DOWN", None), (60, "UP", 1)]),
    ("---", []),
])
def test_reentry(script: str, expected: list[tuple[float, str, int | None]]) -> None:
    assert summary(feed(tracker(reentry=30), script)) == expected


@pytest.mark.parametrize("reentry", [0, 5, 10, 19])
def test_small_reentry_readmits_on_one_good_probe(reentry: float) -> None:
    assert summary(feed(tracker(reentry=reentry), "+-+")) == [
        (0, "UP", 1), (10, "DOWN", None), (20, "UP", 1)]


def test_transitions_carry_the_probe_message_and_time() -> None:
    t = tracker(weight=100)
    assert t.observe(GOOD, 5.0) == Transition(DOWN, UP, 3, GOOD.message, 5.0)
    assert t.observe(BAD, 15.0) == Transition(UP, DOWN, None, BAD.message, 15.0)
    assert t.observe(BAD, 25.0) is None


def test_quiesce_keeps_the_entry_at_weight_0() -> None:
    t = tracker(weight=64, reentry=0, quiesce=True)
    assert t.entry_weight is None  # never added yet: nothing to quiesce
    assert t.observe(BAD, 0) is None
    assert summary(feed(t, "+-+", start=10)) == [(10, "UP", 2), (20, "DOWN", 0), (30, "UP", 2)]
    assert t.entry_weight == 2


# --- slow start and its ~20 s cadence -----------------------------------------------------

@pytest.mark.parametrize(("weight", "interval", "reentry", "expected"), [
    # period 20 / 10 = 2; the counter starts at 18, so odd probes never adjust
    (100, 10, 180, [(0, 3), (10, 6), (30, 12), (50, 24), (70, 48), (90, 96), (110, 100)]),
    # counter starts at 19: admission and the first doubling fall in the same cycle
    (100, 10, 190, [(0, 6), (20, 12), (40, 24), (60, 48), (80, 96), (100, 100)]),
    # interval > 20: every probe adjusts, the admitting one included (1 -> 2 at once)
    (16, 30, 180, [(0, 2), (30, 4), (60, 8), (90, 16)]),
    # weight 0 stays 0 (Piranha admitted it at weight 1)
    (0, 10, 180, [(0, 0)]),
])
def test_slow_start(weight: int, interval: float, reentry: float,
                    expected: list[tuple[float, int]]) -> None:
    t = tracker(weight=weight, interval=interval, reentry=reentry)
    changes = feed(t, "+" * 20)
    assert [(at, c.weight) for at, c in changes] == expected
    assert all(c.new is UP for _, c in changes)


def test_same_cycle_admission_and_doubling_are_one_transition() -> None:
    t = tracker(weight=100, reentry=190)
    assert t.observe(GOOD, 0) == Transition(DOWN, UP, 6, f"{GOOD.message}; "
                                            "slow start: weight 3 -> 6", 0)
    assert t.observe(GOOD, 10) is None
    assert t.observe(GOOD, 20) == Transition(UP, UP, 12, "slow start: weight 6 -> 12", 20)
    assert t.observe(GOOD, 30) is None


@pytest.mark.parametrize(("interval", "period"), [
    (10, 2), (7, 2), (3, 6), (1, 20), (11, 1), (20, 1), (30, 1), (0.5, 40), (0.3, 66)])
def test_adjust_period(interval: float, period: int) -> None:
    assert adjust_period(interval) == period


@pytest.mark.parametrize(("weight", "first"), [
    (0, 0), (1, 1), (31, 1), (32, 1), (64, 2), (100, 3), (1000, 31), (65535, 2047)])
def test_initial_weight(weight: int, first: int) -> None:
    assert initial_weight(weight) == first


@pytest.mark.parametrize(("last", "weight", "new"), [
    (3, 100, 6), (48, 100, 96), (96, 100, 100), (1, 1, 1), (0, 5, 1)])
def test_slow_start_step(last: int, weight: int, new: int) -> None:
    assert slow_start(last, weight) == new


# --- load feedback ------------------------------------------------------------------------

@pytest.mark.parametrize(("last", "weight", "load", "new"), [
    (100, 100, 0.5, 139),    # 100 + 50 * cbrt(0.5) = 139.7
    (100, 100, 0.0, 150),
    (100, 100, 0.9, 100),    # +23 < threshold 25: unchanged
    (100, 100, 1.0, 100),
    (100, 100, None, 100),   # could not read the load
    (100, 100, -1.0, 100),   # load_monitor = none
    (139, 100, 2.0, 100),    # 139 - 50 = 89, floored at the weight
    (100, 100, 9.0, 100),    # never below the configured weight
    (200, 100, 1.5, 160),    # 200 - 50 * cbrt(0.5) = 160.3
    (950, 100, 0.0, 1000),   # capped at 10 x weight
    (980, 100, 0.0, 980),    # 1000 is only +20 < 25: unchanged
    (4, 4, 0.0, 6),
    (0, 0, 0.0, 0),
    (10, 10, 0.488, 13),     # C float load: 4 * cbrt(0.51199999) = 3.99999 (double: 14)
    (63000, 10000, 0.0, 65535),  # capped at ipvsadm's limit (Piranha: 68000, ipvsadm failed)
    (64000, 10000, 0.0, 64000),  # 65535 is only +1535 < 2500
])
def test_load_weight(last: int, weight: int, load: float | None, new: int) -> None:
    assert load_weight(last, weight, load) == new


def test_load_is_read_only_at_full_weight_with_a_monitor() -> None:
    t = tracker(weight=8, interval=30, reentry=0, load_feedback=True)
    feed(t, "+++")                  # 1 -> 2, 4, 8
    assert t.entry_weight == 8
    assert t.load_due is False      # the step that reached 8 was slow start
    assert t.observe(GOOD, 90) is None
    assert t.load_due is True
    assert t.feed_load(0.0, 91) == Transition(UP, UP, 12, "load 0.00: weight 8 -> 12", 91)
    assert t.feed_load(0.0, 92) is None  # one reading per due cycle
    assert t.observe(GOOD, 120) is None and t.load_due
    assert t.feed_load(None, 121) is None
    assert t.observe(BAD, 150) == Transition(UP, DOWN, None, BAD.message, 150)
    assert t.load_due is False


def test_no_load_reading_without_a_monitor() -> None:
    t = tracker(weight=1, interval=30, reentry=0)
    feed(t, "+++")
    assert t.load_due is False


# --- forced modes (SIGUSR1, SIGUSR2, SIGHUP) and scheduling -------------------------------

def test_force_down_freezes_until_resume() -> None:
    t = tracker(weight=64, reentry=30)
    feed(t, "+")
    assert t.force_down(5) == Transition(UP, DOWN, None, "forced down by operator (SIGUSR1)", 5)
    assert [t.mode, t.probe_due(1000)] == [Mode.FORCED_DOWN, False]
    assert t.observe(GOOD, 1000) is None  # a probe that was already running is dropped
    t.resume(2000)
    assert t.mode is Mode.NORMAL and t.probe_due(2000)
    # the counter is back at the threshold (3): the next good probe re-admits at once, and
    # its count (4) is a multiple of the period (2), so slow start steps in the same cycle
    assert t.observe(GOOD, 2000) == Transition(DOWN, UP, 4, f"{GOOD.message}; "
                                               "slow start: weight 2 -> 4", 2000)


def test_force_up_sets_full_weight_and_slow_start_does_not_undo_it() -> None:
    t = tracker(weight=100, reentry=30)
    assert t.force_up(0) == Transition(DOWN, UP, 100, "forced up by operator (SIGUSR2)", 0)
    assert t.force_up(1) is None  # already up
    t.resume(2)
    assert feed(t, "++++", start=2) == []  # Piranha edited it to weight 0 here
    assert t.observe(BAD, 50)
    assert t.state is DOWN


def test_force_up_while_forced_down_and_back() -> None:
    t = tracker(weight=10, reentry=30)
    assert t.force_down(0) is None  # not in the table: nothing to take out
    assert t.force_up(1) == Transition(DOWN, UP, 10, "forced up by operator (SIGUSR2)", 1)
    assert t.mode is Mode.FORCED_UP
    assert t.force_down(2) == Transition(UP, DOWN, None, "forced down by operator (SIGUSR1)", 2)


def test_force_down_with_quiesce_keeps_the_entry() -> None:
    t = tracker(weight=64, quiesce=True)
    feed(t, "+")
    change = t.force_down(5)
    assert change is not None and (change.new, change.weight) == (DOWN, 0)


def test_resume_in_normal_mode_resets_the_counter() -> None:
    t = tracker(reentry=30)
    feed(t, "+-+")          # down, one good probe of three
    t.resume(25)
    assert summary(feed(t, "+", start=25)) == [(25, "UP", 1)]


def test_probe_schedule() -> None:
    t = tracker(interval=10)
    assert t.probe_due(0) and t.next_probe_at() == float("-inf")
    t.observe(GOOD, 5)
    assert not t.probe_due(14.9) and t.probe_due(15)
    t.resume(7)
    assert t.probe_due(7)


def test_state_changed() -> None:
    assert Transition(DOWN, UP, 1, "", 0).state_changed
    assert not Transition(UP, UP, 2, "", 0).state_changed


@pytest.mark.parametrize(("kw", "message"), [
    ({"weight": 70000}, "weight must be 0..65535, got 70000"),
    ({"weight": -1}, "weight must be 0..65535, got -1"),
    ({"interval": 0}, "interval must be a positive number of seconds, got 0"),
    ({"interval": float("nan")}, "interval must be a positive number of seconds, got nan"),
    ({"reentry": -1}, "reentry must be 0 or more seconds, got -1"),
])
def test_bad_parameters(kw: dict[str, float], message: str) -> None:
    args: dict[str, float] = {"weight": 1, "interval": 10, "reentry": 180, **kw}
    with pytest.raises(ValueError, match=f"^{message}$"):
        HealthTracker(weight=int(args["weight"]), interval=args["interval"],
                      reentry=args["reentry"])


def test_for_server() -> None:
    rs = RealServer("web1", ip_address("10.0.0.1"), active=True, weight=300)
    vs = VirtualServer("www", timeout=6, reentry=30, quiesce_server=True, load_monitor="rup",
                       servers=(rs,))
    t = HealthTracker.for_server(vs, rs)
    assert (t.weight, t.interval, t.count_thresh, t.quiesce, t.load_feedback) == (
        300, 6, 5, True, True)
    assert HealthTracker.for_server(VirtualServer("v", load_monitor="none"), rs).load_feedback \
        is False


# --- load average parsing -----------------------------------------------------------------

@pytest.mark.parametrize(("output", "load"), [
    (" 10:14:23 up 3 days,  1:02,  2 users,  load average: 0.15, 0.10, 0.05\n", 0.15),
    ("web1       up  3 days, 12:03,  load average: 2.50, 1.10, 0.90\n", 2.5),   # rup
    ("10:14  up 3 days, 2 users, load averages: 1.23 1.45 1.50\n", 1.23),      # BSD
    ("load average: 0.15", 0.15),          # number at the very end
    ("load average:0.15, 0.1", 0.15),      # nanny skipped 2 chars blindly: '0' went too
    ("load average: 1.2.3, 1", 1.2),       # strtod stops at the second dot
    ("load average: ,", None),             # Piranha read this as 0.0
    ("load average: 0.15x", None),
    ("no numbers here", None),
    ("loaded: nothing", None),
    ("web1  up  2+03:04,  3 users,  load 0.07, 0.03, 0.00", None),  # ruptime: no colon
])
def test_parse_load(output: str, load: float | None) -> None:
    assert parse_load(output) == load


RUPTIME = """\
db1           up  12+03:04,     3 users,  load 0.07, 0.03, 0.00
web1.example  up   2+01:00,     0 users,  load 1.50, 1.20, 1.00
web2        down   1+02:03
"""


@pytest.mark.parametrize(("output", "names", "load"), [
    (RUPTIME, ["10.0.0.1", "web1.example.com"], 1.5),
    (RUPTIME, ["DB1"], 0.07),
    (RUPTIME, ["web2"], None),     # down
    (RUPTIME, ["web3"], None),
    (RUPTIME, [], None),           # several hosts: a name is needed
    ("db1  up  1+00:00,  1 user,  load 0.50, 0.0, 0.0\n", [], 0.5),
    ("", ["db1"], None),
])
def test_parse_ruptime(output: str, names: list[str], load: float | None) -> None:
    assert parse_ruptime(output, names) == load


@pytest.mark.parametrize(("loadcmd", "argv"), [
    ("none", None),
    ("rup", ["rup", "10.0.0.1"]),
    ("rsh", ["rsh", "10.0.0.1", "uptime"]),
    ("ssh", ["ssh", "10.0.0.1", "uptime"]),
    ("/usr/bin/ssh", ["/usr/bin/ssh", "10.0.0.1", "uptime"]),  # Piranha dropped 'uptime'
    ("ruptime", ["ruptime"]),
    ("/usr/local/bin/myload", ["/usr/local/bin/myload", "10.0.0.1"]),
])
def test_load_argv(loadcmd: str, argv: list[str] | None) -> None:
    assert load_argv(loadcmd, "10.0.0.1") == argv
