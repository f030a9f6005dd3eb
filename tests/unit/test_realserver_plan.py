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
    assert rs.script([V4], undoing=True) == [
        "ip addr del 198.51.100.10/32 dev lo", "sysctl -w net.ipv4.conf.all.arp_announce=0",
        "sysctl -w net.ipv4.conf.all.arp_ignore=0", "sysctl -w net.ipv4.conf.lo.arp_announce=0",
        "sysctl -w net.ipv4.conf.lo.arp_ignore=0"]


def test_an_old_state_file_without_a_method_is_sysctl() -> None:
    old = '{"vips": ["198.51.100.10"], "sysctls": {"net.ipv4.conf.all.arp_ignore": "0"}}'
    assert rs.RealServerState.loads(old).how == rs.How()


ARP = rs.How(rs.Method.ARPTABLES, "nft", "192.0.2.5")
REDIRECT = rs.How(rs.Method.REDIRECT, "iptables")


def test_arptables_rules_go_in_before_the_vip_and_cover_every_recorded_vip() -> None:
    first, state = rs.setup([V4], set(), ZERO, rs.RealServerState(), ARP)
    assert [type(a) for a in first] == [rs.NftScript, rs.AddVip]  # no sysctl, rules first
    assert "arp daddr ip 198.51.100.10 drop" in first[0].script
    assert "arp saddr ip 198.51.100.10 arp saddr ip set 192.0.2.5" in first[0].script
    v2 = ip_address("198.51.100.11")
    second, state = rs.setup([v2], {V4}, ZERO, state, ARP)
    script = second[0].script
    assert "arp daddr ip 198.51.100.10 drop" in script and "ip 198.51.100.11 drop" in script
    assert state.vips == ("198.51.100.10", "198.51.100.11") and state.how == ARP


def test_arptables_ipv6_only_touches_no_arp_table() -> None:
    actions, _ = rs.setup([V6], set(), ZERO, rs.RealServerState(), ARP)
    assert actions == [rs.AddVip(V6)]


def test_redirect_puts_nothing_on_lo_and_undo_removes_each_family_it_used() -> None:
    actions, state = rs.setup([V4], set(), ZERO, rs.RealServerState(), REDIRECT)
    commands = [a.command() for a in actions]
    assert commands == [
        "iptables -t nat -N piranha-rs 2>/dev/null || iptables -t nat -F piranha-rs",
        "iptables -t nat -C PREROUTING -j piranha-rs 2>/dev/null "
        "|| iptables -t nat -A PREROUTING -j piranha-rs",
        "iptables -t nat -A piranha-rs -d 198.51.100.10/32 -j REDIRECT"]  # no ip6tables
    actions, after = rs.undo([V4], set(), ZERO, state)
    assert [a.command() for a in actions] == [
        "iptables -t nat -D PREROUTING -j piranha-rs 2>/dev/null || true",
        "iptables -t nat -F piranha-rs 2>/dev/null || true",
        "iptables -t nat -X piranha-rs 2>/dev/null || true"]
    assert after is None


def test_partial_undo_keeps_the_rules_of_the_vips_left() -> None:
    _, state = rs.setup([V4, V6], set(), ZERO, rs.RealServerState(),
                        rs.How(rs.Method.REDIRECT, "nft"))
    actions, after = rs.undo([V6], set(), ZERO, state)
    script = actions[0].script
    assert "delete table ip6 piranha_rs" in script and "ip6 daddr" not in script
    assert "ip daddr 198.51.100.10 redirect" in script
    assert after is not None and after.vips == ("198.51.100.10",)


def test_problems() -> None:
    empty = rs.RealServerState()
    assert rs.problem([V4], rs.How(), empty) is None
    assert rs.problem([V6], rs.How(rs.Method.ARPTABLES), empty) is None  # IPv6: no ARP
    assert "needs --real-ip" in (rs.problem([V4], rs.How(rs.Method.ARPTABLES), empty) or "")
    assert "not an IP address" in (rs.problem(
        [V4], rs.How(rs.Method.ARPTABLES, "nft", "rs1"), empty) or "")
    assert "only for --method arptables" in (rs.problem(
        [V4], rs.How(rs.Method.SYSCTL, "nft", "192.0.2.5"), empty) or "")
    recorded = rs.RealServerState(("198.51.100.10",), (), REDIRECT)
    assert rs.problem([V4], rs.How(), recorded) == (
        "this machine is set up with --method redirect --backend iptables for 198.51.100.10; "
        "run --undo first to change the method")
    assert rs.problem([V4], REDIRECT, recorded) is None
