"""Value parsing as ipvsadm 1.31 does it, with the C library's quirks reproduced.

``strtol``/``atoi`` (leading blanks and a sign accepted, whole string for ``string_to_number``),
glibc ``inet_aton`` (``10.1`` = 10.0.0.1, hex and octal parts, trailing blanks), ipvsadm's
``parse_service`` (``[v6]:port``, bare IPv6 literals without port, ``[1.2.3.4]:80`` silently
dropping the port, host and service names through a :class:`Lookup`), scheduler flags and
tunnel types. Names go through the injected resolver so tests are deterministic.
"""

from __future__ import annotations

import re
import socket
import string
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import Protocol

from piranha.ipvs.types import IPAddress

AF_INET, AF_INET6 = 2, 10
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1
INT_MAX, UINT_MAX = 2**31 - 1, 2**32 - 1
_C_SPACE = " \t\n\v\f\r"

SERVICE_NONE, SERVICE_ADDR, SERVICE_PORT = 0, 1, 2


class Lookup(Protocol):
    """Host and service name look-ups (gethostbyname/-addr, getservbyname/-port)."""

    def host_by_name(self, name: str) -> IPv4Address | None:
        """IPv4 address of a host name, or None."""
        ...

    def host_by_addr(self, addr: IPAddress) -> str | None:
        """Canonical host name of an address, or None."""
        ...

    def serv_by_name(self, name: str, proto: str) -> int | None:
        """Port of a service name for ``tcp``/``udp``/``sctp``, or None."""
        ...

    def serv_by_port(self, port: int, proto: str) -> str | None:
        """Service name of a port for ``tcp``/``udp``/``sctp``, or None."""
        ...


class SystemLookup:
    """The C library's resolver (via :mod:`socket`): /etc/hosts, DNS, /etc/services."""

    def host_by_name(self, name: str) -> IPv4Address | None:
        """gethostbyname(3), IPv4 only."""
        try:
            return IPv4Address(socket.gethostbyname(name))
        except (OSError, UnicodeError, ValueError):
            return None

    def host_by_addr(self, addr: IPAddress) -> str | None:
        """gethostbyaddr(3)'s h_name."""
        try:
            return socket.gethostbyaddr(str(addr))[0]
        except (OSError, UnicodeError, ValueError):
            return None

    def serv_by_name(self, name: str, proto: str) -> int | None:
        """getservbyname(3)."""
        try:
            return socket.getservbyname(name, proto)
        except (OSError, UnicodeError, ValueError):
            return None

    def serv_by_port(self, port: int, proto: str) -> str | None:
        """getservbyport(3)."""
        try:
            return socket.getservbyport(port, proto)
        except (OSError, OverflowError):
            return None


#: digits beyond which a number overflows every C integer (Python refuses int() of > 4300)
MAX_DIGITS = 40


def strtol(s: str, base: int = 10) -> tuple[int, int, bool]:
    """C ``strtol``: (value, characters consumed (0 = no number), overflowed)."""
    i = 0
    while i < len(s) and s[i] in _C_SPACE:
        i += 1
    sign = 1
    if i < len(s) and s[i] in "+-":
        sign = -1 if s[i] == "-" else 1
        i += 1
    digits = string.digits if base == 10 else string.hexdigits
    start = i
    while i < len(s) and s[i] in digits:
        i += 1
    if i == start:
        return 0, 0, False
    significant = s[start:i].lstrip("0") or "0"
    if len(significant) > MAX_DIGITS:
        return (LONG_MAX if sign > 0 else LONG_MIN), i, True  # overflowed, as C's strtol says
    value = sign * int(significant, base)
    if value > LONG_MAX or value < LONG_MIN:
        return (LONG_MAX if value > 0 else LONG_MIN), i, True
    return value, i, False


def string_to_number(s: str, lo: int, hi: int) -> int | None:
    """ipvsadm's ``string_to_number``: the whole string must be a number in [lo, hi]."""
    value, used, overflow = strtol(s)
    if used == 0 or used != len(s) or overflow or not lo <= value <= hi:
        return None
    return value


def atoi(s: str) -> int:
    """C ``atoi`` (0 when there is no number)."""
    value, _, _ = strtol(s)
    return ((value + 2**31) % 2**32) - 2**31


def _strtoul0(s: str) -> tuple[int, int]:
    """C ``strtoul(s, &end, 0)`` on a string starting with a digit: (value, length used)."""
    if s[:2] in ("0x", "0X") and len(s) > 2 and s[2] in string.hexdigits:
        end = 2
        while end < len(s) and s[end] in string.hexdigits:
            end += 1
        return _capped(s[2:end], 16), end
    base, digits = (8, string.octdigits) if s[0] == "0" else (10, string.digits)
    end = 1
    while end < len(s) and s[end] in digits:
        end += 1
    return _capped(s[:end], base), end


def _capped(digits: str, base: int) -> int:
    """``int(digits, base)``, or ULONG_MAX + 1 for more digits than any C integer holds."""
    significant = digits.lstrip("0") or "0"
    if len(significant) > MAX_DIGITS:
        return 2**64
    return int(significant, base)


#: a plain dotted quad (no leading zeros, which inet_aton reads as octal), optional ":port"
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_PLAIN4 = re.compile(rf"((?:{_OCTET}\.){{3}}{_OCTET})(?::([1-9]\d{{0,4}}|0))?\Z")


def inet_aton(s: str) -> IPv4Address | None:
    """glibc ``inet_aton``: 1 to 4 numeric parts (C notation), trailing blanks allowed."""
    if _PLAIN4.match(s) and ":" not in s:
        return IPv4Address(s)
    parts: list[int] = []
    pos = 0
    while True:
        if pos >= len(s) or not s[pos].isdigit() or not s[pos].isascii():
            return None
        val, used = _strtoul0(s[pos:])
        pos += used
        if val > UINT_MAX:
            return None
        if pos < len(s) and s[pos] == ".":
            if len(parts) > 2 or val > 0xFF:
                return None
            parts.append(val)
            pos += 1
            continue
        break
    if pos < len(s) and s[pos] not in _C_SPACE:
        return None
    if val > (0xFFFFFFFF >> (8 * len(parts))):
        return None
    word = 0
    for i, byte in enumerate(parts):
        word |= byte << (24 - 8 * i)
    return IPv4Address(word | val)


def inet_pton6(s: str) -> IPv6Address | None:
    """``inet_pton(AF_INET6)``."""
    try:
        return IPv6Address(socket.inet_pton(socket.AF_INET6, s))
    except (OSError, ValueError):
        return None


def inet_pton4(s: str) -> IPv4Address | None:
    """``inet_pton(AF_INET)`` (strict dotted quad)."""
    try:
        return IPv4Address(socket.inet_pton(socket.AF_INET, s))
    except (OSError, ValueError):
        return None


@dataclass
class Endpoint:
    """The part of ``ipvs_service_t`` that ``parse_service`` writes."""

    af: int = 0
    addr: IPAddress | None = None
    port: int = 0
    netmask: int = 0xFFFFFFFF


PROTO_NAMES = {6: "tcp", 17: "udp", 132: "sctp"}


def parse_service(buf: str, proto: int, into: Endpoint, resolver: Lookup) -> int:
    """ipvsadm's ``parse_service``: fill ``into``; SERVICE_ADDR|SERVICE_PORT bits, 0 on error."""
    plain = _PLAIN4.match(buf)
    if plain is not None and (plain[2] is None or int(plain[2]) <= 65535):
        into.af, into.addr = AF_INET, IPv4Address(plain[1])
        if plain[2] is None:
            return SERVICE_ADDR
        into.port = int(plain[2])
        return SERVICE_ADDR | SERVICE_PORT
    if all(c in string.digits for c in buf):
        return SERVICE_NONE
    port_text: str | None = None
    if buf.startswith("["):
        host, bracket, rest = buf[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            return SERVICE_NONE
        buf, port_text = host, rest[1:]
    addr6 = inet_pton6(buf) if buf.count(":") > 1 else None
    if addr6 is not None:
        into.af, into.addr, into.netmask = AF_INET6, addr6, 128
    else:
        host, colon, tail = buf.rpartition(":")
        port_text, buf = (tail, host) if colon else (None, buf)
        addr4 = inet_aton(buf) or resolver.host_by_name(buf)
        if addr4 is None:
            return SERVICE_NONE
        into.af, into.addr = AF_INET, addr4
    if port_text is None:
        return SERVICE_ADDR
    port = string_to_number(port_text, 0, 65535)
    if port is None and proto in PROTO_NAMES:
        port = resolver.serv_by_name(port_text, PROTO_NAMES[proto])
    if port is None:
        return SERVICE_NONE
    into.port = port
    return SERVICE_ADDR | SERVICE_PORT


def parse_netmask(buf: str, resolver: Lookup) -> int | None:
    """ipvsadm's ``parse_netmask`` for IPv4: the mask as a host-order 32-bit value."""
    addr = inet_aton(buf) or resolver.host_by_name(buf)
    return None if addr is None else int(addr)


def parse_fwmark(buf: str) -> int | None:
    """ipvsadm's ``parse_fwmark``: strtol, whole string, 1..UINT_MAX."""
    value, used, overflow = strtol(buf)
    if used == 0 or used != len(buf) or overflow or not 0 < value <= UINT_MAX:
        return None
    return value


SCHED1, SCHED2, SCHED3 = 0x8, 0x10, 0x20
#: flag word -> (bit, scheduler it is reserved for, or None)
SCHED_FLAG_WORDS = {
    "flag-1": (SCHED1, None), "flag-2": (SCHED2, None), "flag-3": (SCHED3, None),
    "sh-fallback": (SCHED1, "sh"), "sh-port": (SCHED2, "sh"),
    "mh-fallback": (SCHED1, "mh"), "mh-port": (SCHED2, "mh"),
}


def parse_sched_flags(sched: str, arg: str) -> tuple[int, str | None]:
    """ipvsadm's ``parse_sched_flags``: (flag bits, error message or None)."""
    sched = sched or "wlc"
    flags = 0
    for word in (w for w in arg.split(",") if w):
        if word not in SCHED_FLAG_WORDS:
            return flags, f"invalid scheduler flag `{word}'"
        bit, only = SCHED_FLAG_WORDS[word]
        flags |= bit
        if only is not None and sched != only:
            return flags, f"incompatible scheduler flag `{word}'"
    return flags, None


TUN_TYPES = {"ipip": 0, "gue": 1, "gre": 2}


def is_multicast(addr: IPAddress) -> bool:
    """IN_MULTICAST / IN6_IS_ADDR_MULTICAST."""
    return addr.is_multicast
