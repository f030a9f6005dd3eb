"""lvs.cf: load (text -> frozen ``Cluster``, every error located) and render (``Cluster`` -> text).

    result = loads(text, "lvs.cf")      # raises ConfigErrors listing every problem
    result.cluster, result.warnings
    render(result.cluster)             # canonical lvs.cf in the layout Piranha's GUI wrote
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from piranha import defaults
from piranha.config.build import Builder
from piranha.config.lexer import tokenize
from piranha.config.parser import parse
from piranha.config.render import render
from piranha.config.values import Context, Resolver, SystemResolver
from piranha.errors import ConfigError, ConfigErrors
from piranha.model import Cluster

__all__ = ["DEFAULT_PATH", "LoadResult", "Resolver", "SystemResolver", "load", "loads", "render"]

DEFAULT_PATH = defaults.CONFIG
#: characters escaped in messages so that a report can always be printed
_UNPRINTABLE = re.compile("[\x00-\x08\x0a-\x1f\x7f\udc80-\udcff]")


@dataclass(frozen=True)
class LoadResult:
    """A loaded configuration and the warnings about it."""

    cluster: Cluster
    warnings: tuple[ConfigError, ...] = ()


def loads(text: str | bytes, filename: str = "lvs.cf",
          resolver: Resolver | None = None) -> LoadResult:
    """Parse and validate lvs.cf ``text``; raise ``ConfigErrors`` with every error found."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "surrogateescape")
    if text == "":
        raise ConfigErrors([ConfigError(filename, 0, 0, "empty configuration file")])
    lines, errors = tokenize(text, filename)
    root, syntax_errors = parse(lines, filename)
    builder = Builder(filename, Context(resolver or SystemResolver()))
    cluster = builder.cluster(root)
    errors = [_printable(e) for e in errors + syntax_errors + builder.errors]
    warnings = sorted(map(_printable, builder.warnings), key=lambda w: (w.line, w.column))
    if errors:
        raise ConfigErrors(sorted(errors, key=lambda e: (e.line, e.column)), warnings)
    return LoadResult(cluster, tuple(warnings))


def _printable(error: ConfigError) -> ConfigError:
    """``error`` with control characters and undecodable bytes of its message escaped."""
    if not _UNPRINTABLE.search(error.message):
        return error
    return replace(error, message=_UNPRINTABLE.sub(_escape, error.message))


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if "\udc80" <= char <= "\udcff":
        return f"\\x{ord(char) - 0xdc00:02x}"  # the byte surrogateescape stood for
    return f"\\x{ord(char):02x}"


def load(path: str = DEFAULT_PATH, resolver: Resolver | None = None) -> LoadResult:
    """Read and load the file at ``path``; an unreadable file is a ``ConfigErrors`` too."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ConfigErrors([ConfigError(path, 0, 0, f"cannot read file: {exc.strerror}")]) \
            from None
    return loads(data, path, resolver)
