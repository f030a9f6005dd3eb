"""Apply: tell the running daemons to re-read lvs.cf, and say exactly what was done.

SIGHUP goes to pulse when it runs (it re-reads lvs.cf and passes the reload on to lvsd), else
to lvsd alone; when neither runs nothing is signalled and the message says so. Optionally the
file is first copied to the backup director with ``scp`` (argv, no shell; key-based login:
``BatchMode``). OS calls come in through :class:`Os` so tests can fake them.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv6Address

from piranha.model import Cluster

SCP_TIMEOUT = 30.0


@dataclass(frozen=True)
class Os:
    """The OS calls Apply makes (injected)."""

    alive: Callable[[int], bool]
    kill: Callable[[int, int], None]
    run: Callable[[Sequence[str]], tuple[int, str]]  # argv -> (exit status, stderr)


def pid_alive(pid: int) -> bool:
    """True when process ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            state = f.read().rpartition(")")[2].split()[0]
        return state not in ("Z", "X", "x")
    except (OSError, IndexError):
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_quiet(argv: Sequence[str]) -> tuple[int, str]:
    """Run ``argv`` (no shell, no stdin) with a time limit; its exit status and stderr."""
    try:
        proc = subprocess.run(list(argv), stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=SCP_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 127, str(exc)
    return proc.returncode, proc.stderr.strip()


SYSTEM = Os(pid_alive, os.kill, run_quiet)


def read_pid(path: str) -> int | None:
    """The pid in a pid file, None when missing or malformed."""
    try:
        with open(path, encoding="ascii") as f:
            text = f.readline().strip()
    except (OSError, UnicodeError):
        return None
    return int(text) if text.isdigit() and int(text) > 1 else None


@dataclass(frozen=True)
class Result:
    """What Apply did: ``ok`` False when nothing was reloaded."""

    ok: bool
    message: str


def signal_daemons(pulse_pidfile: str, lvsd_pidfile: str, system: Os) -> Result:
    """SIGHUP to pulse if it runs, else to lvsd; the message names who got it."""
    for name, path, effect in (
            ("pulse", pulse_pidfile, "it re-reads lvs.cf and reloads lvsd"),
            ("lvsd", lvsd_pidfile, "it re-reads lvs.cf (pulse is not running)")):
        pid = read_pid(path)
        if pid is None or not system.alive(pid):
            continue
        try:
            system.kill(pid, signal.SIGHUP)
        except OSError as exc:
            return Result(False, f"Not applied: cannot signal {name} (pid {pid}): "
                          f"{exc.strerror}")
        return Result(True, f"Applied: sent SIGHUP to {name} (pid {pid}, from {path}); "
                      f"{effect}.")
    return Result(False, f"Not applied: neither pulse ({pulse_pidfile}) nor lvsd "
                  f"({lvsd_pidfile}) is running, so nothing was reloaded. The saved lvs.cf "
                  "is used when pulse starts.")


def scp_argv(path: str, cluster: Cluster, remote_path: str) -> list[str] | None:
    """The scp command copying ``path`` to the backup director, None without a backup."""
    if not cluster.backup_active or cluster.backup is None:
        return None
    host = f"[{cluster.backup}]" if isinstance(cluster.backup, IPv6Address) else \
        str(cluster.backup)
    return ["scp", "-q", "-p", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "--",
            path, f"root@{host}:{remote_path}"]


def copy_to_backup(path: str, cluster: Cluster, remote_path: str, system: Os) -> Result:
    """Copy lvs.cf to the backup director; the message says what happened."""
    argv = scp_argv(path, cluster, remote_path)
    if argv is None:
        return Result(False, "Not copied to a backup director: lvs.cf has none "
                      "(backup_active = 0 or no backup address).")
    code, err = system.run(argv)
    target = argv[-1]
    if code != 0:
        return Result(False, f"Copy to the backup director FAILED ({target}, scp exit "
                      f"{code}): {err or 'no message'}. Copy it by hand before you apply "
                      "there.")
    return Result(True, f"Copied lvs.cf to the backup director ({target}); reload pulse "
                  "there to use it.")
