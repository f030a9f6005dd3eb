"""Firewall rules that put lvs.cf's firewall marks on the traffic of its fwmark virtual servers.

A virtual with ``fwmark = N`` is keyed in IPVS by the mark, not by VIP:port, and Piranha left
the marking to hand-written ``iptables -t mangle`` rules (Red Hat's manuals, reference §1.9
and example C). This module derives them from lvs.cf, pure; ``piranha fwmark-rules`` prints
them or applies them.

Rules, per *active* virtual with a nonzero fwmark, in lvs.cf order:

* mark ``protocol`` traffic to ``address``'s VIP and the virtual's ``port`` with N;
* FTP (``port = 21``, tcp): also the passive data ports (``--passive-ports``, default
  10000:20000; the FTP daemons' passive range must match), so with ``persistent`` the data
  connection reaches the server of the control connection;
* FTP under ``network = nat``: Red Hat's companion rule, masquerade what the real servers
  send from port 20 (active-mode data). It also turns connection tracking on in the
  director's namespace, which ip_vs_ftp needs to rewrite the real server's address in a
  PASV reply: IPVS turns tracking on by itself only for a service whose port is 21, never
  for a fwmark service, and without it the reply reaches the client with the real server's
  private address (seen in the kernel tier, Debian 6.1: tests/kernel/test_e2e_ftp.py).

Both outputs replace what piranha set before (idempotent) and touch nothing else: nft deletes
and recreates its own tables ``ip piranha`` and ``ip6 piranha`` in one transaction; iptables
rules live in chains called ``piranha`` jumped to from PREROUTING (mangle) and POSTROUTING
(nat), flushed first. Limit of the iptables form: a chain whose rules all went away (no FTP
virtual left, no IPv6 VIP left) is not flushed, so that the nat table is never loaded for
nothing; ``iptables -t nat -F piranha`` clears it.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address

from piranha.firewall import Step, replace_nft_tables
from piranha.model import Cluster, IPAddress, Network, ServiceProtocol

FTP_PORT = 21
FTP_DATA_PORT = 20
DEFAULT_PASSIVE = (10000, 20000)
TABLE = CHAIN = "piranha"


@dataclass(frozen=True)
class Mark:
    """Mark ``proto`` packets to ``vip`` on ports ``low``..``high`` with ``mark``."""

    virtual: str
    vip: IPAddress
    proto: ServiceProtocol
    low: int
    high: int
    mark: int
    why: str  # "virtual port", "FTP passive ports"


@dataclass(frozen=True)
class Masquerade:
    """Masquerade tcp from ``source`` port 20 (active FTP data from a NAT real server)."""

    virtual: str
    source: IPAddress


Rule = Mark | Masquerade


@dataclass(frozen=True)
class Plan:
    """The rules for a configuration, and what the admin should know about them."""

    rules: tuple[Rule, ...]
    warnings: tuple[str, ...]
    passive: tuple[int, int]


def parse_range(text: str) -> tuple[int, int]:
    """``LOW:HIGH`` (or ``LOW-HIGH``) as two ports 1..65535, LOW <= HIGH; ValueError if not."""
    parts = text.replace("-", ":").split(":")
    try:
        low, high = (int(p) for p in parts) if len(parts) == 2 else (0, -1)
    except ValueError:
        low, high = 0, -1
    if not 1 <= low <= high <= 65535:
        raise ValueError(f"expected LOW:HIGH with 1 <= LOW <= HIGH <= 65535, found {text!r}")
    return low, high


def plan(cluster: Cluster, passive: tuple[int, int] = DEFAULT_PASSIVE) -> Plan:
    """The marking rules of every active fwmark virtual of ``cluster``."""
    rules: list[Rule] = []
    warnings: list[str] = []
    for vs in cluster.active_virtuals():
        if not vs.fwmark or vs.address is None:
            continue
        vip = vs.address.ip
        rules.append(Mark(vs.name, vip, vs.protocol, vs.port, vs.port, vs.fwmark, "virtual port"))
        if vs.port != FTP_PORT or vs.protocol is not ServiceProtocol.TCP:
            continue
        rules.append(Mark(vs.name, vip, vs.protocol, *passive, vs.fwmark, "FTP passive ports"))
        if vs.persistent <= 0:
            warnings.append(f"virtual {vs.name}: FTP with a firewall mark but no 'persistent': "
                            "a data connection may reach another real server")
        if cluster.network is Network.NAT:
            rules += [Masquerade(vs.name, rs.address) for rs in vs.servers
                      if rs.active and rs.address is not None]
    return Plan(tuple(rules), tuple(warnings), passive)


def _v4(address: IPAddress) -> bool:
    return isinstance(address, IPv4Address)


# ---- nft ----------------------------------------------------------------------------------

def nft_script(p: Plan, source: str) -> str:
    """A complete ``nft -f`` script that replaces piranha's tables with ``p``'s rules."""
    lines = [f"# piranha fwmark-rules: firewall marks of {source}",
             f"# FTP passive ports: {p.passive[0]}-{p.passive[1]}"]
    for family in ("ip", "ip6"):
        rules = [r for r in p.rules if _v4(_address(r)) == (family == "ip")]
        lines += replace_nft_tables([family], TABLE)
        if not rules:
            continue
        lines += [f"table {family} {TABLE} {{"]
        lines += _nft_chain("prerouting", "filter", "mangle",
                            [_nft_mark(r, family) for r in rules if isinstance(r, Mark)])
        lines += _nft_chain("postrouting", "nat", "srcnat",
                            [_nft_masq(r, family) for r in rules if isinstance(r, Masquerade)])
        lines += ["}"]
    return "\n".join(lines) + "\n"


def _address(rule: Rule) -> IPAddress:
    return rule.vip if isinstance(rule, Mark) else rule.source


def _nft_chain(name: str, kind: str, priority: str, rules: list[str]) -> list[str]:
    if not rules:
        return []
    return [f"\tchain {name} {{", f"\t\ttype {kind} hook {name} priority {priority}; "
            "policy accept;", *(f"\t\t{r}" for r in rules), "\t}"]


def _nft_mark(r: Mark, family: str) -> str:
    ports = str(r.low) if r.low == r.high else f"{r.low}-{r.high}"
    return (f"{family} daddr {r.vip} {r.proto.value} dport {ports} meta mark set {r.mark}"
            f"  # {r.virtual}: {r.why}")


def _nft_masq(r: Masquerade, family: str) -> str:
    return (f"{family} saddr {r.source} tcp sport {FTP_DATA_PORT} masquerade"
            f"  # {r.virtual}: active FTP data from port 20")


# ---- iptables -----------------------------------------------------------------------------

def iptables_steps(p: Plan) -> list[Step]:
    """iptables/ip6tables commands that replace piranha's chains with ``p``'s rules."""
    steps: list[Step] = []
    for tool, v4 in (("iptables", True), ("ip6tables", False)):
        rules = [r for r in p.rules if _v4(_address(r)) == v4]
        if not v4 and not rules:
            continue
        for table, hook, kind in (("mangle", "PREROUTING", Mark),
                                  ("nat", "POSTROUTING", Masquerade)):
            mine = [r for r in rules if isinstance(r, kind)]
            if table == "nat" and not mine:
                continue  # never load the nat table (and conntrack) for nothing
            base = (tool, "-t", table)
            steps += [Step((*base, "-N", CHAIN), (*base, "-F", CHAIN)),
                      Step((*base, "-C", hook, "-j", CHAIN), (*base, "-A", hook, "-j", CHAIN))]
            steps += [Step((*base, "-A", CHAIN, *_ipt_match(r, v4))) for r in mine]
    return steps


def _ipt_match(r: Rule, v4: bool) -> tuple[str, ...]:
    full = "/32" if v4 else "/128"
    if isinstance(r, Mark):
        ports = str(r.low) if r.low == r.high else f"{r.low}:{r.high}"
        return ("-p", r.proto.value, "-d", f"{r.vip}{full}", "--dport", ports,
                "-j", "MARK", "--set-mark", str(r.mark))
    return ("-p", "tcp", "-s", f"{r.source}{full}", "--sport", str(FTP_DATA_PORT),
            "-j", "MASQUERADE")
