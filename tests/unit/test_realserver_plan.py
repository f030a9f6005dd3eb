"""piranha/realserver.py: the pure plan of ``piranha realserver`` (the namespace test in
tests/netns/test_realserver.py runs it for real)."""

from __future__ import annotations

from ipaddress import ip_address

from piranha import realserver as rs

V4, V6 = ip_address("198.51.100.10"), ip_address("2001:db8::10")
ZERO = dict.fromkeys(rs.SYSCTLS, "0")


def test_setup_sets_sysctls_first_then_adds_the_vips() -> None:
    actions, state = rs.setup([V4, V6], set(), ZERO, rs.RealServerState())
    assert [a.command() for a in actions] == [
        "sysctl -w net.ipv4.conf.all.arp_ignore=1", "sysctl -w net.ipv4.conf.all.arp_announce=2",
        "sysctl -w net.ipv4.conf.lo.arp_ignore=1", "sysctl -w net.ipv4.conf.lo.arp_announce=2",
        "ip addr add 198.51.100.10/32 dev lo label lo:piranha",
        "ip addr add 2001:db8::10/128 dev lo"]
    assert state == rs.RealServerState(("198.51.100.10", "2001:db8::10"),
                                       tuple(sorted(ZERO.items())))


def test_ipv6_only_needs_no_arp_sysctls() -> None:
    actions, state = rs.setup([V6], set(), ZERO, rs.RealServerState())
    assert actions == [rs.AddVip(V6)]
    assert state == rs.RealServerState(("2001:db8::10",), ())


def test_setup_keeps_the_first_recorded_values() -> None:
    done = dict(rs.SYSCTLS)
    first = rs.RealServerState(("198.51.100.10",), (("net.ipv4.conf.all.arp_ignore", "0"),))
    actions, state = rs.setup([V4], {V4}, done, first)
    assert actions == [rs.Note("198.51.100.10/32 is already on lo")]
    assert state == first


def test_undo_restores_only_when_the_last_vip_goes() -> None:
    saved = rs.RealServerState(("198.51.100.10", "2001:db8::10"),
                               (("net.ipv4.conf.all.arp_ignore", "0"),))
    actions, state = rs.undo([V4], {V4, V6}, dict(rs.SYSCTLS), saved)
    assert actions == [rs.RemoveVip(V4)]
    assert state == rs.RealServerState(("2001:db8::10",), saved.saved)
    actions, state = rs.undo([V6], {V6}, dict(rs.SYSCTLS), state)
    assert actions == [rs.RemoveVip(V6), rs.SetSysctl("net.ipv4.conf.all.arp_ignore", "0", "1")]
    assert state is None


def test_state_file_round_trip() -> None:
    state = rs.RealServerState(("198.51.100.10",), (("net.ipv4.conf.all.arp_ignore", "0"),))
    assert rs.RealServerState.loads(state.dumps()) == state


def test_print_script_for_undo() -> None:
    assert rs.script([V4], undo=True) == [
        "ip addr del 198.51.100.10/32 dev lo", "sysctl -w net.ipv4.conf.all.arp_ignore=0",
        "sysctl -w net.ipv4.conf.all.arp_announce=0", "sysctl -w net.ipv4.conf.lo.arp_ignore=0",
        "sysctl -w net.ipv4.conf.lo.arp_announce=0"]
