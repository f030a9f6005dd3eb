"""FailoverMachine, one machine at a time: the decision table of section 2.4, row by row.

Scenarios with two machines back to back are in test_heartbeat_pair.py.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from piranha.heartbeat import machine as machine_module
from piranha.heartbeat.events import (
    Activate,
    Announce,
    Deactivate,
    DirectorState,
    Fault,
    LinkDown,
    LinkUp,
    LvsdExited,
    LvsdReady,
    PeerHeard,
    ProtocolError,
    Reconfigure,
    ReloadLvsd,
    SendHeartbeat,
    Start,
    Step,
    Terminate,
    Tick,
)
from piranha.heartbeat.machine import TRANSITIONS, FailoverMachine
from piranha.heartbeat.packet import Heartbeat, Magic

K, D = 2.0, 5.0  # Piranha's defaults: keepalive 2, deadtime 5
RUNNING, STOPPED = Heartbeat(Magic.RUNNING), Heartbeat(Magic.STOPPED)
S, A, B = DirectorState.STANDBY, DirectorState.ACTIVE, DirectorState.BLOCKED
T = DirectorState.TERMINATED


def make(master: bool = True, **kw: Any) -> FailoverMachine:
    return FailoverMachine(keepalive=K, deadtime=D, master=master, **kw)


def standby(master: bool = True, **kw: Any) -> FailoverMachine:
    m = make(master, **kw)
    m.handle(Start(0.0))
    return m


def active(master: bool = True) -> FailoverMachine:
    m = make(master, force_active=True)
    m.handle(Start(0.0))
    return m


def blocked(*faults: Fault, master: bool = True) -> FailoverMachine:
    m = active(master)
    if Fault.LVSD in faults:
        m.handle(LvsdExited(0.5, "Child process 42 exited with status 1"))
    if Fault.LINK in faults:
        m.handle(LinkDown(0.6))
    assert m.state is B and m.faults == frozenset(faults)
    return m


# ---- Start -------------------------------------------------------------------------------------


def test_start_standby_arms_send_and_deadline() -> None:
    m = make()
    assert m.state is DirectorState.INIT and m.next_deadline() == math.inf
    assert m.handle(Start(100.0)) == Step(DirectorState.INIT, S, (), "started as master: standby")
    assert m.next_deadline() == 100.0 + K  # first heartbeat keepalive after start


def test_start_forced_active() -> None:
    step = make(force_active=True).handle(Start(0.0))
    assert step == Step(DirectorState.INIT, A, (Activate(),),
                        "Forced active on startup: activating lvs")


def test_lone_master_is_silent_and_activates_at_deadtime() -> None:
    m = standby(backup_active=False)
    assert m.next_deadline() == D
    assert m.handle(Tick(D - 0.001)).actions == ()
    step = m.handle(Tick(D))
    assert step == Step(S, A, (Activate(),), "partner dead: activating lvs")
    assert all(not isinstance(a, SendHeartbeat) for a in m.handle(Tick(100.0)).actions)


def test_backup_gives_a_late_primary_two_deadtimes() -> None:
    m = standby(master=False)
    assert m.handle(Tick(2 * D - 0.001)).after is S
    assert m.handle(Tick(2 * D)) == Step(S, A, (Activate(),), "partner dead: activating lvs")


def test_backup_without_backup_active_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^a backup director with backup_active = 0 "):
        make(master=False, backup_active=False)


@pytest.mark.parametrize(("keepalive", "deadtime"), [(0, 5), (2, 0), (-1, 5)])
def test_timers_must_be_positive(keepalive: float, deadtime: float) -> None:
    with pytest.raises(ValueError, match=r"^keepalive and deadtime must be positive$"):
        FailoverMachine(keepalive=keepalive, deadtime=deadtime, master=True)


# ---- partner RUNNING ---------------------------------------------------------------------------


@pytest.mark.parametrize("magic", [Magic.RUNNING, Magic.FOS_STOPME])
def test_active_backup_hearing_running_sends_one_more_then_stands_down(magic: Magic) -> None:
    step = active(master=False).handle(PeerHeard(1.0, Heartbeat(magic)))
    assert step == Step(A, S, (SendHeartbeat(Magic.RUNNING), Deactivate()),
                        "partner active: deactivating LVS")


@pytest.mark.parametrize("magic", [Magic.RUNNING, Magic.FOS_STOPME])
def test_active_master_hearing_running_resends_arps(magic: Magic) -> None:
    step = active().handle(PeerHeard(1.0, Heartbeat(magic)))
    assert step == Step(A, A, (Announce(),), "partner active: resending arps")


@pytest.mark.parametrize("master", [True, False])
def test_standby_hearing_running_does_nothing_no_failback(master: bool) -> None:
    assert standby(master).handle(PeerHeard(1.0, RUNNING)) == Step(S, S)


def test_running_clears_the_lvsd_fault() -> None:
    m = blocked(Fault.LVSD)
    assert m.handle(PeerHeard(1.0, RUNNING)) == Step(
        B, S, (), "partner active: lvsd failure cleared")
    assert m.faults == frozenset()


def test_running_does_not_clear_a_link_fault() -> None:
    assert blocked(Fault.LINK).handle(PeerHeard(1.0, RUNNING)) == Step(B, B)
    m = blocked(Fault.LVSD, Fault.LINK)
    assert m.handle(PeerHeard(1.0, RUNNING)).after is B
    assert m.faults == {Fault.LINK}


# ---- partner STOPPED ---------------------------------------------------------------------------


def test_standby_master_hearing_stopped_activates() -> None:
    step = standby().handle(PeerHeard(1.0, STOPPED))
    assert step == Step(S, A, (Activate(),), "backup inactive: activating lvs")


def test_standby_backup_activates_when_the_primary_drops_out() -> None:
    m = standby(master=False)
    m.handle(PeerHeard(1.0, RUNNING))
    step = m.handle(PeerHeard(3.0, STOPPED))
    assert step == Step(S, A, (Activate(),), "primary inactive: activating lvs")


def test_standby_backup_waits_for_an_idle_primary_then_takes_over() -> None:
    m = standby(master=False)
    first = m.handle(PeerHeard(1.0, STOPPED))  # before we have said anything
    assert first == Step(S, S, (), "primary inactive: waiting for it to activate "
                                   "(it does when it hears our STOPPED heartbeat)")
    assert m.handle(Tick(K)).actions == (SendHeartbeat(Magic.STOPPED),)  # we are idle at 2.0
    for t in (3.0, 5.0, K + D - 0.001):
        assert m.handle(PeerHeard(t, STOPPED)) == Step(S, S)  # logged once, not every time
    # a deadtime after our first STOPPED the primary is still idle: it cannot serve
    step = m.handle(PeerHeard(K + D, STOPPED))
    assert step == Step(S, A, (Activate(),), "primary inactive: activating lvs")


def test_wait_counts_from_the_later_of_both_idle_announcements() -> None:
    m = standby(master=False)
    for t in (2.0, 4.0, 6.0, 8.0):
        m.handle(Tick(t))  # we have said STOPPED since 2.0
    m.handle(PeerHeard(9.0, STOPPED))  # a primary first heard at 9.0
    m.handle(Tick(10.0))
    assert m.handle(PeerHeard(9.0 + D - 0.001, STOPPED)).after is S
    assert m.handle(PeerHeard(9.0 + D, STOPPED)).after is A


@pytest.mark.parametrize("make_machine", [active, lambda: blocked(Fault.LINK),
                                          lambda: blocked(Fault.LVSD)])
def test_stopped_changes_nothing_when_active_or_blocked(make_machine: Any) -> None:
    m = make_machine()
    state = m.state
    assert m.handle(PeerHeard(1.0, STOPPED)) == Step(state, state)


@pytest.mark.parametrize("magic", [Magic.HOLD, Magic.HELD])
@pytest.mark.parametrize("make_machine", [standby, lambda: standby(False), active,
                                          lambda: blocked(Fault.LVSD)])
def test_hold_and_held_are_keepalives_only(magic: Magic, make_machine: Any) -> None:
    m = make_machine()
    state = m.state
    assert m.handle(PeerHeard(4.0, Heartbeat(magic))) == Step(state, state)
    assert m.faults == (frozenset({Fault.LVSD}) if state is B else frozenset())


def test_any_heartbeat_moves_the_partner_deadline() -> None:
    m = standby()
    m.handle(Tick(K))
    m.handle(Tick(4.0))
    m.handle(PeerHeard(4.5, Heartbeat(Magic.HOLD)))
    assert m.handle(Tick(D)).after is S  # would have been "partner dead" at 5.0
    assert m.handle(Tick(4.5 + D)).after is A


# ---- Ticks -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("make_machine", "magic"), [
    (standby, Magic.STOPPED), (active, Magic.RUNNING), (lambda: blocked(Fault.LINK),
                                                        Magic.STOPPED)])
def test_send_timer_sends_own_state_and_rearms(make_machine: Any, magic: Magic) -> None:
    m = make_machine()
    assert m.handle(Tick(K)).actions == (SendHeartbeat(magic),)
    assert m.next_deadline() == 2 * K
    assert m.handle(Tick(K + 0.5)).actions == ()  # not due yet


@pytest.mark.parametrize("make_machine", [active, lambda: blocked(Fault.LINK),
                                          lambda: blocked(Fault.LVSD)])
def test_partner_deadline_changes_nothing_unless_standby(make_machine: Any) -> None:
    m = make_machine()
    state = m.state
    step = m.handle(Tick(D))
    assert (step.before, step.after, step.reason) == (state, state, None)
    assert not any(isinstance(a, Activate) for a in step.actions)
    assert m.next_deadline() <= D + D


def test_deadline_and_send_due_together_send_the_new_state() -> None:
    m = FailoverMachine(keepalive=2.5, deadtime=D, master=True)
    m.handle(Start(0.0))
    m.handle(Tick(2.5))
    step = m.handle(Tick(5.0))
    assert step.actions == (Activate(), SendHeartbeat(Magic.RUNNING))


def test_partner_death_forgets_that_it_was_running() -> None:
    m = standby(master=False)
    m.handle(PeerHeard(1.0, RUNNING))
    m.handle(LinkDown(1.5))  # keeps us from taking over when the partner dies
    assert m.handle(Tick(1.0 + D)).after is B
    m.handle(LinkUp(7.0))
    # the partner comes back idle: a restarted primary, not one that dropped out
    assert m.handle(PeerHeard(8.0, STOPPED)).after is S


# ---- local faults ------------------------------------------------------------------------------


def test_link_down_when_active_deactivates_and_blocks() -> None:
    step = active().handle(LinkDown(1.0, "Primary NIC: link down"))
    assert step == Step(A, B, (Deactivate(),), "Primary NIC: link down; Local NIC link failure: "
                        "Pulse disabled; local link failure: deactivating LVS")


def test_link_down_when_standby_blocks_activation() -> None:
    m = standby()
    assert m.handle(LinkDown(1.0)) == Step(S, B, (), "Local NIC link failure: Pulse disabled")
    assert m.handle(LinkDown(1.5)) == Step(B, B)  # reported once
    assert m.handle(PeerHeard(2.0, STOPPED)) == Step(B, B)
    assert m.handle(Tick(2.0 + D)).after is B  # partner dead, still blocked
    assert m.handle(Tick(K * 5)).actions == (SendHeartbeat(Magic.STOPPED),)  # still heard
    assert m.handle(LinkUp(11.0)) == Step(B, S, (), "Local NIC link(s) restored: Pulse enabled")
    assert m.handle(LinkUp(11.5)) == Step(S, S)
    assert m.handle(PeerHeard(12.0, STOPPED)).after is A


def test_link_up_keeps_an_lvsd_fault() -> None:
    m = blocked(Fault.LVSD, Fault.LINK)
    assert m.handle(LinkUp(2.0)) == Step(B, B, (), "Local NIC link(s) restored: Pulse enabled")
    assert m.faults == {Fault.LVSD}


def test_lvsd_exit_when_active_deactivates_and_blocks() -> None:
    step = active().handle(LvsdExited(1.0, "Child process 42 terminated with signal 9"))
    assert step == Step(A, B, (Deactivate(),), "Child process 42 terminated with signal 9: "
                        "deactivating LVS, staying inactive until the partner is active")


def test_lvsd_fault_blocks_until_the_partner_is_heard_running() -> None:
    m = blocked(Fault.LVSD)
    for t in (D, 2 * D, 10 * D):
        assert m.handle(Tick(t)).after is B


@pytest.mark.parametrize("make_machine", [standby, lambda: blocked(Fault.LINK)])
def test_lvsd_exit_when_not_active_is_ignored(make_machine: Any) -> None:
    m = make_machine()
    state = m.state
    assert m.handle(LvsdExited(1.0, "Child process 7 exited with status 0")) == Step(
        state, state, (), "Child process 7 exited with status 0: not active, ignored")


def test_warm_standby_lvsd_failure_blocks_takeover_until_it_recovers() -> None:
    m = standby(warm_standby=True)
    step = m.handle(LvsdExited(1.0, "lvsd failed 3 times in a row"))
    assert step == Step(S, B, (), "lvsd failed 3 times in a row: lvsd is failing, this director "
                                  "cannot take over until it recovers")
    assert m.faults == {Fault.LVSD}
    assert m.handle(Tick(10 * D)).actions == (SendHeartbeat(Magic.STOPPED),)  # partner dead
    assert m.state is B
    assert m.handle(LvsdReady(10 * D + 0.1)) == Step(B, S, (), "lvsd recovered: lvsd failure "
                                                               "cleared")
    assert m.handle(Tick(12 * D)).actions[0] == Activate()


def test_lvsd_ready_keeps_a_link_fault() -> None:
    m = standby(warm_standby=True)
    m.handle(LinkDown(0.5))
    m.handle(LvsdExited(0.6))
    assert m.handle(LvsdReady(0.7)).after is B and m.faults == {Fault.LINK}


def test_lvsd_ready_is_a_no_op_in_cold_standby_and_when_healthy() -> None:
    m = blocked(Fault.LVSD)  # cold: only a RUNNING partner clears it (Piranha)
    assert m.handle(LvsdReady(1.0)) == Step(B, B)
    assert active().handle(LvsdReady(1.0)) == Step(A, A)
    assert standby(warm_standby=True).handle(LvsdReady(1.0)) == Step(S, S)


# ---- signals -----------------------------------------------------------------------------------


def test_reconfigure_takes_the_new_timers_and_reloads_lvsd_where_it_runs() -> None:
    plain = "reload: keepalive 1s, deadtime 4s, heartbeats plain"
    assert active().handle(Reconfigure(1.0, 1.0, 4.0, False)) == Step(
        A, A, (ReloadLvsd(),), f"{plain}; lvsd re-reads the configuration")
    assert standby().handle(Reconfigure(1.0, 1.0, 4.0, False)) == Step(
        S, S, (), f"{plain}; lvsd is not running")
    warm = standby(warm_standby=True)
    assert warm.handle(Reconfigure(1.0, 1.0, 4.0, True)).actions == (ReloadLvsd(),)
    assert (warm.keepalive, warm.deadtime, warm.authenticated) == (1.0, 4.0, True)


def test_reconfigure_moves_running_timers_to_a_shorter_period() -> None:
    m = standby()
    m.handle(PeerHeard(1.0, RUNNING))
    before = m.next_deadline()
    m.handle(Reconfigure(1.5, 0.25, 1.0, False))
    assert m.next_deadline() <= 1.75 < before
    with pytest.raises(ProtocolError, match="must be positive"):
        m.handle(Reconfigure(2.0, 0.0, 1.0, False))


def test_terminate_when_active() -> None:
    m = active()
    assert m.handle(Terminate(1.0, 15)) == Step(
        A, T, (Deactivate(), SendHeartbeat(Magic.STOPPED)), "Terminating due to signal 15")
    assert m.next_deadline() == math.inf
    with pytest.raises(ProtocolError, match=r"^Tick not allowed in state TERMINATED$"):
        m.handle(Tick(2.0))


def test_terminate_standby_and_lone_master() -> None:
    assert standby().handle(Terminate(1.0, 2)).actions == (SendHeartbeat(Magic.STOPPED),)
    assert standby(backup_active=False).handle(Terminate(1.0, 2)).actions == ()
    assert make().handle(Terminate(0.0)) == Step(DirectorState.INIT, T, (),
                                                 "Terminating due to signal 15")


# ---- the table is enforced ---------------------------------------------------------------------

EVENTS = [Tick(1.0), PeerHeard(1.0, RUNNING), LinkDown(1.0), LinkUp(1.0), LvsdExited(1.0),
          LvsdReady(1.0), Reconfigure(1.0, 2.0, 10.0, False), Terminate(1.0)]


def test_every_live_state_has_a_row_for_every_event() -> None:
    for state in (S, A, B):
        for event in EVENTS:
            assert (state, type(event)) in TRANSITIONS


@pytest.mark.parametrize("event", EVENTS[:-1])
def test_events_before_start_are_refused(event: Any) -> None:
    with pytest.raises(ProtocolError, match=rf"^{type(event).__name__} not allowed in state INIT$"):
        make().handle(event)


def test_time_going_backwards_is_refused() -> None:
    m = standby()
    m.handle(Tick(3.0))
    with pytest.raises(ProtocolError, match=r"^time went backwards: 2.5 after 3.0$"):
        m.handle(PeerHeard(2.5, STOPPED))


def test_start_twice_is_refused() -> None:
    with pytest.raises(ProtocolError, match=r"^Start not allowed in state STANDBY$"):
        standby().handle(Start(1.0))


def test_a_move_outside_the_table_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    table = dict(TRANSITIONS)
    table[(S, PeerHeard)] = frozenset({S})  # pretend STOPPED may not activate
    monkeypatch.setattr(machine_module, "TRANSITIONS", table)
    m = standby()
    with pytest.raises(ProtocolError, match=r"^STANDBY -> ACTIVE on PeerHeard is not in the "):
        m.handle(PeerHeard(1.0, STOPPED))
    assert m.state is S


def test_authenticated_machine_refuses_unauthenticated_heartbeats() -> None:
    m = standby(authenticated=True)
    with pytest.raises(ProtocolError, match=r"^unauthenticated heartbeat given to an "):
        m.handle(PeerHeard(1.0, STOPPED))
    assert m.state is S
    signed = Heartbeat(Magic.STOPPED, authenticated=True, seq=1, timestamp=1.0)
    assert m.handle(PeerHeard(1.0, signed)).after is A


def test_fos_heartbeat_is_a_wiring_error() -> None:
    with pytest.raises(ProtocolError, match=r"^FOS_RUNNING heartbeat given to an LVS-mode "):
        standby().handle(PeerHeard(1.0, Heartbeat(Magic.FOS_RUNNING)))


def test_fractional_timers() -> None:
    m = FailoverMachine(keepalive=0.1, deadtime=0.3, master=True)
    m.handle(Start(0.0))
    sent = []
    while m.state is S:
        now = m.next_deadline()
        step = m.handle(Tick(now))
        sent += [now for a in step.actions if isinstance(a, SendHeartbeat)]
    assert now == 0.3  # partner dead exactly deadtime after start
    assert sent == pytest.approx([0.1, 0.2])
