"""Persistence through a real director: ``persistent`` keeps a client on one real server until
the template expires, and ``pmask`` makes a whole client subnet share one template.

NAT topology (``lab.e2e``); one client namespace holds three addresses: 198.51.100.20 and .30
(both in 198.51.100.0/25) and .200 (in 198.51.100.128/25). Real servers say their name and
keep the connection until the client ends it; the client ends it with a RST, so IPVS keeps
the connection entry 10 s (CLOSE) instead of 2 min (TIME_WAIT).

Kernel rule that sets the timing: a template expires ``persistent`` seconds after its last use,
but if it still controls a connection entry at that moment, the kernel re-arms it for 60 s
(``ip_vs_conn_expire``). So ``persistent = 12`` (longer than CLOSE) expires in ~12 s, where
``persistent = 3`` would take ~63 s.
"""

from __future__ import annotations

import time
from pathlib import Path

from lab.e2e import (
    C_MAC,
    VIP,
    HoldServer,
    add_director,
    add_nat_servers,
    ask_from,
    config,
    connections,
    explained,
    lan,
    serve,
    start_lvsd,
    virtual,
)
from lab.lvsd import Lvsd
from lab.patience import wait_for

STICKY, SUBNET = 8080, 8081
A1, A2, B = "198.51.100.20", "198.51.100.30", "198.51.100.200"
CF = config("nat", virtual("sticky", STICKY, ["10.200.0.11", "10.200.0.12"],
                           "    persistent = 12\n")
            + virtual("subnet", SUBNET, ["10.200.0.11", "10.200.0.12"],
                      "    persistent = 60\n    pmask = 255.255.255.128\n"))


def test_persistence_timeout_and_netmask(tmp_path: Path) -> None:
    with lan(("br0", "br1")) as net:
        add_director(net, nat=True)
        add_nat_servers(net)
        client = net.add("client", f"{A1}/24", C_MAC, [f"addr add {A2}/24 dev eth0",
                                                       f"addr add {B}/24 dev eth0"]).ns
        for n in (1, 2):
            for port in (STICKY, SUBNET):
                serve(HoldServer(net[f"rs{n}"].ns, f"rs{n}", port))
        director = net["d"].ns
        lvsd: Lvsd | None = None
        with explained(net, lambda: lvsd):
            lvsd = start_lvsd(net, tmp_path, CF, 4)

            # persistent: one client, one real server, however often it connects
            first = [ask_from(client, A1, VIP, STICKY) for _ in range(4)]
            assert len(set(first)) == 1, first

            def template() -> bool:
                return any(c.client == A1 and c.cport == 0 and c.vport == STICKY
                           for c in connections(director))
            assert template()
            start = time.monotonic()
            wait_for("the persistence template to expire", lambda: not template(), 60, step=0.5)
            print(f"template gone {time.monotonic() - start:.1f} s after the last connection")
            # scheduled anew: rr moves on to the other real server
            again = ask_from(client, A1, VIP, STICKY)
            assert again != first[0]

            # pmask /25: .20 and .30 share a template, .200 (another /25) gets its own
            x = ask_from(client, A1, VIP, SUBNET)
            assert [ask_from(client, A2, VIP, SUBNET) for _ in range(3)] == [x] * 3
            y = ask_from(client, B, VIP, SUBNET)
            assert y != x  # rr: the next template went to the other server
            assert ask_from(client, B, VIP, SUBNET) == y
            templates = {c.client for c in connections(director)
                         if c.cport == 0 and c.vport == SUBNET}
            assert templates == {"198.51.100.0", "198.51.100.128"}  # masked client addresses
