"""piranha-ipvsadm's name lookups (``piranha.ipvsadm.values.Lookup``) from dictionaries."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address

from piranha.ipvs.types import IPAddress


@dataclass
class StaticLookup:
    """Lookups from dictionaries.

    ``hosts``: name -> address; ``services``: (name, proto) -> port. Reverse look-ups return
    the first matching entry.
    """

    hosts: dict[str, IPAddress]
    services: dict[tuple[str, str], int]

    def host_by_name(self, name: str) -> IPv4Address | None:
        """The IPv4 address listed for ``name``."""
        addr = self.hosts.get(name)
        return addr if isinstance(addr, IPv4Address) else None

    def host_by_addr(self, addr: IPAddress) -> str | None:
        """The first name listed for ``addr``."""
        return next((n for n, a in self.hosts.items() if a == addr), None)

    def serv_by_name(self, name: str, proto: str) -> int | None:
        """The port listed for (name, proto)."""
        return self.services.get((name, proto))

    def serv_by_port(self, port: int, proto: str) -> str | None:
        """The first name listed for (port, proto)."""
        return next((n for (n, p), v in self.services.items() if p == proto and v == port), None)
