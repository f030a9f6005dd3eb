"""What each ipvsadm option does to the command being built (``parse_options``'s big switch).

One small handler per option tag. Each records the option (``multiple '%s' options
specified`` on a repeat, checked before the value as in ipvsadm), then parses its value with
ipvsadm's exact error text. ``-6`` and ``--sort`` record nothing, as in ipvsadm.
"""

from __future__ import annotations

from collections.abc import Callable

from piranha.ipvsadm import values as V
from piranha.ipvsadm.commands import (
    MASQ,
    MAX_TIMEOUT,
    MAX_WEIGHT,
    PERSISTENT_TIMEOUT,
    PROTO_OF_TAG,
    ROUTE,
    TUNNEL,
    Command,
    fail,
)
from piranha.ipvsadm.values import Endpoint, Lookup

Handler = Callable[[Command, "str | None", Lookup], None]


def _record(ce: Command, option: str) -> None:
    """ipvsadm's ``set_option``."""
    if option in ce.options:
        raise fail(f"multiple '{option}' options specified")
    ce.options.add(option)


def parse_timeout(text: str | None, lo: int) -> int:
    """ipvsadm's ``parse_timeout``."""
    if text is None:
        return PERSISTENT_TIMEOUT
    value = V.string_to_number(text, lo, MAX_TIMEOUT)
    if value is None:
        raise fail(f"invalid timeout value `{text}' specified")
    return value


def _number(text: str | None, lo: int, hi: int, message: str) -> int:
    """``string_to_number`` or fail with ``message``."""
    value = V.string_to_number(text or "", lo, hi)
    if value is None:
        raise fail(message)
    return value


def _service(tag: str) -> Handler:
    """-t / -u / --sctp-service."""

    def handle(ce: Command, value: str | None, resolver: Lookup) -> None:
        _record(ce, "service-address")
        ce.svc.protocol = PROTO_OF_TAG[tag]
        if not V.parse_service(value or "", ce.svc.protocol, ce.svc, resolver) & V.SERVICE_ADDR:
            raise fail("illegal virtual server address[:port] specified")

    return handle


def _fwmark(ce: Command, value: str | None, resolver: Lookup) -> None:
    """-f."""
    _record(ce, "service-address")
    ce.svc.af, ce.svc.protocol = V.AF_INET, 6
    mark = V.parse_fwmark(value or "")
    if mark is None:
        raise fail(f"invalid fwmark value `{value}' specified")
    ce.svc.fwmark = mark


def _scheduler(ce: Command, value: str | None, resolver: Lookup) -> None:
    """-s (cut to 15 characters)."""
    _record(ce, "scheduler")
    ce.svc.sched = (value or "")[:15]


def _persistent(ce: Command, value: str | None, resolver: Lookup) -> None:
    """-p [timeout]."""
    _record(ce, "persistent")
    ce.svc.flags |= 0x1
    ce.svc.timeout = parse_timeout(value, 1)


def _netmask(ce: Command, value: str | None, resolver: Lookup) -> None:
    """-M: a dotted mask, or an IPv6 prefix when the service is already IPv6."""
    _record(ce, "netmask")
    if ce.svc.af != V.AF_INET6:
        mask = V.parse_netmask(value or "", resolver)
        if mask is None:
            raise fail("illegal virtual server persistent mask specified")
        ce.svc.netmask = mask
    else:
        ce.svc.netmask = V.atoi(value or "")
        if not 1 <= ce.svc.netmask <= 128:
            raise fail("illegal ipv6 netmask specified")


def _real_server(ce: Command, value: str | None, resolver: Lookup) -> None:
    """-r: parsed into a copy of the service, so family and port default to the service's."""
    _record(ce, "real-server")
    svc = ce.svc
    into = Endpoint(svc.af, svc.addr, svc.port, svc.netmask)
    parsed = V.parse_service(value or "", svc.protocol, into, resolver)
    ce.dest.af, ce.dest.addr, ce.dest.port = into.af, into.addr, into.port
    if not parsed & V.SERVICE_ADDR:
        raise fail("illegal real server address[:port] specified")
    if parsed == V.SERVICE_ADDR:
        ce.dest.port = svc.port


def _forward(method: int) -> Handler:
    """-g / -i / -m."""

    def handle(ce: Command, value: str | None, resolver: Lookup) -> None:
        _record(ce, "forwarding-method")
        ce.dest.fwd = method

    return handle


def _weight(ce: Command, value: str | None, resolver: Lookup) -> None:
    """-w."""
    _record(ce, "weight")
    ce.dest.weight = _number(value, 0, MAX_WEIGHT, "illegal weight specified")


def _u_threshold(ce: Command, value: str | None, resolver: Lookup) -> None:
    """-x."""
    _record(ce, "u-threshold")
    ce.dest.u_threshold = _number(value, 0, V.INT_MAX, "illegal u_threshold specified")


def _l_threshold(ce: Command, value: str | None, resolver: Lookup) -> None:
    """-y."""
    _record(ce, "l-threshold")
    ce.dest.l_threshold = _number(value, 0, V.INT_MAX, "illegal l_threshold specified")


def _flag(option: str) -> Handler:
    """An option that only records itself (-n, -c, --stats, ...)."""

    def handle(ce: Command, value: str | None, resolver: Lookup) -> None:
        _record(ce, option)

    return handle


def _mcast_interface(ce: Command, value: str | None, resolver: Lookup) -> None:
    """--mcast-interface (cut to 15 characters)."""
    _record(ce, "mcast-interface")
    ce.daemon.mcast_ifn = (value or "")[:15]


def _syncid(ce: Command, value: str | None, resolver: Lookup) -> None:
    """--syncid."""
    _record(ce, "syncid")
    ce.daemon.syncid = _number(value, 0, 255, "illegal syncid specified")


def _ipv6(ce: Command, value: str | None, resolver: Lookup) -> None:
    """-6: only after -f."""
    if not ce.svc.fwmark:
        raise fail("-6 used before -f\n")
    ce.svc.af, ce.svc.netmask = V.AF_INET6, 128


def _ops(ce: Command, value: str | None, resolver: Lookup) -> None:
    """-o."""
    _record(ce, "ops")
    ce.svc.flags |= 0x4


def _pe(ce: Command, value: str | None, resolver: Lookup) -> None:
    """--pe (a 16-byte field)."""
    _record(ce, "pe")
    ce.svc.pe = (value or "")[:16]


def _sched_flags(ce: Command, value: str | None, resolver: Lookup) -> None:
    """-b: kept (cut to 127 characters) and parsed after every option is known."""
    _record(ce, "sched-flags")
    ce.sched_flags_arg = (value or "")[:127]


def _mcast_group(ce: Command, value: str | None, resolver: Lookup) -> None:
    """--mcast-group: an IPv4 or IPv6 multicast address."""
    _record(ce, "mcast-group")
    text = value or ""
    v6 = ":" in text
    addr = V.inet_pton6(text) if v6 else V.inet_pton4(text)
    if addr is None or not addr.is_multicast:
        raise fail(f"invalid IPv{6 if v6 else 4} mcast-group `{text}'")
    ce.daemon.mcast_group = addr


def _mcast_port(ce: Command, value: str | None, resolver: Lookup) -> None:
    """--mcast-port."""
    _record(ce, "mcast-port")
    ce.daemon.mcast_port = _number(value, 1, 65535, "illegal mcast-port specified")


def _mcast_ttl(ce: Command, value: str | None, resolver: Lookup) -> None:
    """--mcast-ttl."""
    _record(ce, "mcast-ttl")
    ce.daemon.mcast_ttl = _number(value, 1, 255, "illegal mcast-ttl specified")


def _sync_maxlen(ce: Command, value: str | None, resolver: Lookup) -> None:
    """--sync-maxlen."""
    _record(ce, "sync-maxlen")
    ce.daemon.sync_maxlen = _number(value, 1, 65535 - 20 - 8, "illegal sync-maxlen specified")


def _tun_type(ce: Command, value: str | None, resolver: Lookup) -> None:
    """--tun-type."""
    _record(ce, "tun-type")
    kind = V.TUN_TYPES.get(value or "")
    if kind is None:
        raise fail("illegal tunnel type specified")
    ce.dest.tun_type = kind


def _tun_port(ce: Command, value: str | None, resolver: Lookup) -> None:
    """--tun-port."""
    _record(ce, "tun-port")
    ce.dest.tun_port = _number(value, 1, 65535, "illegal tunnel port specified")


def _tun_csum(option: str, bit: int) -> Handler:
    """--tun-nocsum / --tun-csum / --tun-remcsum."""

    def handle(ce: Command, value: str | None, resolver: Lookup) -> None:
        _record(ce, option)
        ce.dest.tun_flags |= bit

    return handle


def _nothing(ce: Command, value: str | None, resolver: Lookup) -> None:
    """--sort: accepted, does nothing."""


HANDLERS: dict[str, Handler] = {
    "t": _service("t"), "u": _service("u"), "sctp": _service("sctp"), "f": _fwmark,
    "s": _scheduler, "p": _persistent, "M": _netmask, "r": _real_server,
    "i": _forward(TUNNEL), "g": _forward(ROUTE), "m": _forward(MASQ),
    "w": _weight, "x": _u_threshold, "y": _l_threshold,
    "c": _flag("connection"), "n": _flag("numeric"), "mcast-interface": _mcast_interface,
    "syncid": _syncid, "timeout": _flag("timeout"), "daemon": _flag("daemon"),
    "stats": _flag("stats"), "rate": _flag("rate"), "thresholds": _flag("thresholds"),
    "persistent-conn": _flag("persistent-conn"), "nosort": _flag("nosort"), "sort": _nothing,
    "exact": _flag("exact"), "6": _ipv6, "ops": _ops, "pe": _pe, "b": _sched_flags,
    "mcast-group": _mcast_group, "mcast-port": _mcast_port, "mcast-ttl": _mcast_ttl,
    "sync-maxlen": _sync_maxlen, "tun-info": _flag("tun-info"), "tun-type": _tun_type,
    "tun-port": _tun_port, "tun-nocsum": _tun_csum("tun-nocsum", 0),
    "tun-csum": _tun_csum("tun-csum", 1), "tun-remcsum": _tun_csum("tun-remcsum", 2),
    "json": _flag("json"),
}


def apply_option(ce: Command, tag: str, value: str | None, resolver: Lookup) -> None:
    """Apply one option (by popt tag) to ``ce``."""
    HANDLERS[tag](ce, value, resolver)
