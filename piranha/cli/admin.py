"""``piranha``: the admin CLI: ``check`` lvs.cf, ``status`` of lvsd, ``drain``/``enable`` a server,
``fwmark-rules`` (a director's firewall marks), ``realserver`` (make this a DR/TUN real server).

``status`` reads the snapshot lvsd writes; ``drain`` and ``enable`` go through lvsd's
root-only control socket, because lvsd owns its entries and would repair a hand-made
``ipvsadm -e`` on its next reconcile. The rules of ``fwmark-rules`` and ``realserver`` are
pure (``piranha/fwmark.py``, ``piranha/realserver.py``); running them happens here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from piranha import __version__, defaults

if TYPE_CHECKING:
    from piranha import firewall
    from piranha import realserver as rsv
    from piranha.config import LoadResult
    from piranha.model import IPAddress
    from piranha.net.rtnl import Rtnl

# Each command imports what it needs when it runs: `piranha status` is called by scripts and
# monitoring many times a minute and must not load the configuration loader, the firewall
# rules or subprocess (see bench/cli_start_bench.py).
DEFAULT_PATH = defaults.CONFIG


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
    from piranha.config import load
    from piranha.errors import ConfigErrors

    try:
        result = load(file)
    except ConfigErrors as exc:
        click.echo(exc.report())
        raise SystemExit(1) from None
    for warning in result.warnings:
        click.echo(str(warning))
    click.echo(summary(file, result))


@cli.command()
@click.option("--status-file", default=defaults.LVSD_STATUS, show_default=True,
              help="snapshot written by lvsd")
@click.option("--json", "as_json", is_flag=True, help="print the snapshot as JSON")
def status(status_file: str, as_json: bool) -> None:
    """Show every virtual service, real server, health, weight, and since when."""
    from piranha.lvsd import status as lvsd_status

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


_SOCKET = click.option("--socket", "socket_path", default=defaults.LVSD_SOCKET,
                       show_default=True, help="lvsd's control socket")


@cli.command()
@click.argument("virtual")
@click.argument("server")
@click.option("--timeout", type=click.FloatRange(min=0), default=defaults.DRAIN_TIMEOUT,
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


@cli.command()
@click.option("--count", type=click.IntRange(min=1), default=None,
              help="exit after this many events")
@_SOCKET
def events(count: int | None, socket_path: str) -> None:
    """Stream lvsd's events as JSON lines: health changes, drains done, reloads, nanny deaths.

    Runs until lvsd stops (or --count events came); for scripts that react to changes
    instead of polling `piranha status`.
    """
    from piranha.lvsd import control

    seen = 0
    try:
        for text in control.watch(socket_path):
            click.echo(text)
            seen += 1
            if count is not None and seen >= count:
                return
    except OSError as exc:
        click.echo(f"piranha: cannot watch lvsd at {socket_path}: {exc}", err=True)
        raise SystemExit(1) from None


def _send(path: str, payload: dict[str, object]) -> None:
    from piranha.lvsd import control

    try:
        answer = control.request(path, payload)
    except OSError as exc:
        click.echo(f"piranha: cannot reach lvsd at {path}: {exc}", err=True)
        raise SystemExit(1) from None
    click.echo(answer.get("message", ""), err=not answer["ok"])
    if not answer["ok"]:
        raise SystemExit(1)


@cli.command("fwmark-rules")
@click.option("-c", "--configfile", default=DEFAULT_PATH, show_default=True, help="lvs.cf")
@click.option("--backend", type=click.Choice(["nft", "iptables"]), default="nft",
              show_default=True, help="rule syntax (and the tool --apply runs)")
@click.option("--passive-ports", default="10000:20000", show_default=True, metavar="LOW:HIGH",
              help="FTP passive data ports to mark; must match the FTP daemons' passive range")
@click.option("--apply", "apply_", is_flag=True,
              help="run the rules (nft -f - / iptables) instead of printing them")
def fwmark_rules(configfile: str, backend: str, passive_ports: str, apply_: bool) -> None:
    """Firewall rules that mark the traffic of every active fwmark virtual server.

    For each one: its VIP and port; for FTP (port 21) also the passive ports and, under
    network = nat, masquerading of the real servers' port-20 traffic (Red Hat's recipe).
    Re-running replaces piranha's own rules (nft tables / iptables chains called piranha).
    """
    from piranha import firewall, fwmark

    try:
        passive = fwmark.parse_range(passive_ports)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--passive-ports'") from None
    result = _load_or_exit(configfile)
    p = fwmark.plan(result.cluster, passive)
    for warning in p.warnings:
        click.echo(f"piranha: warning: {warning}", err=True)
    if backend == "nft":
        script = fwmark.nft_script(p, configfile)
        if not apply_:
            click.echo(script, nl=False)
            return
        _run(["nft", "-f", "-"], script)
        click.echo(f"piranha: nft: {len(p.rules)} rules in tables ip/ip6 {fwmark.TABLE}")
        return
    steps = fwmark.iptables_steps(p)
    if not apply_:
        click.echo(firewall.shell(steps), nl=False)
        return
    _run_steps(steps)


@cli.command()
@click.option("--vip", "vips", multiple=True, metavar="VIP",
              help="a virtual IP address of the LVS (repeatable)")
@click.option("--method", type=click.Choice(["sysctl", "arptables", "redirect"]), default=None,
              help="how the VIP is kept out of ARP  [default: sysctl, or the recorded one]")
@click.option("--backend", type=click.Choice(["nft", "iptables"]), default=None,
              help="rule syntax of arptables/redirect, and the tool run  [default: nft]")
@click.option("--real-ip", default="", metavar="ADDRESS",
              help="arptables: this server's own IPv4 address, shown in ARP instead of a VIP")
@click.option("--undo", is_flag=True,
              help="remove the VIPs (default: every VIP recorded), their rules, restore sysctls")
@click.option("--print", "print_only", is_flag=True,
              help="only print the equivalent commands")
@click.option("--state-file", default=defaults.REALSERVER_STATE, show_default=True,
              help="what was changed, for --undo")
def realserver(vips: tuple[str, ...], method: str | None, backend: str | None, real_ip: str,
               undo: bool, print_only: bool, state_file: str) -> None:
    """Make this machine a direct-routing or tunnel real server for VIP(s).

    sysctl: each VIP on lo as a host address, arp_ignore=1 and arp_announce=2 (all, lo).
    arptables: each VIP on lo, ARP rules that never answer for it nor show it (--real-ip).
    redirect: no VIP here; VIP traffic is redirected to this machine's own address.
    Prints each step; --undo reverts what the state file records.
    """
    from ipaddress import ip_address

    from piranha import realserver as rsv

    try:
        addresses = [ip_address(v) for v in vips]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--vip'") from None
    how = rsv.How(rsv.Method(method or "sysctl"), backend or "nft", real_ip)
    if print_only:
        if not addresses:
            raise click.UsageError("--print needs at least one --vip")
        _realserver_problem(addresses, how, rsv.RealServerState(), undo)
        click.echo("\n".join(rsv.script(addresses, how, undo)))
        return
    state = _read_state(state_file)
    if undo and state.vips:
        if (method or state.how.method) != state.how.method or (
                backend or state.how.backend) != state.how.backend:
            raise click.UsageError(f"{state_file} records {state.how.describe()}; "
                                   "--undo uses that")
        how = state.how
    if undo and not addresses:
        addresses = [ip_address(v) for v in state.vips]
    if not addresses:
        raise click.UsageError("give at least one --vip" + (
            f" (nothing recorded in {state_file})" if undo else ""))
    _realserver_problem(addresses, how, state, undo)
    if undo and not state.vips:
        state = rsv.RealServerState(how=how)  # nothing recorded: undo as the options say
    _realserver_apply(addresses, undo, how, state, state_file)


def _realserver_problem(vips: list[IPAddress], how: rsv.How, state: rsv.RealServerState,
                        undo: bool) -> None:
    """Exit 2 naming the option when ``how`` cannot set up ``vips``."""
    from piranha import realserver as rsv

    why = rsv.problem(vips, how, state) if not undo else None
    if why is not None:
        raise click.UsageError(why)


def _realserver_apply(vips: list[IPAddress], undo: bool, how: rsv.How,
                      state: rsv.RealServerState, state_file: str) -> None:
    from piranha import realserver as rsv
    from piranha.errors import PiranhaError
    from piranha.net.rtnl import Rtnl

    after: rsv.RealServerState | None = state
    try:
        sysctls = {name: _sysctl_path(name).read_text().strip() for name in rsv.SYSCTLS}
        with Rtnl() as rtnl:
            on_lo = {a.address for a in rtnl.addresses() if a.device == rsv.DEVICE}
            if undo:
                actions, after = rsv.undo(vips, on_lo, sysctls, state)
            else:
                actions, after = rsv.setup(vips, on_lo, sysctls, state, how)
            for action in actions:
                _realserver_do(rtnl, action)
    except (OSError, PiranhaError) as exc:
        click.echo(f"piranha: realserver: {exc}", err=True)
        # keep what was changed before the failure, so that --undo can still revert it
        _write_state(state_file, after if not undo else state)
        raise SystemExit(1) from None
    except SystemExit:
        _write_state(state_file, after if not undo else state)  # a firewall command failed
        raise
    _write_state(state_file, after)


def _realserver_do(rtnl: Rtnl, action: rsv.Action) -> None:
    """Echo one action of ``piranha realserver`` and carry it out."""
    from piranha import realserver as rsv

    if isinstance(action, rsv.FirewallStep):
        _run_steps([action.step])  # echoes the command itself
        return
    was = f" (was {action.was})" if isinstance(action, rsv.SetSysctl) else ""
    click.echo(f"piranha: {action.command()}{was}")
    if isinstance(action, rsv.SetSysctl):
        _sysctl_path(action.name).write_text(action.value + "\n")
    elif isinstance(action, rsv.NftScript):
        _run(["nft", "-f", "-"], action.script)
    elif isinstance(action, rsv.AddVip):
        rtnl.add_address(rsv.DEVICE, action.vip, rsv.prefix(action.vip),
                         rsv.LABEL if action.vip.version == 4 else None)
    elif isinstance(action, rsv.RemoveVip):
        rtnl.remove_address(rsv.DEVICE, action.vip, rsv.prefix(action.vip))


@cli.command("ipvsadm-alias")
@click.option("--undo", is_flag=True, help="remove the alias (only if it is ours)")
@click.option("--dir", "folder", default="/usr/local/sbin", show_default=True,
              help="where the ipvsadm name goes (before /usr/sbin in root's PATH)")
@click.option("--target", default=None, metavar="PATH",
              help="the piranha-ipvsadm to point at (default: the one beside this piranha)")
def ipvsadm_alias(undo: bool, folder: str, target: str | None) -> None:
    """Install piranha-ipvsadm as `ipvsadm` (a symlink in DIR), for tools that call ipvsadm.

    Never replaces a file that is not this symlink; --undo removes only this symlink.
    """
    link = Path(folder) / "ipvsadm"
    want = Path(target) if target else _beside_me("piranha-ipvsadm")
    ours = link.is_symlink() and Path(os.readlink(link)).name == "piranha-ipvsadm"
    try:
        if undo:
            if not link.is_symlink() and not link.exists():
                click.echo(f"piranha: {link}: no alias installed")
            elif not ours:
                raise click.ClickException(f"{link} is not piranha's alias: left alone")
            else:
                link.unlink()
                click.echo(f"piranha: removed {link}")
            return
        if link.exists() or link.is_symlink():
            if not ours:
                raise click.ClickException(f"{link} exists and is not piranha's alias: "
                                           "remove it yourself if piranha should take its name")
            link.unlink()
        if not want.exists():
            raise click.ClickException(f"no piranha-ipvsadm at {want} (give --target)")
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(want)
        click.echo(f"piranha: {link} -> {want}")
    except OSError as exc:
        raise click.ClickException(f"{link}: {exc}") from None


def _beside_me(name: str) -> Path:
    """The console script ``name`` installed next to this ``piranha``."""
    import shutil
    import sys

    beside = Path(sys.argv[0]).resolve().parent / name
    found = shutil.which(name)
    return beside if beside.exists() or found is None else Path(found)


def _sysctl_path(name: str) -> Path:
    return Path("/proc/sys", *name.split("."))


def _read_state(path: str) -> rsv.RealServerState:
    from piranha import realserver as rsv

    try:
        return rsv.RealServerState.loads(Path(path).read_text())
    except FileNotFoundError:
        return rsv.RealServerState()
    except (OSError, ValueError) as exc:
        click.echo(f"piranha: realserver: cannot read state file {path}: {exc}", err=True)
        raise SystemExit(1) from None


def _write_state(path: str, state: rsv.RealServerState | None) -> None:
    """Save ``state`` atomically (None: remove the file)."""
    target = Path(path)
    try:
        if state is None:
            target.unlink(missing_ok=True)
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(state.dumps())
        tmp.replace(target)
    except OSError as exc:
        click.echo(f"piranha: realserver: cannot write state file {path}: {exc}", err=True)
        raise SystemExit(1) from None


def _run_steps(steps: Sequence[firewall.Step]) -> None:
    """Run firewall ``steps`` in order, each echoed; exit 1 at the first that fails."""
    from piranha import firewall

    for step in steps:
        click.echo(f"piranha: {firewall.shell([step])}", nl=False)
        if step.fallback is None or not _run(step.argv, quiet=True):
            _run(step.fallback or step.argv)


def _run(argv: Sequence[str], stdin: str | None = None, quiet: bool = False) -> bool:
    """Run ``argv``; True if it succeeded. Unless ``quiet``, a failure exits 1 with its stderr."""
    import subprocess

    try:
        proc = subprocess.run(list(argv), input=stdin, text=True, capture_output=True,
                              check=False, timeout=60)
    except FileNotFoundError:
        package = {"nft": "nftables", "arptables": "arptables"}.get(argv[0], "iptables")
        click.echo(f"piranha: cannot run {argv[0]}: command not found (install {package})",
                   err=True)
        raise SystemExit(1) from None
    if proc.returncode == 0 or quiet:
        return proc.returncode == 0
    click.echo(f"piranha: {' '.join(argv)} failed (exit {proc.returncode}):", err=True)
    click.echo((proc.stderr or proc.stdout).rstrip(), err=True)
    raise SystemExit(1)


def _load_or_exit(file: str) -> LoadResult:
    from piranha.config import load
    from piranha.errors import ConfigErrors

    try:
        return load(file)
    except ConfigErrors as exc:
        click.echo(exc.report(), err=True)
        raise SystemExit(1) from None


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


if __name__ == "__main__":
    main()
