"""First kernel tests: pyroute2's IPVS helper against the real kernel, ipvsadm as the oracle.

Notes on pyroute2 0.9.7's helper, checked against the kernel in the VM:
* never use the verb ``"update"``: it sends IPVS_CMD_DEL_*; edits are ``"set"``;
* ``IPVSDest`` defaults to ``fwd_method=3`` (direct routing): NAT is ``fwd_method=0``;
* ``from_message()`` copies back only af/protocol/addr/port/fwmark/sched_name/weight; its
  ``fwd_method``, ``flags``, ``timeout``, thresholds are the *class defaults*, not what the
  kernel said. Read those from the raw ``IPVS_*_ATTR_*`` keys;
* the kernel dumps destinations newest first.
"""

from __future__ import annotations

from socket import AF_INET, IPPROTO_TCP

from pyroute2 import IPVSDest, IPVSService

#: IP_VS_CONN_F_MASQ, ipvsadm's -m
FWD_MASQ = 0

VIP = "198.51.100.80"


def add_web_service(ipvs) -> IPVSService:
    """TCP 198.51.100.80:80, wlc, two NAT real servers (weights 3 and 1)."""
    svc = IPVSService(addr=VIP, port=80, protocol=IPPROTO_TCP, sched_name="wlc")
    ipvs.service("add", service=svc)
    for addr, port, weight in (("10.200.0.11", 80, 3), ("10.200.0.12", 8080, 1)):
        dest = IPVSDest(addr=addr, port=port, weight=weight, fwd_method=FWD_MASQ)
        ipvs.dest("add", service=svc, dest=dest)
    return svc


def test_smoke_service_and_nat_dests_round_trip(netns):
    ipvs = netns.ipvs()
    try:
        add_web_service(ipvs)

        services = [IPVSService.from_message(m) for m in ipvs.service("dump")]
        assert len(services) == 1
        svc = services[0]
        assert (svc["af"], svc["protocol"], svc["addr"], svc["port"]) == (
            AF_INET,
            IPPROTO_TCP,
            VIP,
            80,
        )
        assert svc["sched_name"] == "wlc"
        assert svc["IPVS_SVC_ATTR_NETMASK"] == "255.255.255.255"
        assert svc["IPVS_SVC_ATTR_TIMEOUT"] == 0  # not persistent

        dests = [IPVSDest.from_message(m) for m in ipvs.dest("dump", service=svc)]
        got = sorted(
            (d["addr"], d["port"], d["weight"], d["IPVS_DEST_ATTR_FWD_METHOD"]) for d in dests
        )
        assert got == [
            ("10.200.0.11", 80, 3, FWD_MASQ),
            ("10.200.0.12", 8080, 1, FWD_MASQ),
        ]
        for d in dests:
            assert d["IPVS_DEST_ATTR_ACTIVE_CONNS"] == 0
            assert d["IPVS_DEST_ATTR_INACT_CONNS"] == 0
    finally:
        ipvs.close()

    # the oracle: real ipvsadm 1.31, reading the same namespace's table
    saved = netns.run(["ipvsadm", "-Sn"]).stdout
    assert saved.splitlines() == [
        "-A -t 198.51.100.80:80 -s wlc",
        "-a -t 198.51.100.80:80 -r 10.200.0.11:80 -m -w 3",
        "-a -t 198.51.100.80:80 -r 10.200.0.12:8080 -m -w 1",
    ]


def test_smoke_namespaces_are_isolated(netns_factory):
    first, second = netns_factory(), netns_factory()
    ipvs = first.ipvs()
    try:
        add_web_service(ipvs)
        assert len(list(ipvs.service("dump"))) == 1
    finally:
        ipvs.close()

    other = second.ipvs()
    try:
        assert list(other.service("dump")) == []
    finally:
        other.close()
    assert second.run(["ipvsadm", "-Sn"]).stdout == ""
    # and the first namespace still has its service
    assert first.run(["ipvsadm", "-Sn"]).stdout.startswith("-A -t 198.51.100.80:80 -s wlc\n")
