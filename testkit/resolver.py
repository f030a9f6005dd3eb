"""Name lookups without DNS (the config loader's ``Resolver``)."""

from __future__ import annotations

from collections.abc import Mapping
from ipaddress import IPv4Address, IPv6Address, ip_address

HOSTS = {"director1": "203.0.113.10", "director2": "203.0.113.11",
         "web1.example": "192.168.10.11", "web6.example": "2001:db8:1::11"}
SERVICES = {"http": 80, "https": 443, "ftp": 21, "domain": 53}


class FakeResolver:
    """Knows the names given (by default a few hosts and services), no other; records every
    lookup so tests can check what was resolved."""

    def __init__(self, hosts: Mapping[str, str] = HOSTS,
                 services: Mapping[str, int] = SERVICES) -> None:
        self.hosts, self.services = dict(hosts), dict(services)
        self.lookups: list[tuple[str, str]] = []

    def host(self, name: str) -> IPv4Address | IPv6Address:
        self.lookups.append(("host", name))
        if name not in self.hosts:
            raise LookupError(name)
        return ip_address(self.hosts[name])

    def service(self, name: str) -> int:
        self.lookups.append(("service", name))
        if name not in self.services:
            raise LookupError(name)
        return self.services[name]


def no_dns() -> FakeResolver:
    """A resolver that knows no name at all."""
    return FakeResolver(hosts={}, services={})
