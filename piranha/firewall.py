"""Firewall commands as data, shared by ``fwmark-rules`` (a director's marks) and ``realserver``
(a real server's ARP and REDIRECT rules): one :class:`Step` model and one shell renderer.

nft scripts are plain text (one ``nft -f -`` transaction each); the iptables family of tools
(iptables, ip6tables, arptables) is driven one command at a time, each :class:`Step` with an
optional fallback for the "create, or else empty what is there" idiom.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    """One command; when it fails, ``fallback`` is run instead (shell: ``A || B``)."""

    argv: tuple[str, ...]
    fallback: tuple[str, ...] | None = None


def optional(*argv: str) -> Step:
    """A command whose failure is fine (removing what may already be gone): ``A || true``."""
    return Step(argv, ("true",))


def shell(steps: Sequence[Step]) -> str:
    """``steps`` as a sh script (``A 2>/dev/null || B`` for a step with a fallback)."""
    lines = []
    for s in steps:
        line = " ".join(s.argv)
        if s.fallback is not None:
            line += " 2>/dev/null || " + " ".join(s.fallback)
        lines.append(line)
    return "\n".join(lines) + ("\n" if lines else "")


def replace_nft_tables(families: Sequence[str], table: str) -> list[str]:
    """nft lines that delete ``table`` in each family, whether it exists or not (declaring it
    first makes ``delete`` safe), so that the script can then recreate it: one transaction."""
    lines: list[str] = []
    for family in families:
        lines += [f"table {family} {table}", f"delete table {family} {table}"]
    return lines
