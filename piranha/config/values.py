"""Value converters for lvs.cf: one token (or a few) -> a typed value, or ``Invalid``.

Each converter takes the value tokens of one assignment and a ``Context`` (resolver and a
place to put warnings) and returns the value. The error messages say what was expected and
what was found.
"""

from __future__ import annotations

import math
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any, Protocol

from piranha.config.lexer import Token
from piranha.errors import PiranhaError
from piranha.model import InterfaceAddress, IPAddress, Listen


class Invalid(PiranhaError):
    """A value that cannot be used; ``token`` locates it."""

    def __init__(self, token: Token, message: str):
        super().__init__(message)
        self.token = token
        self.message = message


class Resolver(Protocol):
    """Name lookups done at load time (injected so tests need no DNS)."""

    def host(self, name: str) -> IPAddress:
        """The address of host ``name``; raises LookupError when it has none."""
        ...

    def service(self, name: str) -> int:
        """The TCP port of service ``name``; raises LookupError when unknown."""
        ...


class SystemResolver:
    """The system's resolver: getaddrinfo (IPv4 first, like gethostbyname) and /etc/services."""

    def host(self, name: str) -> IPAddress:
        for family in (socket.AF_INET, socket.AF_INET6):
            try:
                infos = socket.getaddrinfo(name, None, family, socket.SOCK_STREAM)
            except (OSError, UnicodeError, ValueError):
                continue
            if infos:
                return ip_address(infos[0][4][0])
        raise LookupError(name)

    def service(self, name: str) -> int:
        try:
            return socket.getservbyname(name, "tcp")
        except (OSError, UnicodeError, ValueError) as exc:
            raise LookupError(name) from exc


@dataclass
class Context:
    """What converters may use: the resolver, and warnings they raise."""

    resolver: Resolver
    warnings: list[tuple[Token, str]] = field(default_factory=list)

    def warn(self, token: Token, message: str) -> None:
        self.warnings.append((token, message))


Converter = Callable[[tuple[Token, ...], Context], Any]

_STRTOL = re.compile(r"[+-]?(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")
_DECIMAL = re.compile(r"([0-9]+(\.[0-9]*)?|\.[0-9]+)")
_HOSTNAME = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.-]{0,252})")
_INET_ATON = re.compile(r"(0[xX][0-9a-fA-F]*|[0-9]+)(\.(0[xX][0-9a-fA-F]*|[0-9]+)){0,3}")
_DEVICE = re.compile(r"[A-Za-z0-9_.@:-]{1,15}")
UINT32_MAX = 2**32 - 1


def single(tokens: tuple[Token, ...]) -> Token:
    """The one value token of an assignment; more is an error."""
    if len(tokens) > 1:
        raise Invalid(tokens[1], f"unexpected '{tokens[1].text}' after the value "
                      "(expected end of line; quote a value that contains blanks)")
    return tokens[0]


#: digits an integer may have (far beyond any keyword's range; Python refuses > 4300)
MAX_DIGITS = 40


def parse_int(token: Token, ctx: Context) -> int:
    """An integer the way C's strtol(s, 0) reads it (0x10 hex, 010 octal)."""
    text = token.text
    if not _STRTOL.fullmatch(text):
        raise Invalid(token, f"expected an integer, found '{text}'")
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-")
    hexadecimal = digits[:2].lower() == "0x"
    significant = (digits[2:] if hexadecimal else digits).lstrip("0") or "0"
    if len(significant) > MAX_DIGITS:  # no keyword takes one; int() would refuse it
        raise Invalid(token, f"integer too large ({len(digits)} digits)")
    if hexadecimal:
        return sign * int(significant, 16)
    if len(digits) > 1 and digits.startswith("0"):
        value = int(significant, 8)
        ctx.warn(token, f"'{text}' is octal (a leading 0 means base 8), read as {sign * value}")
        return sign * value
    return sign * int(digits)


def integer(lo: int, hi: int) -> Converter:
    """An integer in ``lo..hi``."""
    def convert(tokens: tuple[Token, ...], ctx: Context) -> int:
        token = tokens[0]
        value = parse_int(token, ctx)
        if not lo <= value <= hi:
            raise Invalid(token, f"expected an integer {lo}..{hi}, found {token.text}")
        return value
    return convert


def boolean(tokens: tuple[Token, ...], ctx: Context) -> bool:
    """0 or 1 (any strtol spelling of them)."""
    token = tokens[0]
    try:
        value = parse_int(token, ctx)
    except Invalid:
        value = None
    if value not in (0, 1):
        raise Invalid(token, f"expected 0 or 1, found '{token.text}'")
    return value == 1


def flag(tokens: tuple[Token, ...], ctx: Context) -> bool:
    """An integer where any nonzero value means on (``monitor_links``)."""
    return parse_int(tokens[0], ctx) != 0


def seconds(minimum: float, inclusive: bool) -> Converter:
    """A duration in seconds: an integer as Piranha read it (strtol base 0: ``017`` is 15, with
    a warning); fractions are an extension (``keepalive = 0.5``)."""
    def convert(tokens: tuple[Token, ...], ctx: Context) -> float:
        token = tokens[0]
        if _STRTOL.fullmatch(token.text):
            value = float(parse_int(token, ctx))
        elif _DECIMAL.fullmatch(token.text):
            value = float(token.text)
        else:
            raise Invalid(token, f"expected a number of seconds, found '{token.text}'")
        low_ok = value >= minimum if inclusive else value > minimum
        if not (low_ok and math.isfinite(value) and value <= 10**7):
            bound = f">= {minimum:g}" if inclusive else f"> {minimum:g}"
            raise Invalid(token, f"expected a number of seconds {bound}, found {token.text}")
        return value
    return convert


def choice(options: tuple[str, ...]) -> Converter:
    """One word out of ``options`` (case-sensitive, as in Piranha)."""
    def convert(tokens: tuple[Token, ...], ctx: Context) -> str:
        token = tokens[0]
        if token.text not in options:
            raise Invalid(token, f"expected one of {', '.join(options)}; found '{token.text}'")
        return token.text
    return convert


def text(tokens: tuple[Token, ...], ctx: Context) -> str:
    """Free text (quoted when it has blanks); no NUL or control characters but tab."""
    token = tokens[0]
    for offset, char in enumerate(token.text):
        where = Token(token.text, token.line, token.column + offset + (1 if token.quote else 0))
        if "\udc80" <= char <= "\udcff":
            raise Invalid(where, f"expected UTF-8 text, found the byte 0x{ord(char) - 0xdc00:02x}")
        if (ord(char) < 32 and char != "\t") or char == "\x7f":
            raise Invalid(where, f"expected printable text, found the control character "
                          f"{char!r}")
    return token.text


def word(tokens: tuple[Token, ...], ctx: Context) -> str:
    """Non-empty text."""
    value = text(tokens, ctx)
    if not value.strip():
        raise Invalid(tokens[0], "expected a value, found empty text")
    return value


#: the shortest heartbeat_key accepted (the HMAC key; see piranha.heartbeat.packet)
MIN_HEARTBEAT_KEY = 16


def heartbeat_key(tokens: tuple[Token, ...], ctx: Context) -> str:
    """The shared secret of authenticated heartbeats: at least 16 characters, no blanks."""
    value = word(tokens, ctx)
    if len(value.encode()) < MIN_HEARTBEAT_KEY:
        raise Invalid(tokens[0], f"expected a key of at least {MIN_HEARTBEAT_KEY} characters, "
                      f"found {len(value.encode())}")
    return value


def command(tokens: tuple[Token, ...], ctx: Context) -> str:
    """A command line run without a shell, split on blanks: its program must be absolute."""
    value = word(tokens, ctx)
    program = value.split()[0]
    if not program.startswith("/"):
        raise Invalid(tokens[0], f"expected a command starting with an absolute path, "
                      f"found '{program}'")
    return value


def device(tokens: tuple[Token, ...], ctx: Context) -> str:
    """A network interface name or alias (``eth0``, ``eth0:1``), at most 15 characters."""
    token = tokens[0]
    if not _DEVICE.fullmatch(token.text):
        raise Invalid(token, f"expected an interface name such as eth0:1 (at most 15 letters, "
                      f"digits or _.@:-), found '{token.text}'")
    return token.text


def _literal_ip(token: Token, ctx: Context) -> IPAddress | None:
    candidate = token.text
    if candidate.startswith("[") and candidate.endswith("]"):
        candidate = candidate[1:-1]
    if "%" not in candidate:
        try:
            return ip_address(candidate)
        except ValueError:
            pass
    if _INET_ATON.fullmatch(token.text):
        try:
            value = IPv4Address(socket.inet_aton(token.text))
        except OSError:
            return None
        ctx.warn(token, f"'{token.text}' is not a plain dotted quad; read as {value} "
                 "(inet_aton)")
        return value
    return None


def ip(tokens: tuple[Token, ...], ctx: Context) -> IPAddress:
    """A literal IPv4 or IPv6 address (no host names)."""
    token = tokens[0]
    value = _literal_ip(token, ctx)
    if value is None:
        hint = " (host names are not allowed here)" if _HOSTNAME.fullmatch(token.text) \
            and not _INET_ATON.fullmatch(token.text) else ""
        raise Invalid(token, f"expected an IP address{hint}, found '{token.text}'")
    return value


def host(tokens: tuple[Token, ...], ctx: Context) -> IPAddress:
    """An IP address or a host name, resolved now."""
    token = tokens[0]
    value = _literal_ip(token, ctx)
    if value is not None:
        return value
    if not _HOSTNAME.fullmatch(token.text):
        raise Invalid(token, f"expected an IP address or host name, found '{token.text}'")
    try:
        return ctx.resolver.host(token.text)
    except LookupError:
        raise Invalid(token, f"expected an IP address or host name, found '{token.text}' "
                      "which does not resolve") from None


def interface_address(tokens: tuple[Token, ...], ctx: Context) -> InterfaceAddress:
    """``IP DEV``: an address and the interface (alias) it goes on."""
    if len(tokens) < 2:
        ip_token = tokens[0]
        end = Token("", ip_token.line, ip_token.column + len(ip_token.text)
                    + (2 if ip_token.quote else 0))
        raise Invalid(end, f"expected a device after the IP (e.g. '{ip_token.text} "
                      "eth0:1'), found end of line")
    if len(tokens) > 2:
        raise Invalid(tokens[2], f"unexpected '{tokens[2].text}' after 'IP DEVICE' "
                      "(expected end of line)")
    return InterfaceAddress(host(tokens[:1], ctx), device(tokens[1:], ctx))


def mask(tokens: tuple[Token, ...], ctx: Context) -> int | None:
    """A netmask as a prefix length: dotted (255.255.255.0) or, as an extension, 24 or /24.

    0 and 0.0.0.0 mean "not set", as in Piranha.
    """
    token = tokens[0]
    digits = token.text[1:] if token.text.startswith("/") else token.text
    prefix: int | None = None
    if digits.isdigit() and len(digits) <= 3 and int(digits) <= 128:
        prefix = int(digits)
    elif re.fullmatch(r"[0-9]{1,3}(\.[0-9]{1,3}){3}", token.text):
        try:
            bits = int(IPv4Address(token.text))
        except ValueError:
            bits = -1
        ones = bin(bits).count("1") if bits >= 0 else -1
        if ones >= 0 and bits == (UINT32_MAX ^ ((1 << (32 - ones)) - 1)):
            prefix = ones
    if prefix is None:
        raise Invalid(token, "expected a netmask with contiguous bits (255.255.255.0) or a "
                      f"prefix length such as 24, found '{token.text}'")
    return prefix or None


def port(tokens: tuple[Token, ...], ctx: Context) -> int:
    """A port number 0..65535."""
    return int(integer(0, 65535)(tokens, ctx))


def service_port(tokens: tuple[Token, ...], ctx: Context) -> int:
    """A port number or a TCP service name from /etc/services (``http``)."""
    token = tokens[0]
    if _STRTOL.fullmatch(token.text):
        return port(tokens, ctx)
    if re.fullmatch(r"[A-Za-z][A-Za-z0-9_.+-]*", token.text):
        try:
            return ctx.resolver.service(token.text)
        except LookupError:
            raise Invalid(token, f"expected a port number or a service name, found "
                          f"'{token.text}', which is not a known TCP service") from None
    raise Invalid(token, f"expected a port number or a service name, found '{token.text}'")


def heartbeat_port(tokens: tuple[Token, ...], ctx: Context) -> int:
    """A UDP port pulse can bind: 1..65535 or a service name."""
    value = service_port(tokens, ctx)
    if value == 0:
        raise Invalid(tokens[0], f"expected a port number 1..65535, found {tokens[0].text}")
    return value


#: lvsd_metrics's address when only a port is given: never the LAN unless asked
METRICS_ADDRESS = IPv4Address("127.0.0.1")


def listen(tokens: tuple[Token, ...], ctx: Context) -> Listen:
    """``[ADDRESS:]PORT`` of an HTTP endpoint: an address literal (IPv6 in brackets) and a
    port 1..65535; a bare port listens on 127.0.0.1."""
    token = tokens[0]
    text = token.text
    address: IPAddress | None = METRICS_ADDRESS
    host, sep, port = text.rpartition(":")
    if sep:
        if host.startswith("[") and host.endswith("]"):
            address = _ipv6(host[1:-1])
        else:
            try:
                address = IPv4Address(host)
            except ValueError:
                address = None
    if address is None or not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= 65535:
        raise Invalid(token, "expected [ADDRESS:]PORT, an address literal and a port "
                      f"1..65535 (9747, 127.0.0.1:9747 or [::1]:9747), found '{text}'")
    return Listen(address, int(port))


def _ipv6(text: str) -> IPv6Address | None:
    try:
        return IPv6Address(text)
    except ValueError:
        return None


def legacy_list(tokens: tuple[Token, ...], ctx: Context) -> tuple[str, ...]:
    """``[ a b ... ]`` (the legacy ``dirs`` key)."""
    if tokens[0].text != "[":
        raise Invalid(tokens[0], f"expected '[' to start a list, found '{tokens[0].text}'")
    if tokens[-1].text != "]" or len(tokens) < 2:
        raise Invalid(tokens[-1], f"expected ']' to end the list, found '{tokens[-1].text}'")
    return tuple(t.text for t in tokens[1:-1])


def is_unset(value: IPAddress | None) -> bool:
    """True for no address or 0.0.0.0 / ::, which Piranha uses for "not set"."""
    return value is None or value == IPv4Address(0) or value == IPv6Address(0)
