"""CONTROL/MONITORING: what pulse, lvsd and the kernel say, merged into rows for the page.

Three sources, each optional: pulse's status file (role and state), lvsd's status snapshot
(virtual services, real servers, health, weights) and the live IPVS table (weights,
connections, rates). :func:`gather` reads them (I/O, the table source is injected: netlink
in the daemon, a fake in tests); :func:`build` is pure. Without the live table the rows come
from the snapshot alone and a note says so; services in the kernel that lvsd does not own
are listed too (ipvsadm-made entries), marked as such.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from piranha.errors import PiranhaError
from piranha.ipvs.types import Dest, Proto, Service, ServiceKey, Table
from piranha.lvsd import status as lvsd_status
from piranha.text import ago, hostport

Alive = Callable[[int], bool]
_PROTO = {Proto.TCP: "TCP", Proto.UDP: "UDP", Proto.SCTP: "SCTP"}


@dataclass(frozen=True)
class DaemonView:
    """One daemon's line: running or not, and what it says about itself."""

    name: str
    running: bool
    summary: str
    details: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rates:
    """Counters of a service or real server (None: unknown): connections scheduled since the
    entry was made, current active and inactive connections, and the kernel's rates."""

    total: int | None = None
    active: int | None = None
    inactive: int | None = None
    cps: int | None = None
    inpps: int | None = None
    outpps: int | None = None
    inbps: int | None = None
    outbps: int | None = None


@dataclass(frozen=True)
class ServerRow:
    """A real server: lvs.cf's name, health from lvsd, the rest from the kernel."""

    name: str
    address: str
    state: str  # UP, DOWN, or "" when lvsd does not know it
    weight: str
    rates: Rates = Rates()
    since: float | None = None
    reason: str = ""
    note: str = ""


@dataclass(frozen=True)
class ServiceRow:
    """A virtual service and its real servers."""

    name: str  # "" for a service lvsd does not own
    service: str
    scheduler: str
    persistent: int
    in_table: bool
    rates: Rates = Rates()
    servers: tuple[ServerRow, ...] = ()


@dataclass(frozen=True)
class Monitor:
    """Everything the CONTROL/MONITORING page shows."""

    pulse: DaemonView
    lvsd: DaemonView
    services: tuple[ServiceRow, ...] = ()
    notes: tuple[str, ...] = ()
    #: the live IPVS table was read
    live: bool = False


@dataclass(frozen=True)
class Inputs:
    """The raw sources (None when missing) and why a missing one is missing."""

    pulse: dict[str, Any] | None
    snapshot: dict[str, Any] | None
    table: Table | None
    snapshot_error: str = ""
    table_error: str = ""


def gather(pulse_path: str, snapshot_path: str,
           table: Callable[[], Table] | None) -> Inputs:
    """Read the three sources; a missing or unreadable one is None with a reason."""
    try:
        with open(pulse_path, encoding="utf-8") as f:
            pulse: dict[str, Any] | None = json.load(f)
        if not isinstance(pulse, dict):
            pulse = None
    except (OSError, ValueError):
        pulse = None
    snapshot, snapshot_error = None, ""
    try:
        snapshot = lvsd_status.read(snapshot_path)
    except (OSError, ValueError) as exc:
        snapshot_error = str(getattr(exc, "strerror", None) or exc)
    live, table_error = None, "no table source configured"
    if table is not None:
        try:
            live, table_error = table(), ""
        except (PiranhaError, OSError) as exc:  # the kernel's table: show the snapshot only
            table_error = str(exc) or type(exc).__name__
    return Inputs(pulse, snapshot, live, snapshot_error, table_error)


def service_label(key: ServiceKey) -> str:
    """``TCP 10.0.0.80:80``, ``UDP [2001:db8::1]:53`` or ``FWM 7``."""
    if key.fwmark:
        return f"FWM {key.fwmark}" + (" IPv6" if key.family == 10 else "")
    return f"{_PROTO.get(key.protocol, str(int(key.protocol)))} {hostport(key.addr, key.port)}"


def _snapshot_label(service: str) -> str:
    """lvsd's ``-t 10.0.0.80:80`` as :func:`service_label` writes it."""
    flag, _, rest = service.partition(" ")
    kind = {"-t": "TCP", "-u": "UDP", "--sctp-service": "SCTP", "-f": "FWM"}.get(flag, flag)
    return f"{kind} {rest.replace(' -6', ' IPv6')}"


def _rates(entry: Service | Dest | None, active: int | None = None,
           inactive: int | None = None) -> Rates:
    if isinstance(entry, Dest):
        active, inactive = entry.active_conns, entry.inact_conns
    if entry is None:
        return Rates(None, active, inactive)
    s = entry.stats
    return Rates(s.conns, active, inactive, s.cps, s.inpps, s.outpps, s.inbps, s.outbps)


def build(inputs: Inputs, alive: Alive, now: float) -> Monitor:
    """The page's view of ``inputs`` (``now``: wall-clock seconds)."""
    notes: list[str] = []
    live: dict[str, tuple[Service, tuple[Dest, ...]]] = {}
    if inputs.table is not None:
        live = {service_label(s.key): (s, inputs.table.dests.get(s.key, ()))
                for s in inputs.table.services}
    else:
        notes.append(f"The live IPVS table is not available ({inputs.table_error}): weights "
                     "and connection counts come from lvsd's status snapshot; rates are not "
                     "shown.")
    snap = inputs.snapshot
    lvsd = _lvsd_view(snap, inputs.snapshot_error, alive, now)
    services: list[ServiceRow] = []
    for vs in (snap or {}).get("virtuals", []):
        label = _snapshot_label(vs["service"])
        services.append(_managed(vs, label, live.pop(label, None), inputs.table is not None))
    for label, (svc, dests) in live.items():
        rows = tuple(_foreign_server(d) for d in dests)
        services.append(ServiceRow("", label, svc.scheduler, svc.timeout if svc.persistent
                                   else 0, True, _sum(rows, svc), rows))
    if snap is not None and not lvsd.running:
        notes.append("lvsd is not running: health and weights below are from its last "
                     "snapshot and may be out of date.")
    return Monitor(_pulse_view(inputs.pulse, alive, now), lvsd, tuple(services), tuple(notes),
                   inputs.table is not None)


def _managed(vs: dict[str, Any], label: str, live: tuple[Service, tuple[Dest, ...]] | None,
             have_table: bool) -> ServiceRow:
    dests = list(live[1]) if live is not None else []
    rows = []
    for rs in vs["servers"]:
        dest = _take(dests, rs["address"])
        drain = rs.get("drain")
        if dest is not None:
            weight, rates, note = str(dest.weight), _rates(dest), ""
        elif have_table:
            weight, rates, note = "-", Rates(), "not in the table"
        else:  # the snapshot alone: its weight, and active + inactive connections
            weight = "-" if rs["weight"] is None else str(rs["weight"])
            rates, note = Rates(active=rs.get("conns")), ""
        rows.append(ServerRow(rs["name"], rs["address"], rs["state"], weight, rates,
                              rs.get("since"), rs.get("reason", ""),
                              drain["state"] if drain else note))
    sorry = vs.get("sorry_server")
    if sorry is not None:
        dest = _take(dests, sorry["address"])
        if dest is not None or (sorry["in_table"] and not have_table):
            rows.append(ServerRow("sorry server", sorry["address"], "",
                                  str(dest.weight) if dest else "1", _rates(dest),
                                  note="sorry server"))
    rows += [_foreign_server(d) for d in dests]
    svc = live[0] if live is not None else None
    return ServiceRow(vs["name"], label, vs["scheduler"], vs["persistent"], live is not None,
                      _sum(rows, svc), tuple(rows))


def _take(dests: list[Dest], address: str) -> Dest | None:
    """Remove and return the entry of ``address`` (``ip:port``, or a lone ``ip`` match)."""
    for d in dests:
        if hostport(d.addr, d.port) == address:
            dests.remove(d)
            return d
    ip = address.rsplit(":", 1)[0].strip("[]")
    same = [d for d in dests if str(d.addr) == ip]
    if len(same) == 1:  # direct routing/tunnel: the kernel keeps the virtual's port
        dests.remove(same[0])
        return same[0]
    return None


def _foreign_server(d: Dest) -> ServerRow:
    return ServerRow("", hostport(d.addr, d.port), "", str(d.weight), _rates(d),
                     note="not in lvs.cf")


def _sum(rows: tuple[ServerRow, ...] | list[ServerRow], svc: Service | None) -> Rates:
    known = [r.rates.active for r in rows if r.rates.active is not None]
    inactive = [r.rates.inactive for r in rows if r.rates.inactive is not None]
    return _rates(svc, sum(known) if known else None, sum(inactive) if inactive else None)


def _pulse_view(status: dict[str, Any] | None, alive: Alive, now: float) -> DaemonView:
    pid = status.get("pid") if status else None
    if status is None or not isinstance(pid, int) or not alive(pid):
        return DaemonView("pulse", False, "pulse not running")
    state, role = status.get("state", "?"), status.get("role", "?")
    details = [f"pid {pid}"]
    if isinstance(status.get("since"), int | float):
        details.append(f"{state} since {clock(status['since'], now)} "
                       f"({ago(now - status['since'])} ago)")
    if status.get("vips"):
        details.append("VIPs: " + ", ".join(map(str, status["vips"])))
    details.append(f"partner: {status.get('partner') or 'none heard'}")
    details += [f"fault: {fault}" for fault in status.get("faults") or ()]
    return DaemonView("pulse", True, f"pulse: {state} ({role})", tuple(details))


def _lvsd_view(snap: dict[str, Any] | None, error: str, alive: Alive,
               now: float) -> DaemonView:
    if snap is None:
        return DaemonView("lvsd", False, "lvsd not running", (f"no status snapshot: {error}",))
    age = f"snapshot {ago(now - snap['written'])} old"
    if not alive(snap["pid"]):
        return DaemonView("lvsd", False, "lvsd not running",
                          (f"last snapshot written {clock(snap['written'], now)} by pid "
                           f"{snap['pid']}",))
    return DaemonView("lvsd", True, "lvsd running", (
        f"pid {snap['pid']}", f"config {snap['config']}", age,
        f"{snap['ops_applied']} kernel operations since start"))


def clock(at: float, now: float) -> str:
    """Local time of day of ``at``, with the date when it is not ``now``'s day."""
    stamp, today = time.localtime(at), time.localtime(now)
    same_day = stamp[:3] == today[:3]
    return time.strftime("%H:%M:%S" if same_day else "%Y-%m-%d %H:%M:%S", stamp)


def human(n: int | None) -> str:
    """A rate or count for a narrow column: ``-``, ``9500``, ``12.3K``, ``4.1M``."""
    if n is None:
        return "-"
    for unit, size in (("G", 10**9), ("M", 10**6), ("K", 10**4)):
        if n >= size:
            return f"{n / (size if unit != 'K' else 1000):.1f}{unit}"
    return str(n)
