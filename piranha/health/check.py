"""What one nanny checks and how: the part of lvs.cf that concerns one real server (pure).

:class:`CheckSpec` is built by lvsd from a virtual and one of its real servers (or by the
nanny entry point from Piranha's command line). Two specs compare equal exactly when the
nanny would behave the same, so a reload restarts only the nannies whose checks changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import ip_address

from piranha.health.probe import Probe, probe_for
from piranha.health.report import DestId
from piranha.health.tracker import HealthTracker
from piranha.health.types import IPAddress, Target
from piranha.health.weights import DEFAULT_SCALE
from piranha.model import InterfaceAddress, RealServer, ServiceProtocol, VirtualServer


@dataclass(frozen=True)
class CheckSpec:
    """Everything a nanny needs: which entry, what to probe, how to judge, how to weigh."""

    vs_name: str
    rs_name: str
    dest: DestId
    protocol: ServiceProtocol = ServiceProtocol.TCP
    send: str | None = None
    expect: str | None = None
    use_regex: bool = False
    send_program: str | None = None
    timeout: float = 10.0
    reentry: float = 180.0
    weight: int = 1
    quiesce: bool = False
    #: the load command (``-U``): rsh_command for ``uptime``, else load_monitor; None = none
    loadcmd: str | None = None
    #: False is nanny's -T: send/expect taken literally
    translate: bool = True
    scale: int = DEFAULT_SCALE

    @classmethod
    def for_server(cls, vs: VirtualServer, rs: RealServer,
                   rsh_command: str = "rsh") -> CheckSpec:
        """The check lvsd runs for ``rs`` of ``vs``."""
        loadcmd = vs.load_monitor
        if loadcmd == "uptime":
            loadcmd = rsh_command
        if loadcmd == "none":
            loadcmd = None
        return cls(vs.name, rs.name, DestId.for_server(vs, rs), vs.protocol, vs.send,
                   vs.expect, vs.use_regex, vs.send_program, vs.timeout, vs.reentry,
                   rs.weight, vs.quiesce_server, loadcmd)

    @property
    def target(self) -> Target:
        """Where the probe goes: the real server's address and port."""
        return Target(self.dest.rip, self.dest.rport)

    def virtual(self) -> VirtualServer:
        """A virtual server carrying just this check's settings (for probe_for/trackers)."""
        vip: IPAddress = self.dest.vip if self.dest.vip is not None else ip_address("0.0.0.0")
        return VirtualServer(self.vs_name, InterfaceAddress(vip, ""), True, None, None,
                             self.dest.fwmark, self.dest.vport, self.protocol,
                             send=self.send, expect=self.expect, use_regex=self.use_regex,
                             send_program=self.send_program, load_monitor=self.loadcmd,
                             timeout=self.timeout, reentry=self.reentry,
                             quiesce_server=self.quiesce)

    def probe(self) -> Probe:
        """The probe of this check (Piranha's HTTP default on virtual port 80 included)."""
        return probe_for(self.virtual(), translate=self.translate)

    def tracker(self, adopt: int | None = None) -> HealthTracker:
        """A fresh tracker, or one adopting an entry found in the kernel at weight ``adopt``."""
        tracker = HealthTracker(weight=self.weight, interval=self.timeout, reentry=self.reentry,
                                quiesce=self.quiesce, load_feedback=self.loadcmd is not None,
                                scale=self.scale)
        tracker.adopt(adopt)
        return tracker
