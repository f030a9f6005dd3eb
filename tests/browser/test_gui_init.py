"""contrib/piranha-gui.init with the real piranha-gui (daemon mode), and the systemd unit.

start/status/stop through dash with every path overridden; no password: exit 6.
"""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

import pytest

from lab.gui import free_port, listening, set_password, wait_for

CONTRIB = Path(__file__).resolve().parents[2] / "contrib"
INIT = CONTRIB / "piranha-gui.init"


@pytest.fixture
def env(tmp_path):
    binary = tmp_path / "piranha-gui"
    binary.write_text(f"#!{sys.executable}\nimport sys\nfrom piranha.gui.cli import main\n"
                      "sys.exit(main())\n")
    binary.chmod(0o755)
    port = free_port()
    lockdir = tmp_path / "lock"  # not tmp_path: the lock file is named like the binary
    lockdir.mkdir()
    sysconfig = tmp_path / "sysconfig"
    sysconfig.write_text(f'OPTIONS="--listen 127.0.0.1 --port {port} --table none"\n')
    environ = {"PATH": "/usr/bin:/bin", "GUI_BIN": str(binary),
               "GUI_CONFIG": str(tmp_path / "lvs.cf"), "GUI_PASSWD": str(tmp_path / "pw"),
               "GUI_PIDFILE": str(tmp_path / "gui.pid"), "GUI_LOCKDIR": str(lockdir),
               "GUI_SYSCONFIG": str(sysconfig)}
    yield environ, port, tmp_path
    run(environ, "stop")


def run(environ: dict[str, str], verb: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["dash", str(INIT), verb], env=environ, capture_output=True,
                          text=True, timeout=60, check=False)


def test_start_status_stop(env):
    environ, port, tmp = env
    started = run(environ, "start")
    assert started.returncode == 6 and "run piranha-passwd first" in started.stderr
    set_password(tmp / "pw")
    started = run(environ, "start")
    assert (started.returncode, started.stdout) == (0, "Starting piranha-gui: OK\n"), started
    wait_for("the daemon to listen", lambda: listening("127.0.0.1", port), 10)
    pid = int((tmp / "gui.pid").read_text())
    status = run(environ, "status")
    assert (status.returncode, status.stdout) == (0, f"piranha-gui (pid {pid}) is running...\n")
    assert run(environ, "start").stdout == f"piranha-gui (pid {pid}) is already running\n"
    stopped = run(environ, "stop")
    assert (stopped.returncode, stopped.stdout) == (0, "Stopping piranha-gui: OK\n")
    assert not listening("127.0.0.1", port)
    assert run(environ, "status").returncode == 3
    assert run(environ, "bogus").returncode == 2


def test_the_sysconfig_allow_list_refuses_other_clients_on_a_real_socket(env):
    import urllib.error
    import urllib.request

    environ, port, tmp = env
    sysconfig = Path(environ["GUI_SYSCONFIG"])
    sysconfig.write_text(f'OPTIONS="--listen 127.0.0.1 --port {port} --table none '
                         f'--allow 192.0.2.0/24 --allow ::1"\n')
    set_password(tmp / "pw")
    assert run(environ, "start").returncode == 0
    wait_for("the daemon to listen", lambda: listening("127.0.0.1", port), 10)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=10)
    assert refused.value.code == 403
    assert "not allowed" in refused.value.read().decode()
    sysconfig.write_text(f'OPTIONS="--listen 127.0.0.1 --port {port} --table none '
                         f'--allow 127.0.0.0/8"\n')
    assert run(environ, "restart").returncode == 0
    wait_for("the daemon to listen again", lambda: listening("127.0.0.1", port), 10)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=10) as page:
        assert page.status == 200


def test_systemd_unit():
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read(CONTRIB / "piranha-gui.service")
    assert unit["Service"]["ExecStart"] == "/usr/sbin/piranha-gui --nodaemon $OPTIONS"
    assert unit["Unit"]["ConditionPathExists"] == "/etc/sysconfig/ha/conf/piranha.passwd"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
