"""Render a ``Cluster`` as canonical lvs.cf, in the layout Piranha's GUI wrote.

Globals in the GUI's order, then failover blocks, then virtual blocks; ``key = value`` with
single blanks; 5-space indent inside a block, 9 inside a server. ``send``, ``expect`` and
``send_program`` are always double-quoted, like the GUI did. Values at their parser default are
left out except the ones the GUI always wrote. ``loads(render(c)).cluster == c`` holds.
"""

from __future__ import annotations

import re
from decimal import Decimal
from ipaddress import IPv4Address
from typing import Any

from piranha.model import (
    Cluster,
    FailoverService,
    InterfaceAddress,
    IPAddress,
    RealServer,
    VirtualServer,
)

_PLAIN = re.compile(r"[^\s\"'#=][^\s]*")

#: globals in the GUI's order; True = written even at its default value
GLOBAL_ORDER = (
    ("serial_no", True), ("primary", True), ("primary_private", False),
    ("primary_shared", False), ("service", True), ("rsh_command", False),
    ("backup_active", True), ("backup", True), ("backup_private", False),
    ("backup_shared", False), ("heartbeat", True), ("heartbeat_port", True),
    ("heartbeat_key", False), ("keepalive", True), ("deadtime", True), ("network", True),
    ("nat_router", False),
    ("nat_nmask", False), ("reservation_conflict_action", False), ("debug_level", True),
    ("ipvsadm", False), ("active_cmd", False), ("inactive_cmd", False),
    ("monitor_links", False), ("syncdaemon", False), ("syncd_iface", False),
    ("syncd_id", False), ("tcp_timeout", False), ("tcpfin_timeout", False),
    ("udp_timeout", False), ("hard_shutdown", False), ("lvsd_metrics", False),
    ("pulse_metrics", False),
)
VIRTUAL_ORDER = (
    "active", "address", "sorry_server", "vip_nmask", "fwmark", "port", "persistent", "pmask",
    "send", "expect", "use_regex", "send_program", "load_monitor", "scheduler", "protocol",
    "timeout", "reentry", "quiesce_server", "client_monitor",
)
FAILOVER_ORDER = (
    "active", "address", "vip_nmask", "port", "send", "expect", "send_program", "protocol",
    "timeout", "start_cmd", "stop_cmd",
)
SERVER_ORDER = ("address", "active", "port", "weight")
ALWAYS_IN_BLOCK = {"active", "address", "port", "scheduler", "protocol", "timeout", "reentry",
                   "quiesce_server",
                   "weight"}
QUOTED = {"send", "expect", "send_program", "active_cmd", "inactive_cmd", "start_cmd",
          "stop_cmd"}
MASKS = {"vip_nmask", "pmask", "nat_nmask"}


def render(cluster: Cluster) -> str:
    """The canonical lvs.cf text of ``cluster``."""
    lines: list[str] = []
    defaults = Cluster()
    same_private = (cluster.primary_private == cluster.primary
                    and cluster.backup_private == cluster.backup)
    for key, always in GLOBAL_ORDER:
        value = getattr(cluster, key)
        if key in ("primary_private", "backup_private") and same_private:
            continue
        if value is None or (not always and value == getattr(defaults, key)):
            continue
        lines.append(f"{key} = {_format(key, value, _family(cluster.nat_router))}")
    for fos in cluster.failovers:
        lines.append(f"failover {_name(fos.name)} {{")
        lines += _block(fos, FAILOVER_ORDER, FailoverService(fos.name), "     ")
        lines.append("}")
    for vs in cluster.virtuals:
        lines.append(f"virtual {_name(vs.name)} {{")
        lines += _block(vs, VIRTUAL_ORDER, VirtualServer(vs.name), "     ")
        for rs in vs.servers:
            lines.append(f"     server {_name(rs.name)} {{")
            lines += _block(rs, SERVER_ORDER, RealServer(rs.name), "         ")
            lines.append("     }")
        lines.append("}")
    return "\n".join(lines) + "\n"


def _block(obj: Any, order: tuple[str, ...], defaults: Any, indent: str) -> list[str]:
    family = _family(getattr(obj, "address", None))
    out = []
    for key in order:
        value = getattr(obj, key)
        if value is None or (key not in ALWAYS_IN_BLOCK and value == getattr(defaults, key)):
            continue
        out.append(f"{indent}{key} = {_format(key, value, family)}")
    return out


def _family(address: InterfaceAddress | IPAddress | None) -> int:
    if isinstance(address, InterfaceAddress):
        address = address.ip
    return 6 if address is not None and not isinstance(address, IPv4Address) else 4


def _format(key: str, value: Any, family: int) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if key in MASKS:
        return str(IPv4Address((2**32 - 1) ^ ((1 << (32 - value)) - 1))) \
            if family == 4 and value <= 32 else str(value)
    if isinstance(value, float):
        return format(Decimal(repr(value)), "f") \
            if value != int(value) else str(int(value))
    if isinstance(value, InterfaceAddress):
        return f"{value.ip} {value.device}"
    if isinstance(value, str):
        return quote(value) if key in QUOTED or not _PLAIN.fullmatch(value) else value
    if hasattr(value, "value"):  # enums
        return str(value.value)
    return str(value)


def _name(name: str) -> str:
    return name if _PLAIN.fullmatch(name) and name not in ("{", "}") else quote(name)


def quote(value: str) -> str:
    """``value`` in quotes the lexer reads back exactly; ValueError if no quote can."""
    for q in "\"'":
        if not re.search(re.escape(q) + r"[ \t]", value):
            return f"{q}{value}{q}"
    raise ValueError(f"cannot quote {value!r}: it has both quote characters before blanks")
