"""Contract: batches with failures, big tables, counters, zero, flush."""

from __future__ import annotations

import errno
import time
from ipaddress import IPv4Address

from piranha.ipvs.types import (
    AddDest,
    AddService,
    DelDest,
    DelService,
    EditDest,
    Flush,
    SetTimeouts,
    Stats,
    Table,
    Timeouts,
    Zero,
)
from testkit.ipvs_cases import WEB, key, ok, rs, service


def position(ops, op):
    """Index of ``op`` itself (not of an equal op) in ``ops``."""
    return next(i for i, o in enumerate(ops) if o is op)


def test_a_batch_keeps_going_after_failures_and_names_them(lab):
    other = key(443)
    ops = [
        AddService(service()),
        AddService(service(scheduler="rr")),          # EEXIST
        AddDest(WEB, rs(11)),
        AddDest(other, rs(11)),                       # ESRCH: not created yet
        AddService(service(other)),
        AddDest(WEB, rs(12)),
        DelDest(WEB, rs(13).key),                     # ENOENT
        EditDest(WEB, rs(12, weight=4)),
        DelService(key(8080)),                        # ESRCH
        AddDest(other, rs(14)),
    ]
    failures = lab.ipvs.apply(ops)
    assert [(position(ops, f.op), f.errno) for f in failures] == [
        (1, errno.EEXIST), (3, errno.ESRCH), (6, errno.ENOENT), (8, errno.ESRCH)]
    assert [f.message for f in failures] == [
        "Service already exists", "Service not defined", "No such destination", "No such service"]
    table = lab.ipvs.dump()
    assert set(table.services) == {service(), service(other)}
    assert table.dests == {WEB: (rs(12, weight=4), rs(11)), other: (rs(14),)}


def test_failures_across_many_batches_are_matched_to_their_ops(lab):
    # more ops than one netlink batch (64 in the suite), with failures on both sides of seams
    keys = [key(1000 + n) for n in range(120)]
    ops, expected = [], []
    for n, k in enumerate(keys):
        ops.append(AddService(service(k)))
        if n % 9 == 4:
            expected.append(len(ops))
            ops.append(AddService(service(k)))  # duplicate: EEXIST
        ops.append(AddDest(k, rs(10 + n % 200)))
    failures = lab.ipvs.apply(ops)
    assert [position(ops, f.op) for f in failures] == expected
    assert {f.errno for f in failures} == {errno.EEXIST}
    table = lab.ipvs.dump()
    assert len(table.services) == 120
    assert all(table.dests[k] == (rs(10 + n % 200),) for n, k in enumerate(keys))


def test_a_big_table_dumps_whole(lab):
    # several dump chunks for the services and for one service's destinations
    keys = [key(2000 + n, IPv4Address("198.51.100.10") + n % 7) for n in range(160)]
    ops = [AddService(service(k, "rr")) for k in keys]
    ops += [AddDest(k, rs(20 + i)) for k in keys for i in range(3)]
    crowd = [rs(str(IPv4Address("10.201.0.1") + i), 8080) for i in range(300)]
    ops += [AddDest(keys[0], d) for d in crowd]
    ok(lab, *ops)
    table = lab.ipvs.dump()
    assert set(table.services) == {service(k, "rr") for k in keys}
    assert table.dests[keys[1]] == (rs(22), rs(21), rs(20))
    assert table.dests[keys[0]] == tuple(reversed(crowd)) + (rs(22), rs(21), rs(20))


def test_counters_are_reported_and_zeroed(lab):
    other = key(443)
    ok(lab, AddService(service()), AddDest(WEB, rs(11)), AddService(service(other)),
       AddDest(other, rs(12, 443)))
    lab.traffic(WEB, rs(11).key)
    lab.traffic(other, rs(12, 443).key)
    table = counted(lab, WEB, other)
    for k in (WEB, other):
        svc_stats, dest_stats = table.service(k).stats, table.dests[k][0].stats
        assert isinstance(svc_stats, Stats) and isinstance(dest_stats, Stats)
        assert svc_stats.conns == dest_stats.conns == 1
        assert svc_stats.inpkts >= 1 and svc_stats.inbytes >= 40
    ok(lab, Zero(WEB))
    table = lab.ipvs.dump()
    assert table.service(WEB).stats.conns == table.dests[WEB][0].stats.conns == 0
    assert table.service(WEB).stats.inbytes == 0
    assert table.service(other).stats.conns == 1
    ok(lab, Zero())
    table = lab.ipvs.dump()
    assert table.service(other).stats.conns == table.dests[other][0].stats.conns == 0


def counted(lab, *keys, wait=10.0):
    """The table once every service of ``keys`` shows a connection (the kernel's estimator
    folds per-CPU counters in every 2 s, so they show up to 2 s late)."""
    deadline = time.monotonic() + wait
    while True:
        table = lab.ipvs.dump()
        if all(table.service(k).stats.conns for k in keys) or time.monotonic() > deadline:
            return table
        time.sleep(0.2)


def test_zero_of_a_missing_service_is_esrch(lab):
    failures = lab.ipvs.apply([Zero(WEB), Zero()])
    assert [(f.op, f.errno, f.message) for f in failures] == [
        (Zero(WEB), errno.ESRCH, "No such service")]


def test_flush_empties_the_table_but_keeps_timeouts(lab):
    ok(lab, SetTimeouts(Timeouts(1000, 0, 0)), AddService(service()), AddDest(WEB, rs(11)),
       AddService(service(key(443))), Flush())
    assert lab.ipvs.dump() == Table()
    assert lab.ipvs.timeouts() == Timeouts(1000, 120, 300)
    ok(lab, Flush())  # flushing an empty table is fine
