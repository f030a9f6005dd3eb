"""Set up this machine as a direct-routing (or tunnel) real server: the VIPs on ``lo``, no ARP.

An LVS-DR/TUN real server must accept packets addressed to the VIP, yet never answer ARP for
it: otherwise the client (or the router) sends VIP traffic straight to a real server and the
director is bypassed. The LVS HOWTO's recipe, as ``piranha realserver --print`` shows it::

    sysctl -w net.ipv4.conf.all.arp_ignore=1    # answer ARP only for the receiving NIC's addresses
    sysctl -w net.ipv4.conf.all.arp_announce=2  # never put a lo address in an ARP request
    sysctl -w net.ipv4.conf.lo.arp_ignore=1     # the same on lo, as the HOWTO has it
    sysctl -w net.ipv4.conf.lo.arp_announce=2
    ip addr add VIP/32 dev lo label lo:piranha  # IPv6: VIP/128, no label

The sysctls go first, so there is no moment where the VIP is up and answered by ARP. IPv6
needs no sysctl: neighbour discovery never answers for an address held by ``lo``.

Pure: :func:`setup` and :func:`undo` turn what the machine has now (addresses on ``lo``,
sysctl values) and the saved :class:`RealServerState` into actions and the next state; the CLI
(``piranha/cli/admin.py``) reads the machine, runs the actions and keeps the state file.
The state file is what makes ``--undo`` exact: it removes the VIPs and puts back each sysctl's
value from before the first ``piranha realserver``, only once no recorded VIP is left.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address

from piranha import defaults
from piranha.model import IPAddress

DEVICE = "lo"
LABEL = "lo:piranha"
DEFAULT_STATE = defaults.REALSERVER_STATE
#: sysctl -> the value a real server needs (kernel default of each: 0)
SYSCTLS = {"net.ipv4.conf.all.arp_ignore": "1", "net.ipv4.conf.all.arp_announce": "2",
           "net.ipv4.conf.lo.arp_ignore": "1", "net.ipv4.conf.lo.arp_announce": "2"}


@dataclass(frozen=True)
class RealServerState:
    """What ``piranha realserver`` changed: VIPs it added, each sysctl's value before."""

    vips: tuple[str, ...] = ()
    saved: tuple[tuple[str, str], ...] = ()

    def dumps(self) -> str:
        """The state file's text."""
        return json.dumps({"vips": list(self.vips), "sysctls": dict(self.saved)}, indent=1) + "\n"

    @classmethod
    def loads(cls, text: str) -> RealServerState:
        """Parse a state file (ValueError if it is not one)."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return cls(tuple(str(v) for v in data.get("vips", [])),
                   tuple(sorted((str(k), str(v)) for k, v in data.get("sysctls", {}).items())))


def prefix(vip: IPAddress) -> int:
    """A VIP's prefix on lo: a host address."""
    return vip.max_prefixlen


@dataclass(frozen=True)
class AddVip:
    """Put the VIP on lo."""

    vip: IPAddress

    def command(self) -> str:
        label = f" label {LABEL}" if isinstance(self.vip, IPv4Address) else ""
        return f"ip addr add {self.vip}/{prefix(self.vip)} dev {DEVICE}{label}"


@dataclass(frozen=True)
class RemoveVip:
    """Take the VIP off lo."""

    vip: IPAddress

    def command(self) -> str:
        return f"ip addr del {self.vip}/{prefix(self.vip)} dev {DEVICE}"


@dataclass(frozen=True)
class SetSysctl:
    """Set a sysctl (``was``: its value before, when known)."""

    name: str
    value: str
    was: str | None = None

    def command(self) -> str:
        return f"sysctl -w {self.name}={self.value}"


@dataclass(frozen=True)
class Note:
    """Nothing to do; tell the admin why."""

    text: str

    def command(self) -> str:
        return self.text


Action = AddVip | RemoveVip | SetSysctl | Note


def script(vips: Sequence[IPAddress], undo: bool = False) -> list[str]:
    """The equivalent shell commands (``--print``); undo sets the sysctls to their default 0."""
    needs_arp = any(isinstance(v, IPv4Address) for v in vips)
    actions: list[Action]
    if undo:
        actions = [RemoveVip(v) for v in vips]
        actions += [SetSysctl(n, "0") for n in SYSCTLS] if needs_arp else []
    else:
        actions = [SetSysctl(n, v) for n, v in SYSCTLS.items()] if needs_arp else []
        actions += [AddVip(v) for v in vips]
    return [a.command() for a in actions]


def setup(vips: Sequence[IPAddress], on_lo: Collection[IPAddress],
          sysctls: Mapping[str, str],
          state: RealServerState) -> tuple[list[Action], RealServerState]:
    """Actions that put ``vips`` on lo with ARP suppressed, and the state to save."""
    actions: list[Action] = []
    saved = dict(state.saved)
    if any(isinstance(v, IPv4Address) for v in vips):
        for name, want in SYSCTLS.items():
            if sysctls[name] != want:
                actions.append(SetSysctl(name, want, sysctls[name]))
                saved.setdefault(name, sysctls[name])  # the value before the first run
    ours = list(state.vips)
    for vip in vips:
        if vip in on_lo:
            actions.append(Note(f"{vip}/{prefix(vip)} is already on {DEVICE}"))
        else:
            actions.append(AddVip(vip))
        if str(vip) not in ours:
            ours.append(str(vip))
    return actions, RealServerState(tuple(ours), tuple(sorted(saved.items())))


def undo(vips: Iterable[IPAddress], on_lo: Collection[IPAddress],
         sysctls: Mapping[str, str],
         state: RealServerState) -> tuple[list[Action], RealServerState | None]:
    """Actions that remove ``vips`` and, once no recorded VIP is left, restore the sysctls.

    The next state is None when nothing is left to remember (delete the file).
    """
    actions: list[Action] = []
    gone = set()
    for vip in vips:
        gone.add(str(vip))
        actions.append(RemoveVip(vip) if vip in on_lo
                       else Note(f"{vip}/{prefix(vip)} is not on {DEVICE}"))
    left = tuple(v for v in state.vips if v not in gone)
    if left:
        return actions, RealServerState(left, state.saved)
    for name, value in state.saved:
        if sysctls.get(name) != value:
            actions.append(SetSysctl(name, value, sysctls.get(name)))
    if not state.saved:
        actions.append(Note("ARP sysctls left as they are (no record of piranha changing them)"))
    return actions, None
