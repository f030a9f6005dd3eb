"""rtnetlink edge of pulse: raise and drop VIP addresses, read NIC links, watch link changes.

* :class:`Rtnl` is one ``NETLINK_ROUTE`` request socket speaking the few messages pulse needs
  (link and address dumps, a link by name, address add/delete; framing in
  :mod:`piranha.net.netlink`, which says why not pyroute2). The socket lives in the network
  namespace of the thread that opened it, so an ``Rtnl`` refuses calls from any other thread.
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

from piranha.errors import PiranhaError
from piranha.net import netlink as N

IPAddress = IPv4Address | IPv6Address

IFF_UP = 0x1
IFF_LOWER_UP = 0x10000
IFA_F_NODAD = 0x02
RTMGRP_LINK = 0x1
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MASTER = 1, 3, 10
IFA_ADDRESS, IFA_LOCAL, IFA_LABEL, IFA_BROADCAST = 1, 2, 3, 4
IFNAMSIZ = 16  # names and labels: at most 15 bytes
_NLMSGHDR = N.NLMSG
_IFINFO = struct.Struct("=BxHiII")  # family, type, index, flags, change
_IFADDR = struct.Struct("=BBBBi")  # family, prefixlen, flags, scope, index
_U32 = struct.Struct("=I")
_DUMP = N.NLM_F_REQUEST | N.NLM_F_DUMP
_CHANGE = N.NLM_F_REQUEST | N.NLM_F_ACK


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


def _reason(exc: OSError) -> str:
    return os.strerror(exc.errno) if exc.errno else str(exc)


def _string(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode(errors="replace")


def _link(data: bytes) -> Link:
    _family, _type, index, flags, _change = _IFINFO.unpack_from(data)
    a = N.attrs(data, _IFINFO.size, len(data))
    name = _string(data[slice(*a[IFLA_IFNAME])]) if IFLA_IFNAME in a else ""
    mac = data[slice(*a[IFLA_ADDRESS])] if IFLA_ADDRESS in a else b""
    master = _U32.unpack_from(data, a[IFLA_MASTER][0])[0] if IFLA_MASTER in a else 0
    return Link(index=index, name=name, mac=bytes(mac), up=bool(flags & IFF_UP),
                carrier=bool(flags & IFF_LOWER_UP), master=master or None)


def _addr(data: bytes, names: Mapping[int, str]) -> Addr | None:
    """An address of the dump (None when its link is unknown or its family is not IP)."""
    family, prefix, _flags, _scope, index = _IFADDR.unpack_from(data)
    if index not in names or family not in (socket.AF_INET, socket.AF_INET6):
        return None
    a = N.attrs(data, _IFADDR.size, len(data))
    # IFA_LOCAL is the local end; IFA_ADDRESS is the peer on point-to-point links and is
    # the only one IPv6 sends otherwise (iproute2 reads them the same way)
    span = a.get(IFA_LOCAL) or a.get(IFA_ADDRESS)
    if span is None:
        return None
    label = _string(data[slice(*a[IFA_LABEL])]) if IFA_LABEL in a else ""
    return Addr(device=names[index], label=label or names[index],
                address=ip_address(bytes(data[slice(*span)])), prefix=prefix)


class Rtnl:
    """Addresses and links of the caller's current network namespace, over rtnetlink."""

    def __init__(self, timeout: float = 30.0) -> None:
        self._thread = threading.get_ident()
        kind = socket.SOCK_RAW | socket.SOCK_CLOEXEC
        try:
            # bound to no multicast group: no event can pile up in the queue
            self._sock = socket.socket(socket.AF_NETLINK, kind, socket.NETLINK_ROUTE)
        except OSError as exc:
            raise NetError(f"cannot open an rtnetlink socket: {_reason(exc)}") from exc
        self._sock.settimeout(timeout)
        self._buf = bytearray(1 << 16)  # one buffer for every reply: nothing to fragment
        self._seq = 0
        self._closed = False

    def _exchange(self, what: str, kind: int, flags: int, payload: bytes,
                  tolerate: tuple[int, ...] = (), single: bool = False) -> list[bytes] | None:
        """Send one request; the payloads of its answer (a dump's messages, a get's reply,
        nothing for an acknowledged change). None if it failed with an errno in
        ``tolerate``; otherwise a failure is a NetError naming ``what``. ``single``: the
        answer is one message (a get), not a dump ending in DONE or an acknowledgement."""
        if threading.get_ident() != self._thread:
            raise RuntimeError("an Rtnl is bound to the thread (and namespace) that opened it")
        if self._closed:
            raise NetError(f"{what}: the rtnetlink socket is closed")
        self._seq = self._seq % 0x7FFFFFFF + 1
        seq, out = self._seq, list[bytes]()
        try:
            self._sock.send(N.message(kind, flags, seq, payload))
            while True:
                size, (sender, _groups) = self._sock.recvfrom_into(self._buf)
                if sender != 0:
                    continue  # only the kernel answers; another process may not pose as it
                for mtype, mseq, off, end in N.messages(self._buf, size):
                    if mseq != seq:
                        continue  # a late answer to an earlier request
                    if mtype == N.NLMSG_DONE:
                        return out
                    if mtype == N.NLMSG_ERROR:
                        code = N.error_code(self._buf, off)
                        if code == 0:
                            return out
                        if code in tolerate:
                            return None
                        raise NetError(f"{what}: {os.strerror(code)}")
                    out.append(bytes(self._buf[off:end]))
                    if single:
                        return out
        except TimeoutError as exc:
            raise NetError(f"{what}: no answer from the kernel") from exc
        except OSError as exc:
            if exc.errno in tolerate:
                return None
            raise NetError(f"{what}: {_reason(exc)}") from exc

    def links(self) -> list[Link]:
        """Every link, in kernel order."""
        got = self._exchange("cannot list links", RTM_GETLINK, _DUMP, _IFINFO.pack(0, 0, 0, 0, 0))
        return [_link(m) for m in got or ()]

    def link(self, name: str) -> Link | None:
        """The link called ``name``, or None."""
        return self._link(name, f"cannot read link {name}")

    def _link(self, name: str, what: str) -> Link | None:
        if not 0 < len(name.encode()) < IFNAMSIZ:  # the kernel would say ERANGE/EINVAL
            return None
        request = _IFINFO.pack(0, 0, 0, 0, 0) + N.attr(IFLA_IFNAME, name.encode() + b"\0")
        got = self._exchange(what, RTM_GETLINK, N.NLM_F_REQUEST, request,
                             tolerate=(errno.ENODEV,), single=True)
        return _link(got[0]) if got else None

    def addresses(self) -> list[Addr]:
        """Every IPv4 and IPv6 address, with the name of its link."""
        names = {link.index: link.name for link in self.links()}
        got = self._exchange("cannot list addresses", RTM_GETADDR, _DUMP,
                             _IFADDR.pack(0, 0, 0, 0, 0))
        # an address whose link vanished between the two dumps is gone too
        found = (_addr(m, names) for m in got or ())
        return [a for a in found if a is not None]

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
        index = self._index(device, what)
        extra = b""
        if isinstance(ip, IPv4Address):
            flags = 0
            if prefix < 31:
                net = IPv4Network((ip, prefix), strict=False)
                extra += N.attr(IFA_BROADCAST, net.broadcast_address.packed)
            if label is not None:
                extra += N.attr(IFA_LABEL, label.encode() + b"\0")
        else:
            # no duplicate address detection: a VIP taken over from a dead peer must answer
            # at once, not sit "tentative" for a second; and if the old holder still answers
            # for it, DAD would mark it "dadfailed" and the kernel would never use it
            flags = IFA_F_NODAD
        request = self._address_request(ip, prefix, index, flags) + extra
        return self._exchange(what, RTM_NEWADDR, _CHANGE | N.NLM_F_CREATE | N.NLM_F_EXCL,
                              request, tolerate=(errno.EEXIST,)) is not None

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
        return self._exchange(what, RTM_DELADDR, _CHANGE,
                              self._address_request(ip, prefix, index, 0),
                              tolerate=(errno.EADDRNOTAVAIL, errno.ENXIO)) is not None

    @staticmethod
    def _address_request(ip: IPAddress, prefix: int, index: int, flags: int) -> bytes:
        """ifaddrmsg + IFA_LOCAL + IFA_ADDRESS (both the address itself, as iproute2 sends
        them for a local address: the kernel matches a deletion on both and the prefix)."""
        family = socket.AF_INET if isinstance(ip, IPv4Address) else socket.AF_INET6
        return (_IFADDR.pack(family, prefix, flags, 0, index) + N.attr(IFA_LOCAL, ip.packed)
                + N.attr(IFA_ADDRESS, ip.packed))

    def close(self) -> None:
        """Close the socket (idempotent)."""
        if not self._closed:
            self._closed = True
            self._sock.close()

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
