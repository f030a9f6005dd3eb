"""Apply a plan to the kernel; the ONE place where an "already done" error is forgiven.

``Applier.reconcile(make_plan)`` dumps the kernel's table, asks ``make_plan(actual)`` for the
ops, applies them and sorts the failures:

* **already done** (:data:`ALREADY_DONE`): EEXIST on an add, ENOENT/ESRCH on a delete. The
  table changed under us (an operator, a race); the op's goal holds, so it is logged, the
  table is dumped again and planned again (keepalived's ``ipvs_talk`` rule);
* anything else is a real failure: logged once (repeated identical failures stay quiet
  until they change), and left for the next reconcile to retry.

Every applied op is logged as the ipvsadm command that does the same thing
(:func:`piranha.ipvsadm.rules.op_text`, the ``-S`` renderer).
"""

from __future__ import annotations

import errno as E
from collections.abc import Callable
from dataclasses import dataclass, field

from piranha.errors import KernelError
from piranha.ipvs.backend import IpvsBackend
from piranha.ipvs.types import (
    AddDest,
    AddService,
    DelDest,
    DelService,
    Op,
    Table,
)
from piranha.ipvsadm.rules import op_text

#: (op type, errno) pairs that mean "the kernel already is as the op wanted"
ALREADY_DONE = frozenset({(AddService, E.EEXIST), (AddDest, E.EEXIST),
                          (DelService, E.ESRCH), (DelDest, E.ENOENT), (DelDest, E.ESRCH)})
#: re-plans after "already done" errors before giving up until the next reconcile
MAX_ROUNDS = 3

Log = Callable[[str], None]


def already_done(error: KernelError) -> bool:
    """Whether ``error`` only says the op's goal already holds."""
    return (type(error.op), error.errno) in ALREADY_DONE


@dataclass
class Outcome:
    """What one reconcile did."""

    applied: list[Op] = field(default_factory=list)
    failed: list[KernelError] = field(default_factory=list)
    table: Table = field(default_factory=Table)


class Applier:
    """Runs plan -> apply rounds against a backend and logs what it did."""

    def __init__(self, backend: IpvsBackend, log: Log, error_log: Log) -> None:
        self.backend, self.log, self.error_log = backend, log, error_log
        self.ops_applied = 0
        #: reconcile runs, and changes the kernel refused (each attempt counts)
        self.reconciles = self.op_errors = 0
        self._last_failures: frozenset[str] = frozenset()

    def reconcile(self, make_plan: Callable[[Table], list[Op]]) -> Outcome:
        """Dump, plan, apply; re-dump and re-plan after "already done" errors."""
        outcome = Outcome()
        failures: list[KernelError] = []
        for _ in range(MAX_ROUNDS):
            outcome.table = self.backend.dump()
            ops = make_plan(outcome.table)
            if not ops:
                failures = []
                break
            failures = self.apply(ops, outcome)
            if not any(already_done(f) for f in failures):
                break
            outcome.table = self.backend.dump()  # the kernel changed under us: look again
        outcome.failed = [f for f in failures if not already_done(f)]
        self.reconciles += 1
        self.op_errors += len(outcome.failed)
        self._report(outcome.failed)
        return outcome

    def apply(self, ops: list[Op], outcome: Outcome | None = None) -> list[KernelError]:
        """Apply ``ops``, log each applied one and each forgiven one; all failures."""
        failures = self.backend.apply(ops)
        failed_ops = [id(f.op) for f in failures]
        for op in ops:
            if id(op) not in failed_ops:
                self.ops_applied += 1
                self.log(f"ipvs: {op_text(op)}")
                if outcome is not None:
                    outcome.applied.append(op)
        for failure in failures:
            if already_done(failure):
                self.log(f"ipvs: {op_text(failure.op)}: {failure.message} (already done)")
        return failures

    def _report(self, failures: list[KernelError]) -> None:
        texts = frozenset(f"{op_text(f.op)}: {f.message}" for f in failures)
        for text in sorted(texts - self._last_failures):
            self.error_log(f"ipvs: {text} (will retry)")
        self._last_failures = texts
