"""send_arp: announce an address with one gratuitous ARP reply, argv-compatible with Piranha's.

``send_arp [-i DEV] SRC_IP SRC_MAC TARGET_IP TARGET_MAC`` sends the 60-byte frame of the
reference's section 5 on DEV (default eth0). Like Piranha 0.8.6: exactly 4 positional
arguments, or 6 with ``-i DEV`` first; the target MAC is read first, then the source MAC, then
the source IP; TARGET_IP is never read (both ARP address fields carry SRC_IP); every failure
prints Piranha's message and exits 1. Extensions: an IPv6 SRC_IP gets an unsolicited neighbour
advertisement instead; arguments are checked before the socket is opened (Piranha opens it
first, so an unprivileged run reports ``socket: Operation not permitted`` for any input); a MAC
with trailing characters is refused instead of silently truncated.
"""

from __future__ import annotations

import socket
import sys
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from piranha.errors import PiranhaError
from piranha.net.arp import SendError, announcement, parse_mac, send_frame

USAGE = (
    "send_arp: sends out custom ARP packet. Yuri Volobuev '97\n"
    "\tusage: send_arp [-i dev] src_ip_addr src_hw_addr targ_ip_addr tar_hw_addr\n\n"
)
DEFAULT_DEVICE = "eth0"


class SendArpError(PiranhaError):
    """A command-line problem; ``str()`` is exactly what Piranha prints before exiting 1."""


@dataclass(frozen=True)
class Request:
    """What to send: the announced address, its MAC, the destination MAC, the device."""

    device: str
    ip: IPv4Address | IPv6Address
    mac: bytes
    dest_mac: bytes


def parse_args(args: list[str]) -> Request:
    """The request in ``args`` (argv without the program name); raises SendArpError."""
    argc = len(args) + 1
    if argc != 5 and (argc != 7 or args[0] != "-i"):
        raise SendArpError(USAGE)
    device = DEFAULT_DEVICE
    if args[0] == "-i":
        # with 4 arguments this leaves 2 positionals: the missing target MAC gives Piranha's
        # "Invalid hardware address" (reference section 9, item 16)
        device, args = args[1], args[2:]
    dest_mac = _mac(args[3] if len(args) > 3 else "")
    mac = _mac(args[1])
    return Request(device, resolve(args[0]), mac, dest_mac)


def _mac(text: str) -> bytes:
    try:
        return parse_mac(text)
    except ValueError as exc:
        raise SendArpError(str(exc)) from None


def resolve(text: str) -> IPv4Address | IPv6Address:
    """The address in ``text``: IPv6 literal, inet_aton form, or an IPv4 host name."""
    try:
        if ":" in text:
            return IPv6Address(text)
        return IPv4Address(socket.inet_aton(text))
    except (OSError, ValueError):
        pass
    try:
        return IPv4Address(socket.gethostbyname(text))
    except (OSError, UnicodeError):
        raise SendArpError(f"send_arp: unknown host {text}") from None


def send(request: Request) -> bytes:
    """Send the announcement described by ``request``; return the frame (raises SendError)."""
    frame = announcement(request.ip, request.mac, request.dest_mac)
    send_frame(request.device, frame)
    return frame


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``send_arp``: 0 when the frame was sent, 1 on any error."""
    try:
        send(parse_args(sys.argv[1:] if argv is None else argv))
    except (SendArpError, SendError) as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
