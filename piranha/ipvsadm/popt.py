"""A popt 1.19-compatible option scanner: the subset of ``poptGetNextOpt`` ipvsadm 1.31 relies on.

Behaviour reproduced (popt.c, ``poptGetNextOpt``): argv[0] is skipped; arguments that do not
start with ``-`` (and a lone ``-``) are *leftovers*, collected in order and returned later by
:meth:`Scanner.leftover`; ``--`` makes every later argument a leftover (as does the first
leftover when ``POSIXLY_CORRECT``/``POSIX_ME_HARDER`` is set); ``--name`` and ``--name=value``
are long options, matched exactly (no abbreviations, no single-dash long names); ``-abc`` is a
cluster of short options, and a short option that takes a value uses the rest of the cluster
(``-p600``, a leading ``=`` dropped: ``-p=600``) or else the next argument, even one starting
with ``-``. An *optional* value (``-p``) is taken from the next argument only when that
argument does not start with ``-``. popt's ``!#:+`` expansion inside a value is reproduced too.

Errors are raised as :class:`PoptError` carrying popt's code and ``poptStrerror`` text; the
offending word is :meth:`Scanner.bad_option` (popt's ``poptBadOption``: the last argv element
consumed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from piranha.errors import PiranhaError

#: argument kinds of an option
NONE, STRING, OPTIONAL = 0, 1, 2

#: popt error codes and their ``poptStrerror`` text
ERROR_NOARG, ERROR_UNWANTEDARG, ERROR_BADOPT = -10, -12, -11
_STRERROR = {
    ERROR_NOARG: "missing argument",
    ERROR_UNWANTEDARG: "option does not take an argument",
    ERROR_BADOPT: "unknown option",
}


@dataclass(frozen=True)
class OptSpec:
    """One row of a popt option table: long name, short letter, argument kind, returned tag."""

    long: str | None
    short: str | None
    kind: int
    tag: str


class PoptError(PiranhaError):
    """popt refused an argument: ``code`` is popt's error code, ``str()`` its message."""

    def __init__(self, code: int):
        self.code = code
        super().__init__(_STRERROR[code])


class OptionTable:
    """Lookup of an option table by long name and by short letter (first match wins)."""

    def __init__(self, specs: Sequence[OptSpec]):
        self.by_long: dict[str, OptSpec] = {}
        self.by_short: dict[str, OptSpec] = {}
        for spec in specs:
            if spec.long is not None:
                self.by_long.setdefault(spec.long, spec)
            if spec.short is not None:
                self.by_short.setdefault(spec.short, spec)


class Scanner:
    """Iterates over the options of one argv, like a popt context."""

    def __init__(self, argv: Sequence[str], table: OptionTable,
                 env: Mapping[str, str] | None = None):
        self.argv = list(argv)
        self.table = table
        self.next = 1
        self.cluster: str | None = None  # rest of a short-option cluster still to scan
        self.rest_leftover = False
        self.posix = bool(env and ("POSIXLY_CORRECT" in env or "POSIX_ME_HARDER" in env))
        self.deleted: set[int] = set()
        self.leftovers: list[str] = []
        self._leftover_pos = 0

    def bad_option(self) -> str:
        """popt's ``poptBadOption``: the last argv element consumed."""
        return self.argv[self.next - 1]

    def leftover(self) -> str | None:
        """popt's ``poptGetArg``: the next leftover argument, or None."""
        if self._leftover_pos >= len(self.leftovers):
            return None
        self._leftover_pos += 1
        return self.leftovers[self._leftover_pos - 1]

    def get(self) -> tuple[str, str | None] | None:
        """The next option as ``(tag, value)``, or None when argv is exhausted."""
        while True:
            if self.cluster is None:
                if self.next >= len(self.argv):
                    return None
                if self.next in self.deleted:
                    self.next += 1
                    continue
                word = self.argv[self.next]
                self.next += 1
                if self.rest_leftover or not word.startswith("-") or word == "-":
                    self.rest_leftover = self.rest_leftover or self.posix
                    self.leftovers.append(word)
                    continue
                if word == "--":
                    self.rest_leftover = True
                    continue
                if word.startswith("--"):
                    return self._long(word[2:])
                self.cluster = word[1:]
            return self._short()

    def _long(self, body: str) -> tuple[str, str | None]:
        """A ``--name`` or ``--name=value`` option."""
        name, eq, value = body.partition("=")
        spec = self.table.by_long.get(name)
        if spec is None:
            raise PoptError(ERROR_BADOPT)
        if spec.kind == NONE:
            if eq:
                raise PoptError(ERROR_UNWANTEDARG)
            return spec.tag, None
        if eq:
            return spec.tag, self._expand(value)
        return spec.tag, self._next_value(spec)

    def _short(self) -> tuple[str, str | None]:
        """The next letter of the current short-option cluster."""
        assert self.cluster is not None
        letter, rest = self.cluster[0], self.cluster[1:]
        self.cluster = rest or None
        spec = self.table.by_short.get(letter)
        if spec is None:
            raise PoptError(ERROR_BADOPT)
        if spec.kind == NONE:
            if rest.startswith("="):
                raise PoptError(ERROR_UNWANTEDARG)
            return spec.tag, None
        if rest:
            self.cluster = None
            return spec.tag, self._expand(rest[1:] if rest.startswith("=") else rest)
        return spec.tag, self._next_value(spec)

    def _next_value(self, spec: OptSpec) -> str | None:
        """The value of an option from the next argv element (None for an absent optional)."""
        if self.next >= len(self.argv):
            if spec.kind != OPTIONAL:
                raise PoptError(ERROR_NOARG)
            return None
        word = self.argv[self.next]
        if spec.kind == OPTIONAL and word.startswith("-"):
            return None
        self.next += 1
        return self._expand(word)

    def _expand(self, value: str) -> str:
        """popt's ``expandNextArg``: ``!#:+`` becomes the next non-option argument (consumed)."""
        if "!#:+" not in value:
            return value
        out, found, i = [], None, 0
        while i < len(value):
            if value.startswith("!#:+", i):
                if found is None:
                    found = self._take_next_plain()
                if found is not None:
                    out.append(found)
                    i += 4
                    continue
            out.append(value[i])
            i += 1
        return "".join(out)

    def _take_next_plain(self) -> str | None:
        """popt's ``findNextArg(con, 1, 1)``: mark the next argument not starting with '-'."""
        for i in range(self.next, len(self.argv)):
            if i not in self.deleted and not self.argv[i].startswith("-"):
                self.deleted.add(i)
                return self.argv[i]
        return None
