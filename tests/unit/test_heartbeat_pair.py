"""Two FailoverMachines back to back through an in-memory LinkPair: no sockets, no sleeping.

Time is fake; every Tick arrives exactly at a machine's next_deadline(), datagrams take 1 ms.
"""

from __future__ import annotations

from typing import Any

import pytest

from piranha.heartbeat.events import (
    Activate,
    Announce,
    Deactivate,
    DirectorState,
    LinkDown,
    LinkUp,
    LvsdExited,
    PeerHeard,
    Terminate,
)
from piranha.heartbeat.machine import FailoverMachine
from piranha.heartbeat.packet import AuthCodec, Magic, Reason, encode
from testkit.linkpair import (
    BACKUP,
    PRIMARY,
    PRIVATE,
    PUBLIC,
    WALL_EPOCH,
    Datagram,
    HeartbeatPath,
    LinkPair,
)

K, D = 2.0, 5.0
KEY = b"shared heartbeat key for tests!!"
S, A, B = DirectorState.STANDBY, DirectorState.ACTIVE, DirectorState.BLOCKED


def machine(master: bool, keepalive: float = K, deadtime: float = D, **kw: Any) -> FailoverMachine:
    return FailoverMachine(keepalive=keepalive, deadtime=deadtime, master=master, **kw)


def pair(key: bytes | None = None, **kw: Any) -> LinkPair:
    auth = key is not None
    return LinkPair(machine(True, authenticated=auth, **kw),
                    machine(False, authenticated=auth, **kw), key=key)


def steady(key: bytes | None = None, **kw: Any) -> LinkPair:
    """Both started together and settled: primary ACTIVE, backup STANDBY."""
    link = pair(key, **kw)
    link.start(PRIMARY)
    link.start(BACKUP)
    link.run(30.0)
    assert (link[PRIMARY].state, link[BACKUP].state) == (A, S)
    return link


def activations(link: LinkPair, name: str) -> list[float]:
    return [t for t, action in link[name].effects() if isinstance(action, Activate)]


def last_heard(link: LinkPair, name: str, before: float) -> float:
    """When ``name`` last handled a heartbeat before ``before``."""
    return max(r.at for r in link[name].records if isinstance(r.event, PeerHeard)
               and r.at < before)


# ---- start-up ----------------------------------------------------------------------------------


def test_normal_start_primary_active_backup_standby() -> None:
    link = pair()
    link.start(PRIMARY)
    link.run(1.0)
    link.start(BACKUP)
    link.run(60.0)
    assert (link[PRIMARY].state, link[BACKUP].state) == (A, S)
    assert activations(link, PRIMARY) == [3.001]  # on the backup's first STOPPED
    assert activations(link, BACKUP) == []
    # Piranha's wire format on both paths: the first datagrams are 4-byte STOPPED, the
    # primary's later ones RUNNING
    first = link.wire[0]
    assert (first.sender, first.data) == (PRIMARY, bytes.fromhex("bddabdad"))
    assert {d.path for d in link.wire} == {PUBLIC, PRIVATE}
    assert link.wire[-1].data == bytes.fromhex("dadbadbd" if link.wire[-1].sender == PRIMARY
                                               else "bddabdad")
    assert link[BACKUP].transitions() == [(1.0, DirectorState.INIT, S,
                                           "started as backup: standby")]


def test_backup_started_long_before_stays_active_no_failback() -> None:
    link = pair()
    link.start(BACKUP)
    link.run(60.0)
    assert activations(link, BACKUP) == [2 * D]  # alone: two deadtimes for a late primary
    link.start(PRIMARY)
    link.run(120.0)
    assert (link[PRIMARY].state, link[BACKUP].state) == (S, A)
    assert activations(link, PRIMARY) == []


OFFSETS = [0.0, 0.001, 0.5, 1.0, 1.999, 2.0, 2.5, 3.0, 4.0, 4.999]


@pytest.mark.parametrize("offset", OFFSETS)
@pytest.mark.parametrize("first", [PRIMARY, BACKUP])
def test_start_within_deadtime_primary_ends_active(first: str, offset: float) -> None:
    # Piranha 0.8.6 lets the backup activate on the idle primary's first STOPPED, so primary
    # first and backup a moment later left the backup active for good.
    link = pair()
    link.start(first)
    link.run(offset)
    link.start(BACKUP if first == PRIMARY else PRIMARY)
    link.run(60.0)
    assert (link[PRIMARY].state, link[BACKUP].state) == (A, S)
    assert activations(link, BACKUP) == []  # not even briefly
    assert len(activations(link, PRIMARY)) == 1


def test_start_within_deadtime_with_lossy_first_packets() -> None:
    link = pair()
    seen: set[str] = set()

    def lose_first_of_each(d: Datagram) -> bool:
        lost = d.sender not in seen
        seen.add(d.sender)
        return lost

    link.drop = lose_first_of_each
    link.start(PRIMARY)
    link.run(0.7)
    link.start(BACKUP)
    link.run(60.0)
    assert (link[PRIMARY].state, link[BACKUP].state) == (A, S)


def test_forced_primary_takes_over_from_an_active_backup() -> None:
    link = pair()
    link.start(BACKUP)
    link.run(30.0)
    link.restart(PRIMARY, machine(True, force_active=True))
    link.run(60.0)
    assert (link[PRIMARY].state, link[BACKUP].state) == (A, S)
    stand_down = [r for r in link[BACKUP].records if r.step.after is S and r.step.before is A]
    assert stand_down[0].step.reason == "partner active: deactivating LVS"
    # the backup's extra RUNNING made the master re-ARP (rhbz 134007)
    assert any(isinstance(a, Announce) for _, a in link[PRIMARY].effects())


# ---- partner death and return ------------------------------------------------------------------


@pytest.mark.parametrize(("keepalive", "deadtime"), [(K, D), (0.1, 0.3), (6.0, 18.0)])
def test_primary_dies_backup_active_after_exactly_deadtime(keepalive: float,
                                                           deadtime: float) -> None:
    link = steady(keepalive=keepalive, deadtime=deadtime)
    died = 40.0 + keepalive / 3
    link.run(died)
    link.crash(PRIMARY)
    link.run(died + 3 * deadtime)
    heard = last_heard(link, BACKUP, died + 1)
    [took_over] = activations(link, BACKUP)
    assert took_over == pytest.approx(heard + deadtime, abs=1e-9)
    assert died < took_over <= died + deadtime + link.latency
    assert link[BACKUP].transitions()[-1][3] == "partner dead: activating lvs"


def test_primary_returns_and_stays_standby() -> None:
    link = steady()
    link.crash(PRIMARY)
    link.run(60.0)
    link.restart(PRIMARY, machine(True))
    link.run(120.0)
    assert (link[PRIMARY].state, link[BACKUP].state) == (S, A)


def test_primary_shutdown_hands_over_at_once() -> None:
    link = steady()
    link.run(41.0)
    step = link.handle(PRIMARY, Terminate(link.now, 15))
    assert step.actions[0] == Deactivate()
    link.run(60.0)
    assert activations(link, BACKUP) == [41.0 + link.latency]  # not after deadtime


# ---- lost packets, split paths, flapping -------------------------------------------------------


def test_losing_every_other_heartbeat_causes_no_failover() -> None:
    link = steady()
    count = {PRIMARY: 0, BACKUP: 0}

    def every_other(d: Datagram) -> bool:
        count[d.sender] += 1
        return count[d.sender] % 4 in (1, 2)  # both paths of every other send

    link.drop = every_other
    link.run(300.0)
    assert sum(d.lost for d in link.wire) > 100
    assert activations(link, BACKUP) == []
    assert (link[PRIMARY].state, link[BACKUP].state) == (A, S)


def lose_next(link: LinkPair, sender: str, sends: int) -> None:
    """Lose the next ``sends`` heartbeats of ``sender`` on every path."""
    left = sends * len(link.paths)

    def rule(d: Datagram) -> bool:
        nonlocal left
        if d.sender != sender or left == 0:
            return False
        left -= 1
        return True

    link.drop = rule


@pytest.mark.parametrize(("keepalive", "deadtime", "tolerated", "fatal"),
                         [(K, D, 1, 2), (0.1, 0.3, 1, 3), (6.0, 18.0, 1, 3)])
def test_lost_heartbeats_below_deadtime_cause_no_failover(
        keepalive: float, deadtime: float, tolerated: int, fatal: int) -> None:
    link = steady(keepalive=keepalive, deadtime=deadtime)
    for at in (40.0, 60.0, 80.0):
        link.run(at)
        lose_next(link, PRIMARY, tolerated)  # (tolerated + 1) x keepalive < deadtime
        link.run(at + 10.0)
    assert sum(d.lost for d in link.wire) == 3 * tolerated * len(link.paths)
    assert activations(link, BACKUP) == []
    lose_next(link, PRIMARY, fatal)  # (fatal + 1) x keepalive > deadtime
    link.run(120.0)
    assert len(activations(link, BACKUP)) == 1


@pytest.mark.parametrize("cuts", [
    [(PRIMARY, PUBLIC), (BACKUP, PUBLIC)],  # public path down both ways
    [(PRIMARY, PRIVATE), (BACKUP, PRIVATE)],  # private path down both ways
    [(PRIMARY, PUBLIC), (BACKUP, PRIVATE)],  # each direction keeps one path
])
def test_split_heartbeat_paths_cause_no_failover(cuts: list[tuple[str, HeartbeatPath]]) -> None:
    link = steady()
    for sender, path in cuts:
        link.cut(sender, path)
    link.run(300.0)
    assert activations(link, BACKUP) == []
    assert (link[PRIMARY].state, link[BACKUP].state) == (A, S)


def test_single_heartbeat_path() -> None:
    # no primary_private in lvs.cf: pulse opens one socket only
    link = LinkPair(machine(True), machine(False), paths=(PUBLIC,))
    link.start(PRIMARY)
    link.start(BACKUP)
    link.run(30.0)
    assert (link[PRIMARY].state, link[BACKUP].state) == (A, S)
    assert {d.path for d in link.wire} == {PUBLIC}
    link.cut(PRIMARY, PUBLIC)
    link.run(40.0)
    assert link[BACKUP].state is A


def test_all_paths_down_split_brain_then_master_wins() -> None:
    link = steady()
    link.cut()
    link.run(60.0)
    assert (link[PRIMARY].state, link[BACKUP].state) == (A, A)  # the risk of any 2-node HA
    link.restore()
    link.run(70.0)
    assert (link[PRIMARY].state, link[BACKUP].state) == (A, S)


def test_partner_flapping_one_way_master_stays_active() -> None:
    link = steady()
    for start in range(40, 400, 40):
        link.run(float(start))
        link.cut(PRIMARY)  # the backup stops hearing the primary ...
        link.run(start + D + 3.0)
        link.restore(PRIMARY)  # ... and hears it again
    link.run(420.0)
    assert activations(link, BACKUP) == pytest.approx(
        [last_heard(link, BACKUP, s + 1.0) + D for s in range(40, 400, 40)])
    assert link[PRIMARY].transitions()[2:] == []  # ACTIVE throughout
    assert link[BACKUP].state is S


def test_partner_flapping_short_outages_never_fail_over() -> None:
    link = steady()
    for start in range(40, 400, 10):
        link.run(float(start))
        link.cut(PRIMARY)
        link.run(start + 2.5)  # one heartbeat lost each time
        link.restore(PRIMARY)
    link.run(420.0)
    assert activations(link, BACKUP) == []


def test_primary_restarting_quickly_takes_over_again_each_time() -> None:
    link = steady()
    for start in range(40, 200, 20):
        link.run(float(start))
        link.crash(PRIMARY)
        link.run(start + 1.0)
        link.restart(PRIMARY, machine(True))
        link.run(start + 1.0 + K + link.latency)  # on the idle backup's next STOPPED
        assert link[PRIMARY].state is A
    assert activations(link, BACKUP) == []


def test_primary_flapping_for_longer_than_deadtime_fails_over_once() -> None:
    link = steady()
    for start in range(40, 200, 20):
        link.run(float(start))
        link.crash(PRIMARY)
        link.run(start + D + 3.0)
        link.restart(PRIMARY, machine(True))
    link.run(220.0)
    assert len(activations(link, BACKUP)) == 1
    assert (link[PRIMARY].state, link[BACKUP].state) == (S, A)


# ---- local faults ------------------------------------------------------------------------------


def test_link_down_blocks_activation() -> None:
    link = steady()
    link.handle(BACKUP, LinkDown(link.now, "Private NIC: link down"))
    link.crash(PRIMARY)
    link.run(100.0)
    assert link[BACKUP].state is B and activations(link, BACKUP) == []
    link.handle(BACKUP, LinkUp(link.now))
    link.run(100.0 + D)
    [took_over] = activations(link, BACKUP)  # at the next partner deadline
    assert 100.0 < took_over <= 100.0 + D


def test_link_down_on_active_primary_hands_over() -> None:
    link = steady()
    link.run(41.0)
    link.handle(PRIMARY, LinkDown(link.now))
    link.run(50.0)
    assert (link[PRIMARY].state, link[BACKUP].state) == (B, A)
    # the primary's next STOPPED (it dropped out of RUNNING) is enough; no deadtime wait
    assert activations(link, BACKUP) == [42.0 + link.latency]
    link.handle(PRIMARY, LinkUp(link.now))
    link.run(100.0)
    assert (link[PRIMARY].state, link[BACKUP].state) == (S, A)


def test_primary_blocked_at_start_backup_takes_over_after_waiting() -> None:
    link = pair()
    link.start(PRIMARY)
    link.handle(PRIMARY, LinkDown(link.now))
    link.run(0.5)
    link.start(BACKUP)
    link.run(60.0)
    assert (link[PRIMARY].state, link[BACKUP].state) == (B, A)
    # the backup said STOPPED at 2.5, the blocked primary stayed idle for a deadtime after that
    [took_over] = activations(link, BACKUP)
    assert 0.5 + K + D <= took_over <= 0.5 + K + D + K + link.latency


def test_lvsd_exit_hands_over_and_blocks_until_partner_runs() -> None:
    link = steady()
    link.run(41.0)
    link.handle(PRIMARY, LvsdExited(link.now, "Child process 99 exited with status 1"))
    link.run(60.0)
    assert (link[PRIMARY].state, link[BACKUP].state) == (S, A)  # fault cleared by RUNNING
    link.handle(BACKUP, LvsdExited(link.now, "Child process 12 terminated with signal 11"))
    link.run(70.0)
    assert (link[PRIMARY].state, link[BACKUP].state) == (A, S)


def test_lvsd_exit_without_a_partner_stays_down() -> None:
    link = steady()
    link.crash(BACKUP)
    link.run(41.0)
    link.handle(PRIMARY, LvsdExited(link.now))
    link.run(200.0)
    assert link[PRIMARY].state is B  # Piranha too: only a RUNNING partner clears it


# ---- forged and replayed packets ---------------------------------------------------------------

PRIMARY_ADDRESS, BACKUP_ADDRESS = "198.51.100.1", "198.51.100.2"


def test_plain_mode_is_spoofable() -> None:
    # why the authenticated mode exists: one forged 4-byte STOPPED from the primary's address
    link = steady()
    link.run(41.0)
    link.inject(BACKUP, encode(Magic.STOPPED), PRIMARY_ADDRESS)
    link.run(41.5)
    assert (link[PRIMARY].state, link[BACKUP].state) == (A, A)


def test_plain_mode_filters_unexpected_senders() -> None:
    link = steady()
    link.inject(BACKUP, encode(Magic.STOPPED), "198.51.100.66")
    link.run(31.0)
    assert link[BACKUP].state is S
    assert [r.reason for _, r in link[BACKUP].rejected] == [Reason.UNEXPECTED_SENDER]


def forged_attempts(link: LinkPair, to: str, source: str) -> None:
    """Inject every forgery we can think of towards ``to``."""
    captured = [d.data for d in link.wire if d.sender != to and not d.lost]
    for data in (encode(Magic.STOPPED), encode(Magic.RUNNING),  # plain packets
                 captured[0], captured[-1],  # replays: the oldest and the newest
                 captured[-1][:-1] + bytes([captured[-1][-1] ^ 0x80]),  # altered MAC
                 captured[-1][:4] + encode(Magic.STOPPED) + captured[-1][8:]):  # altered magic
        link.inject(to, data, source)


def test_forged_stopped_cannot_make_the_backup_take_over() -> None:
    link = steady(KEY)
    link.run(41.0)
    forged_attempts(link, BACKUP, PRIMARY_ADDRESS)
    link.run(80.0)
    assert (link[PRIMARY].state, link[BACKUP].state) == (A, S)
    assert sorted(r.reason.name for _, r in link[BACKUP].rejected) == sorted(
        ["NOT_AUTHENTICATED", "NOT_AUTHENTICATED", "REPLAYED", "REPLAYED", "BAD_MAC", "BAD_MAC"])


def test_forged_running_cannot_make_an_active_backup_step_down() -> None:
    link = steady(KEY)
    link.crash(PRIMARY)
    link.run(60.0)
    assert link[BACKUP].state is A
    forged_attempts(link, BACKUP, PRIMARY_ADDRESS)
    link.run(80.0)
    assert link[BACKUP].state is A
    assert len(link[BACKUP].rejected) == 6


@pytest.mark.parametrize("step", [-3600.0, -11.0, 11.0, 86400.0])
@pytest.mark.parametrize("who", [PRIMARY, BACKUP])
def test_a_wall_clock_step_on_either_director_causes_no_takeover(who, step) -> None:
    link = steady(KEY)
    link.run(41.0)
    link.step_clock(who, step)
    link.run(200.0)
    assert (link[PRIMARY].state, link[BACKUP].state) == (A, S)
    assert activations(link, BACKUP) == []
    assert link[BACKUP].rejected == [] and link[PRIMARY].rejected == []


def test_after_a_restart_a_skewed_clock_is_still_refused() -> None:
    link = steady(KEY)
    link.run(41.0)
    fresh = AuthCodec(KEY, [PRIMARY_ADDRESS], primary=False)  # the backup's pulse restarted
    newest = [d for d in link.wire if d.sender == PRIMARY][-1]
    assert fresh.decode(newest.data, PRIMARY_ADDRESS, WALL_EPOCH + 41.0 + 11.0).reason \
        is Reason.STALE


def test_replayed_running_cannot_delay_takeover() -> None:
    link = steady(KEY)
    link.run(41.0)
    recorded = [d for d in link.wire if d.sender == PRIMARY and 35.0 < d.at < 41.0]
    link.crash(PRIMARY)
    for d in recorded:  # the attacker replays the dead primary's RUNNING heartbeats
        link.inject(BACKUP, d.data, d.source, d.path)
    link.run(41.0 + D + 1.0)
    assert activations(link, BACKUP) == [pytest.approx(last_heard(link, BACKUP, 41.0) + D)]
    assert {r.reason for _, r in link[BACKUP].rejected} == {Reason.REPLAYED}


def test_authenticated_pair_behaves_like_plain() -> None:
    link = pair(KEY)
    link.start(PRIMARY)
    link.run(0.3)
    link.start(BACKUP)
    link.run(40.0)
    assert (link[PRIMARY].state, link[BACKUP].state) == (A, S)
    assert {len(d.data) for d in link.wire} == {56}
    assert link[PRIMARY].rejected == link[BACKUP].rejected == []
    link.crash(PRIMARY)
    link.run(60.0)
    assert link[BACKUP].state is A


# ---- fractional timers -------------------------------------------------------------------------


def test_sub_second_failover() -> None:
    link = pair(keepalive=0.1, deadtime=0.3)
    link.start(PRIMARY)
    link.run(0.05)
    link.start(BACKUP)
    link.run(10.0)
    assert (link[PRIMARY].state, link[BACKUP].state) == (A, S)
    link.crash(PRIMARY)
    link.run(11.0)
    [took_over] = activations(link, BACKUP)
    assert 10.0 < took_over <= 10.0 + 0.3 + link.latency


def test_reflected_heartbeats_cause_no_split_brain() -> None:
    # each director's own heartbeats sent back to it with the partner's source address, from
    # now on, every time: the replay window must not move and nobody may act on them
    link = steady(KEY)
    link.run(41.0)
    for t in range(41, 81):
        for name, source in ((BACKUP, PRIMARY_ADDRESS), (PRIMARY, BACKUP_ADDRESS)):
            own = [d for d in link.wire if d.sender == name and not d.lost][-1]
            link.inject(name, own.data, source)
        link.run(t + 1.0)
    assert (link[PRIMARY].state, link[BACKUP].state) == (A, S)
    reasons = {r.reason for n in (PRIMARY, BACKUP) for _, r in link[n].rejected}
    assert Reason.REFLECTED in reasons and Reason.BAD_MAC not in reasons


def test_a_reflected_running_cannot_make_an_active_backup_step_down() -> None:
    link = steady(KEY)
    link.crash(PRIMARY)
    link.run(60.0)
    assert link[BACKUP].state is A
    for t in range(60, 80):
        own = [d for d in link.wire if d.sender == BACKUP][-1]  # its own RUNNING
        link.inject(BACKUP, own.data, PRIMARY_ADDRESS)
        link.run(t + 1.0)
    assert link[BACKUP].state is A
