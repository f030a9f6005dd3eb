"""The command ipvsadm builds while parsing (``ipvs_command_entry``), and how parsing stops.

:class:`Exit` carries ipvsadm's exit status and the exact text for stdout/stderr; ``fail``
and ``tryhelp`` build the two kinds ipvsadm uses (``fail()`` and ``tryhelp_exit()``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from piranha.errors import PiranhaError
from piranha.ipvs.types import IPAddress
from piranha.ipvsadm.values import INT_MAX, Endpoint

MAX_TIMEOUT = 86400 * 31
PERSISTENT_TIMEOUT = 360
#: Debian's build lets -w go up to INT_MAX (upstream: 65535)
MAX_WEIGHT = INT_MAX
MASQ, LOCAL, TUNNEL, ROUTE = 0, 1, 2, 3
PROTO_OF_TAG = {"t": 6, "u": 17, "sctp": 132}


class Exit(PiranhaError):
    """Stop with ``status``, after writing ``stdout`` and ``stderr`` (each complete text)."""

    def __init__(self, status: int, stderr: str = "", stdout: str = ""):
        super().__init__(stderr or stdout)
        self.status, self.stderr, self.stdout = status, stderr, stdout


class PoptFailure(Exit):
    """A popt error after the command: ipvsadm returns -1 instead of exiting (-R goes on)."""


def fail(message: str) -> Exit:
    """ipvsadm's ``fail(2, ...)``."""
    return Exit(2, message + "\n")


def tryhelp(prog: str) -> Exit:
    """ipvsadm's ``tryhelp_exit(prog, -1)``."""
    return Exit(255, f"Try `{prog} -h' or '{prog} --help' for more information.\n")


@dataclass
class Svc(Endpoint):
    """ipvsadm's ``ipvs_service_t`` while parsing."""

    protocol: int = 0
    fwmark: int = 0
    sched: str = ""
    flags: int = 0
    timeout: int = 0
    pe: str = ""


@dataclass
class DestSpec:
    """ipvsadm's ``ipvs_dest_t`` while parsing."""

    af: int = 0
    addr: IPAddress | None = None
    port: int = 0
    fwd: int = ROUTE
    weight: int = 1
    u_threshold: int = 0
    l_threshold: int = 0
    tun_type: int = 0
    tun_port: int = 0
    tun_flags: int = 0


@dataclass
class DaemonSpec:
    """ipvsadm's ``ipvs_daemon_t`` while parsing."""

    state: int = 0
    mcast_ifn: str = ""
    syncid: int = 0
    sync_maxlen: int = 0
    mcast_group: IPAddress | None = None
    mcast_port: int = 0
    mcast_ttl: int = 0


@dataclass
class Command:
    """One parsed command line (``ipvs_command_entry`` + options + format)."""

    cmd: str = ""
    options: set[str] = field(default_factory=set)
    svc: Svc = field(default_factory=Svc)
    dest: DestSpec = field(default_factory=DestSpec)
    daemon: DaemonSpec = field(default_factory=DaemonSpec)
    timeouts: tuple[int, int, int] = (0, 0, 0)
    sched_flags_arg: str = ""

    def has(self, option: str) -> bool:
        """Whether ``option`` (internal name) was given."""
        return option in self.options
