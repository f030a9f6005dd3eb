"""Contract: connection timeouts and connection-sync daemons."""

from __future__ import annotations

import errno
from ipaddress import ip_address

import pytest

from piranha.ipvs.types import (
    AddDest,
    AddService,
    Daemon,
    DaemonState,
    DelDest,
    Forward,
    SetTimeouts,
    StartDaemon,
    StopDaemon,
    Timeouts,
)
from testkit.ipvs_cases import WEB, WEB6, fails, ok, rs, service

MASTER, BACKUP = DaemonState.MASTER, DaemonState.BACKUP
#: the largest timeout the kernel takes: INT_MAX / HZ with Debian's HZ=250
MAX_TIMEOUT = (2**31 - 1) // 250


def test_timeouts_round_trip_and_zero_means_unchanged(lab):
    ok(lab, SetTimeouts(Timeouts(1000, 100, 200)))
    assert lab.ipvs.timeouts() == Timeouts(1000, 100, 200)
    ok(lab, SetTimeouts(Timeouts(0, 50, 0)))
    assert lab.ipvs.timeouts() == Timeouts(1000, 50, 200)
    ok(lab, SetTimeouts(Timeouts(MAX_TIMEOUT, MAX_TIMEOUT, MAX_TIMEOUT)))
    assert lab.ipvs.timeouts() == Timeouts(MAX_TIMEOUT, MAX_TIMEOUT, MAX_TIMEOUT)


@pytest.mark.parametrize("bad", [Timeouts(MAX_TIMEOUT + 1, 0, 0), Timeouts(0, 0, 2**31),
                                 Timeouts(5, 2**32 - 1, 5)], ids=["tcp", "udp", "tcpfin"])
def test_a_timeout_over_int_max_over_hz_is_einval_and_changes_nothing(lab, bad):
    err = fails(lab, SetTimeouts(bad))
    assert err.errno == errno.EINVAL
    assert lab.ipvs.timeouts() == Timeouts(900, 120, 300)


def test_a_master_daemon_keeps_every_option(lab):
    master = Daemon(MASTER, lab.ifname, syncid=5, sync_maxlen=1400,
                    mcast_group=ip_address("224.0.0.99"), mcast_port=8849, mcast_ttl=2)
    ok(lab, StartDaemon(master))
    assert lab.ipvs.daemons() == [master]


def test_daemon_defaults_are_filled_in_and_master_is_listed_first(lab):
    ok(lab, StartDaemon(Daemon(BACKUP, lab.ifname, syncid=6)),
       StartDaemon(Daemon(MASTER, lab.ifname)))
    default = dict(mcast_group=ip_address("224.0.0.81"), mcast_port=8848, mcast_ttl=1)
    assert lab.ipvs.daemons() == [
        Daemon(MASTER, lab.ifname, syncid=0, sync_maxlen=1472, **default),
        Daemon(BACKUP, lab.ifname, syncid=6, sync_maxlen=1472, **default),
    ]
    ok(lab, StopDaemon(MASTER))
    assert [d.state for d in lab.ipvs.daemons()] == [BACKUP]
    ok(lab, StopDaemon(BACKUP, syncid=99))  # the kernel stops by state only
    assert lab.ipvs.daemons() == []


@pytest.mark.parametrize(("state", "asked", "kept"), [
    (BACKUP, 100, 1024), (BACKUP, 65535, 65535 - 48), (MASTER, 1, 1), (MASTER, 9000, 9000)])
def test_sync_maxlen_is_clamped_like_the_kernel(lab, state, asked, kept):
    d = Daemon(state, lab.ifname, sync_maxlen=asked, mcast_group=ip_address("ff02::1:81"))
    ok(lab, StartDaemon(d))
    (got,) = lab.ipvs.daemons()
    assert (got.sync_maxlen, got.mcast_group, got.mcast_port) == (kept, d.mcast_group, 8848)


def test_daemon_errors(lab):
    ok(lab, StartDaemon(Daemon(MASTER, lab.ifname)))
    err = fails(lab, StartDaemon(Daemon(MASTER, lab.ifname, syncid=3)))
    assert (err.errno, err.message) == (errno.EEXIST, "Daemon has already run")
    err = fails(lab, StartDaemon(Daemon(BACKUP, "nosuch0")))
    assert (err.errno, err.message) == (errno.ENODEV, "No such device")
    # the interface is looked up before the running check
    assert fails(lab, StartDaemon(Daemon(MASTER, "nosuch0"))).errno == errno.ENODEV
    bad_group = Daemon(BACKUP, lab.ifname, mcast_group=ip_address("198.51.100.7"))
    assert fails(lab, StartDaemon(bad_group)).errno == errno.EINVAL
    assert fails(lab, StartDaemon(Daemon(BACKUP, "x" * 16))).errno == errno.EINVAL
    err = fails(lab, StopDaemon(BACKUP))
    assert (err.errno, err.message) == (errno.ESRCH, "No daemon is running")
    assert [d.state for d in lab.ipvs.daemons()] == [MASTER]


def test_sync_daemons_and_mixed_family_dests_exclude_each_other(lab):
    tunnel6 = rs("2001:db8:200::12", 80, Forward.TUNNEL)
    ok(lab, AddService(service()), AddService(service(WEB6)), AddDest(WEB, tunnel6))
    assert fails(lab, StartDaemon(Daemon(MASTER, lab.ifname))).errno == errno.EINVAL
    ok(lab, DelDest(WEB, tunnel6.key), StartDaemon(Daemon(MASTER, lab.ifname)))
    assert fails(lab, AddDest(WEB, tunnel6)).errno == errno.EINVAL
    ok(lab, AddDest(WEB6, rs("2001:db8:200::13", 443)))  # same family: fine


def test_a_daemon_stopped_before_its_thread_ran_counts_as_stopped(lab):
    # in one batch the kernel often stops the thread before it first ran: it then answers the
    # stop with -EINTR, which netlink turns into no ack at all; the daemon is stopped anyway
    for syncid in range(3):
        ok(lab, StartDaemon(Daemon(MASTER, lab.ifname, syncid=syncid)), StopDaemon(MASTER))
        assert lab.ipvs.daemons() == []
