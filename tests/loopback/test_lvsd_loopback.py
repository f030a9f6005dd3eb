"""A real lvsd process (in-memory IPVS table) with real forked nannies against 127.0.0.1.

The kernel tier proves the table; this tier proves the processes: nannies are forked children
of lvsd, report over the socket, are restarted with backoff or take lvsd down
(``hard_shutdown``), and the control socket, the status snapshot and SIGHUP work end to end.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from lab.patience import wait_for
from piranha.cli.admin import cli

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 0.5


class Listener:
    """A TCP server on 127.0.0.1 that accepts and closes; stop() refuses new connections."""

    def __init__(self, port: int = 0) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.close()

    def stop(self) -> None:
        # shutdown first: close() alone leaves a thread's pending accept() listening
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def closed_port() -> int:
    """A port nobody listens on."""
    listener = Listener()
    listener.stop()
    return listener.port


def config(port1: int, port2: int, hard: int = 0) -> str:
    return f"""primary = 127.0.0.1
network = nat
hard_shutdown = {hard}
virtual web {{
    active = 1
    address = 198.51.100.80 lo:1
    port = 8080
    timeout = {TIMEOUT}
    reentry = {2 * TIMEOUT}
    server web1 {{
        address = 127.0.0.1
        active = 1
        port = {port1}
    }}
    server web2 {{
        address = 127.0.0.1
        active = 1
        port = {port2}
    }}
}}
"""


class Lvsd:
    """lvsd -n --backend fake with its files in ``tmp``."""

    def __init__(self, tmp: Path, text: str, state: Path | None = None) -> None:
        self.tmp, self.cf = tmp, tmp / "lvs.cf"
        self.state = state or tmp / "state.json"
        self.cf.write_text(text)
        self.status, self.sock, self.log = tmp / "status.json", tmp / "lvsd.sock", tmp / "log"
        argv = [sys.executable, "-m", "piranha.lvs", "-n", "--backend", "fake", "-c",
                str(self.cf), "--status-file", str(self.status), "--control-socket",
                str(self.sock), "--state-file", str(self.state), "--pidfile",
                str(tmp / "pid"), "--reconcile-interval", "0.5"]
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        wait("first snapshot", self.status.exists, 20)

    def servers(self) -> dict[str, dict]:
        snap = json.loads(self.status.read_text())
        return {rs["name"]: rs for vs in snap["virtuals"] for rs in vs["servers"]}

    def text(self) -> str:
        return self.log.read_text()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def wait(what: str, check, timeout: float) -> float:
    return wait_for(what, check, timeout, step=0.02)


def parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def lvsd_factory(tmp_path):
    made = []

    def make(text: str, state: Path | None = None) -> Lvsd:
        made.append(Lvsd(tmp_path, text, state))
        return made[-1]

    yield make
    for lvsd in made:
        lvsd.close()


def test_nannies_are_forked_children_that_follow_health(lvsd_factory) -> None:
    web1, web2 = Listener(), Listener()
    web2.stop()
    lvsd = lvsd_factory(config(web1.port, web2.port))
    wait("web1 UP", lambda: lvsd.servers()["web1"]["state"] == "UP", 10)
    servers = lvsd.servers()
    assert servers["web1"]["weight"] == 1 and servers["web2"]["weight"] is None
    pids = [servers[n]["nanny"]["pid"] for n in ("web1", "web2")]
    for pid in pids:  # forked by the zygote, itself lvsd's child
        assert parent(parent(pid)) == lvsd.proc.pid
    web1.stop()
    took = wait("web1 DOWN", lambda: lvsd.servers()["web1"]["state"] == "DOWN", 5)
    assert took <= 1.5 * TIMEOUT + 1.0, took  # generous: the kernel tier holds the 1.5x bound
    web1 = Listener(web1.port)
    wait("web1 back", lambda: lvsd.servers()["web1"]["state"] == "UP", 5)
    lvsd.proc.send_signal(signal.SIGTERM)
    assert lvsd.proc.wait(10) == 0
    assert not any(alive(p) for p in pids)
    assert "shutting down due to signal 15" in lvsd.text()
    assert not lvsd.status.exists()  # a clean stop leaves no stale snapshot
    web1.stop()


def test_a_dead_nanny_is_restarted_with_backoff(lvsd_factory) -> None:
    web1 = Listener()
    lvsd = lvsd_factory(config(web1.port, closed_port()))
    wait("web1 UP", lambda: lvsd.servers()["web1"]["state"] == "UP", 10)
    old = lvsd.servers()["web1"]["nanny"]["pid"]
    os.kill(old, signal.SIGKILL)
    wait("a new nanny", lambda: lvsd.servers()["web1"]["nanny"]["restarts"] == 1, 10)
    assert lvsd.servers()["web1"]["nanny"]["pid"] != old
    assert lvsd.servers()["web1"]["state"] == "UP"  # adopted the weight lvsd held
    assert "nanny for child web/web1 died (killed by SIGKILL); restarting it in 1 s" \
        in lvsd.text()
    assert lvsd.proc.poll() is None
    web1.stop()


def test_hard_shutdown_takes_lvsd_down(lvsd_factory) -> None:
    web1 = Listener()
    lvsd = lvsd_factory(config(web1.port, closed_port(), hard=1))
    wait("web1 UP", lambda: lvsd.servers()["web1"]["state"] == "UP", 10)
    os.kill(lvsd.servers()["web1"]["nanny"]["pid"], signal.SIGKILL)
    assert lvsd.proc.wait(10) == 1
    assert "shutting down lvs (hard_shutdown = 1)" in lvsd.text()
    web1.stop()


def test_drain_enable_status_and_a_refused_reload(lvsd_factory) -> None:
    web1, web2 = Listener(), Listener()
    lvsd = lvsd_factory(config(web1.port, web2.port))
    wait("both UP", lambda: all(s["state"] == "UP" for s in lvsd.servers().values()), 10)
    runner = CliRunner()
    out = runner.invoke(cli, ["drain", "web", "web2", "--timeout", "30",
                              "--socket", str(lvsd.sock)])
    assert out.exit_code == 0 and "draining" in out.output
    wait("drained", lambda: (lvsd.servers()["web2"]["drain"] or {}).get("state") == "drained", 5)
    assert lvsd.servers()["web2"]["weight"] is None
    status = runner.invoke(cli, ["status", "--status-file", str(lvsd.status)])
    assert status.exit_code == 0 and "DRAINED" in status.output
    assert "virtual web: -t 198.51.100.80:8080 scheduler wlc" in status.output
    bad = runner.invoke(cli, ["enable", "web", "web9", "--socket", str(lvsd.sock)])
    assert bad.exit_code == 1 and "no active real server 'web9'" in bad.output
    out = runner.invoke(cli, ["enable", "web", "web2", "--socket", str(lvsd.sock)])
    assert out.exit_code == 0
    wait("enabled", lambda: lvsd.servers()["web2"]["weight"] == 1, 5)
    lvsd.cf.write_text("virtual web {\n    active = maybe\n")
    lvsd.proc.send_signal(signal.SIGHUP)
    wait("refused reload", lambda: "is invalid; the running configuration stays"
         in lvsd.text(), 5)
    assert lvsd.servers()["web2"]["weight"] == 1
    assert lvsd.proc.poll() is None
    web1.stop()
    web2.stop()


@pytest.fixture
def full_disk(tmp_path):
    """A 64 KiB tmpfs (a real file system that fills up): its path and a way to fill it."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(folder: Path) -> Path:
    """Fill the file system of ``folder``; the file that did it (delete it to free space)."""
    ballast = folder / "ballast"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while os.write(fd, b"\0" * 512):
            pass
    except OSError:
        pass  # ENOSPC: full
    finally:
        os.close(fd)
    return ballast


def test_a_full_disk_loses_no_drain_and_keeps_the_old_state_file(lvsd_factory,
                                                                  full_disk) -> None:
    web1, web2 = Listener(), Listener()
    state = full_disk / "state.json"
    lvsd = lvsd_factory(config(web1.port, web2.port), state)
    wait("both UP", lambda: all(s["state"] == "UP" for s in lvsd.servers().values()), 10)
    wait("the first state file", state.exists, 10)
    before = state.read_text()
    ballast = fill(full_disk)
    runner = CliRunner()
    out = runner.invoke(cli, ["drain", "web", "web2", "--timeout", "30",
                              "--socket", str(lvsd.sock)])
    assert out.exit_code == 0 and "draining" in out.output  # lvsd goes on
    wait("the write failure logged", lambda: "cannot write state file" in lvsd.text(), 10)
    time.sleep(1.5)  # three reconcile turns, each retrying: logged once, old file intact
    assert lvsd.text().count("cannot write state file") == 1
    assert state.read_text() == before and json.loads(before)["drains"] == []
    ballast.unlink()  # space again: the drain reaches the file without any other change
    wait("the drain in the state file", lambda: json.loads(state.read_text())["drains"], 10)
    assert f"state file {state} written again" in lvsd.text()
    assert lvsd.proc.poll() is None
    web1.stop()
    web2.stop()


def test_status_without_lvsd(tmp_path) -> None:
    out = CliRunner().invoke(cli, ["status", "--status-file", str(tmp_path / "none.json")])
    assert out.exit_code == 1 and "no lvsd status" in out.output
    out = CliRunner().invoke(cli, ["drain", "web", "web1", "--socket", str(tmp_path / "s")])
    assert out.exit_code == 1 and "cannot reach lvsd" in out.output
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (tmp_path / "old.json").write_text(json.dumps({
        "version": 1, "pid": int(gone), "config": "lvs.cf", "started": 0, "written": 0,
        "ops_applied": 0, "virtuals": []}))
    out = CliRunner().invoke(cli, ["status", "--status-file", str(tmp_path / "old.json")])
    assert out.exit_code == 3 and "this snapshot is stale" in out.output


def test_standalone_nanny_reports_and_obeys_signals() -> None:
    web = Listener()
    proc = subprocess.Popen([sys.executable, "-m", "piranha.nanny", "-h", "127.0.0.1", "-p",
                             str(web.port), "-t", "0.2", "-a", "0.2", "-n", "--lvs"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    try:
        first = json.loads(proc.stdout.readline())
        assert (first["state"], first["weight"]) == ("UP", 1)
        proc.send_signal(signal.SIGUSR1)
        assert json.loads(proc.stdout.readline())["state"] == "DOWN"
        proc.send_signal(signal.SIGUSR2)
        assert json.loads(proc.stdout.readline())["state"] == "UP"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        err = proc.stderr.read().decode()
        assert f"nanny: starting LVS client monitor for None:{web.port}" in err
        assert "[inactive] shutting down" in err
    finally:
        proc.kill()
        web.stop()


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        return reply.read().decode()


def with_metrics(text: str, listen: str) -> str:
    return text.replace("hard_shutdown =", f"lvsd_metrics = {listen}\nhard_shutdown =", 1)


def realserver_up(port: int, server: str, name: str = "piranha_realserver_up",
                  **labels: str) -> float | None:
    for family in text_string_to_metric_families(scrape(port)):
        for sample in family.samples:
            if sample.name == name and sample.labels.get("server") == server \
                    and labels.items() <= sample.labels.items():
                return sample.value
    return None


def test_the_metrics_endpoint_follows_health_and_passes_promtool(lvsd_factory) -> None:
    web1 = Listener()
    port = closed_port()
    lvsd = lvsd_factory(with_metrics(config(web1.port, closed_port()), f"127.0.0.1:{port}"))
    wait("web1 up in a scrape", lambda: realserver_up(port, "web1") == 1, 10)
    assert realserver_up(port, "web2") == 0
    assert f"serving http://127.0.0.1:{port}/metrics" in lvsd.text()
    # the nannies' own counts: checks that ran, and why web2's failed
    wait("web1's checks counted", lambda: (realserver_up(
        port, "web1", "piranha_check_duration_seconds_count") or 0) >= 1, 10)
    assert realserver_up(port, "web2", "piranha_check_failures_total", reason="refused") >= 1
    assert realserver_up(port, "web1", "piranha_realserver_last_success_timestamp_seconds") \
        > time.time() - 60
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: `make bootstrap` installs Debian's prometheus"
    lint = subprocess.run([promtool, "check", "metrics"], input=scrape(port), text=True,
                          capture_output=True, timeout=60)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    web1.stop()
    wait("web1 down in a scrape", lambda: realserver_up(port, "web1") == 0, 10)
    with pytest.raises(urllib.error.HTTPError) as other:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10)
    assert other.value.code == 404


def test_a_metrics_port_in_use_stops_lvsd_before_it_touches_anything(tmp_path) -> None:
    busy = Listener()
    cf = tmp_path / "lvs.cf"
    cf.write_text(with_metrics(config(closed_port(), closed_port()), f"127.0.0.1:{busy.port}"))
    proc = subprocess.run(
        [sys.executable, "-m", "piranha.lvs", "-n", "--backend", "fake", "-c", str(cf),
         "--status-file", str(tmp_path / "status.json"), "--control-socket",
         str(tmp_path / "sock"), "--state-file", str(tmp_path / "state.json"), "--pidfile",
         str(tmp_path / "pid")], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"{cf}: lvsd_metrics = 127.0.0.1:{busy.port}: cannot listen: Address already in " \
           "use" in proc.stdout + proc.stderr
    assert not (tmp_path / "status.json").exists()  # no reconcile ran
    busy.stop()


def test_watchers_get_each_health_change_as_a_json_line(lvsd_factory) -> None:
    web1 = Listener()
    lvsd = lvsd_factory(config(web1.port, closed_port()))
    wait("web1 UP", lambda: lvsd.servers()["web1"]["state"] == "UP", 10)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(20)
        sock.connect(str(lvsd.sock))
        sock.sendall(b'{"cmd": "watch"}\n')
        stream = sock.makefile("rb")
        assert json.loads(stream.readline())["ok"] is True  # registered from here on
        web1.stop()
        event = json.loads(stream.readline())
    assert (event["event"], event["virtual"], event["server"]) == ("health", "web", "web1")
    assert (event["from"], event["to"], event["weight"]) == ("UP", "DOWN", None)
    assert event["address"] == f"127.0.0.1:{web1.port}" and event["reason"]

    # the CLI: `piranha events --count 1` prints the first change it sees, then exits
    cli_proc = subprocess.Popen(
        [sys.executable, "-c", "from piranha.cli.admin import main; main()", "events",
         "--count", "1", "--socket", str(lvsd.sock)], stdout=subprocess.PIPE, text=True,
        cwd=ROOT)
    port = web1.port
    up = False

    def changed() -> bool:  # flip web1 until the CLI, once watching, has seen a change
        nonlocal web1, up
        if cli_proc.poll() is not None:
            return True
        if up:
            web1.stop()
        else:
            web1 = Listener(port)
        up = not up
        return False

    wait("piranha events printing a change", changed, 60)
    out = cli_proc.stdout.read()
    assert cli_proc.returncode == 0, out
    assert json.loads(out)["server"] == "web1"
    web1.stop()
