"""The lvs.cf keyword tables: for each block kind, every keyword with its converter.

The builder enforces these tables: a key not listed for its block is an error. Defaults live in
``piranha.model`` (the dataclass defaults are Piranha 0.8.6's parser defaults).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from piranha.config import values as v
from piranha.model import SCHEDULERS


class Use(enum.Enum):
    """What the builder does with a keyword's value."""

    #: stored in the model
    STORE = "store"
    #: legacy key Piranha parses and ignores: checked, then dropped with a warning
    LEGACY = "legacy"
    #: written by Piranha's GUI but rejected by its daemons: accepted and ignored with a warning
    GUI_ONLY = "gui-only"
    #: meaningless in this block kind (a virtual-only key in a failover block): warning
    NO_EFFECT = "no-effect"


@dataclass(frozen=True)
class Key:
    """One keyword: how to convert its value(s) and what to do with it."""

    convert: v.Converter
    arity: str = "one"  # "one", "pair" (IP DEV), "list" ([ a b ])
    use: Use = Use.STORE


HOST = Key(v.host)
BOOL = Key(v.boolean)
TEXT = Key(v.text)
WORD = Key(v.word)
INT32 = Key(v.integer(0, 2**31 - 1))

GLOBAL: dict[str, Key] = {
    "serial_no": Key(v.integer(-(2**63), 2**63 - 1)),
    "primary": HOST,
    "primary_private": HOST,
    "primary_shared": WORD,
    "service": Key(v.choice(("lvs", "fos"))),
    "rsh_command": WORD,
    "backup_active": BOOL,
    "backup": HOST,
    "backup_private": HOST,
    "backup_shared": WORD,
    "heartbeat": BOOL,
    "heartbeat_port": Key(v.heartbeat_port),
    "heartbeat_key": Key(v.heartbeat_key),  # extension: authenticated heartbeats
    "keepalive": Key(v.seconds(0, inclusive=False)),
    "deadtime": Key(v.seconds(0, inclusive=False)),
    "network": Key(v.choice(("nat", "direct", "tunnel"))),
    "nat_router": Key(v.interface_address, arity="pair"),
    "nat_nmask": Key(v.mask),
    "reservation_conflict_action": Key(v.choice(("nothing", "preempt"))),
    "debug_level": WORD,
    "ipvsadm": WORD,
    "sync": Key(v.boolean, use=Use.LEGACY),
    "active_cmd": Key(v.command),
    "inactive_cmd": Key(v.command),
    "monitor_links": Key(v.flag),
    "syncdaemon": BOOL,
    "syncd_iface": Key(v.device),
    "syncd_id": Key(v.integer(0, 255)),
    "tcp_timeout": INT32,
    "tcpfin_timeout": INT32,
    "udp_timeout": INT32,
    "hard_shutdown": BOOL,
    "lvsd_metrics": Key(v.listen),  # extension: lvsd's Prometheus endpoint
    "pulse_metrics": Key(v.listen),  # extension: pulse's Prometheus endpoint
}

#: keys shared by virtual and failover blocks (Piranha parses both with one table)
_SERVICE: dict[str, Key] = {
    "active": BOOL,
    "address": Key(v.interface_address, arity="pair"),
    "vip_nmask": Key(v.mask),
    "port": Key(v.service_port),
    "protocol": Key(v.choice(("tcp", "udp"))),
    "send": TEXT,
    "expect": TEXT,
    "send_program": WORD,
    "timeout": Key(v.seconds(0, inclusive=False)),
    "master": Key(v.host, use=Use.LEGACY),
    "dirs": Key(v.legacy_list, arity="list", use=Use.LEGACY),
    "expect_program": Key(v.text, use=Use.GUI_ONLY),
    "deadtime": Key(v.seconds(0, inclusive=False), use=Use.GUI_ONLY),
}

_LVS_ONLY: dict[str, Key] = {
    "sorry_server": Key(v.ip),
    "fwmark": Key(v.integer(0, v.UINT32_MAX)),
    "scheduler": Key(v.choice(SCHEDULERS)),
    "persistent": Key(v.integer(-(2**31), 2**31 - 1)),
    "pmask": Key(v.mask),
    "use_regex": BOOL,
    "load_monitor": WORD,
    "reentry": Key(v.seconds(0, inclusive=True)),
    "quiesce_server": BOOL,
    "client_monitor": WORD,
}

_FOS_ONLY: dict[str, Key] = {
    "start_cmd": Key(v.command),
    "stop_cmd": Key(v.command),
}

VIRTUAL: dict[str, Key] = {
    **_SERVICE,
    **_LVS_ONLY,
    **{name: Key(key.convert, key.arity, Use.NO_EFFECT) for name, key in _FOS_ONLY.items()},
}

FAILOVER: dict[str, Key] = {
    **_SERVICE,
    **_FOS_ONLY,
    **{name: Key(key.convert, key.arity, Use.NO_EFFECT) for name, key in _LVS_ONLY.items()},
    "heartbeat": Key(v.boolean, use=Use.GUI_ONLY),
}

SERVER: dict[str, Key] = {
    "address": HOST,
    "active": BOOL,
    "weight": Key(v.integer(0, 65535)),
    "port": Key(v.port),
    "nmask": Key(v.mask, use=Use.GUI_ONLY),
}

TABLES: dict[str | None, dict[str, Key]] = {
    None: GLOBAL,
    "virtual": VIRTUAL,
    "failover": FAILOVER,
    "server": SERVER,
}
