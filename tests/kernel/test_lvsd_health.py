"""lvsd in a namespace with real servers answering: health drives the table, drift is repaired.

One lvsd run walks through: only healthy servers get entries; a killed server goes (weight 0
with quiesce) within 1.5 x timeout; it comes back after reentry; a hand-made ``ipvsadm -d``
or ``-e`` of an owned entry is repaired, a foreign service is left alone; the sorry server
comes and goes; SIGTERM removes what lvs.cf owns and nothing else.
"""

from __future__ import annotations

import signal
import time

import pytest

from lab.lvsd import Listener, Lvsd, close_tables, subreaper, table, wait_for, weights

TIMEOUT, REENTRY = 1.0, 2.0
WEB, QUIET = "198.51.100.80:8080", "198.51.100.81:8080"
WEB1, WEB2, SORRY = (f"10.200.0.{n}:8080" for n in (11, 12, 99))
CONFIG = f"""primary = 198.51.100.1
network = nat
hard_shutdown = 0
virtual web {{
    active = 1
    address = 198.51.100.80 pub0:1
    port = 8080
    scheduler = wlc
    timeout = {TIMEOUT:g}
    reentry = {REENTRY:g}
    sorry_server = 10.200.0.99
    server web1 {{
        address = 10.200.0.11
        active = 1
    }}
    server web2 {{
        address = 10.200.0.12
        active = 1
    }}
    server web3 {{
        address = 10.200.0.13
        active = 1
    }}
}}
virtual quiet {{
    active = 1
    address = 198.51.100.81 pub0:2
    port = 8080
    timeout = {TIMEOUT:g}
    reentry = {REENTRY:g}
    quiesce_server = 1
    server q1 {{
        address = 10.200.0.11
        active = 1
    }}
}}
"""


@pytest.fixture
def lab(netns, tmp_path):
    subreaper()
    netns.run(["ip", "addr", "add", "10.200.0.11/24", "dev", "priv0"])
    netns.run(["ip", "addr", "add", "10.200.0.12/24", "dev", "priv0"])
    netns.run(["ip", "addr", "add", "10.200.0.13/24", "dev", "priv0"])
    lvsd = Lvsd(netns, tmp_path, CONFIG)
    yield netns, lvsd
    if lvsd.proc is not None:
        lvsd.stop(signal.SIGKILL)
    close_tables()


def test_lvsd_follows_health_repairs_drift_and_cleans_up(lab):
    ns, lvsd = lab
    web1 = Listener(ns, "10.200.0.11", 8080)
    web2 = Listener(ns, "10.200.0.12", 8080)
    lvsd.start()
    healthy = {f"{WEB} {WEB1}": 1, f"{WEB} {WEB2}": 1, f"{QUIET} {WEB1}": 1}
    wait_for("entries of the healthy servers", lambda: weights(ns) == healthy, 30)
    time.sleep(2 * TIMEOUT)  # web3 never answers, the sorry server's grace is over
    assert weights(ns) == healthy

    # a killed server goes within 1.5 x timeout; with quiesce its entry stays at weight 0
    web1.stop()
    killed = time.monotonic()
    gone = wait_for("web1 removed", lambda: f"{WEB} {WEB1}" not in weights(ns), 10)
    quiesced = time.monotonic() - killed + wait_for(
        "q1 quiesced", lambda: weights(ns).get(f"{QUIET} {WEB1}") == 0, 10)
    assert gone <= 1.5 * TIMEOUT, f"removal took {gone:.2f} s"
    assert quiesced <= 1.5 * TIMEOUT, f"quiescing took {quiesced:.2f} s"
    assert f"{QUIET} {WEB1}" in weights(ns)  # quiesced, not removed
    assert "rs=10.200.0.11:8080 vs=web UP->DOWN weight=absent reason=\"CONNECT to " \
        "10.200.0.11:8080 failed: Connection refused\"" in lvsd.log()

    # back after reentry: timeout-spaced good probes, reentry / timeout of them
    web1.start()
    back = wait_for("web1 back", lambda: weights(ns).get(f"{WEB} {WEB1}") == 1, 15)
    assert TIMEOUT * 0.8 <= back <= REENTRY + 1.5 * TIMEOUT, f"re-entry took {back:.2f} s"
    wait_for("q1 un-quiesced", lambda: weights(ns).get(f"{QUIET} {WEB1}") == 1, 10)

    # drift: an owned entry deleted or edited by hand is repaired; a foreign service is not ours
    ns.run(["ipvsadm", "-A", "-t", "198.51.100.90:80", "-s", "rr"])
    ns.run(["ipvsadm", "-a", "-t", "198.51.100.90:80", "-r", "10.200.0.50:80", "-m"])
    ns.run(["ipvsadm", "-d", "-t", WEB, "-r", WEB2])
    ns.run(["ipvsadm", "-e", "-t", QUIET, "-r", WEB1, "-m", "-w", "7"])
    wait_for("drift repaired", lambda: weights(ns) == {**healthy, "198.51.100.90:80 "
                                                        "10.200.0.50:80": 1}, 10)
    assert f"ipvsadm -a -t {WEB} -r {WEB2} -m -w 1" in lvsd.ops()

    # sorry server: in when no real server is up, out when one is
    web1.stop()
    web2.stop()
    wait_for("sorry server in", lambda: weights(ns).get(f"{WEB} {SORRY}") == 1, 10)
    assert not any(k.startswith(f"{WEB} 10.200.0.1") for k in weights(ns))
    web2.start()
    wait_for("sorry server out", lambda: f"{WEB} {SORRY}" not in weights(ns)
             and weights(ns).get(f"{WEB} {WEB2}") == 1, 15)

    # SIGTERM: nannies stop, owned services go, the foreign one stays
    assert lvsd.stop(signal.SIGTERM) == 0
    assert table(ns) == ["-A -t 198.51.100.90:80 -s rr",
                         "-a -t 198.51.100.90:80 -r 10.200.0.50:80 -m -w 1"]
    web2.stop()
