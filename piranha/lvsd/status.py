"""The status snapshot: what lvsd shows the CLI (and later the web tool), as JSON.

lvsd rewrites it atomically after every change (and on its timer), so a reader always sees
one whole snapshot. ``render`` turns a snapshot into the text ``piranha status`` prints.
Times are wall-clock seconds (``since`` of a state, drain deadlines); ``written`` says how
fresh the snapshot is.
"""

from __future__ import annotations

import json
import time
from typing import Any

from piranha import defaults
from piranha.text import ago

DEFAULT_PATH = defaults.LVSD_STATUS
VERSION = 1


def read(path: str) -> dict[str, Any]:
    """The snapshot at ``path`` (OSError / ValueError when missing or malformed)."""
    with open(path, encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    if data.get("version") != VERSION:
        raise ValueError(f"unsupported status snapshot version {data.get('version')!r}")
    return data


def render(snap: dict[str, Any], now: float | None = None) -> str:
    """The snapshot as the lines ``piranha status`` prints."""
    now = time.time() if now is None else now
    lines = [f"lvsd pid {snap['pid']}, config {snap['config']}, "
             f"snapshot {ago(now - snap['written'])} old, "
             f"{snap['ops_applied']} kernel operations since start"]
    for vs in snap["virtuals"]:
        lines.append(f"virtual {vs['name']}: {vs['service']} scheduler {vs['scheduler']}"
                     + (f" persistent {vs['persistent']}" if vs["persistent"] else ""))
        for rs in vs["servers"]:
            lines.append("  " + _server_line(rs, now))
        sorry = vs.get("sorry_server")
        if sorry is not None:
            where = "IN the table" if sorry["in_table"] else "not in the table"
            lines.append(f"  sorry server {sorry['address']}: {where}")
    if not snap["virtuals"]:
        lines.append("no active virtual services")
    return "\n".join(lines)


def _server_line(rs: dict[str, Any], now: float) -> str:
    weight = "-" if rs["weight"] is None else str(rs["weight"])
    text = (f"{rs['name']:<12} {rs['address']:<22} {rs['state']:<5} weight {weight:<5} "
            f"since {_clock(rs['since'])} ({ago(now - rs['since'])} ago)")
    drain = rs.get("drain")
    if drain is not None:
        text += f" {drain['state'].upper()}"
        if drain["state"] == "draining":
            text += f" ({rs['conns']} connections, deadline in {ago(drain['deadline'] - now)})"
    nanny = rs["nanny"]
    if nanny["state"] != "running" or nanny["restarts"]:
        text += f" nanny {nanny['state']} (restarts {nanny['restarts']})"
    if rs["reason"]:
        text += f' reason="{rs["reason"]}"'
    return text


def _clock(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


