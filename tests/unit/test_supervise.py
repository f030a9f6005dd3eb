"""Restart policy (table) and the supervisor state machine with a fake runner."""

from __future__ import annotations

import signal

import pytest

from piranha.supervise.children import ChildState, Supervisor
from piranha.supervise.policy import RestartPolicy
from testkit.runner import FakeRunner

POLICY = RestartPolicy(initial=1, factor=2, maximum=60, reset_after=60, give_up_after=0)


@pytest.mark.parametrize(("previous", "uptime", "streak", "delay"), [
    (0, 0.5, 1, 1.0),      # first crash: 1 s
    (1, 0.5, 2, 2.0),      # then doubling
    (2, 3.0, 3, 4.0),
    (5, 1.0, 6, 32.0),
    (6, 1.0, 7, 60.0),     # capped
    (30, 1.0, 31, 60.0),
    (9, 60.0, 1, 1.0),     # a minute of good running resets the streak
    (9, 59.9, 10, 60.0),
])
def test_backoff_table(previous: int, uptime: float, streak: int, delay: float) -> None:
    assert POLICY.streak(previous, uptime) == streak
    assert POLICY.delay(streak) == delay


def test_give_up_after() -> None:
    policy = RestartPolicy(give_up_after=3)
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, None]


def make() -> tuple[Supervisor[str], FakeRunner, list[str]]:
    runner, made = FakeRunner(), []

    def factory(key: str):
        made.append(key)
        return (lambda: 0), []

    return Supervisor(runner, factory, POLICY, stop_timeout=5), runner, made


def test_crash_backoff_restart() -> None:
    sup, runner, made = make()
    pid = sup.start("a", 0.0)
    ended = sup.exited(pid, 256, 10.0)
    assert ended is not None and not ended.expected and ended.restart_in == 1.0
    assert sup.get("a").state is ChildState.BACKOFF
    assert sup.next_deadline() == 11.0
    assert sup.tick(10.5) == []
    restarted = sup.tick(11.0)
    assert [c.key for c in restarted] == ["a"] and made == ["a", "a"]
    assert sup.get("a").restarts == 1 and sup.key_of(sup.get("a").pid) == "a"
    assert sup.key_of(pid) is None


def test_stop_is_expected_and_escalates_to_sigkill() -> None:
    sup, runner, _ = make()
    pid = sup.start("a", 0.0)
    sup.stop("a", 1.0)
    assert runner.killed == [(pid, signal.SIGTERM)] and "a" not in sup
    assert sup.key_of(pid) is None and sup.stopping() == 1
    sup.tick(5.9)
    sup.tick(6.0)
    assert runner.killed[-1] == (pid, signal.SIGKILL)
    sup.tick(7.0)
    assert len(runner.killed) == 2  # SIGKILL once
    ended = sup.exited(pid, signal.SIGKILL, 7.0)
    assert ended is not None and ended.expected and sup.stopping() == 0


def test_unknown_pid_and_duplicate_start() -> None:
    sup, _, _ = make()
    sup.start("a", 0.0)
    assert sup.exited(999, 0, 1.0) is None
    with pytest.raises(ValueError):
        sup.start("a", 0.0)


def test_fatal_after_giving_up() -> None:
    runner = FakeRunner()
    sup: Supervisor[str] = Supervisor(runner, lambda k: ((lambda: 0), []),
                                      RestartPolicy(give_up_after=1))
    pid = sup.start("a", 0.0)
    sup.exited(pid, 256, 1.0)
    pid = sup.tick(2.0)[0].pid
    ended = sup.exited(pid, 256, 2.5)
    assert ended.restart_in is None and sup.get("a").state is ChildState.FATAL
    assert sup.next_deadline() is None
