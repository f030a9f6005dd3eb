"""What pulse owns on this director, computed from the config alone (pure).

* Master election is static, as in Piranha: the director holding ``primary`` on one of its
  interfaces is the master; every other one is the backup.
* Heartbeat paths: the public one (own address -> partner's) and, when the private addresses
  differ from the public ones, the private one.
* VIPs: every distinct address of an active virtual server, plus ``nat_router`` under NAT, each
  on the device named in lvs.cf (``eth0:1`` = label ``eth0:1`` on ``eth0``). The prefix is
  ``vip_nmask`` / ``nat_nmask``, or a host prefix (/32, /128) when none is given: Piranha's
  ``ifconfig`` without a netmask applied the classful mask, which adds a prefix route nobody
  asked for.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from ipaddress import IPv4Address

from piranha.errors import PiranhaError
from piranha.heartbeat.transport import Path
from piranha.model import Cluster, IPAddress, Network


@dataclass(frozen=True)
class Vip:
    """An address pulse raises on activation and removes on deactivation."""

    ip: IPAddress
    prefix: int
    device: str  # the base NIC (alias suffix stripped)
    label: str | None  # "eth0:1", or None when lvs.cf names the plain device
    owner: str  # "virtual NAME" or "nat_router", for log lines

    def __str__(self) -> str:
        return f"{self.ip}/{self.prefix} on {self.label or self.device}"


class PlanError(PiranhaError):
    """This director cannot run pulse with this config (message names the setting)."""


def is_master(cluster: Cluster, local: Collection[IPAddress]) -> bool:
    """True when this director holds ``primary`` (Piranha's static election)."""
    return cluster.primary is not None and cluster.primary in local


def paths(cluster: Cluster, master: bool) -> tuple[Path, ...]:
    """The heartbeat paths of this director (none for a lone master)."""
    own, partner = _pair(cluster.primary, cluster.backup, master)
    if own is None and cluster.primary is None:
        raise PlanError("primary is not set: pulse does not know this director's address")
    if own is None:
        raise PlanError(f"this host does not hold primary ({cluster.primary}) and backup is "
                        "not set: it is neither director (set backup = IP on the backup)")
    if not cluster.backup_active or partner is None or _unset(partner):
        return ()
    out = [Path("public", own, partner)]
    own_priv, partner_priv = _pair(cluster.primary_private, cluster.backup_private, master)
    if (own_priv is not None and partner_priv is not None and not _unset(partner_priv)
            and (own_priv, partner_priv) != (own, partner)):
        out.append(Path("private", own_priv, partner_priv))
    return tuple(out)


def vips(cluster: Cluster) -> tuple[Vip, ...]:
    """Every address to raise on activation, each once: the NAT router first (replies need
    their gateway before requests arrive), then the VIPs in lvs.cf order."""
    out: dict[IPAddress, Vip] = {}
    router = cluster.nat_router
    if cluster.network is Network.NAT and router is not None:
        prefix = cluster.nat_nmask if cluster.nat_nmask is not None else _host(router.ip)
        out[router.ip] = _vip(router.ip, prefix, router.device, "nat_router")
    for vs in cluster.active_virtuals():
        if vs.address is None or vs.address.ip in out:
            continue
        prefix = vs.vip_nmask if vs.vip_nmask is not None else _host(vs.address.ip)
        out[vs.address.ip] = _vip(vs.address.ip, prefix, vs.address.device, f"virtual {vs.name}")
    return tuple(out.values())


def _vip(ip: IPAddress, prefix: int, device: str, owner: str) -> Vip:
    base = device.split(":", 1)[0]
    return Vip(ip, prefix, base, device if device != base else None, owner)


def _host(ip: IPAddress) -> int:
    return 32 if isinstance(ip, IPv4Address) else 128


def _unset(ip: IPAddress) -> bool:
    return ip.is_unspecified


def _pair(primary: IPAddress | None, backup: IPAddress | None,
          master: bool) -> tuple[IPAddress | None, IPAddress | None]:
    return (primary, backup) if master else (backup, primary)


@dataclass(frozen=True)
class Settings:
    """Everything pulse takes from lvs.cf, for one director (what SIGHUP may change)."""

    master: bool
    paths: tuple[Path, ...]
    port: int
    key: bytes | None
    keepalive: float
    deadtime: float
    vips: tuple[Vip, ...]
    active_cmd: str | None
    inactive_cmd: str | None
    sync_iface: str | None  # None: syncdaemon = 0
    sync_id: int
    #: monitor_links: role ("Primary", "Private") -> this director's address on that NIC
    watched: dict[str, IPAddress]

    @property
    def partners(self) -> tuple[str, ...]:
        return tuple(str(p.partner) for p in self.paths)


def settings(cluster: Cluster, local: Collection[IPAddress]) -> Settings:
    """This director's settings; PlanError when the config cannot work here."""
    master = is_master(cluster, local)
    hb_paths = paths(cluster, master)
    own_addresses = {p.local for p in hb_paths} | ({cluster.primary} if master else set())
    addresses = vips(cluster)
    for vip in addresses:
        if vip.ip in own_addresses:
            raise PlanError(f"{vip.owner}: {vip.ip} is this director's own heartbeat address; "
                            "a VIP must be an address of its own")
    watched: dict[str, IPAddress] = {}
    if cluster.monitor_links and cluster.backup_active:
        for p in hb_paths:
            watched["Primary" if p.name == "public" else "Private"] = p.local
    return Settings(
        master=master, paths=hb_paths, port=cluster.heartbeat_port,
        key=cluster.heartbeat_key.encode() if cluster.heartbeat_key else None,
        keepalive=cluster.keepalive, deadtime=cluster.deadtime, vips=addresses,
        active_cmd=cluster.active_cmd, inactive_cmd=cluster.inactive_cmd,
        sync_iface=cluster.syncd_iface if cluster.syncdaemon else None,
        sync_id=cluster.syncd_id, watched=watched)
