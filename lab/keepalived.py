"""keepalived 2.2.7 (Debian 12's package) as the peer of the benchmarks: its configuration, and
one instance per network namespace.

* :func:`director_config`: one VRRP instance on eth0 carrying the VIP and the NAT router
  address (the second VIP of the same instance, as keepalived users do it), unicast peers,
  ``state BACKUP`` + ``nopreempt`` on both directors (the director that comes back stays
  backup, like pulse), the IPVS sync daemon on eth1, and one NAT ``virtual_server`` with a
  ``TCP_CHECK`` per real server;
* :func:`checker_config`: virtual servers only (the reload benchmark runs keepalived ``-C``);
* :class:`Keepalived`: ``ip netns exec NS keepalived -n -l -D -f CONF`` with its three pid
  files under the instance's own folder (so two instances share one machine), in a process
  group of its own so ``crash`` kills the parent, the VRRP and the checker children at once.

Why unicast VRRP: adverts then go straight to the partner like pulse's heartbeats, and the
bench does not depend on multicast across the lab's bridge (multicast works there too).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lab.patience import limit

KEEPALIVED = "keepalived"


@dataclass(frozen=True)
class Vrrp:
    """The VRRP side of one director."""

    router_id: str
    src: str  # this director's eth0 address
    peer: str  # the partner's eth0 address
    priority: int
    advert_int: float
    version: int  # 2 (integer seconds only) or 3 (centiseconds)
    vips: Sequence[tuple[str, str, str]]  # (address/prefix, device, label)
    sync_iface: str | None = "eth1"


@dataclass(frozen=True)
class Check:
    """A TCP_CHECK: what piranha's nanny does for a non-HTTP port (connect, close)."""

    delay_loop: float
    connect_timeout: float
    retry: int = 0  # keepalived's default is 1 (then delay_before_retry, default 1 s)
    delay_before_retry: float = 1.0
    warmup: float | None = None  # keepalived's default: random, up to delay_loop


def _num(value: float) -> str:
    return f"{value:g}"


def virtual_servers(services: Sequence[tuple[str, int]], reals: Sequence[tuple[str, int]],
                    check: Check, weights: dict[tuple[int, int], int] | None = None,
                    scheduler: str = "wlc") -> str:
    """``virtual_server`` blocks: every service in front of every real server (NAT)."""
    weights = weights or {}
    out = []
    for i, (vip, vport) in enumerate(services):
        out += [f"virtual_server {vip} {vport} {{", f"    delay_loop {_num(check.delay_loop)}",
                f"    lb_algo {scheduler}", "    lb_kind NAT", "    protocol TCP"]
        for j, (rip, rport) in enumerate(reals):
            out += [f"    real_server {rip} {rport} {{",
                    f"        weight {weights.get((i, j), 1)}",
                    "        TCP_CHECK {",
                    f"            connect_timeout {_num(check.connect_timeout)}",
                    f"            retry {check.retry}",
                    f"            delay_before_retry {_num(check.delay_before_retry)}"]
            if check.warmup is not None:
                out.append(f"            warmup {_num(check.warmup)}")
            out += ["        }", "    }"]
        out.append("}")
    return "\n".join(out) + "\n"


def director_config(vrrp: Vrrp, services: Sequence[tuple[str, int]],
                    reals: Sequence[tuple[str, int]], check: Check) -> str:
    """keepalived.conf of one director: VRRP instance VI_1 + the virtual servers."""
    sync = f"    lvs_sync_daemon {vrrp.sync_iface} VI_1\n" if vrrp.sync_iface else ""
    vips = "\n".join(f"        {a} dev {d} label {lab}" for a, d, lab in vrrp.vips)
    return f"""\
global_defs {{
    router_id {vrrp.router_id}
    vrrp_version {vrrp.version}
{sync}}}

vrrp_instance VI_1 {{
    state BACKUP
    nopreempt
    interface eth0
    virtual_router_id 51
    priority {vrrp.priority}
    advert_int {_num(vrrp.advert_int)}
    unicast_src_ip {vrrp.src}
    unicast_peer {{
        {vrrp.peer}
    }}
    virtual_ipaddress {{
{vips}
    }}
}}

{virtual_servers(services, reals, check)}"""


def checker_config(services: Sequence[tuple[str, int]], reals: Sequence[tuple[str, int]],
                   check: Check, weights: dict[tuple[int, int], int] | None = None) -> str:
    """keepalived.conf with virtual servers only (run with ``-C``)."""
    return ("global_defs {\n    router_id bench\n}\n\n"
            + virtual_servers(services, reals, check, weights))


class Keepalived:
    """One keepalived in namespace ``ns``; every file under ``folder``."""

    def __init__(self, ns_name: str, folder: Path, config: str,
                 extra: Sequence[str] = ()) -> None:
        self.ns_name = ns_name
        self.dir = folder
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf = self.dir / "keepalived.conf"
        self.conf.write_text(config)
        self.log = self.dir / "keepalived.log"
        self.extra = list(extra)
        self.proc: subprocess.Popen[bytes] | None = None
        self.offset = 0

    def argv(self) -> list[str]:
        return ["ip", "netns", "exec", self.ns_name, KEEPALIVED, "-n", "-l", "-D",
                "-f", str(self.conf), "-p", str(self.dir / "keepalived.pid"),
                "-r", str(self.dir / "vrrp.pid"), "-c", str(self.dir / "checkers.pid"),
                *self.extra]

    def start(self) -> None:
        self.offset = self.log.stat().st_size if self.log.exists() else 0
        for pid in ("keepalived.pid", "vrrp.pid", "checkers.pid"):
            with contextlib.suppress(FileNotFoundError):
                (self.dir / pid).unlink()
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.argv(), stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def text(self, run_only: bool = True) -> str:
        with open(self.log, "rb") as f:
            f.seek(self.offset if run_only else 0)
            return f.read().decode(errors="replace")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def reload(self) -> None:
        """SIGHUP to the parent, which re-reads the file and reloads its children."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait (keepalived removes its VIPs and virtual servers)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(limit(timeout))
        except subprocess.TimeoutExpired:
            self.crash()
            return None

    def crash(self) -> None:
        """SIGKILL the parent and both children (the process group)."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(limit(10))
