"""pulse's lvsd child with real processes: readiness pipe, exit via pidfd, backoff, blocking,
a stop that never blocks the loop.

The "lvsd" here is a small script: it writes its argv to a file, then after ``--ready-fd``
reports ready (or not), and exits with a given status when told to.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import sys
import time
from pathlib import Path

import pytest

from piranha.director.lvsdproc import LvsdProcess
from piranha.supervise.policy import RestartPolicy

FAKE = r"""
import os, signal, sys, time
args = sys.argv[1:]
fd = int(args[args.index("--ready-fd") + 1])
open(os.environ["LOG"], "a").write(" ".join(args) + "\n")
mode = os.environ.get("MODE", "ok")
signal.signal(signal.SIGHUP, lambda *a: open(os.environ["LOG"], "a").write("HUP\n"))
if mode == "crash":
    sys.exit(3)
if mode == "ok":
    os.write(fd, b"ready\n")
    os.close(fd)
while True:
    time.sleep(0.05)
"""


def make(tmp_path: Path, mode: str, **kw: object) -> LvsdProcess:
    script = tmp_path / "fake_lvsd.py"
    script.write_text(FAKE)
    os.environ["LOG"], os.environ["MODE"] = str(tmp_path / "log"), mode
    policy = RestartPolicy(initial=0.1, factor=2.0, maximum=1.0, reset_after=60.0)
    return LvsdProcess([sys.executable, str(script), "-c", "lvs.cf"],
                       logging.getLogger("test"), policy=policy, **kw)  # type: ignore[arg-type]


def pump(proc: LvsdProcess, until: float, stop: str | None = None) -> list[str]:
    """Run the loop's part for ``proc`` until ``until`` (monotonic) or news ``stop``."""
    news: list[str] = []
    while time.monotonic() < until and stop not in news:
        fds = proc.filenos()
        wait = max(0.0, min(until, proc.next_deadline()) - time.monotonic())
        readable, _, _ = select.select(fds, [], [], wait)
        now = time.monotonic()
        for fd in readable:
            proc.on_readable(fd, now)
        proc.tick(now)
        news += proc.news()
    return news


def stop(proc: LvsdProcess, limit: float = 10.0) -> float:
    """Stop ``proc`` and run the loop's part until it exited; the seconds it took."""
    t0 = time.monotonic()
    proc.stop(t0)
    while proc.stopping():
        assert time.monotonic() < t0 + limit, f"lvsd still stopping after {limit}s"
        pump(proc, min(time.monotonic() + 0.2, proc.next_deadline()))
    return time.monotonic() - t0


def test_ready_is_reported_once_the_child_writes_it(tmp_path: Path) -> None:
    proc = make(tmp_path, "ok")
    try:
        proc.start(time.monotonic())
        assert pump(proc, time.monotonic() + 5.0, "ready")[:1] == ["ready"]
        assert proc.ready
        line = (tmp_path / "log").read_text().splitlines()[0]
        assert line.startswith("-c lvs.cf --ready-fd ")
        assert proc.reload()
        deadline = time.monotonic() + 3
        while "HUP" not in (tmp_path / "log").read_text() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert "HUP" in (tmp_path / "log").read_text()
    finally:
        stop(proc)
    assert proc.pid is None and proc.filenos() == [] and not proc.ready


def test_a_crashing_lvsd_is_restarted_with_backoff_then_reported_failing(tmp_path: Path) -> None:
    proc = make(tmp_path, "crash", block_after=3)
    try:
        t0 = time.monotonic()
        proc.start(t0)
        news = pump(proc, t0 + 5.0, "failing")
        assert news[:3] == ["exited", "exited", "failing"]
        assert len((tmp_path / "log").read_text().splitlines()) == 3
        assert time.monotonic() - t0 >= 0.1 + 0.2  # two backoff waits before the third run
    finally:
        stop(proc)


def test_stop_waits_for_the_child_and_never_restarts(tmp_path: Path) -> None:
    proc = make(tmp_path, "ok")
    proc.start(time.monotonic())
    pid = proc.pid
    assert pid is not None
    t0 = time.monotonic()
    proc.stop(t0)
    assert time.monotonic() - t0 < 0.5 and proc.stopping()  # SIGTERM sent, nothing awaited
    proc.start(time.monotonic())  # asked again while the old one still exits: waits for it
    assert proc.pid is None
    while proc.stopping():
        pump(proc, time.monotonic() + 0.2)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert proc.pid is not None and proc.pid != pid  # started once the old one was gone
    stop(proc)
    assert proc.next_deadline() == float("inf")
    assert pump(proc, time.monotonic() + 0.3) == []


def test_stop_kills_an_lvsd_that_ignores_sigterm(tmp_path: Path) -> None:
    script = tmp_path / "stubborn.py"
    script.write_text("import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                      "print('x', flush=True)\ntime.sleep(60)\n")
    proc = LvsdProcess([sys.executable, str(script)], logging.getLogger("test"),
                       stop_timeout=0.5)
    proc.start(time.monotonic())
    time.sleep(0.3)
    assert 0.4 <= stop(proc) < 5.0


def test_an_lvsd_that_cannot_even_start_is_failing(tmp_path: Path,
                                                   capfd: pytest.CaptureFixture[str]) -> None:
    proc = LvsdProcess([str(tmp_path / "missing")], logging.getLogger("test"), block_after=2,
                       policy=RestartPolicy(initial=0.05, maximum=0.1))
    proc.start(time.monotonic())
    assert pump(proc, time.monotonic() + 3.0, "exited")[:1] == ["exited"]
    assert pump(proc, time.monotonic() + 3.0, "failing")[-1:] == ["failing"]
    stop(proc)
    assert "pulse: cannot start lvsd (" in capfd.readouterr().err


def test_an_exit_signal_is_reported_as_failure_line(tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    proc = make(tmp_path, "ok", block_after=1)
    proc.start(time.monotonic())
    pump(proc, time.monotonic() + 5.0, "ready")
    assert proc.pid is not None
    os.kill(proc.pid, signal.SIGKILL)
    with caplog.at_level(logging.INFO):
        news = pump(proc, time.monotonic() + 3.0, "failing")
    stop(proc)
    assert news[0] == "failing"
    assert any("killed by SIGKILL" in r.message for r in caplog.records)
