"""The screens' fields (tables, as Piranha's pages had them), and the mapping both ways.

A :class:`Form` lists its fields; each field writes one lvs.cf keyword, or one token of a
keyword that takes several (``address = IP DEVICE``). Pure functions:

* :func:`values`: a section's current value of every field (strings, as the page shows them);
* :func:`fill`: put submitted values into a section; returns the few problems the loader
  cannot see (a line break in a value, one half of ``IP DEVICE`` missing, an empty name);
* :func:`locate`: the loader's errors, each put next to its field or, when it is about
  something else (another block, the whole file), in a general list.

A blank field removes the keyword, so the parser's default applies; checkboxes write 0 or 1.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from piranha.errors import ConfigError
from piranha.gui.document import LineInfo, Section, token
from piranha.model import SCHEDULERS

Errors = dict[str, list[str]]
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
#: line numbers of the candidate text mean nothing to the person at the form
_LINE_REF = re.compile(r" \(first at line \d+\)")
#: the field name that stands for the block's name (its header line)
NAME = "name"


@dataclass(frozen=True)
class Field:
    """One input of a screen."""

    name: str
    label: str
    key: str  # lvs.cf keyword; "" for the block's name
    kind: str = "text"  # text, number, check, select, radio
    part: int = 0  # token index for keywords with several values
    choices: tuple[tuple[str, str], ...] = ()  # (value, label) for select/radio
    help: str = ""
    datalist: str = ""  # id of a <datalist> of suggestions (netmasks)
    strip: bool = True  # False: leading/trailing blanks matter (send/expect strings)


@dataclass(frozen=True)
class Form:
    """A screen's fields and what they mean."""

    name: str
    fields: tuple[Field, ...]

    def owned_keys(self) -> list[str]:
        """The lvs.cf keywords this form owns, in field order."""
        return list(dict.fromkeys(f.key for f in self.fields if f.key))

    def parts(self, key: str) -> list[Field]:
        """The fields of one keyword, ordered by token index."""
        return sorted((f for f in self.fields if f.key == key), key=lambda f: f.part)


SCHEDULER_LABELS = {
    "rr": "Round robin", "wrr": "Weighted round robin", "lc": "Least-connection",
    "wlc": "Weighted least-connections", "lblc": "Locality-Based Least-Connection",
    "lblcr": "Locality-Based Least-Connection with Replication", "dh": "Destination Hash",
    "sh": "Source Hash", "sed": "Shortest Expected Delay", "nq": "Never Queue",
    "fo": "Weighted Failover", "ovf": "Weighted Overflow", "mh": "Maglev Hashing",
}
#: the suggestions of the netmask fields (Piranha's menu: /32 to /16)
MASKS = (
    "255.255.255.255", "255.255.255.254", "255.255.255.252", "255.255.255.248",
    "255.255.255.240", "255.255.255.224", "255.255.255.192", "255.255.255.128",
    "255.255.255.0", "255.255.254.0", "255.255.252.0", "255.255.248.0", "255.255.240.0",
    "255.255.224.0", "255.255.192.0", "255.255.128.0", "255.255.0.0")
_SECONDS = "seconds"

GLOBAL = Form("global", (
    Field("primary", "Primary server public IP", "primary"),
    Field("primary_private", "Primary server private IP", "primary_private",
          help="optional second heartbeat path; blank = the public addresses"),
    Field("network", "Use network type", "network", "radio",
          choices=(("nat", "NAT"), ("direct", "Direct Routing"), ("tunnel", "Tunneling"))),
    Field("nat_router_ip", "NAT Router IP", "nat_router", part=0,
          help="NAT only: the real servers' gateway, raised on the active director"),
    Field("nat_router_device", "NAT Router device", "nat_router", part=1,
          help="an alias such as eth1:1"),
    Field("nat_nmask", "NAT Router netmask", "nat_nmask", datalist="masks"),
    Field("tcp_timeout", "TCP timeout", "tcp_timeout", "number", help="seconds; 0 = kernel's"),
    Field("tcpfin_timeout", "TCP FIN timeout", "tcpfin_timeout", "number",
          help="seconds; 0 = kernel's"),
    Field("udp_timeout", "UDP timeout", "udp_timeout", "number", help="seconds; 0 = kernel's"),
))

REDUNDANCY = Form("redundancy", (
    Field("backup_active", "Redundant server enabled", "backup_active", "check"),
    Field("backup", "Redundant server public IP", "backup"),
    Field("backup_private", "Redundant server private IP", "backup_private",
          help="only with a primary private IP"),
    Field("keepalive", "Heartbeat interval", "keepalive", "number", help=_SECONDS),
    Field("deadtime", "Assume dead after", "deadtime", "number", help=_SECONDS),
    Field("heartbeat_port", "Heartbeat runs on port", "heartbeat_port", "number",
          help="UDP, default 539"),
    Field("monitor_links", "Monitor NIC links for failures", "monitor_links", "check"),
    Field("syncdaemon", "Use the connection sync daemon", "syncdaemon", "check"),
    Field("syncd_iface", "Sync daemon interface", "syncd_iface"),
    Field("syncd_id", "Sync daemon id", "syncd_id", "number", help="0-255"),
))

VIRTUAL = Form("virtual", (
    Field(NAME, "Name", ""),
    Field("active", "Active", "active", "check",
          help="only active virtual servers are installed (after Apply)"),
    Field("port", "Application port", "port", "number"),
    Field("protocol", "Protocol", "protocol", "select",
          choices=(("tcp", "tcp"), ("udp", "udp"))),
    Field("vip", "Virtual IP Address", "address", part=0),
    Field("device", "Device", "address", part=1, help="an alias such as eth0:1"),
    Field("vip_nmask", "Virtual IP Network Mask", "vip_nmask", datalist="masks",
          help="blank = unused"),
    Field("sorry_server", "Sorry Server", "sorry_server",
          help="used when no real server is up"),
    Field("fwmark", "Firewall Mark", "fwmark", "number", help="0 or blank = none"),
    Field("reentry", "Re-entry Time", "reentry", "number", help=_SECONDS),
    Field("timeout", "Service Timeout", "timeout", "number",
          help="seconds: probe interval and probe timeout"),
    Field("quiesce_server", "Quiesce server", "quiesce_server", "check",
          help="a failed server keeps its entry with weight 0"),
    Field("load_monitor", "Load monitoring tool", "load_monitor", "select",
          choices=(("", "none"), ("rup", "rup"), ("ruptime", "ruptime"), ("uptime", "uptime"))),
    Field("scheduler", "Scheduling", "scheduler", "select",
          choices=tuple((s, f"{s}: {SCHEDULER_LABELS[s]}") for s in SCHEDULERS)),
    Field("persistent", "Persistence", "persistent", "number", help="seconds; blank = none"),
    Field("pmask", "Persistence Network Mask", "pmask", datalist="masks",
          help="blank = unused"),
))

SCRIPTS = Form("scripts", (
    Field("send_program", "Sending Program", "send_program", strip=False,
          help="takes priority over Send; %h = real server IP, %p = its port"),
    Field("send", "Send", "send", strip=False, help=r"e.g. GET / HTTP/1.0\r\n\r\n"),
    Field("expect", "Expect", "expect", strip=False, help="e.g. HTTP"),
    Field("use_regex", "Treat expect string as a regular expression", "use_regex", "check"),
))

SERVER = Form("server", (
    Field(NAME, "Name", ""),
    Field("active", "Active", "active", "check"),
    Field("address", "Address", "address"),
    Field("port", "Port", "port", "number", help="blank = the virtual's port"),
    Field("weight", "Weight", "weight", "number"),
))


def values(form: Form, section: Section) -> dict[str, str]:
    """What each field of ``form`` shows for ``section``."""
    out: dict[str, str] = {}
    for f in form.fields:
        if not f.key:
            out[f.name] = section.name
            continue
        current = section.get(f.key) or ()
        text = current[f.part] if len(current) > f.part else ""
        if f.kind == "check":
            text = "on" if text not in ("", "0") else ""
        out[f.name] = text
    return out


def fill(form: Form, section: Section, data: Mapping[str, str]) -> Errors:
    """Put the submitted ``data`` into ``section``; the problems the loader cannot report."""
    errors: Errors = {}
    for f in form.fields:
        raw = data.get(f.name, "")
        problem = _unusable(raw)
        if problem:
            errors.setdefault(f.name, []).append(problem)
    if NAME in {f.name for f in form.fields} and NAME not in errors:
        name = data.get(NAME, "").strip()
        if not name:
            errors[NAME] = ["a name is required"]
        else:
            section.name = name
    for key in form.owned_keys():
        _fill_key(form.parts(key), section, data, errors)
    return errors


def _fill_key(fields: list[Field], section: Section, data: Mapping[str, str],
              errors: Errors) -> None:
    if any(f.name in errors for f in fields):
        return  # keep the old value; the field shows its own error
    parts = [_clean(f, data) for f in fields]
    if not any(parts):
        section.set(fields[0].key, None)
        return
    missing = [f for f, text in zip(fields, parts, strict=True) if not text]
    for f in missing:
        others = " and ".join(o.label for o in fields if o is not f)
        errors.setdefault(f.name, []).append(f"needed together with {others}")
    if not missing:
        section.set(fields[0].key, tuple(parts))


def _clean(f: Field, data: Mapping[str, str]) -> str:
    if f.kind == "check":
        return "1" if data.get(f.name) else "0"
    raw = data.get(f.name, "")
    return raw.strip() if f.strip else raw


def _unusable(raw: str) -> str | None:
    if _CONTROL.search(raw):
        return "expected one line of printable text"
    try:
        token(raw)
    except ValueError:
        return "cannot hold both a \" and a ' each followed by a blank"
    return None


def locate(problems: Iterable[ConfigError], where: Mapping[int, LineInfo], section: Section,
           form: Form) -> tuple[Errors, list[str]]:
    """Each problem next to its field of ``form`` (editing ``section``), or in a general list."""
    fields: Errors = {}
    general: list[str] = []
    for problem in problems:
        problem = replace(problem, message=_LINE_REF.sub("", problem.message))
        info = where.get(problem.line)
        target = _field_for(problem, info, section, form)
        if target is not None:
            fields.setdefault(target, []).append(problem.message)
        elif info is not None and info.section is not section:
            general.append(f"{info.section.describe()}: {problem.message}")
        else:
            general.append(problem.message)
    return fields, general


def _field_for(problem: ConfigError, info: LineInfo | None, section: Section,
               form: Form) -> str | None:
    if info is None or info.section is not section:
        return None
    if info.key is None:  # the block's header: about the block as a whole
        if "has no address" in problem.message and form.parts("address"):
            return form.parts("address")[0].name
        if "defined twice" in problem.message and NAME in {f.name for f in form.fields}:
            return NAME
        return None
    parts = form.parts(info.key)
    if not parts:
        return None
    index = min(info.part_at(problem.column), len(parts) - 1)
    return parts[index].name
