"""``-R``: restore from stdin with ipvsadm 1.31's semantics, but batched.

Reading (``config_stream_read``): a line ends at ``\\n``; tokens are split on spaces, tabs and
CRs, with no quoting and no comments; a token ``ipvsadm`` is dropped anywhere; lines without
tokens are skipped. A last line without ``\\n`` counts, unless it ends in two or more blanks
(ipvsadm then hits EOF while skipping blanks and drops it).

Semantics kept from ipvsadm: each line is parsed exactly like a command line (same checks,
same messages). A parse/validation error (``fail()``, ``Try ...``, ``-h``, ``-v``, a nested
``-R``) ends the restore with its own status, leaving earlier lines applied; a popt error after
the command prints ``word: message`` and goes on; a kernel error prints ipvsadm's message and
goes on; the exit status is the last line's (0, or 255 for a kernel or popt error).

Batching, and why it is safe: ipvsadm sends one netlink request per line. We parse every line
first (up to the first terminating line) and hand all their operations to **one**
``backend.apply()`` call, then print the failures in line order. ``apply`` runs the ops in
order and keeps going after a failure, so a later line that depends on an earlier failed one
fails exactly as in ipvsadm (an ``-a`` after a refused ``-A`` gets ``Service not defined``),
and the kernel ends in the same state. Parsing never looks at the kernel, so parsing ahead
cannot change a result. What does change: stderr messages come after the whole batch instead
of as each line runs (their order and text are the same), and a restore killed half way may
have applied more or fewer lines than ipvsadm would have printed. Lines that read the table
(``-L``, ``-S``, ...) flush the batch first, so they see every earlier line applied.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from piranha.errors import KernelError
from piranha.ipvs.backend import IpvsBackend, strerror
from piranha.ipvs.types import Op
from piranha.ipvsadm.args import parse
from piranha.ipvsadm.commands import Command, Exit, PoptFailure, tryhelp
from piranha.ipvsadm.ops import MUTATING, command_op
from piranha.ipvsadm.values import Lookup

_BLANKS = re.compile(r"[ \t\r]+")


def stream_lines(text: str) -> Iterator[list[str]]:
    """``config_stream_read``: the token list of every line ipvsadm would process."""
    *lines, last = text.split("\n")
    for line in lines:
        tokens = _tokens(line)
        if tokens:
            yield tokens
    tokens = _tokens(last)
    if tokens and len(last) - len(last.rstrip(" \t\r")) < 2:
        yield tokens


def _tokens(line: str) -> list[str]:
    """Blank-separated tokens, ``ipvsadm`` dropped."""
    return [t for t in _BLANKS.split(line) if t and t != "ipvsadm"]


@dataclass
class Batch:
    """Parsed lines waiting for one ``apply``: ops, and popt messages in line order."""

    events: list[Op | str] = field(default_factory=list)

    def run(self, backend: Callable[[], IpvsBackend]) -> tuple[str, int | None]:
        """Apply the ops in one call; (stderr text in line order, status of the last line)."""
        ops = [e for e in self.events if not isinstance(e, str)]
        failed = _match(ops, backend().apply(ops) if ops else [])
        out, status = [], None
        for event in self.events:
            if isinstance(event, str):
                out.append(event)
                status = 255
            elif id(event) in failed:
                out.append(failed[id(event)] + "\n")
                status = 255
            else:
                status = 0
        self.events.clear()
        return "".join(out), status


def _match(ops: list[Op], failures: list[KernelError]) -> dict[int, str]:
    """id(op) -> ipvsadm's message, for each failed op (by identity, else first equal one)."""
    failed: dict[int, str] = {}
    for err in failures:
        target = next((op for op in ops if op is err.op), None)
        if target is None:
            target = next(op for op in ops if op == err.op and id(op) not in failed)
        failed[id(target)] = strerror(err.op, err.errno)
    return failed


def restore(text: str, prog: str, resolver: Lookup, backend: Callable[[], IpvsBackend],
            run_other: Callable[[Command], int], write_err: Callable[[str], object],
            env: dict[str, str] | None = None) -> int:
    """Process every line of ``text``; return the exit status of the restore."""
    batch = Batch()
    status = 0

    def flush() -> None:
        nonlocal status
        errors, last = batch.run(backend)
        write_err(errors)
        status = status if last is None else last

    try:
        for tokens in stream_lines(text):
            try:
                ce = parse([prog, *tokens], resolver, env)
            except PoptFailure as exc:
                batch.events.append(exc.stderr)
                continue
            if ce.cmd == "restore":
                raise tryhelp(prog)
            if ce.cmd in MUTATING:
                batch.events.append(command_op(ce))
                continue
            flush()
            status = run_other(ce)
    except Exit:
        flush()
        raise
    flush()
    return status
