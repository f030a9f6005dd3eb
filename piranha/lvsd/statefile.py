"""lvsd's state file: drains and the services it owns, kept across lvsd restarts.

JSON, written atomically (temporary file, fsync, rename). Owned services let a restarted
lvsd remove a service that lvs.cf dropped while lvsd was down; drains keep an operator's
decision in force. A missing file is an empty state; an unreadable one is logged by the
caller and treated as empty (lvsd must start).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import ip_address
from typing import Any

from piranha.health.report import DestId
from piranha.ipvs.types import Family, Proto, ServiceKey
from piranha.lvsd.book import Drain
from piranha.model import ServiceProtocol

VERSION = 1


@dataclass
class SavedState:
    """What survives an lvsd restart."""

    owned: set[ServiceKey] = field(default_factory=set)
    drains: dict[DestId, Drain] = field(default_factory=dict)


def key_to_json(key: ServiceKey) -> dict[str, Any]:
    """A service key as a JSON object."""
    return {"family": int(key.family), "protocol": int(key.protocol),
            "addr": None if key.addr is None else str(key.addr), "port": key.port,
            "fwmark": key.fwmark}


def key_from_json(data: dict[str, Any]) -> ServiceKey:
    """The service key of :func:`key_to_json`."""
    addr = None if data["addr"] is None else ip_address(data["addr"])
    return ServiceKey(Family(data["family"]), Proto(data["protocol"]), addr, int(data["port"]),
                      int(data["fwmark"]))


def dest_to_json(dest: DestId) -> dict[str, Any]:
    """A real-server identity as a JSON object."""
    return {"vip": None if dest.vip is None else str(dest.vip), "vport": dest.vport,
            "proto": dest.protocol.value, "rip": str(dest.rip), "rport": dest.rport,
            "fwmark": dest.fwmark}


def dest_from_json(data: dict[str, Any]) -> DestId:
    """The identity of :func:`dest_to_json`."""
    vip = None if data["vip"] is None else ip_address(data["vip"])
    return DestId(vip, int(data["vport"]), ServiceProtocol(data["proto"]), ip_address(data["rip"]),
                  int(data["rport"]), int(data["fwmark"]))


def dumps(state: SavedState) -> str:
    """The file's text for ``state``."""
    body = {
        "version": VERSION,
        "owned": sorted((key_to_json(k) for k in state.owned), key=json.dumps),
        "drains": [{"dest": dest_to_json(d), "started": v.started, "deadline": v.deadline,
                    "done": v.done} for d, v in state.drains.items()],
    }
    return json.dumps(body, indent=1, sort_keys=True) + "\n"


def loads(text: str) -> SavedState:
    """The state in ``text``; ValueError (or KeyError/TypeError) when it is malformed."""
    data = json.loads(text)
    if data.get("version") != VERSION:
        raise ValueError(f"unsupported state file version {data.get('version')!r}")
    owned = {key_from_json(k) for k in data["owned"]}
    drains = {dest_from_json(d["dest"]): Drain(float(d["started"]), float(d["deadline"]),
                                               bool(d["done"])) for d in data["drains"]}
    return SavedState(owned, drains)


def load(path: str) -> SavedState:
    """The state saved at ``path``; empty when there is no file (errors propagate)."""
    try:
        with open(path, encoding="utf-8") as f:
            return loads(f.read())
    except FileNotFoundError:
        return SavedState()


def write_atomic(path: str, text: str, mode: int = 0o644, sync: bool = True) -> None:
    """Replace ``path`` with ``text`` so readers see the old or the new file, never a mix."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            if sync:  # the state file must survive a crash; the status snapshot need not
                os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save(path: str, state: SavedState) -> None:
    """Write ``state`` to ``path`` atomically (root-only: 0600)."""
    write_atomic(path, dumps(state), 0o600)


class Keeper:
    """The state file of one lvsd: loaded at start, written when what it holds changed (the
    loop offers the current state once per turn). ``path`` None keeps nothing."""

    def __init__(self, path: str | None, error: Callable[[str], None],
                 info: Callable[[str], None] | None = None) -> None:
        self.path, self.error, self.info = path, error, info or error
        self._written: SavedState | None = None
        self._failing = False

    def load(self) -> SavedState:
        """The saved state; empty (and logged) when the file is unreadable."""
        if self.path is None:
            return SavedState()
        try:
            self._written = load(self.path)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            self.error(f"ignoring unreadable state file {self.path}: {exc}")
            return SavedState()
        return self._written

    def keep(self, state: SavedState) -> bool:
        """Write ``state`` unless it is what the file already holds; False when the write
        failed (a full disk, say): the old file is intact and the caller offers it again.
        A failure is logged once until a write succeeds again."""
        if self.path is None or state == self._written:
            return True
        try:
            save(self.path, state)
        except OSError as exc:
            if not self._failing:
                self.error(f"cannot write state file {self.path}: {exc} (the previous one is "
                           "kept; retrying)")
            self._failing = True
            return False
        if self._failing:
            self.info(f"state file {self.path} written again")
        self._failing = False
        self._written = SavedState(set(state.owned), dict(state.drains))
        return True
