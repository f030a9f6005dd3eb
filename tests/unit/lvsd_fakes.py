"""Fakes for driving the lvsd engine in-process: runner, clocks, logger, config builder."""

from __future__ import annotations

import itertools
import signal
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from ipaddress import ip_address

from piranha.config import loads
from piranha.health.check import CheckSpec
from piranha.health.report import DestId, HealthReport
from piranha.health.types import State
from piranha.ipvs.fake import FakeIpvs
from piranha.lvsd.engine import Engine
from piranha.model import Cluster, Protocol

VIP = "198.51.100.80"


def conf(servers: str = "", extra: str = "", globals_: str = "hard_shutdown = 0") -> str:
    """An lvs.cf with virtual 'web' on VIP:80 and the given server blocks."""
    return f"""primary = 198.51.100.1
network = nat
{globals_}
virtual web {{
    active = 1
    address = {VIP} eth0:1
    port = 80
    scheduler = wlc
    timeout = 1
    reentry = 2
    {extra}
{servers}
}}
"""


def server(name: str, n: int, weight: int = 1, active: int = 1) -> str:
    """A server block for 10.200.0.n."""
    return (f"    server {name} {{\n        address = 10.200.0.{n}\n        active = {active}\n"
            f"        weight = {weight}\n    }}\n")


def cluster(text: str) -> Cluster:
    """The cluster of lvs.cf ``text``."""
    return loads(text, "lvs.cf").cluster


def dest(n: int, vport: int = 80, rport: int = 80) -> DestId:
    """The DestId of 10.200.0.n behind VIP:vport."""
    return DestId(ip_address(VIP), vport, Protocol.TCP, ip_address(f"10.200.0.{n}"), rport)


class Clock:
    """A clock tests move by hand (monotonic and wall at once)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def wall(self) -> float:
        """Wall clock: a fixed offset from the monotonic one."""
        return self.now + 1_700_000_000


@dataclass
class FakeRunner:
    """ProcessRunner that records spawns and kills; tests end children with ``exit``."""

    spawned: list[tuple[int, Callable[[], int]]] = field(default_factory=list)
    killed: list[tuple[int, int]] = field(default_factory=list)
    ended: list[tuple[int, int]] = field(default_factory=list)
    _pids: Iterable[int] = field(default_factory=lambda: itertools.count(100))

    def spawn(self, main: Callable[[], int], keep_fds: Iterable[int] = ()) -> int:
        pid = next(iter(self._pids))
        self.spawned.append((pid, main))
        return pid

    def kill(self, pid: int, sig: int) -> None:
        self.killed.append((pid, sig))

    def reap(self) -> list[tuple[int, int]]:
        out, self.ended = self.ended, []
        return out

    def terms(self) -> list[int]:
        """Pids sent SIGTERM."""
        return [p for p, s in self.killed if s == signal.SIGTERM]


class Log:
    """Collects log lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, msg: str) -> None:
        self.lines.append(msg)

    warning = error = info


@dataclass
class Lab:
    """An engine on a FakeIpvs with a fake runner and clock."""

    engine: Engine
    ipvs: FakeIpvs
    runner: FakeRunner
    clock: Clock
    log: Log
    adopted: dict[DestId, int | None]

    def pid(self, d: DestId) -> int:
        """The pid of d's current nanny."""
        child = self.engine.supervisor.get(d)
        assert child is not None and child.pid is not None
        return child.pid

    def report(self, d: DestId, state: State, weight: int | None, reason: str = "probe") -> bool:
        """Deliver a report from d's nanny and reconcile like the loop does."""
        changed = self.engine.on_report(self.pid(d), HealthReport(d, state, weight, reason,
                                                                  self.clock.now))
        self.engine.reconcile()
        return changed

    def weights(self) -> dict[str, int]:
        """rip:rport -> weight of every dest in the fake kernel."""
        table = self.ipvs.dump()
        return {f"{d.addr}:{d.port}": d.weight for ds in table.dests.values() for d in ds}


def make_lab(text: str, ipvs: FakeIpvs | None = None, state_path: str | None = None,
             clock: Clock | None = None) -> Lab:
    """A started engine for lvs.cf ``text``."""
    ipvs = ipvs or FakeIpvs(interfaces=("lo", "pub0"))
    runner, clock, log = FakeRunner(), clock or Clock(), Log()
    adopted: dict[DestId, int | None] = {}

    def nanny_main(spec: CheckSpec, adopt: int | None) -> tuple[Callable[[], int], list[int]]:
        adopted[spec.dest] = adopt
        return (lambda: 0), []

    engine = Engine(cluster(text), "lvs.cf", ipvs, runner, nanny_main, log, clock=clock,
                    wall=clock.wall, state_path=state_path)
    engine.start()
    return Lab(engine, ipvs, runner, clock, log, adopted)
