"""The nanny -> lvsd report codec: one line of JSON per transition (pure, no I/O).

Piranha's nanny changed IPVS itself and lvsd learnt about it only by grepping nanny's stdout
for ``[ active ]``/``[inactive]``. Here nanny reports and lvsd applies, so the report carries
everything lvsd needs: which entry (:class:`DestId`), UP or DOWN, the weight the entry should
have (None = absent; 0 = quiesced), why, and when (nanny's monotonic clock). Wire format,
version 1, keys sorted, ASCII only (so a reason can never break the line)::

    {"at":12.5,"dest":{"fwmark":0,"proto":"tcp","rip":"10.0.0.1","rport":80,
     "vip":"10.0.0.80","vport":80},"reason":"...","state":"UP","v":1,"weight":3}

A line is at most :data:`MAX_LINE` bytes with its newline (PIPE_BUF): writes that small are
atomic, so several nannies may share one pipe. :func:`encode` shortens a long reason to fit.
:func:`decode` checks every field and raises :class:`ReportError` naming the one at fault.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Any

from piranha.errors import PiranhaError
from piranha.health.stats import BUCKETS, REASONS, CheckStats
from piranha.health.tracker import Transition
from piranha.health.types import IPAddress, ServerState, Target
from piranha.model import RealServer, ServiceProtocol, VirtualServer
from piranha.text import JsonError, strict_json

VERSION = 1
#: PIPE_BUF on Linux: the largest write to a pipe that is never interleaved with others
MAX_LINE = 4096
MAX_WEIGHT = 65535
_KEYS = {"v", "dest", "state", "weight", "reason", "at"}
_DEST_KEYS = {"vip", "vport", "proto", "fwmark", "rip", "rport"}
_STATS_KEYS = {"v", "kind", "dest", "checks", "failures", "duration", "duration_sum",
               "lateness", "lateness_sum", "last_ok", "at"}
#: the largest count a stats report may carry (exact in a JSON number)
MAX_COUNT = 2**53


class ReportError(PiranhaError):
    """A line that is not a valid health report; ``line`` is what was received."""

    def __init__(self, message: str, line: str | bytes) -> None:
        self.message = message
        self.line = line
        super().__init__(f"bad health report: {message}")


@dataclass(frozen=True)
class DestId:
    """Which IPVS entry a report is about: the virtual service and the real server."""

    vip: IPAddress | None
    vport: int
    protocol: ServiceProtocol
    rip: IPAddress
    rport: int
    #: non-zero: the service is the firewall mark, not vip:vport/protocol
    fwmark: int = 0

    @classmethod
    def for_server(cls, vs: VirtualServer, rs: RealServer) -> DestId:
        """The identity of ``rs`` inside ``vs`` (``rs.address`` must be set)."""
        if rs.address is None:
            raise ValueError(f"real server {rs.name} has no address")
        vip = vs.address.ip if vs.address is not None else None
        return cls(vip, vs.port, vs.protocol, rs.address, rs.port, vs.fwmark)

    def __hash__(self) -> int:
        # DestIds key every book lvsd keeps; hashing two addresses anew each time costs ~2 us
        cached: int | None = self.__dict__.get("_hash")
        if cached is None:
            cached = hash((self.vip, self.vport, self.protocol, self.rip, self.rport,
                           self.fwmark))
            object.__setattr__(self, "_hash", cached)
        return cached

    def __getstate__(self) -> dict[str, object]:
        """Pickled without the cached hash: another process hashes strings differently."""
        return {k: v for k, v in self.__dict__.items() if k != "_hash"}

    def __str__(self) -> str:
        real = _hostport(self.rip, self.rport)
        if self.fwmark:
            return f"fwmark {self.fwmark} -> {real}"
        vip = "?" if self.vip is None else _hostport(self.vip, self.vport)
        return f"{self.protocol.value} {vip} -> {real}"


@dataclass(frozen=True)
class HealthReport:
    """One transition of one real server, as nanny tells lvsd."""

    dest: DestId
    state: ServerState
    #: the weight the entry should have; None = the entry should be absent
    weight: int | None
    reason: str
    at: float

    @classmethod
    def from_transition(cls, dest: DestId, transition: Transition) -> HealthReport:
        """The report of a tracker transition."""
        return cls(dest, transition.new, transition.weight, transition.reason, transition.at)


@dataclass(frozen=True)
class StatsReport:
    """A nanny's cumulative check counts (:mod:`piranha.health.stats`), sent every
    ``STATS_EVERY`` seconds; wire form: ``"kind": "stats"`` plus the counts."""

    dest: DestId
    stats: CheckStats
    at: float


def encode_stats(report: StatsReport) -> str:
    """One line carrying ``report`` (a few hundred bytes: always under MAX_LINE)."""
    st = report.stats
    body = {"v": VERSION, "kind": "stats", "dest": _dest_dict(report.dest),
            "checks": st.checks, "failures": list(st.failures), "duration": list(st.duration),
            "duration_sum": st.duration_sum, "lateness": list(st.lateness),
            "lateness_sum": st.lateness_sum, "last_ok": st.last_ok, "at": report.at}
    return json.dumps(body, sort_keys=True, ensure_ascii=True, allow_nan=False,
                      separators=(",", ":")) + "\n"


def decode_message(line: str | bytes) -> HealthReport | StatsReport:
    """A transition report or a stats report; ReportError if malformed."""
    fields = _load(line)
    try:
        return _build_stats(fields) if fields.get("kind") == "stats" else _build(fields)
    except _Bad as bad:
        raise ReportError(str(bad), line) from None


def _build_stats(data: dict[str, Any]) -> StatsReport:
    _keys(data, _STATS_KEYS, "stats")
    if type(data["v"]) is not int or data["v"] != VERSION:
        raise _Bad(f"v: unsupported version {data['v']!r} (expected {VERSION})")
    last_ok = None if data["last_ok"] is None else _time(data["last_ok"], "last_ok")
    stats = CheckStats(
        _int(data["checks"], "checks", 0, MAX_COUNT),
        _counts(data["failures"], "failures", len(REASONS)),
        _counts(data["duration"], "duration", len(BUCKETS) + 1),
        _seconds(data["duration_sum"], "duration_sum"),
        _counts(data["lateness"], "lateness", len(BUCKETS) + 1),
        _seconds(data["lateness_sum"], "lateness_sum"), last_ok)
    return StatsReport(_dest(data["dest"]), stats, _time(data["at"]))


def _counts(value: Any, name: str, length: int) -> tuple[int, ...]:
    if not isinstance(value, list) or len(value) != length:
        raise _Bad(f"{name}: expected a list of {length} counts, found {value!r}")
    return tuple(_int(v, name, 0, MAX_COUNT) for v in value)


def _seconds(value: Any, name: str) -> float:
    seconds = _time(value, name)
    if seconds < 0:
        raise _Bad(f"{name}: expected seconds >= 0, found {value!r}")
    return seconds


def encode(report: HealthReport) -> str:
    """One line (newline included, at most MAX_LINE bytes) carrying ``report``."""
    line = _dump(report, report.reason)
    if len(line) <= MAX_LINE:
        return line
    # escaping makes a character cost 1 to 12 bytes: search the longest prefix that fits
    low, high = 0, len(report.reason)
    while low < high:
        mid = (low + high + 1) // 2
        if len(_dump(report, report.reason[:mid] + "...")) <= MAX_LINE:
            low = mid
        else:
            high = mid - 1
    return _dump(report, report.reason[:low] + "...")


def decode(line: str | bytes) -> HealthReport:
    """The report in ``line`` (one trailing newline allowed); ReportError if malformed."""
    fields = _load(line)
    try:
        return _build(fields)
    except _Bad as bad:
        raise ReportError(str(bad), line) from None


def _dump(report: HealthReport, reason: str) -> str:
    body = {
        "v": VERSION,
        "dest": _dest_dict(report.dest),
        "state": report.state.value, "weight": report.weight,
        "reason": reason, "at": report.at,
    }
    text = json.dumps(body, sort_keys=True, ensure_ascii=True, allow_nan=False,
                      separators=(",", ":"))
    return text + "\n"


def _dest_dict(dest: DestId) -> dict[str, Any]:
    return {"vip": None if dest.vip is None else str(dest.vip), "vport": dest.vport,
            "proto": dest.protocol.value, "fwmark": dest.fwmark, "rip": str(dest.rip),
            "rport": dest.rport}


class _Bad(PiranhaError):
    """A field-level problem; decode turns it into a ReportError."""


def _load(line: str | bytes) -> dict[str, Any]:
    """The JSON object of ``line``, or ReportError for anything that is not one."""
    if len(line) > MAX_LINE:
        raise ReportError(f"line is {len(line)} bytes long, the limit is {MAX_LINE}", line)
    try:
        text = line.decode("ascii") if isinstance(line, bytes) else line
    except UnicodeDecodeError:
        raise ReportError("line is not ASCII", line) from None
    text = text[:-1] if text.endswith("\n") else text
    if "\n" in text or "\r" in text:
        raise ReportError("more than one line", line)
    try:
        data = strict_json(text)
    except JsonError as exc:
        raise ReportError(f"not JSON: {exc}", line) from None
    if not isinstance(data, dict):
        raise ReportError(f"expected a JSON object, found {type(data).__name__}", line)
    return data


def _build(data: dict[str, Any]) -> HealthReport:
    _keys(data, _KEYS, "report")
    if type(data["v"]) is not int or data["v"] != VERSION:
        raise _Bad(f"v: unsupported version {data['v']!r} (expected {VERSION})")
    dest = _dest(data["dest"])
    state = _state(data["state"])
    weight = _weight(data["weight"], state)
    if not isinstance(data["reason"], str):
        raise _Bad(f"reason: expected a string, found {data['reason']!r}")
    return HealthReport(dest, state, weight, data["reason"], _time(data["at"]))


def _dest(value: Any) -> DestId:
    if not isinstance(value, dict):
        raise _Bad(f"dest: expected an object, found {value!r}")
    _keys(value, _DEST_KEYS, "dest")
    fwmark = _int(value["fwmark"], "dest.fwmark", 0, 0xFFFFFFFF)
    vip = None if value["vip"] is None and fwmark else _ip(value["vip"], "dest.vip")
    return DestId(vip, _int(value["vport"], "dest.vport", 0, 65535),
                  _protocol(value["proto"]), _ip(value["rip"], "dest.rip"),
                  _int(value["rport"], "dest.rport", 0, 65535), fwmark)


def _keys(data: dict[str, Any], wanted: set[str], where: str) -> None:
    missing, extra = wanted - data.keys(), data.keys() - wanted
    if missing:
        raise _Bad(f"{where}: missing {', '.join(sorted(missing))}")
    if extra:
        raise _Bad(f"{where}: unknown {', '.join(sorted(extra))}")


def _int(value: Any, name: str, low: int, high: int) -> int:
    # bool is an int in Python, but true/false in a port field is a malformed report
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _Bad(f"{name}: expected an integer {low}..{high}, found {value!r}")
    return value


def _ip(value: Any, name: str) -> IPAddress:
    if isinstance(value, str):
        try:
            return ip_address(value)
        except ValueError:
            pass
    raise _Bad(f"{name}: expected an IP address, found {value!r}")


def _protocol(value: Any) -> ServiceProtocol:
    if value not in ("tcp", "udp"):
        raise _Bad(f"dest.proto: expected 'tcp' or 'udp', found {value!r}")
    return ServiceProtocol(value)


def _state(value: Any) -> ServerState:
    if value not in ("UP", "DOWN"):
        raise _Bad(f"state: expected 'UP' or 'DOWN', found {value!r}")
    return ServerState(value)


def _weight(value: Any, state: ServerState) -> int | None:
    if value is None:
        if state is ServerState.UP:
            raise _Bad("weight: an UP server needs a weight, found null")
        return None
    weight = _int(value, "weight", 0, MAX_WEIGHT)
    if state is ServerState.DOWN and weight != 0:
        raise _Bad(f"weight: a DOWN server is absent (null) or quiesced (0), found {weight}")
    return weight


def _time(value: Any, name: str = "at") -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _Bad(f"{name}: expected a finite number of seconds, found {value!r}")
    return float(value)


def _hostport(addr: IPAddress, port: int) -> str:
    return str(Target(addr, port))
