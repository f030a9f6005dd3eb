"""contrib/pulse.init run by real shells against a fake, daemonizing pulse; pulse.service checks.

The fake pulse is a Python script in tmp_path: it records its argv, forks, writes its pid to
$PULSE_PIDFILE, logs SIGHUP and exits on SIGTERM, like pulse without --nodaemon. Every pid it
ever forks is appended to a file, and the fixture SIGKILLs whatever is left of them.
"""

from __future__ import annotations

import configparser
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CONTRIB = Path(__file__).resolve().parents[2] / "contrib"
INIT = CONTRIB / "pulse.init"
SERVICE = CONTRIB / "pulse.service"
SYSCONFIG = CONTRIB / "pulse.sysconfig"

FAKE_PULSE = '''#!{python}
"""Fake pulse: FAKE_PULSE_MODE = ok | fail | ignore-term | die."""
import json, os, signal, sys, time

here = os.environ["FAKE_PULSE_DIR"]
mode = os.environ.get("FAKE_PULSE_MODE", "ok")
with open(os.path.join(here, "argv"), "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\\n")
if mode == "fail":
    print("pulse: cannot use /etc/sysconfig/ha/lvs.cf:", file=sys.stderr)
    print("lvs.cf:3:1: error: unknown keyword 'primry'", file=sys.stderr)
    sys.exit(1)
if os.fork():
    os._exit(0)
os.setsid()
with open(os.path.join(here, "pids"), "a") as f:
    f.write(f"{{os.getpid()}}\\n")
null = os.open(os.devnull, os.O_RDWR)
for fd in (0, 1, 2):
    os.dup2(null, fd)
if mode == "die":
    os._exit(1)
pidfile = os.environ["PULSE_PIDFILE"]

def on_hup(signum, frame):
    with open(os.path.join(here, "log"), "a") as f:
        f.write("HUP\\n")

def on_term(signum, frame):
    os.unlink(pidfile)
    os._exit(0)

signal.signal(signal.SIGHUP, on_hup)
signal.signal(signal.SIGTERM, signal.SIG_IGN if mode == "ignore-term" else on_term)
with open(pidfile + ".tmp", "w") as f:
    f.write(f"{{os.getpid()}}\\n")
os.replace(pidfile + ".tmp", pidfile)
end = time.monotonic() + 60  # never outlive a broken test run for long
while time.monotonic() < end:
    time.sleep(0.5)
'''


def alive(pid: int) -> bool:
    """Is ``pid`` a live (non-zombie) fake pulse? (PID 1 here may reap orphans late.)"""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X") and b"pulse" in cmdline


class World:
    """Files and environment for one init script run; see the module docstring."""

    def __init__(self, tmp: Path) -> None:
        self.dir = tmp
        self.bin = tmp / "pulse"
        self.bin.write_text(FAKE_PULSE.format(python=sys.executable))
        self.bin.chmod(0o755)
        self.config = tmp / "lvs.cf"
        self.config.write_text("serial_no = 1\n")
        self.pidfile = tmp / "pulse.pid"
        self.lockdir = tmp / "subsys"
        self.lockdir.mkdir()
        self.lock = self.lockdir / "pulse"
        self.sysconfig = tmp / "sysconfig-pulse"
        self.network = tmp / "network"  # absent unless a test writes it
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("PULSE_", "FAKE_PULSE_", "OPTIONS", "DELAY"))}
        self.env.update(
            PULSE_BIN=str(self.bin), PULSE_CONFIG=str(self.config),
            PULSE_PIDFILE=str(self.pidfile), PULSE_LOCKDIR=str(self.lockdir),
            PULSE_SYSCONFIG=str(self.sysconfig), PULSE_NETWORK_FILE=str(self.network),
            PULSE_STOP_GRACE="5", FAKE_PULSE_DIR=str(tmp))

    def run(self, *verb: str, shell: str = "sh", **env: str) -> subprocess.CompletedProcess[str]:
        """Run the init script with ``verb`` under ``shell``; extra env on top."""
        return subprocess.run([*shell.split(), str(INIT), *verb], env={**self.env, **env},
                              capture_output=True, text=True, timeout=30, check=False)

    def pid(self) -> int:
        return int(self.pidfile.read_text())

    def argv(self) -> list[list[str]]:
        """argv of every fake pulse run, oldest first."""
        path = self.dir / "argv"
        lines = path.read_text().splitlines() if path.exists() else []
        return [json.loads(line) for line in lines]

    def hups(self) -> int:
        """SIGHUPs seen by the fake, waiting briefly for the handler to write."""
        log = self.dir / "log"
        end = time.monotonic() + 2
        # the file can exist before the handler's line is in it: wait for the line itself
        while time.monotonic() < end and not (log.exists() and "HUP" in log.read_text()):
            time.sleep(0.02)
        return log.read_text().count("HUP") if log.exists() else 0

    def kill_all(self) -> None:
        pids = self.dir / "pids"
        for line in pids.read_text().split() if pids.exists() else []:
            if alive(int(line)):
                os.kill(int(line), signal.SIGKILL)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    try:
        yield w
    finally:
        w.kill_all()


def started(w: World, **env: str) -> int:
    """Start the fake pulse through the init script; its pid."""
    result = w.run("start", **env)
    assert result.returncode == 0, result
    assert result.stdout == "Starting pulse: OK\n"
    pid = w.pid()
    assert alive(pid)
    return pid


# --- start ----------------------------------------------------------------------------------

def test_start_passes_config_and_options_and_locks(world: World) -> None:
    world.sysconfig.write_text('OPTIONS="--forceactive -v"\n')
    started(world)
    assert world.argv() == [["-c", str(world.config), "--forceactive", "-v"]]
    assert world.lock.exists()


def test_start_without_sysconfig_or_lockdir(world: World) -> None:
    world.lockdir.rmdir()
    started(world)
    assert world.argv() == [["-c", str(world.config)]]
    assert not world.lockdir.exists()


def test_shipped_sysconfig_template_is_neutral(world: World) -> None:
    started(world, PULSE_SYSCONFIG=str(SYSCONFIG))
    assert world.argv() == [["-c", str(world.config)]]


def test_options_from_environment_are_ignored(world: World) -> None:
    started(world, OPTIONS="--forceactive")
    assert world.argv() == [["-c", str(world.config)]]


def test_default_config_is_not_passed(world: World) -> None:
    # pulse's default is the script's: no -c. The precheck needs the default lvs.cf to exist,
    # so unless it does, show it to the script only, through an overlay on /etc in a private
    # mount namespace.
    default = "/etc/sysconfig/ha/lvs.cf"
    if Path(default).is_file():
        result = world.run("start", PULSE_CONFIG=default)
    else:
        if os.geteuid() != 0 or shutil.which("unshare") is None:
            pytest.skip(f"needs {default}, or root and unshare(1) to fake one")
        upper, work = world.dir / "etc-upper", world.dir / "etc-work"
        (upper / "sysconfig/ha").mkdir(parents=True)
        (upper / "sysconfig/ha/lvs.cf").write_text("serial_no = 1\n")
        work.mkdir()
        cmd = (f"mount -t overlay overlay -o lowerdir=/etc,upperdir={upper},workdir={work} "
               f"/etc || exit 99; exec sh {INIT} start")
        result = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", cmd],
            env={**world.env, "PULSE_CONFIG": default},
            capture_output=True, text=True, timeout=30, check=False)
        if result.returncode == 99:
            pytest.skip(f"cannot mount an overlay on /etc: {result.stderr.strip()}")
    assert (result.returncode, result.stdout) == (0, "Starting pulse: OK\n"), result
    assert world.argv() == [[]]


def test_start_when_running_keeps_the_pid(world: World) -> None:
    pid = started(world)
    result = world.run("start")
    assert (result.returncode, result.stdout) == (0, f"pulse (pid {pid}) is already running\n")
    assert world.pid() == pid and len(world.argv()) == 1


def test_start_replaces_a_stale_pid_file(world: World) -> None:
    world.pidfile.write_text("999999999\n")
    pid = started(world)
    assert pid != 999999999


def test_delay_is_slept_before_start(world: World) -> None:
    world.sysconfig.write_text("DELAY=0.2\n")
    t0 = time.monotonic()
    started(world)
    assert time.monotonic() - t0 >= 0.2


def test_invalid_delay_is_reported_and_ignored(world: World) -> None:
    world.sysconfig.write_text("DELAY=soon\n")
    result = world.run("start")
    assert result.returncode == 0
    assert result.stderr == "pulse: ignoring invalid DELAY=soon\n"


def test_failing_pulse_shows_its_stderr(world: World) -> None:
    result = world.run("start", FAKE_PULSE_MODE="fail")
    assert result.returncode == 1
    assert result.stdout == "Starting pulse: FAILED\n"
    assert "pulse: cannot use /etc/sysconfig/ha/lvs.cf:\nlvs.cf:3:1: error:" in result.stderr
    assert not world.pidfile.exists() and not world.lock.exists()


def test_daemon_dying_before_pid_file_fails_start(world: World) -> None:
    result = world.run("start", FAKE_PULSE_MODE="die", PULSE_START_WAIT="1")
    assert result.returncode == 1
    assert result.stderr == f"pulse: no running pulse in {world.pidfile} after 1s\n"
    assert not world.lock.exists()


# --- pre-checks and usage -------------------------------------------------------------------

def test_missing_binary_is_5(world: World) -> None:
    result = world.run("start", PULSE_BIN=str(world.dir / "nope"))
    assert result.returncode == 5
    assert "not found" in result.stderr


def test_missing_config_is_6(world: World) -> None:
    result = world.run("start", PULSE_CONFIG=str(world.dir / "nope.cf"))
    assert result.returncode == 6
    assert world.argv() == []


def test_networking_no_is_1(world: World) -> None:
    world.network.write_text("NETWORKING=no\n")
    assert world.run("start").returncode == 1
    assert world.argv() == []
    world.network.write_text('NETWORKING="yes"\nHOSTNAME=lvs1\n')
    started(world)


@pytest.mark.parametrize("verb", [[], ["bogus"]])
def test_unknown_verb_is_2_with_usage(world: World, verb: list[str]) -> None:
    result = world.run(*verb)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("Usage: ") and "{start|stop|restart|reload|" in result.stderr


# --- status ---------------------------------------------------------------------------------

def test_status_codes(world: World) -> None:
    result = world.run("status")
    assert (result.returncode, result.stdout) == (3, "pulse is stopped\n")
    pid = started(world)
    result = world.run("status")
    assert (result.returncode, result.stdout) == (0, f"pulse (pid {pid}) is running...\n")
    os.kill(pid, signal.SIGKILL)  # dies without removing its pid file
    while alive(pid):
        time.sleep(0.01)
    result = world.run("status")
    assert (result.returncode, result.stdout) == (1, "pulse dead but pid file exists\n")
    world.pidfile.unlink()
    result = world.run("status")
    assert (result.returncode, result.stdout) == (2, "pulse dead but subsys locked\n")


@pytest.mark.parametrize("argv", [
    ["sleep", "30"],
    [sys.executable, "-c", "import time; time.sleep(30)", "/usr/bin/pulseaudio"],
], ids=["sleep", "pulseaudio"])
def test_pid_reused_by_another_program_is_not_pulse(world: World, argv: list[str]) -> None:
    other = subprocess.Popen(argv)
    try:
        world.pidfile.write_text(f"{other.pid}\n")
        assert world.run("status").returncode == 1
        result = world.run("stop")
        assert (result.returncode, result.stdout) == (0, "Stopping pulse: not running\n")
        assert other.poll() is None and not world.pidfile.exists()
    finally:
        other.kill()
        other.wait()


def test_status_skips_prechecks(world: World) -> None:
    world.network.write_text("NETWORKING=no\n")
    assert world.run("status", PULSE_CONFIG="/nonexistent").returncode == 3


# --- reload ---------------------------------------------------------------------------------

def test_reload_sends_hup_and_prints_a_newline(world: World) -> None:
    started(world)
    result = world.run("reload")
    assert (result.returncode, result.stdout, result.stderr) == (0, "\n", "")
    assert world.hups() == 1


def test_reload_when_stopped_is_7(world: World) -> None:
    result = world.run("reload")
    assert (result.returncode, result.stderr) == (7, "pulse is not running\n")


# --- stop, restart, condrestart -------------------------------------------------------------

def test_stop_terminates_and_cleans_up(world: World) -> None:
    pid = started(world)
    result = world.run("stop")
    assert (result.returncode, result.stdout) == (0, "Stopping pulse: OK\n")
    assert not alive(pid)
    assert not world.pidfile.exists() and not world.lock.exists()
    result = world.run("stop")
    assert (result.returncode, result.stdout) == (0, "Stopping pulse: not running\n")


def test_stop_works_without_binary_or_config(world: World) -> None:
    pid = started(world)
    result = world.run("stop", PULSE_BIN="/nonexistent", PULSE_CONFIG="/nonexistent")
    assert result.returncode == 0 and not alive(pid)


def test_stop_kills_a_pulse_ignoring_term_after_the_grace(world: World) -> None:
    pid = started(world, FAKE_PULSE_MODE="ignore-term")
    t0 = time.monotonic()
    result = world.run("stop", PULSE_STOP_GRACE="1")
    elapsed = time.monotonic() - t0
    assert (result.returncode, result.stdout) == (0, "Stopping pulse: OK\n")
    assert result.stderr == "pulse: still running after 1s, sending KILL\n"
    assert 1.0 <= elapsed < 4.0
    assert not alive(pid) and not world.pidfile.exists()


def test_restart_gives_a_new_pid(world: World) -> None:
    old = started(world)
    result = world.run("restart")
    assert result.returncode == 0, result
    assert result.stdout == "Stopping pulse: OK\nStarting pulse: OK\n"
    assert world.pid() != old and alive(world.pid()) and not alive(old)


def test_restart_with_missing_config_leaves_pulse_running(world: World) -> None:
    pid = started(world)
    assert world.run("restart", PULSE_CONFIG=str(world.dir / "nope.cf")).returncode == 6
    assert alive(pid)


@pytest.mark.parametrize("verb", ["condrestart", "try-restart"])
def test_condrestart(world: World, verb: str) -> None:
    result = world.run(verb)
    assert (result.returncode, result.stdout) == (0, "")
    assert world.argv() == []
    old = started(world)
    assert world.run(verb).returncode == 0
    assert world.pid() != old and alive(world.pid())


@pytest.mark.parametrize("shell", ["bash", "busybox sh"])
def test_lifecycle_under_other_shells(world: World, shell: str) -> None:
    if shutil.which(shell.split()[0]) is None:
        pytest.skip(f"{shell} not installed")
    world.sysconfig.write_text("OPTIONS=--forceactive\nDELAY=0.1\n")
    assert world.run("start", shell=shell).returncode == 0
    pid = world.pid()
    assert world.argv() == [["-c", str(world.config), "--forceactive"]]
    assert world.run("status", shell=shell).returncode == 0
    assert world.run("reload", shell=shell).stdout == "\n" and world.hups() == 1
    assert world.run("restart", shell=shell).returncode == 0
    assert world.pid() != pid
    assert world.run("stop", shell=shell).returncode == 0
    assert world.run("status", shell=shell).returncode == 3
    assert world.run("bogus", shell=shell).returncode == 2


# --- pulse.service --------------------------------------------------------------------------

def read_unit(path: Path) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(path)
    return unit


def test_service_unit_content() -> None:
    unit = read_unit(SERVICE)
    svc = unit["Service"]
    assert svc["Type"] == "notify"
    assert svc["ExecStart"].split()[:2] == ["/usr/sbin/pulse", "--nodaemon"]
    assert "$OPTIONS" in svc["ExecStart"]
    assert svc["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert svc["KillMode"] == "mixed"
    assert svc["TimeoutStopSec"] == "30"
    assert svc["Restart"] == "on-failure"
    assert unit["Unit"]["ConditionPathExists"] == "/etc/sysconfig/ha/lvs.cf"
    for key in ("After", "Wants"):
        assert "network-online.target" in unit["Unit"][key].split()
    assert "PrivateNetwork" not in svc
    # configparser keeps only the last of repeated keys; both files must be listed.
    env_files = [line.split("=", 1)[1] for line in SERVICE.read_text().splitlines()
                 if line.startswith("EnvironmentFile=")]
    assert env_files == ["-/etc/sysconfig/pulse", "-/etc/default/pulse"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_service_unit_verifies(tmp_path: Path) -> None:
    # verify insists that ExecStart's binary exists: point it at one that does.
    unit = tmp_path / "pulse.service"
    unit.write_text(SERVICE.read_text().replace("/usr/sbin/pulse", sys.executable))
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "pulse.service" not in result.stderr, result.stderr
