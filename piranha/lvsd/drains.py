"""The operator's drains, and the control commands that set them.

:class:`Drains` is the one table of drains: every change goes through it and bumps its
``generation`` (the loop rewrites the status snapshot and the state file when it moved).
:class:`Commands` runs the control socket's requests against it; the engine reconciles after
a command that changed something.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from piranha.health.check import CheckSpec
from piranha.health.report import DestId
from piranha.lvsd.book import Drain
from piranha.lvsd.control import Request
from piranha.lvsd.view import resolve
from piranha.model import Cluster


class Drains:
    """Every drain lvsd holds, by real server."""

    def __init__(self, saved: Mapping[DestId, Drain] | None = None) -> None:
        self._by_dest: dict[DestId, Drain] = dict(saved or {})
        self.generation = 0

    def __iter__(self) -> Iterator[DestId]:
        return iter(self._by_dest)

    def __contains__(self, dest: object) -> bool:
        return dest in self._by_dest

    def __len__(self) -> int:
        return len(self._by_dest)

    def get(self, dest: DestId) -> Drain | None:
        return self._by_dest.get(dest)

    def view(self) -> Mapping[DestId, Drain]:
        """A read-only view (changes show through)."""
        return MappingProxyType(self._by_dest)

    def copy(self) -> dict[DestId, Drain]:
        """A copy as of now (a dict copy: no key is hashed again)."""
        return self._by_dest.copy()

    def ask(self, dest: DestId, wall: float, timeout: float) -> None:
        """Start draining ``dest`` (or move the deadline of its drain)."""
        old = self._by_dest.get(dest)
        self._set(dest, Drain(old.started if old else wall, wall + timeout,
                              old.done if old else False))

    def enable(self, dest: DestId) -> bool:
        """End ``dest``'s drain; False when it had none."""
        if self._by_dest.pop(dest, None) is None:
            return False
        self.generation += 1
        return True

    def finish(self, finished: Mapping[DestId, Drain]) -> list[DestId]:
        """Record drains whose entry went; the ones that were not done before."""
        newly = [d for d, drain in finished.items()
                 if d in self._by_dest and not self._by_dest[d].done]
        for dest, drain in finished.items():
            if self._by_dest.get(dest) != drain:
                self._set(dest, drain)
        return newly

    def keep_only(self, dests: Mapping[DestId, object]) -> None:
        """Forget the drains of real servers that are no longer configured."""
        for dest in [d for d in self._by_dest if d not in dests]:
            del self._by_dest[dest]
            self.generation += 1

    def deadlines(self) -> list[float]:
        """Wall-clock deadlines of the drains still running."""
        return [d.deadline for d in self._by_dest.values() if not d.done]

    def _set(self, dest: DestId, drain: Drain) -> None:
        self._by_dest[dest] = drain
        self.generation += 1


@dataclass(frozen=True)
class Answer:
    """A command's reply, and whether it changed what lvsd wants of the kernel."""

    ok: bool
    message: str
    changed: bool = False


class Commands:
    """The control socket's commands (``drain``, ``enable``, ``ping``)."""

    def __init__(self, drains: Drains, log: Callable[[str], None]) -> None:
        self.drains, self.log = drains, log

    def run(self, req: Request, cluster: Cluster, specs: Mapping[DestId, CheckSpec],
            wall: float) -> Answer:
        if req.cmd == "ping":
            return Answer(True, f"lvsd running, {len(specs)} real servers")
        found = resolve(cluster, specs, req.virtual, req.server)
        if isinstance(found, str):
            return Answer(False, found)
        spec = specs[found]
        who = f"{spec.vs_name}/{spec.rs_name} {spec.target}"
        if req.cmd == "drain":
            self.drains.ask(found, wall, req.timeout)
            self.log(f"rs={spec.target} vs={spec.vs_name} drain asked by operator "
                     f"(deadline in {req.timeout:g} s)")
            return Answer(True, f"{who}: draining (removed at zero connections or in "
                                f"{req.timeout:g} s)", True)
        if not self.drains.enable(found):
            return Answer(True, f"{who}: not drained; nothing to do")
        self.log(f"rs={spec.target} vs={spec.vs_name} enabled by operator")
        return Answer(True, f"{who}: enabled (back under health control)", True)
