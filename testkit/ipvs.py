"""Backends for the piranha-ipvsadm host tests: FakeIpvs, preloaded and recording apply calls."""

from __future__ import annotations

from collections.abc import Sequence

from piranha.errors import KernelError
from piranha.ipvs.fake import FakeIpvs
from piranha.ipvs.types import AddDest, AddService, Daemon, DaemonState, Op, StartDaemon, Table


class RecordingFake(FakeIpvs):
    """FakeIpvs that remembers each ``apply`` call's ops (to check -R's batching)."""

    def __init__(self, table: Table | None = None, *, salt: int = 0):
        super().__init__(interfaces=("lo", "eth0", "eth1", "dummy0"), salt=salt)
        self.applied: list[list[Op]] = []
        if table is not None:
            self.load(table)

    def load(self, table: Table) -> None:
        """Add every service and dest of ``table`` (counters are not loaded)."""
        ops: list[Op] = [AddService(s) for s in table.services]
        ops += [AddDest(key, d) for key, dests in table.dests.items() for d in reversed(dests)]
        assert super().apply(ops) == []

    def start(self, daemon: Daemon) -> None:
        """Start a sync daemon."""
        assert super().apply([StartDaemon(daemon)]) == []

    def apply(self, ops: Sequence[Op]) -> list[KernelError]:
        self.applied.append(list(ops))
        return super().apply(ops)


def StubIpvs(table: Table | None = None) -> RecordingFake:  # noqa: N802 (kept name)
    """A preloaded RecordingFake."""
    return RecordingFake(table)


__all__ = ["DaemonState", "RecordingFake", "StubIpvs"]


class TableBackend(RecordingFake):
    """Reads serve a fixed Table (with its counters) and daemon list; writes go to the fake."""

    def __init__(self, table: Table, daemons: Sequence[Daemon] = ()):
        super().__init__()
        self.table, self.daemon_list = table, list(daemons)

    def dump(self) -> Table:
        return self.table

    def get_service(self, key):
        svc = self.table.service(key)
        if svc is None:
            return super().get_service(key)
        return svc, self.table.dests.get(key, ())

    def daemons(self) -> list[Daemon]:
        return sorted(self.daemon_list, key=lambda d: d.state)
