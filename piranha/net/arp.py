"""Gratuitous announcements of a VIP: Piranha's 60-byte ARP reply, and an IPv6 unsolicited
neighbour advertisement (an extension: Piranha has no IPv6).

The frame builders are pure and return the exact bytes put on the wire; :func:`send_frame`
and :func:`interface_mac` are the only I/O here (one AF_PACKET socket each).

ARP frame (reference section 5): Ethernet destination = target MAC, source = our MAC, type
0x0806; HTYPE 1, PTYPE 0x0800, HLEN 6, PLEN 4, OPER 2 (a *reply*, as pulse's send_arp sends);
sender MAC/IP = our MAC and the VIP; target MAC/IP = the same again (RFC 2002-style
gratuitous reply); 18 zero bytes of padding to the 60-byte Ethernet minimum.

Neighbour advertisement (RFC 4861 section 7.2.6): to ff02::1 (Ethernet 33:33:00:00:00:01
unless a unicast MAC is given), from the VIP, hop limit 255, flags Override (plus Router on
request), target = the VIP, option 2 (target link-layer address) = our MAC: 86 bytes.
"""

from __future__ import annotations

import socket
import struct
from ipaddress import IPv4Address, IPv6Address

from piranha.errors import PiranhaError

ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
BROADCAST_MAC = b"\xff" * 6
ALL_NODES = IPv6Address("ff02::1")
ALL_NODES_MAC = b"\x33\x33\x00\x00\x00\x01"
ARP_REPLY = 2
ETHERNET_MIN = 60
ICMPV6 = 58
NEIGHBOR_ADVERT = 136
NA_ROUTER, NA_SOLICITED, NA_OVERRIDE = 0x80000000, 0x40000000, 0x20000000
OPT_TARGET_LLADDR = 2


def parse_mac(text: str) -> bytes:
    """The 6 bytes of ``text``: 12 hex digits, each pair optionally followed by ``:``.

    Piranha's ``get_hw_addr`` rules, except that trailing characters are refused instead
    of ignored. Raises ValueError("Invalid hardware address") like send_arp's message.
    """
    out = bytearray()
    pos = 0
    for _ in range(6):
        pair = text[pos:pos + 2]
        if len(pair) != 2 or not all(c in "0123456789abcdefABCDEF" for c in pair):
            raise ValueError("Invalid hardware address")
        out.append(int(pair, 16))
        pos += 2
        if text[pos:pos + 1] == ":":
            pos += 1
    if pos != len(text):
        raise ValueError("Invalid hardware address")
    return bytes(out)


def format_mac(mac: bytes) -> str:
    """``mac`` as ``aa:bb:cc:dd:ee:ff``."""
    return ":".join(f"{b:02x}" for b in mac)


def _check_mac(mac: bytes, what: str) -> None:
    if len(mac) != 6:
        raise ValueError(f"{what} must be 6 bytes, got {len(mac)}")


def gratuitous_arp(ip: IPv4Address, mac: bytes, dest_mac: bytes = BROADCAST_MAC) -> bytes:
    """The 60-byte frame pulse's send_arp sends to announce ``ip`` at ``mac``."""
    _check_mac(mac, "mac")
    _check_mac(dest_mac, "dest_mac")
    ethernet = dest_mac + mac + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, ARP_REPLY) + mac + ip.packed + mac + ip.packed
    return (ethernet + arp).ljust(ETHERNET_MIN, b"\x00")


def icmpv6_checksum(src: IPv6Address, dst: IPv6Address, message: bytes) -> int:
    """The ICMPv6 checksum of ``message`` (checksum field zero) between ``src`` and ``dst``."""
    pseudo = src.packed + dst.packed + struct.pack("!I3xB", len(message), ICMPV6)
    data = pseudo + message + b"\x00" * (len(message) % 2)
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def neighbor_advert(
    ip: IPv6Address, mac: bytes, dest_mac: bytes | None = None, *, router: bool = False
) -> bytes:
    """The 86-byte unsolicited neighbour advertisement announcing ``ip`` at ``mac``."""
    _check_mac(mac, "mac")
    dest = ALL_NODES_MAC if dest_mac is None or dest_mac == BROADCAST_MAC else dest_mac
    _check_mac(dest, "dest_mac")
    flags = NA_OVERRIDE | (NA_ROUTER if router else 0)
    option = struct.pack("!BB", OPT_TARGET_LLADDR, 1) + mac
    body = struct.pack("!I", flags) + ip.packed + option
    checksum = icmpv6_checksum(ip, ALL_NODES, struct.pack("!BBH", NEIGHBOR_ADVERT, 0, 0) + body)
    icmp = struct.pack("!BBH", NEIGHBOR_ADVERT, 0, checksum) + body
    ipv6 = struct.pack("!IHBB", 6 << 28, len(icmp), ICMPV6, 255) + ip.packed + ALL_NODES.packed
    return dest + mac + struct.pack("!H", ETH_P_IPV6) + ipv6 + icmp


def announcement(
    ip: IPv4Address | IPv6Address, mac: bytes, dest_mac: bytes = BROADCAST_MAC
) -> bytes:
    """The frame that announces ``ip`` at ``mac``: gratuitous ARP (v4) or NA (v6)."""
    if isinstance(ip, IPv4Address):
        return gratuitous_arp(ip, mac, dest_mac)
    return neighbor_advert(ip, mac, dest_mac)


# ---- the I/O edge ---------------------------------------------------------------------------


class SendError(PiranhaError, OSError):
    """Sending failed; ``call`` is the system call (``socket`` or ``sendto``), as in perror."""

    def __init__(self, call: str, cause: OSError) -> None:
        super().__init__(cause.errno, cause.strerror)
        self.call = call

    def __str__(self) -> str:
        return f"{self.call}: {self.strerror}"


def send_frame(device: str, frame: bytes) -> None:
    """Send the Ethernet ``frame`` as is on ``device`` (needs CAP_NET_RAW; raises SendError)."""
    ethertype = struct.unpack_from("!H", frame, 12)[0]
    try:
        # protocol 0: this socket only sends, so the kernel queues nothing to it
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    except OSError as exc:
        raise SendError("socket", exc) from exc
    with sock:
        try:
            sock.sendto(frame, (device, ethertype))
        except OSError as exc:
            raise SendError("sendto", exc) from exc


class FrameSender:
    """One AF_PACKET socket kept open to send frames on any device (pulse's announcements).

    Opening and closing a packet socket per frame is cheap to open but not to close: the
    kernel waits for an RCU grace period (``synchronize_net``), 20-30 ms each in the lab VM,
    and activation sends a burst of frames at once. Protocol 0: it only sends.
    """

    def __init__(self) -> None:
        try:
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        except OSError as exc:
            raise SendError("socket", exc) from exc

    def __call__(self, device: str, frame: bytes) -> None:
        """Send the Ethernet ``frame`` as is on ``device`` (raises SendError)."""
        try:
            self.sock.sendto(frame, (device, struct.unpack_from("!H", frame, 12)[0]))
        except OSError as exc:
            raise SendError("sendto", exc) from exc

    def close(self) -> None:
        self.sock.close()


def interface_mac(device: str) -> bytes:
    """The hardware address of ``device`` in the caller's network namespace."""
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0) as sock:
        sock.bind((device, 0))
        mac: bytes = sock.getsockname()[4]
    return mac


def announce(
    device: str, ip: IPv4Address | IPv6Address, mac: bytes | None = None,
    dest_mac: bytes = BROADCAST_MAC,
) -> bytes:
    """Send one announcement of ``ip`` on ``device`` (``mac`` defaults to the device's)."""
    frame = announcement(ip, interface_mac(device) if mac is None else mac, dest_mac)
    send_frame(device, frame)
    return frame
