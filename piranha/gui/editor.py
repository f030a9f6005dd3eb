"""An edit of lvs.cf, checked by the loader ``piranha check`` uses. Pure (the resolver is
injected; the default one resolves host names, like a reload would).

Every screen works the same way: take the canonical text of the current model
(:func:`sections`), change one section or the list of blocks, emit the candidate text and
load it (:func:`check`). Errors come back located on the form's fields; a valid candidate
becomes the new model, with ``serial_no`` counted up as Piranha's GUI did, and its canonical
text (``render``) is what gets written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from piranha.config import Resolver, loads, render
from piranha.errors import ConfigError, ConfigErrors
from piranha.gui import forms
from piranha.gui.document import LineInfo, Section, emit, parse_text
from piranha.model import Cluster


@dataclass(frozen=True)
class Outcome:
    """The result of one edit: the new model and its text, or the errors to show."""

    cluster: Cluster | None = None
    text: str = ""
    fields: forms.Errors = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    changed: bool = False

    @property
    def ok(self) -> bool:
        return self.cluster is not None


def sections(cluster: Cluster) -> Section:
    """The editable sections of ``cluster`` (from its canonical text)."""
    return parse_text(render(cluster))


def virtual(root: Section, index: int) -> Section | None:
    """The ``index``-th virtual block, None when there is no such block."""
    blocks = root.kids("virtual")
    return blocks[index] if 0 <= index < len(blocks) else None


def server(root: Section, v: int, r: int) -> Section | None:
    """The ``r``-th server block of the ``v``-th virtual, or None."""
    block = virtual(root, v)
    servers = block.kids("server") if block is not None else []
    return servers[r] if 0 <= r < len(servers) else None


def check(before: Cluster, root: Section, edited: Section | None = None,
          form: forms.Form | None = None, pre: forms.Errors | None = None,
          resolver: Resolver | None = None) -> Outcome:
    """Load the text of ``root`` (``edited`` with ``form``: where errors go); the outcome."""
    text, where = emit(root)
    pre = pre or {}
    try:
        result = loads(text, "lvs.cf", resolver)
    except ConfigErrors as exc:
        fields, general = _locate(exc.errors, where, edited, form)
        for name, messages in pre.items():
            fields[name] = messages + fields.get(name, [])
        return Outcome(fields=fields, errors=general)
    if pre:
        return Outcome(fields=dict(pre))
    _, notes = _locate(result.warnings, where, None, None)
    cluster = result.cluster
    if cluster == before:
        return Outcome(before, render(before), warnings=notes)
    cluster = replace(cluster, serial_no=before.serial_no + 1)
    return Outcome(cluster, render(cluster), warnings=notes, changed=True)


def _locate(problems: Iterable[ConfigError], where: Mapping[int, LineInfo],
            edited: Section | None, form: forms.Form | None) -> tuple[forms.Errors, list[str]]:
    section = edited if edited is not None else Section("none")
    return forms.locate(problems, where, section, form or forms.Form("none", ()))


def edit_section(before: Cluster, root: Section, section: Section, form: forms.Form,
                 data: Mapping[str, str], resolver: Resolver | None = None) -> Outcome:
    """Apply a submitted ``form`` to ``section`` of ``root`` and check the result."""
    pre = forms.fill(form, section, data)
    return check(before, root, section, form, pre, resolver)


def add_block(before: Cluster, root: Section, parent: Section, kind: str, form: forms.Form,
              data: Mapping[str, str], resolver: Resolver | None = None) -> Outcome:
    """Add a new ``kind`` block under ``parent`` from a submitted ``form``; check the result."""
    block = Section(kind)
    parent.children.append(block)
    pre = forms.fill(form, block, data)
    return check(before, root, block, form, pre, resolver)


def remove_block(before: Cluster, root: Section, parent: Section, block: Section,
                 resolver: Resolver | None = None) -> Outcome:
    """Remove ``block`` from ``parent``; check the result."""
    parent.children.remove(block)
    return check(before, root, resolver=resolver)


def toggle(before: Cluster, root: Section, block: Section,
           resolver: Resolver | None = None) -> Outcome:
    """Flip ``active`` of ``block`` (Piranha's (DE)ACTIVATE button); check the result."""
    on = (block.get("active") or ("0",))[0] not in ("0", "")
    block.set("active", ("0",) if on else ("1",))
    return check(before, root, block, resolver=resolver)
