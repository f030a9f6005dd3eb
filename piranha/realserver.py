"""Set up this machine as a direct-routing (or tunnel) real server for the VIPs, ARP-quiet.

An LVS-DR/TUN real server must accept packets addressed to the VIP, yet never answer ARP for
it: otherwise the client (or the router) sends VIP traffic straight to a real server and the
director is bypassed. The three classic answers, chosen with ``--method``:

``sysctl`` (default; the LVS HOWTO's recipe, as ``piranha realserver --print`` shows it)::

    sysctl -w net.ipv4.conf.all.arp_ignore=1    # answer ARP only for the receiving NIC's addresses
    sysctl -w net.ipv4.conf.all.arp_announce=2  # never put a lo address in an ARP request
    sysctl -w net.ipv4.conf.lo.arp_ignore=1     # the same on lo, as the HOWTO has it
    sysctl -w net.ipv4.conf.lo.arp_announce=2
    ip addr add VIP/32 dev lo label lo:piranha  # IPv6: VIP/128, no label

``arptables`` (Red Hat's arptables_jf recipe, the talk's slide "Direct Routing and the ARP
Limitation"): the VIP on lo as above, no sysctl; ARP filter rules drop requests for the VIP
and rewrite the VIP to ``--real-ip`` (this server's own address) in the ARP packets it sends.

``redirect`` (the talk's slide "Direct Routing and IPTables"): no VIP on this machine at all;
a nat rule redirects what arrives for the VIP to this machine's own address (connection
tracking puts the VIP back as the source of the replies). Nothing to hide from ARP.

The rules come as one nft transaction (tables ``arp|ip|ip6 piranha_rs``) or as
arptables/iptables/ip6tables commands (chains ``piranha-rs*``); either form replaces what
piranha set before and touches nothing else. Rules go in before a VIP goes on lo, and come out
after it left, so there is no moment where the VIP is up and answered by ARP. IPv6 needs no
ARP measure: neighbour discovery never answers for an address held by ``lo``.

Pure: :func:`setup` and :func:`undo` turn what the machine has now (addresses on ``lo``,
sysctl values) and the saved :class:`RealServerState` into actions and the next state; the CLI
(``piranha/cli/admin.py``) reads the machine, runs the actions and keeps the state file.
The state file is what makes ``--undo`` exact: it records the method, removes the VIPs and
rules and puts back each sysctl's value from before the first ``piranha realserver``, only
once no recorded VIP is left.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from ipaddress import IPv4Address, ip_address

from piranha import defaults, firewall
from piranha.model import IPAddress

DEVICE = "lo"
LABEL = "lo:piranha"
DEFAULT_STATE = defaults.REALSERVER_STATE
#: sysctl -> the value a real server needs (kernel default of each: 0)
SYSCTLS = {"net.ipv4.conf.all.arp_ignore": "1", "net.ipv4.conf.all.arp_announce": "2",
           "net.ipv4.conf.lo.arp_ignore": "1", "net.ipv4.conf.lo.arp_announce": "2"}
TABLE = "piranha_rs"  # nft tables, one per family
CHAIN = "piranha-rs"  # iptables chains: nat PREROUTING; arptables: CHAIN-in, CHAIN-out
BACKENDS = ("nft", "iptables")


class Method(StrEnum):
    """How the VIP is kept out of ARP (see the module's text)."""

    SYSCTL = "sysctl"
    ARPTABLES = "arptables"
    REDIRECT = "redirect"


@dataclass(frozen=True)
class How:
    """The method, the firewall backend, and for arptables the address ARP shows instead."""

    method: Method = Method.SYSCTL
    backend: str = "nft"
    real_ip: str = ""

    def describe(self) -> str:
        if self.method is Method.SYSCTL:
            return "--method sysctl"
        return f"--method {self.method.value} --backend {self.backend}"


@dataclass(frozen=True)
class RealServerState:
    """What ``piranha realserver`` changed: VIPs it set up, how, each sysctl's value before."""

    vips: tuple[str, ...] = ()
    saved: tuple[tuple[str, str], ...] = ()
    how: How = How()

    def dumps(self) -> str:
        """The state file's text."""
        return json.dumps({"vips": list(self.vips), "sysctls": dict(self.saved),
                           "method": self.how.method.value, "backend": self.how.backend,
                           "real_ip": self.how.real_ip}, indent=1) + "\n"

    @classmethod
    def loads(cls, text: str) -> RealServerState:
        """Parse a state file (ValueError if it is not one; a file without a method: sysctl)."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        backend = str(data.get("backend", "nft"))
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}")
        how = How(Method(data.get("method", "sysctl")), backend, str(data.get("real_ip", "")))
        return cls(tuple(str(v) for v in data.get("vips", [])),
                   tuple(sorted((str(k), str(v)) for k, v in data.get("sysctls", {}).items())),
                   how)


def problem(vips: Sequence[IPAddress], how: How, state: RealServerState) -> str | None:
    """Why this setup cannot be done as asked (None: it can)."""
    if state.vips and (state.how.method, state.how.backend) != (how.method, how.backend):
        return (f"this machine is set up with {state.how.describe()} for "
                f"{', '.join(state.vips)}; run --undo first to change the method")
    if how.method is not Method.ARPTABLES:
        return "--real-ip is only for --method arptables" if how.real_ip else None
    if not how.real_ip:
        if any(_v4(v) for v in vips):
            return ("--method arptables needs --real-ip: this real server's own IPv4 address, "
                    "which its ARP packets show instead of the VIP")
        return None
    try:
        real = ip_address(how.real_ip)
    except ValueError:
        return f"--real-ip: {how.real_ip!r} is not an IP address"
    if not _v4(real) or real in vips:
        return f"--real-ip: {real} must be this machine's own IPv4 address, not a VIP"
    return None


def prefix(vip: IPAddress) -> int:
    """A VIP's prefix on lo: a host address."""
    return vip.max_prefixlen


def _v4(address: IPAddress) -> bool:
    return isinstance(address, IPv4Address)


@dataclass(frozen=True)
class AddVip:
    """Put the VIP on lo."""

    vip: IPAddress

    def command(self) -> str:
        label = f" label {LABEL}" if _v4(self.vip) else ""
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
class NftScript:
    """Load an nft script (one transaction)."""

    script: str

    def command(self) -> str:
        return f"nft -f - <<'EOF'\n{self.script}EOF"


@dataclass(frozen=True)
class FirewallStep:
    """One arptables/iptables/ip6tables command."""

    step: firewall.Step

    def command(self) -> str:
        return firewall.shell([self.step]).rstrip("\n")


@dataclass(frozen=True)
class Note:
    """Nothing to do; tell the admin why."""

    text: str

    def command(self) -> str:
        return self.text


Action = AddVip | RemoveVip | SetSysctl | NftScript | FirewallStep | Note


# ---- the firewall rules of the arptables and redirect methods ------------------------------

@dataclass(frozen=True)
class _Family:
    nft: str  # nft family
    tool: str  # the iptables-style command
    v4: bool


_ARP = _Family("arp", "arptables", True)
_FAMILIES = {Method.ARPTABLES: (_ARP,),
             Method.REDIRECT: (_Family("ip", "iptables", True), _Family("ip6", "ip6tables", False))}


def rules(how: How, before: Iterable[IPAddress], after: Sequence[IPAddress]) -> list[Action]:
    """Actions that replace the rules piranha set for the VIPs ``before`` with those for
    ``after`` (none left: the rules are removed). Families no VIP ever used are not touched."""
    old = list(before)
    touched = [f for f in _FAMILIES.get(how.method, ())
               if any(_v4(v) == f.v4 for v in [*old, *after])]
    if not touched:
        return []
    if how.backend == "nft":
        return [NftScript(_nft(how, touched, after))]
    steps: list[firewall.Step] = []
    for family in touched:
        mine = [v for v in after if _v4(v) == family.v4]
        steps += _tables_steps(how, family, mine) if mine else _tables_removal(family)
    return [FirewallStep(s) for s in steps]


def _nft(how: How, families: Sequence[_Family], vips: Sequence[IPAddress]) -> str:
    lines = [f"# piranha realserver {how.describe()}",
             *firewall.replace_nft_tables([f.nft for f in families], TABLE)]
    for family in families:
        mine = [v for v in vips if _v4(v) == family.v4]
        if not mine:
            continue
        lines.append(f"table {family.nft} {TABLE} {{")
        if family is _ARP:
            lines += _nft_chain("input", "filter", "filter", [
                f"arp daddr ip {v} drop  # never answer ARP for the VIP" for v in mine])
            lines += _nft_chain("output", "filter", "filter", [
                f"arp saddr ip {v} arp saddr ip set {how.real_ip}  # nor show it in a request"
                for v in mine])
        else:
            lines += _nft_chain("prerouting", "nat", "dstnat", [
                f"{family.nft} daddr {v} redirect  # VIP traffic to this machine" for v in mine])
        lines.append("}")
    return "\n".join(lines) + "\n"


def _nft_chain(name: str, kind: str, priority: str, body: list[str]) -> list[str]:
    return [f"\tchain {name} {{", f"\t\ttype {kind} hook {name} priority {priority}; "
            "policy accept;", *(f"\t\t{r}" for r in body), "\t}"]


def _chains(family: _Family) -> list[tuple[tuple[str, ...], str, str]]:
    """(command prefix, hook chain, our chain) of a family's iptables-style rules."""
    if family is _ARP:
        return [(("arptables",), "INPUT", f"{CHAIN}-in"),
                (("arptables",), "OUTPUT", f"{CHAIN}-out")]
    return [((family.tool, "-t", "nat"), "PREROUTING", CHAIN)]


def _tables_steps(how: How, family: _Family, vips: Sequence[IPAddress]) -> list[firewall.Step]:
    steps: list[firewall.Step] = []
    for base, hook, chain in _chains(family):
        steps += [firewall.Step((*base, "-N", chain), (*base, "-F", chain)),
                  firewall.Step((*base, "-C", hook, "-j", chain), (*base, "-A", hook, "-j", chain))]
        for v in vips:
            if family is not _ARP:
                match: tuple[str, ...] = ("-d", f"{v}/{prefix(v)}", "-j", "REDIRECT")
            elif hook == "INPUT":
                match = ("-d", str(v), "-j", "DROP")
            else:
                match = ("-s", str(v), "-j", "mangle", "--mangle-ip-s", how.real_ip)
            steps.append(firewall.Step((*base, "-A", chain, *match)))
    return steps


def _tables_removal(family: _Family) -> list[firewall.Step]:
    steps: list[firewall.Step] = []
    for base, hook, chain in _chains(family):
        steps += [firewall.optional(*base, "-D", hook, "-j", chain),
                  firewall.optional(*base, "-F", chain), firewall.optional(*base, "-X", chain)]
    return steps


# ---- setup and undo -------------------------------------------------------------------------

def script(vips: Sequence[IPAddress], how: How = How(), undoing: bool = False) -> list[str]:
    """The equivalent shell commands (``--print``), as on a machine piranha never touched
    (undo: as right after a setup of ``vips``; the sysctls go back to their default 0)."""
    if undoing:
        saved = tuple(sorted(dict.fromkeys(SYSCTLS, "0").items()))
        state = RealServerState(tuple(str(v) for v in vips), saved, how)
        actions, _ = undo(vips, set(vips), dict(SYSCTLS), state)
    else:
        actions, _ = setup(vips, set(), dict.fromkeys(SYSCTLS, "0"), RealServerState(), how)
    return [a.command() for a in actions]


def setup(vips: Sequence[IPAddress], on_lo: Collection[IPAddress],
          sysctls: Mapping[str, str], state: RealServerState,
          how: How = How()) -> tuple[list[Action], RealServerState]:
    """Actions that make this machine accept ``vips`` with ARP kept quiet, and the state to
    save (``how`` must have passed :func:`problem`)."""
    actions: list[Action] = []
    saved = dict(state.saved)
    if how.method is Method.SYSCTL and any(_v4(v) for v in vips):
        for name, want in SYSCTLS.items():
            if sysctls[name] != want:
                actions.append(SetSysctl(name, want, sysctls[name]))
                saved.setdefault(name, sysctls[name])  # the value before the first run
    ours = list(state.vips)
    ours += [str(v) for v in dict.fromkeys(vips) if str(v) not in ours]
    recorded = [ip_address(v) for v in state.vips]
    actions += rules(how, recorded, [ip_address(v) for v in ours])
    for vip in vips if how.method is not Method.REDIRECT else ():
        if vip in on_lo:
            actions.append(Note(f"{vip}/{prefix(vip)} is already on {DEVICE}"))
        else:
            actions.append(AddVip(vip))
    return actions, RealServerState(tuple(ours), tuple(sorted(saved.items())), how)


def undo(vips: Iterable[IPAddress], on_lo: Collection[IPAddress],
         sysctls: Mapping[str, str],
         state: RealServerState) -> tuple[list[Action], RealServerState | None]:
    """Actions that remove ``vips`` (with the method recorded in ``state``) and, once no
    recorded VIP is left, restore the sysctls.

    The next state is None when nothing is left to remember (delete the file).
    """
    how = state.how
    actions: list[Action] = []
    gone = list(dict.fromkeys(vips))
    for vip in gone if how.method is not Method.REDIRECT else ():
        actions.append(RemoveVip(vip) if vip in on_lo
                       else Note(f"{vip}/{prefix(vip)} is not on {DEVICE}"))
    names = {str(v) for v in gone}
    left = tuple(v for v in state.vips if v not in names)
    before = [ip_address(v) for v in state.vips] + [v for v in gone if str(v) not in state.vips]
    actions += rules(how, before, [ip_address(v) for v in left])
    if left:
        return actions, RealServerState(left, state.saved, how)
    if how.method is not Method.SYSCTL:
        return actions, None
    for name, value in state.saved:
        if sysctls.get(name) != value:
            actions.append(SetSysctl(name, value, sysctls.get(name)))
    if not state.saved:
        actions.append(Note("ARP sysctls left as they are (no record of piranha changing them)"))
    return actions, None
