"""NetlinkIpvs specifics the fake has no counterpart for (kernel tier only)."""

from __future__ import annotations

import errno

import pytest

from piranha.ipvs.types import AddDest, AddService, DelDest
from testkit.ipvs_cases import WEB, key, rs, service

pytestmark = pytest.mark.kernel


def test_one_datagram_per_recv_gives_the_same_results(netlink_lab):
    """The fallback without recvmmsg: batches, failures and dumps behave the same."""
    from piranha.ipvs.netlink import NetlinkIpvs

    with NetlinkIpvs(netlink_lab.name, batch=16, bulk=False) as plain:
        ops = [AddService(service(key(3000 + n))) for n in range(40)]
        ops += [AddDest(key(3000 + n), rs(10 + n)) for n in range(40)]
        ops.insert(30, AddService(service(key(3000))))       # EEXIST, in the second batch
        ops.append(DelDest(WEB, rs(11).key))                  # ESRCH, last
        failures = plain.apply(ops)
        assert [(f.op, f.errno) for f in failures] == [(ops[30], errno.EEXIST),
                                                       (ops[-1], errno.ESRCH)]
        table = plain.dump()
        assert table == netlink_lab.ipvs.dump()
        assert len(table.services) == 40 and table.dests[key(3005)] == (rs(15),)


def test_a_missing_namespace_is_an_error_not_a_new_namespace():
    from piranha.ipvs.netlink import NetlinkIpvs

    with pytest.raises(FileNotFoundError):
        NetlinkIpvs("pirc-no-such-namespace")
