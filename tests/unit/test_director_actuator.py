"""The actuator carries out Activate/Deactivate/Announce through fake ports, in order."""

from __future__ import annotations

import errno
import logging
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest

from piranha.director.actuator import Actuator, SyncDaemon
from piranha.director.announce import Schedule
from piranha.director.plan import Vip
from piranha.errors import KernelError
from piranha.ipvs.types import Daemon, DaemonState, Op, StartDaemon, StopDaemon
from piranha.model import IPAddress
from piranha.net.arp import gratuitous_arp, neighbor_advert

MAC = bytes.fromhex("020000000001")
ROUTER = Vip(ip_address("10.200.0.254"), 24, "eth1", "eth1:1", "nat_router")
WEB = Vip(ip_address("198.51.100.10"), 32, "eth0", "eth0:1", "virtual web")
WEB6 = Vip(ip_address("2001:db8::10"), 128, "eth0", None, "virtual web6")


class World:
    """Every port, recording calls in one journal so order can be asserted."""

    def __init__(self) -> None:
        self.journal: list[tuple[object, ...]] = []
        self.addrs: dict[IPAddress, tuple[str, str, int]] = {}
        self.ready = True
        self.fail_add: set[IPAddress] = set()

    # AddressPort
    def add_address(self, device: str, ip: IPAddress, prefix: int,
                    label: str | None = None) -> bool:
        self.journal.append(("add", str(ip)))
        if ip in self.fail_add:
            raise OSError(errno.ENODEV, "No such device")
        if ip in self.addrs:
            return False
        self.addrs[ip] = (device, label or device, prefix)
        return True

    def remove_address(self, device: str, ip: IPAddress, prefix: int) -> bool:
        self.journal.append(("remove", str(ip)))
        return self.addrs.pop(ip, None) is not None

    def mac(self, device: str) -> bytes:
        return MAC

    def labelled(self, ip: IPAddress) -> tuple[str, str, int] | None:
        return self.addrs.get(ip)

    # LvsdPort
    def start(self, now: float) -> None:
        self.journal.append(("lvsd start",))

    def stop(self, now: float) -> None:
        self.journal.append(("lvsd stop",))

    # SyncPort
    def apply(self, ops: Sequence[Op]) -> list[KernelError]:
        self.journal.append(("sync", *ops))
        return [KernelError(op, errno.ESRCH, "No daemon is running")
                for op in ops if isinstance(op, StopDaemon)]

    def frame(self, device: str, frame: bytes) -> None:
        self.journal.append(("frame", device, frame))

    def command(self, cmd: str) -> None:
        self.journal.append(("cmd", cmd))

    def kinds(self) -> list[object]:
        return [e[0] if e[0] != "cmd" else e[1] for e in self.journal]


def make(world: World, vips: Sequence[Vip] = (ROUTER, WEB), **kw: object) -> Actuator:
    options: dict[str, object] = dict(
        send_frame=world.frame, run_command=world.command, sync=world,
        sync_daemon=SyncDaemon("eth1", 9), active_cmd="/bin/up", inactive_cmd="/bin/down",
        schedule=Schedule(count=3, interval=1.0))
    options.update(kw)
    return Actuator(vips, world, world, logging.getLogger("test"), **options)  # type: ignore[arg-type]


def test_activation_order_then_announcements_spread_over_time() -> None:
    w = World()
    a = make(w)
    a.activate(10.0)
    # addresses (router first), their first announcements at once, then the sync daemon
    assert w.kinds() == ["/bin/up", "add", "add", "frame", "frame", "sync"]
    assert [e[1] for e in w.journal if e[0] == "add"] == ["10.200.0.254", "198.51.100.10"]
    assert [e[2] for e in w.journal if e[0] == "frame"] == [
        gratuitous_arp(IPv4Address("10.200.0.254"), MAC),
        gratuitous_arp(IPv4Address("198.51.100.10"), MAC)]
    assert w.journal[-1][1:] == (
        StopDaemon(DaemonState.BACKUP, 9), StopDaemon(DaemonState.MASTER, 9),
        StartDaemon(Daemon(DaemonState.MASTER, mcast_ifn="eth1", syncid=9)))
    assert a.next_deadline() == 11.0
    w.journal.clear()
    a.tick(10.5)
    assert w.journal == []
    a.tick(11.5)
    a.tick(12.0)
    assert len([e for e in w.journal if e[0] == "frame"]) == 4  # 3 per address in all
    assert a.next_deadline() == float("inf")


def test_deactivation_reverses_and_removes_only_what_it_added() -> None:
    w = World()
    w.addrs[WEB.ip] = ("eth0", "eth0", 32)  # an admin put it there by hand
    a = make(w)
    a.activate(0.0)
    assert a.raised == [ROUTER]
    w.journal.clear()
    a.deactivate(1.0)
    assert w.kinds() == ["/bin/down", "sync", "remove"]
    assert w.journal[2] == ("remove", "10.200.0.254")
    assert WEB.ip in w.addrs and a.next_deadline() == float("inf")  # ARPs cancelled too


def test_deactivation_removes_vips_before_the_nat_router() -> None:
    w = World()
    a = make(w)
    a.activate(0.0)
    w.journal.clear()
    a.deactivate(1.0)
    assert [e[1] for e in w.journal if e[0] == "remove"] == ["198.51.100.10", "10.200.0.254"]


def test_activation_waits_for_lvsd_then_times_out() -> None:
    w = World()
    w.ready = False
    a = make(w, ready_timeout=5.0)
    a.activate(0.0)
    assert "add" not in w.kinds() and a.next_deadline() == 5.0
    a.lvsd_ready(2.0)
    assert w.kinds().count("add") == 2
    b = make(World(), ready_timeout=5.0)
    b.lvsd.ready = False  # type: ignore[misc]
    b.activate(0.0)
    assert b.tick(4.9) is None
    assert b.tick(5.0) == "lvsd did not program the table within 5s"
    assert b.next_deadline() == float("inf")


def test_cold_standby_starts_and_stops_lvsd() -> None:
    w = World()
    a = make(w, warm=False)
    a.startup(0.0)
    assert ("lvsd start",) not in w.journal
    a.activate(1.0)
    a.deactivate(2.0)
    assert w.journal.count(("lvsd start",)) == 1 and w.journal.count(("lvsd stop",)) == 1
    warm = World()
    make(warm).startup(0.0)
    assert ("lvsd start",) in warm.journal


def test_startup_removes_leftovers_with_our_label_only() -> None:
    w = World()
    w.addrs[WEB.ip] = ("eth0", "eth0:1", 32)  # left by a pulse killed with -9
    w.addrs[ROUTER.ip] = ("eth1", "eth1", 24)  # not our label: someone else's
    make(w).startup(0.0)
    assert WEB.ip not in w.addrs and ROUTER.ip in w.addrs
    assert w.kinds()[:2] == ["/bin/down", "sync"]
    sync = w.journal[1]
    assert sync[-1] == StartDaemon(Daemon(DaemonState.BACKUP, mcast_ifn="eth1", syncid=9))


def test_a_failing_address_does_not_stop_the_others() -> None:
    w = World()
    w.fail_add.add(ROUTER.ip)
    a = make(w)
    a.activate(0.0)
    assert a.raised == [WEB]


def test_announce_re_adds_and_re_arps() -> None:
    w = World()
    a = make(w)
    a.activate(0.0)
    del w.addrs[WEB.ip]  # someone removed it
    a.tick(5.0)
    w.journal.clear()
    a.announce(6.0)
    # both made sure of, both re-announced: one burst now, two more scheduled each
    assert w.kinds() == ["/bin/up", "add", "add", "frame", "frame"]
    assert WEB.ip in w.addrs and len(a.schedule) == 4


def test_ipv6_vips_get_neighbour_advertisements() -> None:
    w = World()
    a = make(w, vips=(WEB6,))
    a.activate(0.0)
    a.tick(0.0)
    assert [e[2] for e in w.journal if e[0] == "frame"] == [
        neighbor_advert(IPv6Address("2001:db8::10"), MAC)]


def test_reload_adds_new_and_removes_dropped_vips_while_active() -> None:
    w = World()
    a = make(w)
    a.activate(0.0)
    new = Vip(ip_address("198.51.100.11"), 32, "eth0", "eth0:2", "virtual new")
    w.journal.clear()
    a.update((ROUTER, new), 3.0)
    assert w.journal[:2] == [("remove", "198.51.100.10"), ("add", "198.51.100.11")]
    assert a.raised == [ROUTER, new]
    idle = make(World())
    idle.update((new,), 1.0)
    assert idle.vips == (new,) and not idle.lvsd.journal  # type: ignore[attr-defined]


def test_dry_run_touches_nothing() -> None:
    w = World()
    a = make(w, dry_run=True)
    a.startup(0.0)
    a.activate(1.0)
    a.tick(1.0)
    a.deactivate(2.0)
    assert [k for k in w.kinds() if k != "lvsd start"] == []


@pytest.mark.parametrize("count,interval", [(0, 1.0), (1, -1.0)])
def test_schedule_rejects_nonsense(count: int, interval: float) -> None:
    with pytest.raises(ValueError):
        Schedule(count, interval)
