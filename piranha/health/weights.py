"""Nanny's weight arithmetic and remote-load reading: pure functions with Piranha's numbers.

Slow start: a server enters with ``max(1, weight >> 5)`` and doubles, capped at its weight,
once per adjustment (about every 20 s). At full weight, load feedback moves it with
``sf = weight / 2``: ``last + sf * cbrt(1 - load)`` when load < 1 (capped at 10x weight),
``last - sf * cbrt(load - 1)`` when load > 1 (floored at weight), applied only when the step
is at least ``weight / 4``. The load is rounded to a C ``float`` first, as nanny.c did.

Deliberate differences from Piranha 0.8.6, each small and documented where it is made:

* a configured weight of 0 enters with 0 (Piranha's ``max(1, 0 >> 5)`` gave a drained
  server weight 1, i.e. traffic);
* a load-raised weight is capped at 65535, ipvsadm's ``-w`` limit (Piranha ran ipvsadm with
  the bigger number, it failed, and nanny exited);
* ``rsh_command = /usr/bin/ssh`` gets ``uptime`` appended like plain ``ssh`` (Piranha
  compared the whole path with "rsh"/"ssh", so a path silently broke uptime monitoring);
* ``ruptime`` output (``load 0.07, ...``: no colon) is parsed by :func:`parse_ruptime`;
  Piranha looked for a colon after "load" and always logged "bad load average returned";
* a load that is not a number (``load average: ,``) is rejected, not read as 0.0, and the
  number may end the output (nanny wanted a comma or blank after it).
"""

from __future__ import annotations

import math
import os
import re
import struct
from collections.abc import Iterable
from fractions import Fraction

#: ipvsadm accepts -w 0..65535
MAX_WEIGHT = 65535
#: lvsd never passes nanny -S, so load can raise a weight to at most 10x
DEFAULT_SCALE = 10
#: seconds between weight adjustments, roughly (nanny.c: every 20 / interval probes)
ADJUST_SECONDS = 20

_DIGITS = re.compile(r"[\d.]*")
_NUMBER = re.compile(r"\d+(?:\.\d*)?|\.\d+")
_RUPTIME_LOAD = re.compile(r"\bload\s+(\d+(?:\.\d*)?|\.\d+)")
_FLOAT_MAX = 3.4028234663852886e38


def whole_ratio(numerator: float, denominator: float) -> int:
    """``floor(numerator / denominator)`` on the decimal values, so 0.3 / 0.1 is 3, not 2."""
    # repr() gives the shortest decimal that round-trips: the number as the admin wrote it
    return math.floor(Fraction(repr(float(numerator))) / Fraction(repr(float(denominator))))


def initial_weight(weight: int) -> int:
    """The weight a server is admitted with: ``max(1, weight >> 5)``, but 0 stays 0."""
    return 0 if weight == 0 else max(1, weight >> 5)


def slow_start(last: int, weight: int) -> int:
    """One slow-start step: ``last`` doubled, capped at ``weight``."""
    # max(..., 1): doubling 0 would stay 0 for ever (Piranha's state after SIGUSR2 + SIGHUP)
    return min(max(last * 2, 1), weight)


def adjust_period(interval: float) -> int:
    """Good probes between two weight adjustments: ``20 / interval``, at least 1."""
    return max(1, whole_ratio(ADJUST_SECONDS, interval))


def load_weight(last: int, weight: int, load: float | None, scale: int = DEFAULT_SCALE) -> int:
    """The weight after one load reading at full weight; ``last`` when nothing changes."""
    if load is None or load < 0:
        return last
    load = _c_float(load)
    if load == 1.0:
        return last
    factor = weight / 2
    if load < 1.0:
        new = min(int(last + factor * (1.0 - load) ** (1 / 3)), scale * weight)
    else:
        new = max(int(last - factor * (load - 1.0) ** (1 / 3)), weight)
    new = min(new, MAX_WEIGHT)
    return new if abs(new - last) >= weight / 4 else last


def load_argv(loadcmd: str, host: str) -> list[str] | None:
    """The command that reads ``host``'s load for ``-U loadcmd``; None for ``none``."""
    if loadcmd == "none":
        return None
    if os.path.basename(loadcmd) == "ruptime":
        # ruptime takes no host: it lists every host, parse_ruptime picks the line
        return [loadcmd]
    argv = [loadcmd, host]
    if os.path.basename(loadcmd) in ("rsh", "ssh"):
        argv.append("uptime")
    return argv


def parse_load(output: str) -> float | None:
    """The 1-minute load in ``uptime``/``rup`` output, found as nanny did; None if absent."""
    start = output.find("load")
    colon = output.find(":", start) if start >= 0 else -1
    if colon < 0:
        return None
    # nanny skipped ": " blindly and wanted the number to end at a comma or a blank
    rest = output[colon + 2:]
    run = _DIGITS.match(rest)
    end = run.end() if run else 0
    if end < len(rest) and rest[end] not in ", \t\n":
        return None
    # like strtod: the longest number at the start of the run ("1.2.3" reads as 1.2)
    number = _NUMBER.match(rest, 0, end)
    return float(number.group()) if number else None


def parse_ruptime(output: str, names: Iterable[str]) -> float | None:
    """The 1-minute load of the host called one of ``names`` in ``ruptime`` output."""
    wanted = {_short(n) for n in names}
    lines = [line.split() for line in output.splitlines() if line.strip()]
    if not wanted and len(lines) == 1:
        # a single-host listing needs no name to be unambiguous
        return _ruptime_line_load(lines[0])
    for fields in lines:
        if _short(fields[0]) in wanted:
            return _ruptime_line_load(fields)
    return None


def _ruptime_line_load(fields: list[str]) -> float | None:
    if len(fields) < 2 or fields[1] != "up":
        return None
    match = _RUPTIME_LOAD.search(" ".join(fields))
    return float(match.group(1)) if match else None


def _short(name: str) -> str:
    # ruptime shows whatever hostname rwhod sent, full or short: compare first labels
    return name.lower() if _is_ip(name) else name.lower().split(".")[0]


def _is_ip(name: str) -> bool:
    return ":" in name or name.replace(".", "").isdigit()


def _c_float(value: float) -> float:
    """``value`` rounded to a C float, as nanny stored the load."""
    if not math.isfinite(value) or abs(value) > _FLOAT_MAX:
        return value
    result: float = struct.unpack("f", struct.pack("f", value))[0]
    return result
