"""The production adapters behind the actuator's and the loop's ports: rtnetlink addresses
and links (``piranha.net.rtnl``), commands run without a shell, and local addresses."""

from __future__ import annotations

import contextlib
import subprocess

from piranha.model import IPAddress
from piranha.net.rtnl import LinkWatch, Rtnl, link_faults


class RtnlAddresses:
    """AddressPort over one rtnetlink socket."""

    def __init__(self, rtnl: Rtnl) -> None:
        self.rtnl = rtnl

    def add_address(self, device: str, ip: IPAddress, prefix: int,
                    label: str | None = None) -> bool:
        return self.rtnl.add_address(device, ip, prefix, label)

    def remove_address(self, device: str, ip: IPAddress, prefix: int) -> bool:
        return self.rtnl.remove_address(device, ip, prefix)

    def mac(self, device: str) -> bytes:
        link = self.rtnl.link(device)
        if link is None:
            raise LookupError(f"no interface {device}")
        return link.mac

    def labelled(self, ip: IPAddress) -> tuple[str, str, int] | None:
        found = self.rtnl.holder(ip)
        return None if found is None else (found.device, found.label, found.prefix)


class RtnlLinks:
    """monitor_links over rtnetlink: a link-change subscription plus a state read."""

    def __init__(self, rtnl: Rtnl, watched: dict[str, IPAddress]) -> None:
        self.rtnl, self.watched = rtnl, watched
        self.watch = LinkWatch()

    def faults(self) -> list[str]:
        return link_faults(self.rtnl.links(), self.rtnl.addresses(), self.watched)

    def fileno(self) -> int:
        return self.watch.fileno()

    def drain(self) -> bool:
        return self.watch.drain()

    def close(self) -> None:
        self.watch.close()


class Commands:
    """``active_cmd``/``inactive_cmd``: split on blanks, run without a shell, not waited
    for (Piranha's fork+execv); finished ones are reaped on the next call."""

    def __init__(self) -> None:
        self.running: list[subprocess.Popen[bytes]] = []

    def __call__(self, cmd: str) -> None:
        self.running = [p for p in self.running if p.poll() is None]
        self.running.append(subprocess.Popen(cmd.split(), stdin=subprocess.DEVNULL,
                                             start_new_session=True))

    def reap(self) -> None:
        for p in self.running:
            with contextlib.suppress(OSError):
                p.poll()


def local_addresses(rtnl: Rtnl) -> set[IPAddress]:
    """Every address on this director's interfaces (master election)."""
    return {a.address for a in rtnl.addresses()}
