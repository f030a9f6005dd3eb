"""``piranha``: the admin CLI: ``check`` lvs.cf, ``status`` of lvsd, ``drain``/``enable`` a server.

``status`` reads the snapshot lvsd writes; ``drain`` and ``enable`` go through lvsd's
root-only control socket, because lvsd owns its entries and would repair a hand-made
``ipvsadm -e`` on its next reconcile.
"""

from __future__ import annotations

import os

import click

from piranha import __version__
from piranha.config import DEFAULT_PATH, LoadResult, load
from piranha.errors import ConfigErrors
from piranha.lvsd import control
from piranha.lvsd import status as lvsd_status


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


@cli.command()
@click.option("--status-file", default=lvsd_status.DEFAULT_PATH, show_default=True,
              help="snapshot written by lvsd")
@click.option("--json", "as_json", is_flag=True, help="print the snapshot as JSON")
def status(status_file: str, as_json: bool) -> None:
    """Show every virtual service, real server, health, weight, and since when."""
    try:
        snap = lvsd_status.read(status_file)
    except (OSError, ValueError) as exc:
        click.echo(f"piranha: no lvsd status at {status_file}: {exc}", err=True)
        raise SystemExit(1) from None
    if as_json:
        import json
        click.echo(json.dumps(snap, indent=1, sort_keys=True))
    else:
        click.echo(lvsd_status.render(snap))
    if not os.path.exists(f"/proc/{snap['pid']}"):
        click.echo(f"piranha: lvsd pid {snap['pid']} is not running: this snapshot is stale",
                   err=True)
        raise SystemExit(3)


_SOCKET = click.option("--socket", "socket_path", default=control.DEFAULT_PATH,
                       show_default=True, help="lvsd's control socket")


@cli.command()
@click.argument("virtual")
@click.argument("server")
@click.option("--timeout", type=click.FloatRange(min=0), default=control.DRAIN_TIMEOUT,
              show_default=True, help="remove the entry after this many seconds at the latest")
@_SOCKET
def drain(virtual: str, server: str, timeout: float, socket_path: str) -> None:
    """Take SERVER of VIRTUAL out gracefully: weight 0 now, removed at zero connections.

    VIRTUAL is a virtual name (or VIP:PORT, or the fwmark); SERVER a server name or address.
    The server stays out (across lvsd restarts) until `piranha enable`.
    """
    _send(socket_path, {"cmd": "drain", "virtual": virtual, "server": server,
                        "timeout": timeout})


@cli.command()
@click.argument("virtual")
@click.argument("server")
@_SOCKET
def enable(virtual: str, server: str, socket_path: str) -> None:
    """Undo `piranha drain`: SERVER of VIRTUAL goes back under health control."""
    _send(socket_path, {"cmd": "enable", "virtual": virtual, "server": server})


def _send(path: str, payload: dict[str, object]) -> None:
    try:
        answer = control.request(path, payload)
    except OSError as exc:
        click.echo(f"piranha: cannot reach lvsd at {path}: {exc}", err=True)
        raise SystemExit(1) from None
    click.echo(answer.get("message", ""), err=not answer["ok"])
    if not answer["ok"]:
        raise SystemExit(1)


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
