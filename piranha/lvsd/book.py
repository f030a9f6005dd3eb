"""What lvsd knows about each real server: health from its nanny, and operator drains (pure).

* :class:`Health`: the last state and weight a nanny reported (or what lvsd adopted from the
  kernel at start), since when (wall clock) and why.
* :class:`Drain`: ``piranha drain``: weight 0 at once; the entry is removed once its
  connections reach zero or the deadline passes; the server stays out until
  ``piranha enable``. Drains outrank health and survive lvsd restarts (statefile).
* :func:`effective_weights`: health and drains combined into the weights
  ``reconcile.desired`` takes (None = absent, 0 = quiesced/draining, else the weight).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from piranha.health.report import DestId
from piranha.health.types import ServerState


@dataclass(frozen=True)
class Health:
    """A real server's health as lvsd holds it."""

    state: ServerState
    #: the weight the entry should have; None = absent, 0 = quiesced
    weight: int | None
    #: wall-clock time of the last change
    since: float
    reason: str
    #: False until the nanny sent its first report (the state was adopted or assumed)
    reported: bool = False


@dataclass(frozen=True)
class Drain:
    """An operator's drain of one real server."""

    #: wall-clock time the drain was asked for, and when the entry goes whatever its traffic
    started: float
    deadline: float
    #: True once the entry was removed (connections reached zero, or the deadline passed)
    done: bool = False

    def state(self) -> str:
        """'draining' or 'drained'."""
        return "drained" if self.done else "draining"


class HealthBook:
    """Every real server's health, and the one place it changes (each change bumps
    ``generation``, which tells the loop the status snapshot is out of date)."""

    def __init__(self) -> None:
        self._by_dest: dict[DestId, Health] = {}
        self.generation = 0

    def __getitem__(self, dest: DestId) -> Health:
        return self._by_dest[dest]

    def __iter__(self) -> Iterator[DestId]:
        return iter(self._by_dest)

    def get(self, dest: DestId) -> Health | None:
        return self._by_dest.get(dest)

    def view(self) -> Mapping[DestId, Health]:
        """A read-only view (changes show through)."""
        return MappingProxyType(self._by_dest)

    def copy(self) -> dict[DestId, Health]:
        """A copy as of now (a dict copy: no key is hashed again)."""
        return self._by_dest.copy()

    def set(self, dest: DestId, health: Health) -> None:
        self._by_dest[dest] = health
        self.generation += 1

    def drop(self, dest: DestId) -> None:
        if self._by_dest.pop(dest, None) is not None:
            self.generation += 1


#: how many connections an entry has in the kernel, or None when it is not there
Conns = Callable[[DestId], "int | None"]


def effective_weights(health: Mapping[DestId, Health], drains: Mapping[DestId, Drain],
                      conns: Conns, now: float) -> tuple[dict[DestId, int | None],
                                                         dict[DestId, Drain]]:
    """Weights for ``desired()``, and the drains whose entry is due to go now."""
    weights: dict[DestId, int | None] = {}
    finished: dict[DestId, Drain] = {}
    for dest, h in health.items():
        drain = drains.get(dest)
        if drain is None:
            weights[dest] = h.weight
            continue
        if drain.done:
            weights[dest] = None
            continue
        count = conns(dest)
        if count is None or count == 0 or now >= drain.deadline:
            finished[dest] = Drain(drain.started, drain.deadline, True)
            weights[dest] = None
        else:
            weights[dest] = 0
    return weights, finished
