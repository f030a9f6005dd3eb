"""Small text forms shared by the daemons, the admin tool and the web tool."""

from __future__ import annotations

from typing import Any

from piranha.errors import PiranhaError


def hostport(addr: object, port: int) -> str:
    """``addr:port``, with brackets around an IPv6 address (as in URLs and ipvsadm)."""
    text = str(addr)
    return f"[{text}]:{port}" if ":" in text else f"{text}:{port}"


def ago(seconds: float) -> str:
    """A short duration: ``42s``, ``7m``, ``3.5h`` (negative counts as 0)."""
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


#: how deep a JSON message from a socket may nest (ours nest 2 levels; json.loads recurses)
MAX_JSON_DEPTH = 16


def json_depth(text: str) -> int:
    """How deep ``text`` nests arrays and objects (brackets inside strings do not count);
    linear, no recursion, so it is safe on any input."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


class JsonError(PiranhaError, ValueError):
    """A message that is not strict JSON (what is wrong, in words)."""


def strict_json(text: str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``text`` parsed as JSON, refusing what ``json.loads`` lets through: nesting deeper than
    ``max_depth`` (checked first: json recurses), duplicate keys, NaN and Infinity."""
    if json_depth(text) > max_depth:
        raise JsonError(f"JSON nested deeper than {max_depth} levels")
    try:
        import json  # here: most users of this module never parse JSON

        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except JsonError:
        raise
    except ValueError as exc:
        raise JsonError(getattr(exc, "msg", str(exc))) from None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise JsonError(f"duplicate key '{key}'")
        seen.add(key)
    return dict(pairs)


def _no_constant(name: str) -> Any:
    raise JsonError(f"{name} is not a number")
