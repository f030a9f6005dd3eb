"""lvs.cf as editable sections, and back to text with a map of which line came from where.

The GUI never builds a ``Cluster`` from form values itself: it edits the *text* of the
configuration (a section's ``key = value`` items) and hands the result to the loader, so every
value is checked by exactly the code ``piranha check`` runs. :func:`emit` remembers, for each
line it writes, the section, the key and the column span of each value token, so the loader's
``file:line:column`` errors can be put next to the form field they are about.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from piranha.config.lexer import tokenize
from piranha.config.parser import Assignment, Block, parse
from piranha.config.render import quote

_PLAIN = re.compile(r"[^\s\"'#=][^\s]*")

Values = tuple[str, ...]


@dataclass(eq=False)
class Section:
    """A block (or the global part): ordered ``key -> value tokens``, and its sub-blocks."""

    kind: str | None  # None: the global section
    name: str = ""
    items: dict[str, Values] = field(default_factory=dict)
    children: list[Section] = field(default_factory=list)

    def get(self, key: str) -> Values | None:
        """The value tokens of ``key``, None when it is not set."""
        return self.items.get(key)

    def set(self, key: str, values: Values | None) -> None:
        """Set ``key`` (None removes it, so the parser's default applies)."""
        if values is None:
            self.items.pop(key, None)
        else:
            self.items[key] = values

    def kids(self, kind: str) -> list[Section]:
        """The sub-blocks of one kind (``virtual``, ``server``), in file order."""
        return [c for c in self.children if c.kind == kind]

    def describe(self) -> str:
        """``virtual 'www'``, ``server 'web1'`` or ``global settings``."""
        return f"{self.kind} '{self.name}'" if self.kind else "global settings"


@dataclass(frozen=True)
class LineInfo:
    """Where one emitted line came from: the section, the key (None: block header) and the
    ``(start, end)`` columns of each value token (1-based, end exclusive)."""

    section: Section
    key: str | None
    spans: tuple[tuple[int, int], ...] = ()

    def part_at(self, column: int) -> int:
        """Which value token ``column`` points at; past the last one: the next index."""
        for i, (start, end) in enumerate(self.spans):
            if column < end:
                return i if column >= start or i == 0 else i - 1
        return len(self.spans)


def parse_text(text: str) -> Section:
    """The sections of a *valid* lvs.cf text (the canonical text ``render`` writes)."""
    lines, _ = tokenize(text, "lvs.cf")
    root, errors = parse(lines, "lvs.cf")
    if errors:
        raise ValueError(f"not a valid lvs.cf: {errors[0]}")
    return _section(root)


def _section(block: Block) -> Section:
    section = Section(block.kind_text, block.name.text if block.name else "")
    for item in block.items:
        if isinstance(item, Assignment):
            section.items[item.key.text] = tuple(t.text for t in item.values)
        else:
            section.children.append(_section(item))
    return section


def token(value: str) -> str:
    """``value`` as one lvs.cf token: bare when safe, else quoted (ValueError if it cannot be)."""
    if _PLAIN.fullmatch(value) and value not in ("{", "}"):
        return value
    return quote(value)


def emit(root: Section) -> tuple[str, dict[int, LineInfo]]:
    """The lvs.cf text of ``root`` and, for each line number, where the line came from."""
    out: list[str] = []
    where: dict[int, LineInfo] = {}
    _emit(root, "", out, where)
    return "\n".join(out) + "\n", where


def _emit(section: Section, indent: str, out: list[str], where: dict[int, LineInfo]) -> None:
    inner = indent
    if section.kind is not None:
        out.append(f"{indent}{section.kind} {token(section.name)} {{")
        where[len(out)] = LineInfo(section, None)
        inner = indent + "    "
    for key, values in section.items.items():
        text = f"{inner}{key} ="
        spans = []
        for value in values:
            word = token(value)
            start = len(text) + 2  # 1-based column after the blank
            text += " " + word
            spans.append((start, start + len(word)))
        out.append(text)
        where[len(out)] = LineInfo(section, key, tuple(spans))
    for child in section.children:
        _emit(child, inner, out, where)
    if section.kind is not None:
        out.append(f"{indent}}}")
        where[len(out)] = LineInfo(section, None)
