"""Shared command-line handling of the four daemons (Piranha's popt options)."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys

from piranha import __version__
from piranha.config import DEFAULT_PATH, LoadResult, load
from piranha.errors import ConfigErrors


def parser(prog: str, description: str, piranha_version: str) -> argparse.ArgumentParser:
    """An argument parser with the options every Piranha daemon accepts."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("-c", "--configfile", default=DEFAULT_PATH, metavar="FILE",
                   help=f"lvs.cf to use (default {DEFAULT_PATH})")
    p.add_argument("-n", "--nodaemon", action="store_true", help="stay in the foreground")
    p.add_argument("-t", "--test-start", action="store_true",
                   help="check the configuration and show what would run, touch nothing")
    p.add_argument("-v", "--verbose", action="store_true", help="verbose logging")
    p.add_argument("--version", action="version",
                   version=f"{piranha_version} (piranha {__version__})")
    return p


def load_or_exit(path: str, prog: str) -> LoadResult:
    """The loaded config at ``path``; on errors print them all to stderr and exit 1."""
    try:
        result = load(path)
    except ConfigErrors as exc:
        print(f"{prog}: cannot use {path}:", file=sys.stderr)
        print(exc.report(), file=sys.stderr)
        raise SystemExit(1) from None
    for warning in result.warnings:
        print(warning, file=sys.stderr)
    return result


def daemonize(nofork: bool) -> None:
    """Detach: fork (unless ``nofork``), new session, stdio to /dev/null."""
    if not nofork and os.fork():
        os._exit(0)
    with contextlib.suppress(OSError):
        os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


def write_pidfile(path: str, prog: str) -> None:
    """Write our pid to ``path`` (a failure is reported, not fatal: Piranha's behaviour)."""
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w", encoding="ascii") as f:
            f.write(f"{os.getpid()}\n")
    except OSError as exc:
        print(f"{prog}: cannot write pid file {path}: {exc}", file=sys.stderr)
