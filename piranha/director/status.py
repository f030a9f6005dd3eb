"""pulse's status file, for piranha-gui and scripts."""

from __future__ import annotations

import contextlib
import json
import os
import time
from logging import Logger

from piranha import sdnotify
from piranha.director.actuator import Actuator
from piranha.director.plan import Settings
from piranha.heartbeat.events import DirectorState
from piranha.heartbeat.machine import FailoverMachine
from piranha.lvsd.statefile import write_atomic


class StatusFile:
    """pulse's state for the GUI and scripts, rewritten atomically on every state change:
    ``{"pid", "role", "state", "since", "faults", "vips", "partner"}``; removed at exit."""

    def __init__(self, path: str, mine: Settings, machine: FailoverMachine, actuator: Actuator,
                 log: Logger) -> None:
        self.path, self.mine, self.machine, self.actuator, self.log = (
            path, mine, machine, actuator, log)

    def changed(self, state: DirectorState) -> None:
        sdnotify.notify(f"STATUS={state.value}")
        self.log.debug(f"state: {state.value}")
        doc = {"pid": os.getpid(), "role": "master" if self.mine.master else "backup",
               "state": state.value, "since": time.time(),
               "faults": sorted(f.value for f in self.machine.faults),
               "vips": [str(v.ip) for v in self.actuator.vips],
               "partner": self.mine.partners[0] if self.mine.partners else None}
        try:
            write_atomic(self.path, json.dumps(doc, sort_keys=True) + "\n", 0o644, sync=False)
        except OSError as exc:
            self.log.error(f"cannot write {self.path}: {exc}")

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.path)
