"""ipvsadm 1.31's command line: popt table, command x option legality table, argv -> Command.

:func:`parse` follows ``parse_options`` + ``process_options`` of ipvsadm.c step by step, because
the *order* of checks decides which message a wrong command line gets:

1. the first option must be a command (else ``Try ...``, exit 255); ``-h``/``-v`` end here;
2. every further option in argv order: ``multiple '%s' options specified``, then its value;
   a command letter here is ``invalid option `%s'`` (so a second command never reaches
   ``multiple commands specified``, which 1.31 cannot print);
3. a popt error after the command: ``"%s: %s"`` (bad word, popt text), exit 255;
4. ``--set`` values, ``unexpected argument %s``, ``-b`` flags (checked before the table, so
   ``-L -b x`` complains about the flag, not about ``-b``);
5. the legality table (:data:`LEGALITY`), then per-command semantic checks.

Every refusal raises :class:`Exit` with ipvsadm's text and status. The result is a
:class:`Command`: what to do, with ``svc``/``dest``/``daemon`` filled like ipvsadm's
``ipvs_command_entry``; :mod:`piranha.ipvsadm.ops` turns it into backend operations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from piranha.ipvsadm import values as V
from piranha.ipvsadm.commands import ROUTE, TUNNEL, Command, Exit, PoptFailure, fail, tryhelp
from piranha.ipvsadm.optvals import apply_option, parse_timeout
from piranha.ipvsadm.popt import (
    NONE,
    OPTIONAL,
    STRING,
    OptionTable,
    OptSpec,
    PoptError,
    Scanner,
)
from piranha.ipvsadm.usage import VERSION
from piranha.ipvsadm.values import Lookup

#: internal command names, in ipvsadm's CMD_* order
COMMANDS = ("add-service", "edit-service", "delete-service", "flush", "list", "add-server",
            "delete-server", "edit-server", "set", "start-daemon", "stop-daemon", "restore",
            "save", "zero")
#: internal option names, in ipvsadm's OPTC_* order; ``json`` is piranha's addition
OPTIONS = ("numeric", "connection", "service-address", "scheduler", "persistent", "netmask",
           "real-server", "forwarding-method", "weight", "u-threshold", "l-threshold",
           "mcast-interface", "timeout", "daemon", "stats", "rate", "thresholds",
           "persistent-conn", "nosort", "syncid", "exact", "ops", "pe", "sched-flags",
           "mcast-group", "mcast-port", "mcast-ttl", "sync-maxlen", "tun-info", "tun-type",
           "tun-port", "tun-nocsum", "tun-csum", "tun-remcsum", "json")

#: ipvsadm's ``commands_v_options`` restated per command: option -> rule, where '+' is
#: compulsory, ' ' optional and '1' "at most one of the '1' options"; an option not listed
#: is illegal ('x'). Checked in OPTIONS order, so the first violation wins as in ipvsadm.
_SVC_OPTS = {"service-address": "+", "scheduler": " ", "persistent": " ", "netmask": " ",
             "ops": " ", "pe": " ", "sched-flags": " "}
_DEST_OPTS = {"service-address": "+", "real-server": "+", "forwarding-method": " ",
              "weight": " ", "u-threshold": " ", "l-threshold": " ", "tun-type": " ",
              "tun-port": " ", "tun-nocsum": " ", "tun-csum": " ", "tun-remcsum": " "}
LEGALITY: dict[str, dict[str, str]] = {
    "add-service": _SVC_OPTS,
    "edit-service": _SVC_OPTS,
    "delete-service": {"service-address": "+"},
    "flush": {},
    "list": {"numeric": " ", "connection": "1", "service-address": "1", "timeout": "1",
             "daemon": "1", "stats": " ", "rate": " ", "thresholds": " ",
             "persistent-conn": " ", "nosort": " ", "syncid": " ", "exact": " ",
             "tun-info": " ", "json": " "},
    "add-server": _DEST_OPTS,
    "delete-server": {"service-address": "+", "real-server": "+"},
    "edit-server": _DEST_OPTS,
    "set": {},
    "start-daemon": {"mcast-interface": " ", "syncid": " ", "mcast-group": " ",
                     "mcast-port": " ", "mcast-ttl": " ", "sync-maxlen": " "},
    "stop-daemon": {"syncid": " "},
    "restore": {},
    "save": {"numeric": " "},
    "zero": {"service-address": " "},
}
TUNNEL_OPTIONS = ("tun-port", "tun-nocsum", "tun-csum", "tun-remcsum")
#: ``tunnel_types_v_options``, in the same form
TUNNEL_LEGALITY: dict[str, dict[str, str]] = {
    "ipip": {},
    "gue": {"tun-port": "+", "tun-nocsum": "1", "tun-csum": "1", "tun-remcsum": "1"},
    "gre": {"tun-nocsum": "1", "tun-csum": "1"},
}

#: popt table of ipvsadm 1.31: (long name, letter, argument kind); the tag popt returns is
#: the letter, else the long name (``--sctp-service`` -> ``sctp``). Order matters for the
#: duplicate ``--list``, which is ``-L``.
_POPT_ROWS = [
    ("add-service", "A", NONE), ("edit-service", "E", NONE), ("delete-service", "D", NONE),
    ("clear", "C", NONE), ("list", "L", NONE), ("list", "l", NONE), ("zero", "Z", NONE),
    ("add-server", "a", NONE), ("edit-server", "e", NONE), ("delete-server", "d", NONE),
    ("set", None, NONE), ("help", "h", NONE), ("version", "v", NONE), ("restore", "R", NONE),
    ("save", "S", NONE), ("start-daemon", None, STRING), ("stop-daemon", None, STRING),
    ("tcp-service", "t", STRING), ("udp-service", "u", STRING), ("sctp-service", None, STRING),
    ("fwmark-service", "f", STRING), ("scheduler", "s", STRING), ("persistent", "p", OPTIONAL),
    ("netmask", "M", STRING), ("real-server", "r", STRING), ("masquerading", "m", NONE),
    ("ipip", "i", NONE), ("gatewaying", "g", NONE), ("weight", "w", STRING),
    ("u-threshold", "x", STRING), ("l-threshold", "y", STRING), ("numeric", "n", NONE),
    ("connection", "c", NONE), ("mcast-interface", None, STRING), ("syncid", None, STRING),
    ("timeout", None, NONE), ("daemon", None, NONE), ("stats", None, NONE),
    ("rate", None, NONE), ("thresholds", None, NONE), ("persistent-conn", None, NONE),
    ("nosort", None, NONE), ("sort", None, NONE), ("exact", "X", NONE), ("ipv6", "6", NONE),
    ("ops", "o", NONE), ("pe", None, STRING), ("sched-flags", "b", STRING),
    ("mcast-group", None, STRING), ("mcast-port", None, STRING), ("mcast-ttl", None, STRING),
    ("sync-maxlen", None, STRING), ("tun-info", None, NONE), ("tun-type", None, STRING),
    ("tun-port", None, STRING), ("tun-nocsum", None, NONE), ("tun-csum", None, NONE),
    ("tun-remcsum", None, NONE), ("json", None, NONE),
]
_TAG_OVERRIDES = {"sctp-service": "sctp", "exact": "exact", "ipv6": "6", "ops": "ops"}
POPT_TABLE = OptionTable([
    OptSpec(long, short, kind, _TAG_OVERRIDES.get(long) or short or long)
    for long, short, kind in _POPT_ROWS
])
#: first option (popt long name or letter) -> command
_COMMAND_OF = {"A": "add-service", "E": "edit-service", "D": "delete-service", "C": "flush",
               "L": "list", "l": "list", "Z": "zero", "a": "add-server", "e": "edit-server",
               "d": "delete-server", "set": "set", "R": "restore", "S": "save",
               "start-daemon": "start-daemon", "stop-daemon": "stop-daemon",
               "h": "help", "v": "version"}
#: listing-style switches: option tag -> format flag name
FORMAT_OPTIONS = ("numeric", "stats", "rate", "thresholds", "persistent-conn", "nosort",
                  "exact", "tun-info", "json")


def parse(argv: Sequence[str], resolver: Lookup, env: Mapping[str, str] | None = None) -> Command:
    """argv (argv[0] included) -> Command, or raise :class:`Exit` exactly as ipvsadm would."""
    scanner = Scanner(argv, POPT_TABLE, env)
    ce = Command()
    _first(scanner, ce, argv[0])
    _options(scanner, ce, resolver)
    _trailing(scanner, ce)
    check(ce)
    return ce


def _first(scanner: Scanner, ce: Command, prog: str) -> None:
    """The first option: it must be a command."""
    try:
        got = scanner.get()
    except PoptError:
        raise tryhelp(prog) from None
    if got is None or got[0] not in _COMMAND_OF:
        raise tryhelp(prog)
    cmd = _COMMAND_OF[got[0]]
    if cmd == "help":
        from piranha.ipvsadm.usage import usage

        raise Exit(0, stdout=usage(prog))
    if cmd == "version":
        raise Exit(0, stdout=VERSION + "\n")
    ce.cmd = cmd
    if cmd in ("start-daemon", "stop-daemon"):
        state = {"master": 1, "backup": 2}.get(got[1] or "")
        if state is None:
            raise fail("illegal start-daemon parameter specified" if cmd == "start-daemon"
                       else "illegal start_daemon specified")
        ce.daemon.state = state


def _options(scanner: Scanner, ce: Command, resolver: Lookup) -> None:
    """Every option after the command, in argv order."""
    while True:
        try:
            got = scanner.get()
        except PoptError as exc:
            raise PoptFailure(255, f"{scanner.bad_option()}: {exc}\n") from None
        if got is None:
            return
        tag, value = got
        if tag in _COMMAND_OF:
            raise fail(f"invalid option `{scanner.bad_option()}'")
        apply_option(ce, tag, value, resolver)


def _trailing(scanner: Scanner, ce: Command) -> None:
    """--set's three values, left-over arguments, then -b's flags."""
    if ce.cmd == "set":
        values = [scanner.leftover() for _ in range(3)]
        if None in values:
            raise fail("--set option requires 3 timeout values")
        ce.timeouts = tuple(parse_timeout(v, 0) for v in values)  # type: ignore[assignment]
    extra = scanner.leftover()
    if extra is not None:
        raise fail(f"unexpected argument {extra}")
    if ce.sched_flags_arg:
        ce.svc.flags &= ~(V.SCHED1 | V.SCHED2 | V.SCHED3)
        bits, error = V.parse_sched_flags(ce.svc.sched, ce.sched_flags_arg)
        if error:
            raise fail(error)
        ce.svc.flags |= bits


def check(ce: Command) -> None:
    """The legality table, then ipvsadm's per-command semantic checks."""
    _table_check(ce.cmd, ce.options, LEGALITY[ce.cmd], OPTIONS, "command")
    if ce.cmd in ("add-service", "edit-service"):
        svc = ce.svc
        if not svc.fwmark and not svc.port and not svc.flags & 0x1:
            raise fail("Zero port specified for non-persistent service")
        if svc.flags & 0x4 and not svc.fwmark and svc.protocol != 17:
            raise fail("One-Packet Scheduling is only for UDP virtual services")
        svc.sched = svc.sched or "wlc"
    if ce.cmd == "start-daemon" and not ce.daemon.mcast_ifn:
        ce.daemon.mcast_ifn = "eth0"
    if ce.cmd in ("add-server", "edit-server"):
        _dest_check(ce)
    if ce.cmd == "list" and _list_conflict(ce.options):
        raise fail("options conflicts in the list command")


def _dest_check(ce: Command) -> None:
    """Dest port forcing, address family and tunnel option checks for -a/-e."""
    fwd = ce.dest.fwd
    if not ce.svc.fwmark and fwd in (TUNNEL, ROUTE):
        ce.dest.port = ce.svc.port
    if ce.dest.af != ce.svc.af and fwd != TUNNEL:
        raise fail("Different address family is allowed only for tunneling servers")
    if ce.options & {"tun-type", *TUNNEL_OPTIONS} and fwd != TUNNEL:
        raise fail("Tunnel options conflict with forward method")
    tun_name = ("ipip", "gue", "gre")[ce.dest.tun_type]
    _table_check(tun_name, ce.options, TUNNEL_LEGALITY[tun_name], TUNNEL_OPTIONS, "tunnel type")


def _table_check(name: str, given: set[str], row: dict[str, str], columns: Sequence[str],
                 what: str) -> None:
    """ipvsadm's ``generic_opt_check``/``tunnel_opt_check`` over one table row."""
    if given.issubset(row) and _fine(given, row):
        return
    first_one: str | None = None
    for option in columns:
        rule = row.get(option, "x")
        if option not in given:
            if rule == "+":
                raise fail(f"You need to supply the '{option}' option for the '{name}' {what}")
            continue
        if rule == "x":
            raise fail(f"Illegal '{option}' option with the '{name}' {what}")
        if rule == "1":
            if first_one is not None:
                raise fail(f"The option '{option}' conflicts with the '{first_one}' option "
                           f"in the '{name}' {what}")
            first_one = option


def _fine(given: set[str], row: dict[str, str]) -> bool:
    """Quick accept: nothing compulsory missing and at most one '1' option given."""
    required = sum(1 for rule in row.values() if rule == "+")
    return (sum(1 for o in given if row[o] == "+") == required
            and sum(1 for o in given if row[o] == "1") <= 1)


def _list_conflict(options: set[str]) -> bool:
    """The extra list rule: -c/--timeout/--daemon vs --stats/--rate/--thresholds, etc."""
    kinds = options & {"connection", "timeout", "daemon"}
    layouts = options & {"stats", "rate", "thresholds"}
    return bool((kinds and layouts)
                or (options & {"timeout", "daemon"} and "persistent-conn" in options))
