"""``piranha``: the admin CLI (config check now; status, drain and enable come with lvsd)."""

from __future__ import annotations

import click

from piranha import __version__
from piranha.config import DEFAULT_PATH, LoadResult, load
from piranha.errors import ConfigErrors


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="piranha")
def cli() -> None:
    """Admin tool for a piranha LVS director."""


@cli.command()
@click.argument("file", default=DEFAULT_PATH, metavar="[FILE]")
def check(file: str) -> None:
    """Validate lvs.cf FILE (default /etc/sysconfig/ha/lvs.cf) and print every problem.

    Exits 0 when the file can be loaded (warnings may be printed), 1 when it cannot.
    """
    try:
        result = load(file)
    except ConfigErrors as exc:
        click.echo(exc.report())
        raise SystemExit(1) from None
    for warning in result.warnings:
        click.echo(str(warning))
    click.echo(summary(file, result))


def summary(file: str, result: LoadResult) -> str:
    """One line: OK, with what the file defines."""
    c = result.cluster
    active = c.active_virtuals()
    servers = sum(1 for v in active for s in v.servers if s.active)
    warnings = len(result.warnings)
    what = (f"{len(c.virtuals)} virtual services ({len(active)} active), "
            f"{servers} active real-server entries")
    if c.failovers:
        what += f", {len(c.failovers)} failover services"
    return (f"{file}: OK, service = {c.service.value}, {what}, "
            f"{warnings} warning{'s' if warnings != 1 else ''}")


def main() -> None:
    """Console-script entry point."""
    cli()
