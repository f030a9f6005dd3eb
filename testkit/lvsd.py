"""Builders for driving the lvsd engine in-process: lvs.cf text, clusters, dest ids, a started
engine on FakeIpvs with a fake runner and clock (``make_lab``), a log that collects lines."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import ip_address

from piranha.config import loads
from piranha.health.check import CheckSpec
from piranha.health.report import DestId, HealthReport
from piranha.health.types import ServerState
from piranha.ipvs.fake import FakeIpvs
from piranha.lvsd.control import Request
from piranha.lvsd.engine import Engine
from piranha.lvsd.statefile import Keeper
from piranha.lvsd.view import snapshot
from piranha.model import Cluster, ServiceProtocol
from testkit.clock import Clock
from testkit.runner import FakeRunner

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
    return DestId(ip_address(VIP), vport, ServiceProtocol.TCP, ip_address(f"10.200.0.{n}"), rport)


class Log:
    """Collects log lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, msg: str) -> None:
        self.lines.append(msg)

    warning = error = info


@dataclass
class Lab:
    """An engine on a FakeIpvs with a fake runner and clock; its methods end like a turn of
    lvsd's loop does (state file kept)."""

    engine: Engine
    ipvs: FakeIpvs
    runner: FakeRunner
    clock: Clock
    log: Log
    adopted: dict[DestId, int | None]
    keeper: Keeper

    def pid(self, d: DestId) -> int:
        """The pid of d's current nanny."""
        child = self.engine.supervisor.get(d)
        assert child is not None and child.pid is not None
        return child.pid

    def report(self, d: DestId, state: ServerState, weight: int | None,
               reason: str = "probe") -> bool:
        """Deliver a report from d's nanny and reconcile like the loop does."""
        changed = self.engine.on_report(self.pid(d), HealthReport(d, state, weight, reason,
                                                                  self.clock.now))
        self.engine.reconcile()
        self.settle()
        return changed

    def control(self, req: Request) -> tuple[bool, str]:
        """A control-socket command, as the loop serves it."""
        answer = self.engine.control(req)
        self.settle()
        return answer

    def settle(self) -> None:
        """The end of a loop turn: the state file takes what changed."""
        self.keeper.keep(self.engine.saved_state())

    def snapshot(self, pid: int) -> dict[str, object]:
        """The status snapshot lvsd would write now."""
        return snapshot(self.engine.view(), pid, self.clock.wall())

    def weights(self) -> dict[str, int]:
        """rip:rport -> weight of every dest in the fake kernel."""
        table = self.ipvs.dump()
        return {f"{d.addr}:{d.port}": d.weight for ds in table.dests.values() for d in ds}


def make_lab(text: str, ipvs: FakeIpvs | None = None, state_path: str | None = None,
             clock: Clock | None = None) -> Lab:
    """A started engine for lvs.cf ``text`` (its state file at ``state_path``)."""
    ipvs = ipvs or FakeIpvs(interfaces=("lo", "pub0"))
    runner, clock, log = FakeRunner(), clock or Clock(), Log()
    adopted: dict[DestId, int | None] = {}

    def nanny_main(spec: CheckSpec, adopt: int | None) -> tuple[Callable[[], int], list[int]]:
        adopted[spec.dest] = adopt
        return (lambda: 0), []

    engine = Engine(cluster(text), "lvs.cf", ipvs, runner, nanny_main, log, clock=clock,
                    wall=clock.wall)
    keeper = Keeper(state_path, log.error)
    engine.start(keeper.load())
    lab = Lab(engine, ipvs, runner, clock, log, adopted, keeper)
    lab.settle()
    return lab
