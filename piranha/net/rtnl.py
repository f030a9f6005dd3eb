"""rtnetlink edge of pulse: raise and drop VIP addresses, read NIC links, watch link changes.

* :class:`Rtnl` wraps one pyroute2 ``IPRoute`` socket (pyroute2 is imported when the first
  one opens: ~0.13 s). The socket lives in the network namespace of the thread that opened
  it, so an ``Rtnl`` refuses calls from any other thread (pyroute2 0.9 would silently open a
  second socket there, possibly in another namespace).
* :class:`LinkWatch` is a plain ``NETLINK_ROUTE`` socket in the ``RTMGRP_LINK`` group, for
  a ``select()`` loop: it says "some link changed"; the caller re-reads :meth:`Rtnl.links`.
* :func:`link_faults` is Piranha's ``monitor_links`` rule, pure.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, ip_address
from typing import Any

from piranha.errors import PiranhaError

IPAddress = IPv4Address | IPv6Address

IFF_UP = 0x1
IFF_LOWER_UP = 0x10000
IFA_F_NODAD = 0x02
RTMGRP_LINK = 0x1
RTM_NEWLINK, RTM_DELLINK = 16, 17
IFNAMSIZ = 16  # names and labels: at most 15 bytes
_NLMSGHDR = struct.Struct("=IHHII")  # length, type, flags, seq, pid


class NetError(PiranhaError):
    """An rtnetlink request failed; ``str()`` names the device and address involved."""


@dataclass(frozen=True)
class Link:
    """One network interface.

    ``carrier`` is ``IFF_LOWER_UP``: the kernel sets it while the device is admin-up and
    its driver reports carrier. Devices without a carrier notion (lo, dummy) never drop
    carrier, so they report it whenever they are up (operstate UNKNOWN); no operstate
    fallback is needed. An admin-down device has no carrier.
    """

    index: int
    name: str
    mac: bytes  # as the kernel reports it (lo: six zero bytes); b"" if the link has none
    up: bool  # IFF_UP: administratively up
    carrier: bool  # IFF_LOWER_UP
    master: int | None  # ifindex of a bond/bridge master


@dataclass(frozen=True)
class Addr:
    """One address on an interface."""

    device: str  # the link's name
    label: str  # IFA_LABEL (IPv4 alias such as "eth0:1"); the device name when none (IPv6)
    address: IPAddress
    prefix: int


def holder_of(addresses: Sequence[Addr], ip: IPAddress) -> Addr | None:
    """The first address entry for ``ip``, or None."""
    return next((a for a in addresses if a.address == ip), None)


def link_faults(links: Sequence[Link], addresses: Sequence[Addr],
                watched: Mapping[str, IPAddress]) -> list[str]:
    """Piranha's ``monitor_links``: one fault line per watched role whose NIC is down.

    ``watched`` maps a role ("Primary", "Private") to an address. The interface holding the
    address is judged (on a bond that is the bond, so bond slaves never come up); an address
    nobody holds, or a link missing from ``links``, counts as up.
    """
    by_name = {link.name: link for link in links}
    faults = []
    for role, ip in watched.items():
        held = holder_of(addresses, ip)
        link = by_name.get(held.device) if held is not None else None
        if link is not None and not (link.up and link.carrier):
            faults.append(f"{role} NIC: link down ({link.name})")
    return faults


def _pyroute2() -> tuple[Any, type[Exception]]:
    """pyroute2's ``IPRoute`` and ``NetlinkError``, imported on first use."""
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    return IPRoute, NetlinkError


def _errno(exc: Exception) -> int:
    code = getattr(exc, "code", None)  # NetlinkError
    if code is None:
        code = getattr(exc, "errno", None)  # OSError
    return code if isinstance(code, int) else 0


def _reason(exc: Exception) -> str:
    code = _errno(exc)
    return os.strerror(code) if code else str(exc)


def _mac(text: object) -> bytes:
    """IFLA_ADDRESS as decoded by pyroute2 ("aa:bb:..."), as bytes; b"" if absent/odd."""
    if not isinstance(text, str):
        return b""
    try:
        return bytes.fromhex(text.replace(":", ""))
    except ValueError:
        return b""


def _to_link(msg: Any) -> Link:
    flags = int(msg["flags"])
    master = msg.get_attr("IFLA_MASTER")
    return Link(index=int(msg["index"]), name=str(msg.get_attr("IFLA_IFNAME")),
                mac=_mac(msg.get_attr("IFLA_ADDRESS")), up=bool(flags & IFF_UP),
                carrier=bool(flags & IFF_LOWER_UP),
                master=int(master) if master else None)


def _to_addr(msg: Any, device: str) -> Addr:
    # IFA_LOCAL is the local end; IFA_ADDRESS is the peer on point-to-point links and is
    # the only one IPv6 sends otherwise (iproute2 reads them the same way)
    local = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
    label = msg.get_attr("IFA_LABEL")
    return Addr(device=device, label=str(label) if label else device,
                address=ip_address(str(local)), prefix=int(msg["prefixlen"]))


class Rtnl:
    """Addresses and links of the caller's current network namespace, over rtnetlink."""

    def __init__(self) -> None:
        iproute, self._netlink_error = _pyroute2()
        self._thread = threading.get_ident()
        try:
            # groups=0: never bound to multicast, so no event can pile up in the queue
            self._ipr: Any = iproute(groups=0)
        except (self._netlink_error, OSError) as exc:
            raise NetError(f"cannot open an rtnetlink socket: {_reason(exc)}") from exc
        self._closed = False

    def _request(self, what: str, method: str, *args: Any, tolerate: tuple[int, ...] = (),
                 **kwargs: Any) -> Any:
        """One pyroute2 call; None if it failed with an errno in ``tolerate``; else NetError."""
        if threading.get_ident() != self._thread:
            raise RuntimeError("an Rtnl is bound to the thread (and namespace) that opened it")
        if self._closed:
            raise NetError(f"{what}: the rtnetlink socket is closed")
        try:
            return getattr(self._ipr, method)(*args, **kwargs)
        except (self._netlink_error, OSError) as exc:
            if _errno(exc) in tolerate:
                return None
            raise NetError(f"{what}: {_reason(exc)}") from exc

    def links(self) -> list[Link]:
        """Every link, in kernel order."""
        return [_to_link(m) for m in self._request("cannot list links", "get_links")]

    def link(self, name: str) -> Link | None:
        """The link called ``name``, or None."""
        return self._link(name, f"cannot read link {name}")

    def _link(self, name: str, what: str) -> Link | None:
        if not 0 < len(name.encode()) < IFNAMSIZ:  # the kernel would say ERANGE/EINVAL
            return None
        msgs = self._request(what, "link", "get", ifname=name, tolerate=(errno.ENODEV,))
        return _to_link(msgs[0]) if msgs else None

    def addresses(self) -> list[Addr]:
        """Every IPv4 and IPv6 address, with the name of its link."""
        names = {link.index: link.name for link in self.links()}
        msgs = self._request("cannot list addresses", "get_addr")
        # an address whose link vanished between the two dumps is gone too
        return [_to_addr(m, names[m["index"]]) for m in msgs if m["index"] in names]

    def holder(self, ip: IPAddress) -> Addr | None:
        """Which interface holds ``ip`` (the first one if several do), or None."""
        return holder_of(self.addresses(), ip)

    def _index(self, device: str, what: str) -> int:
        found = self._link(device, what)
        if found is None:
            raise NetError(f"{what}: No such device")
        return found.index

    def add_address(self, device: str, ip: IPAddress, prefix: int,
                    label: str | None = None) -> bool:
        """Add ``ip/prefix`` to ``device``; False if that address was already there.

        "Already there" is the kernel's EEXIST, whatever the label: for IPv4 the same address
        and prefix on this device (another prefix is another address), for IPv6 the same
        address with any prefix. IPv4 gets a broadcast address below /31, as ``ifconfig ...
        netmask M broadcast B`` set it. ``label`` is an IPv4 alias ("eth0:1") and must start
        with the device name (iproute2's and ifconfig's rule; the kernel does not check).
        IPv6 has no labels: the label is checked, then left out.
        """
        what = f"cannot add {ip}/{prefix} to {device}"
        _check_prefix(ip, prefix, what)
        if label is not None and not (label.startswith(device)
                                      and len(label.encode()) < IFNAMSIZ):
            raise NetError(f"{what}: label {label!r} must start with the device name and "
                           f"be at most {IFNAMSIZ - 1} bytes")
        request: dict[str, Any] = {"index": self._index(device, what), "address": str(ip),
                                   "prefixlen": prefix}
        if isinstance(ip, IPv4Address):
            if prefix < 31:
                net = IPv4Network((ip, prefix), strict=False)
                request["broadcast"] = str(net.broadcast_address)
            if label is not None:
                request["label"] = label
        else:
            # no duplicate address detection: a VIP taken over from a dead peer must answer
            # at once, not sit "tentative" for a second; and if the old holder still answers
            # for it, DAD would mark it "dadfailed" and the kernel would never use it
            request["flags"] = IFA_F_NODAD
        return self._request(what, "addr", "add", tolerate=(errno.EEXIST,),
                             **request) is not None

    def remove_address(self, device: str, ip: IPAddress, prefix: int) -> bool:
        """Remove ``ip/prefix`` from ``device``; False if it was not there.

        Only that exact address (and prefix) goes. Kernel rule to know: removing an IPv4
        *primary* address also removes the secondaries of its subnet on that device unless
        ``net.ipv4.conf.DEV.promote_secondaries`` is 1 (``ifconfig eth0:1 down`` does the
        same).
        """
        what = f"cannot remove {ip}/{prefix} from {device}"
        _check_prefix(ip, prefix, what)
        index = self._index(device, what)
        # ENXIO: IPv6 is off on the device, so the address cannot be there either
        return self._request(what, "addr", "del", index=index, address=str(ip),
                             prefixlen=prefix,
                             tolerate=(errno.EADDRNOTAVAIL, errno.ENXIO)) is not None

    def close(self) -> None:
        """Close the socket (idempotent)."""
        if not self._closed:
            self._closed = True
            self._ipr.close()

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_prefix(ip: IPAddress, prefix: int, what: str) -> None:
    if not 0 <= prefix <= ip.max_prefixlen:
        raise NetError(f"{what}: prefix must be 0..{ip.max_prefixlen}")


class LinkWatch:
    """rtnetlink multicast subscription to link (RTMGRP_LINK) changes, for a select() loop.

    Opened in the caller's current network namespace. Only says *that* links changed: the
    caller re-reads them (level-triggered, so a lost event cannot leave stale state). Admin
    up/down is announced at once; carrier changes go through the kernel's linkwatch and
    arrive up to ~1 s late, while ``Link.carrier`` read meanwhile is already current.
    """

    def __init__(self, receive_buffer: int | None = None) -> None:
        kind = socket.SOCK_RAW | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
        try:
            self._sock = socket.socket(socket.AF_NETLINK, kind, socket.NETLINK_ROUTE)
        except OSError as exc:
            raise NetError(f"cannot open an rtnetlink socket: {_reason(exc)}") from exc
        try:
            if receive_buffer is not None:  # tests: a queue small enough to overflow
                self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
            self._sock.bind((0, RTMGRP_LINK))
        except OSError as exc:
            self._sock.close()
            raise NetError(f"cannot subscribe to link events: {_reason(exc)}") from exc
        self._buf = bytearray(1 << 16)

    def fileno(self) -> int:
        return self._sock.fileno()

    def drain(self) -> bool:
        """Read every pending message without blocking; True if any link message arrived.

        A receive-queue overflow (ENOBUFS: events were lost) also counts as a change.
        """
        changed = False
        while True:
            try:
                size = self._sock.recv_into(self._buf)
            except BlockingIOError:
                return changed
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise NetError(f"cannot read link events: {_reason(exc)}") from exc
                changed = True
                continue
            changed = _has_link_message(self._buf, size) or changed

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> LinkWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _has_link_message(buf: bytearray, size: int) -> bool:
    """Whether the datagram holds an RTM_NEWLINK/RTM_DELLINK message."""
    offset = 0
    while offset + _NLMSGHDR.size <= size:
        length, kind, _, _, _ = _NLMSGHDR.unpack_from(buf, offset)
        if kind in (RTM_NEWLINK, RTM_DELLINK):
            return True
        if length < _NLMSGHDR.size:
            return False
        offset += (length + 3) & ~3
    return False
