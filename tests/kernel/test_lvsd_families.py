"""lvsd's own paths (not only piranha-ipvsadm's) on the kernel for IPv6 virtuals, NAT and
direct routing, and for firewall-mark virtuals, two of them sharing one mark as in Red Hat's
HTTP + HTTPS recipe (ports 8080 and 8443 here): the entries programmed, then a real server's
failure and return."""

from __future__ import annotations

import signal

import pytest

from lab.lvsd import Listener, Lvsd, close_tables, subreaper, wait_for, weights

V6_VIP, V6_RS1, V6_RS2 = "2001:db8:100::80", "2001:db8:200::11", "2001:db8:200::12"


def v6_config(network: str) -> str:
    servers = "".join(f"""    server web{n} {{
        address = {rs}
        active = 1
        weight = {n}
    }}
""" for n, rs in ((1, V6_RS1), (2, V6_RS2)))
    return f"""primary = 198.51.100.1
network = {network}
virtual web6 {{
    active = 1
    address = {V6_VIP} pub0:1
    port = 8080
    scheduler = wlc
    timeout = 1
    reentry = 1
{servers}}}
"""


SHARED_MARK = """primary = 198.51.100.1
network = direct
virtual http {
    active = 1
    address = 198.51.100.80 pub0:1
    port = 8080
    fwmark = 80
    persistent = 60
    timeout = 1
    reentry = 1
    server web1 {
        address = 10.200.0.11
        active = 1
    }
}
virtual https {
    active = 1
    address = 198.51.100.80 pub0:1
    port = 8443
    fwmark = 80
    persistent = 60
    timeout = 1
    reentry = 1
    server web1 {
        address = 10.200.0.11
        active = 1
    }
    server web2 {
        address = 10.200.0.12
        active = 1
    }
}
"""


@pytest.fixture
def lab(netns, tmp_path):
    subreaper()
    netns.run(["ip", "-6", "addr", "add", "2001:db8:200::1/64", "dev", "priv0", "nodad"])
    for rs in (V6_RS1, V6_RS2):
        netns.run(["ip", "-6", "addr", "add", f"{rs}/64", "dev", "priv0", "nodad"])
    for n in (11, 12):
        netns.run(["ip", "addr", "add", f"10.200.0.{n}/24", "dev", "priv0"])
    started: list[Lvsd] = []
    yield netns, tmp_path, started
    for lvsd in started:
        if lvsd.proc is not None:
            lvsd.stop(signal.SIGKILL)
    close_tables()


@pytest.mark.parametrize(("network", "flag"), [("nat", "-m"), ("direct", "-g")])
def test_an_ipv6_virtual_follows_its_servers_health(lab, network, flag):
    ns, tmp, started = lab
    web1, web2 = Listener(ns, V6_RS1, 8080), Listener(ns, V6_RS2, 8080)
    lvsd = Lvsd(ns, tmp, v6_config(network))
    started.append(lvsd)
    lvsd.start()
    vip = f"[{V6_VIP}]:8080"
    both = {f"{vip} [{V6_RS1}]:8080": 1, f"{vip} [{V6_RS2}]:8080": 2}
    wait_for("both IPv6 servers in", lambda: weights(ns) == both, 60)
    # web2 (weight 2) enters at 1 and doubles (slow start): the add then an edit
    assert f"ipvsadm -a -t {vip} -r [{V6_RS2}]:8080 {flag} -w 1" in lvsd.ops()
    assert lvsd.ops()[-1] == f"ipvsadm -e -t {vip} -r [{V6_RS2}]:8080 {flag} -w 2"
    assert f"ipvsadm -A -t {vip} -s wlc" in lvsd.ops()
    web1.stop()
    wait_for("web1 out", lambda: weights(ns) == {f"{vip} [{V6_RS2}]:8080": 2}, 30)
    assert f'rs=[{V6_RS1}]:8080 vs=web6 UP->DOWN weight=absent' in lvsd.log()
    web1.start()
    wait_for("web1 back", lambda: weights(ns) == both, 30)
    assert lvsd.stop(signal.SIGTERM) == 0
    assert weights(ns) == {}  # lvsd removes the services it owns
    web1.stop()
    web2.stop()


def test_virtuals_sharing_a_fwmark_are_one_kernel_service(lab):
    ns, tmp, started = lab
    # not 80/443: nanny's default check of port 80 is an HTTP exchange, these only echo
    listeners = [Listener(ns, "10.200.0.11", 8080), Listener(ns, "10.200.0.11", 8443),
                 Listener(ns, "10.200.0.12", 8443)]
    lvsd = Lvsd(ns, tmp, SHARED_MARK)
    started.append(lvsd)
    lvsd.start()
    full = {"80 10.200.0.11:8080": 1, "80 10.200.0.11:8443": 1, "80 10.200.0.12:8443": 1}
    wait_for("the servers of both virtuals under the one mark", lambda: weights(ns) == full, 60,
             show=lambda: (weights(ns), lvsd.log()[-3000:]))
    services = [op for op in lvsd.ops() if op.startswith("ipvsadm -A")]
    assert services == ["ipvsadm -A -f 80 -s wlc -p 60"]
    listeners[1].stop()  # HTTPS on web1 fails: only that entry goes, HTTP on web1 stays
    wait_for("web1's HTTPS entry out", lambda: weights(ns) == {
        "80 10.200.0.11:8080": 1, "80 10.200.0.12:8443": 1}, 30)
    listeners[1].start()
    wait_for("web1's HTTPS entry back", lambda: weights(ns) == full, 30)
    assert lvsd.stop(signal.SIGTERM) == 0
    assert weights(ns) == {}
    for listener in listeners:
        listener.stop()
