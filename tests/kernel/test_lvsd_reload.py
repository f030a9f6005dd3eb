"""lvsd reload (SIGHUP) and runtime drains in a namespace with real servers answering.

A reload with one changed weight issues exactly one kernel operation (an edit) and leaves the
other server's nanny alone; a reload with a broken file changes nothing; ``piranha drain``
and ``piranha enable`` go through lvsd's control socket.
"""

from __future__ import annotations

import signal
import time

import pytest
from click.testing import CliRunner

from lab.lvsd import Listener, Lvsd, close_tables, subreaper, wait_for, weights
from piranha.cli.admin import cli

WEB = "198.51.100.80:8080"
WEB1, WEB2 = "10.200.0.11:8080", "10.200.0.12:8080"


def config(weight1: int) -> str:
    return f"""primary = 198.51.100.1
network = nat
virtual web {{
    active = 1
    address = 198.51.100.80 pub0:1
    port = 8080
    timeout = 1
    reentry = 2
    server web1 {{
        address = 10.200.0.11
        active = 1
        weight = {weight1}
    }}
    server web2 {{
        address = 10.200.0.12
        active = 1
        weight = 1
    }}
}}
"""


@pytest.fixture
def lab(netns, tmp_path):
    subreaper()
    for n in (11, 12):
        netns.run(["ip", "addr", "add", f"10.200.0.{n}/24", "dev", "priv0"])
    servers = [Listener(netns, "10.200.0.11", 8080), Listener(netns, "10.200.0.12", 8080)]
    lvsd = Lvsd(netns, tmp_path, config(1))
    yield netns, lvsd
    if lvsd.proc is not None:
        lvsd.stop(signal.SIGKILL)
    for server in servers:
        server.stop()
    close_tables()


def test_reload_applies_a_minimal_diff_and_ignores_a_broken_file(lab):
    ns, lvsd = lab
    lvsd.start()
    both = {f"{WEB} {WEB1}": 1, f"{WEB} {WEB2}": 1}
    wait_for("both servers in", lambda: weights(ns) == both, 30)
    time.sleep(1.5)  # one reconcile tick: nothing more to do
    before, web2_nanny = len(lvsd.ops()), lvsd.server("web2")["nanny"]["pid"]

    lvsd.cf.write_text(config(4))
    lvsd.send(signal.SIGHUP)
    wait_for("web1 at weight 4", lambda: weights(ns).get(f"{WEB} {WEB1}") == 4, 20)
    time.sleep(2.5)  # two reconcile ticks: still nothing more
    assert lvsd.ops()[before:] == [f"ipvsadm -e -t {WEB} -r {WEB1} -m -w 4"]
    assert lvsd.server("web2")["nanny"]["pid"] == web2_nanny
    assert lvsd.server("web2")["state"] == "UP"

    table_before, ops_before = weights(ns), len(lvsd.ops())
    lvsd.cf.write_text(config(4).replace("port = 8080", "port = 8080 8081") + "virtual {\n")
    lvsd.send(signal.SIGHUP)
    wait_for("the reload refused", lambda: "is invalid; the running configuration stays"
             in lvsd.log(), 20)
    time.sleep(2.5)
    assert weights(ns) == table_before
    assert len(lvsd.ops()) == ops_before
    assert "reload: " in lvsd.log() and "error" in lvsd.log()

    runner = CliRunner()
    result = runner.invoke(cli, ["drain", "web", "web2", "--socket", str(lvsd.sock)])
    assert result.exit_code == 0, result.output
    wait_for("web2 drained", lambda: f"{WEB} {WEB2}" not in weights(ns), 10)
    # the snapshot is rewritten after the table change: wait for it rather than race it
    wait_for("web2 drained in the status", lambda: (lvsd.server("web2").get("drain") or {})
             .get("state") == "drained", 10)
    result = runner.invoke(cli, ["status", "--status-file", str(lvsd.status)])
    assert "DRAINED" in result.output, result.output
    result = runner.invoke(cli, ["enable", "web", "web2", "--socket", str(lvsd.sock)])
    assert result.exit_code == 0, result.output
    wait_for("web2 back", lambda: weights(ns).get(f"{WEB} {WEB2}") == 1, 10)
    assert lvsd.stop(signal.SIGTERM) == 0
