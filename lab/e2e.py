"""Helpers of the end-to-end forwarding tests: a LAN of namespaces with a director running lvsd,
real servers, clients; small servers (name, hold, FTP); an ARP probe; the IPVS connection table.

Topology (``lab.netlab.Lan``): bridge br0 is the public LAN (198.51.100.0/24:
director .1 with the VIP .10 as eth0:1, clients), br1 the private one (10.200.0.0/24:
director .1 as the NAT gateway, real servers .11/.12). Direct routing and tunnel put the real
servers on br0 (.11/.12). Only these ranges are used, inside namespaces made here.
"""

from __future__ import annotations

import contextlib
import ftplib
import os
import socket
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any, TypeVar

from lab.lvsd import Lvsd, close_tables, weights
from lab.netlab import (  # noqa: F401
    Fetched,
    FtpServer,
    Lan,
    NameServer,
    TcpServer,
    ask,
    ftp_fetch,
    neighbour_mac,
    payload,
    sysctl,
)
from lab.patience import limit, wait_for

VIP = "198.51.100.10"
D_MAC, C_MAC = "02:00:00:00:0e:01", "02:00:00:00:0e:64"
RS_MAC = {1: "02:00:00:00:0e:11", 2: "02:00:00:00:0e:12"}
T = TypeVar("T")
PIRANHA = str(Path(sys.executable).with_name("piranha"))  # the console script of the venv


def config(network: str, virtuals: str) -> str:
    """A director's lvs.cf: ``network`` and the given virtual blocks."""
    return f"primary = 198.51.100.1\nservice = lvs\nnetwork = {network}\n{virtuals}"


def virtual(name: str, port: int, servers: list[str], extra: str = "") -> str:
    """A virtual block on the VIP with fast checks (timeout 1, reentry 2) and rr."""
    blocks = "".join(f"    server rs{n} {{\n        address = {a}\n        active = 1\n    }}\n"
                     for n, a in enumerate(servers, 1))
    return (f"virtual {name} {{\n    active = 1\n    address = {VIP} eth0:1\n    port = {port}\n"
            f"    scheduler = rr\n    timeout = 1\n    reentry = 2\n{extra}{blocks}}}\n")


_SERVERS: list[Any] = []


def serve(server: T) -> T:
    """Register a test server (anything with ``close()``) to be closed with the LAN."""
    _SERVERS.append(server)
    return server


@contextlib.contextmanager
def lan(bridges: tuple[str, ...] = ("br0",)) -> Iterator[Lan]:
    """An empty LAN (bridges only); it, and the servers given to :func:`serve`, are deleted
    afterwards (an open socket would keep its namespace alive)."""
    net = Lan(f"pe{os.getpid() % 10000}{uuid.uuid4().hex[:4]}")
    try:
        net.create(bridges)
        yield net
    finally:
        while _SERVERS:
            _SERVERS.pop().close()
        close_tables()
        net.delete()


def add_director(net: Lan, nat: bool) -> None:
    """Director ``d``: 198.51.100.1 + the VIP on br0; under NAT 10.200.0.1 on br1, forwarding."""
    net.add("d", "198.51.100.1/24", D_MAC, [f"addr add {VIP}/32 dev eth0 label eth0:1"])
    if nat:
        net.plug("d", "br1", "eth1", "10.200.0.1/24", "02:00:00:00:0f:01")
        sysctl(net["d"].ns, "net.ipv4.ip_forward=1")


def add_nat_servers(net: Lan) -> None:
    """rs1, rs2 on br1 (10.200.0.11, .12), default route via the director."""
    for n in (1, 2):
        net.add(f"rs{n}", f"10.200.0.1{n}/24", RS_MAC[n], ["route add default via 10.200.0.1"],
                bridge="br1")


def start_lvsd(net: Lan, tmp: Path, cf: str, dests: int) -> Lvsd:
    """lvsd in ``d``; returns once ``dests`` real servers are in its table."""
    lvsd = Lvsd(net["d"].ns, tmp, cf)
    lvsd.start()
    wait_for(f"{dests} real servers in the table", lambda: len(weights(net["d"].ns)) == dests,
             90)
    return lvsd


def piranha_argv(ns: Any, *args: str) -> list[str]:
    """argv of the ``piranha`` admin command run inside namespace ``ns``."""
    return ["ip", "netns", "exec", ns.name, PIRANHA, *args]


def piranha(ns: Any, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the ``piranha`` admin command inside namespace ``ns`` (output captured)."""
    return subprocess.run(piranha_argv(ns, *args), text=True, capture_output=True,
                          timeout=limit(timeout), check=False)


def make_realservers(net: Lan, tmp: Path, vip: str = VIP,
                     options: dict[int, list[str]] | None = None) -> None:
    """``piranha realserver --vip VIP`` in rs1 and rs2 (concurrently: each start is slow),
    with each one's extra ``options`` (``--method`` ...)."""
    extra = options or {}
    procs = {n: subprocess.Popen(
        piranha_argv(net[f"rs{n}"].ns, "realserver", "--vip", vip, "--state-file",
                     str(tmp / f"rs{n}.json"), *extra.get(n, [])),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for n in (1, 2)}
    for n, proc in procs.items():
        out, _ = proc.communicate(timeout=limit(120))
        print(f"rs{n}: piranha realserver --vip {vip} {' '.join(extra.get(n, []))}:\n{out}")
        assert proc.returncode == 0, out
        if "redirect" not in extra.get(n, []):
            assert f"ip addr add {vip}/32 dev lo label lo:piranha" in out


def sysctls(ns: Any, *names: str) -> list[str]:
    """Current values of sysctls ``names`` in ``ns``."""
    return ns.exec(["sysctl", "-n", *names]).stdout.split()


def diagnosis(net: Lan, lvsd: Lvsd | None = None) -> str:
    """Tables, addresses, routes, neighbours, firewall and lvsd's log, for a failed test."""
    out = [f"## lvsd log\n{lvsd.log()[-4000:]}"] if lvsd and lvsd.logs else []
    for name, member in net.members.items():
        cmds = [["ip", "-o", "addr"], ["ip", "route"], ["ip", "neigh"]]
        if name == "d":
            cmds += [["ipvsadm", "-Ln"], ["ipvsadm", "-Lnc"]]
        cmds += [["nft", "list", "ruleset"]]
        for cmd in cmds:
            r = member.ns.exec(cmd)
            out.append(f"## {name}: {' '.join(cmd)}\n{r.stdout}{r.stderr}")
    return "\n".join(out)


@contextlib.contextmanager
def explained(net: Lan, lvsd: Callable[[], Lvsd | None]) -> Iterator[None]:
    """On a failure inside the block print :func:`diagnosis` first; always stop lvsd."""
    try:
        yield
    except BaseException:
        print(diagnosis(net, lvsd()))
        raise
    finally:
        running = lvsd()
        if running is not None and running.proc is not None:
            running.stop()


# ---- servers and clients --------------------------------------------------------------------

class HoldServer(TcpServer):
    """In ``ns`` on 0.0.0.0:``port``: say ``name``, then hold the connection until the client
    ends it (so that a client's RST leaves IPVS's entry in CLOSE: 10 s, not TIME_WAIT: 2 min)."""

    threaded = True

    def __init__(self, ns: Any, name: str, port: int) -> None:
        self.name = name.encode()
        super().__init__(ns, port)

    def handle(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.sendall(self.name)
            conn.settimeout(30)
            while conn.recv(64):
                pass


def ask_from(client: Any, source: str, address: str, port: int, timeout: float = 2.0) -> str:
    """Connect from ``source`` in ``client`` to address:port, read the name, end with a RST."""
    with client.entered():
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.settimeout(timeout)
        sock.bind((source, 0))
        sock.connect((address, port))
        return sock.recv(64).decode()


def pasv_reply(client: Any, address: str) -> str:
    """The address the 227 reply to PASV names, as a client logged in at address:21 sees it."""
    with client.entered():
        ftp = ftplib.FTP(timeout=20)
        try:
            ftp.connect(address, 21)
            ftp.login("anonymous", "piranha@")
            ftp.trust_server_pasv_ipv4_address = True
            host = ftp.makepasv()[0]
            ftp.quit()
        finally:
            ftp.close()
    return str(host)


def nft(ns: Any, script: str) -> None:
    """Load an nft script in ``ns`` (AssertionError with nft's message if it fails)."""
    r = subprocess.run(["ip", "netns", "exec", ns.name, "nft", "-f", "-"], input=script,
                       text=True, capture_output=True, timeout=limit(60), check=False)
    assert r.returncode == 0, r.stderr


# ---- ARP and the IPVS connection table ------------------------------------------------------

def _arp_heard(ns: Any, ifname: str, start: Callable[[socket.socket], object],
               listen: float) -> Iterator[tuple[int, bytes, bytes]]:
    """(op, sender MAC, sender IP) of each ARP frame ``ns`` hears on ``ifname`` from the moment
    ``start`` ran (given the bound socket) until ``listen`` seconds after."""
    with ns.entered():
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
    with sock:
        sock.bind((ifname, 0x0806))
        sock.settimeout(0.05)
        start(sock)
        deadline = time.monotonic() + listen
        while time.monotonic() < deadline:
            try:
                got = sock.recv(128)
            except TimeoutError:
                continue
            yield struct.unpack("!H6s4s", got[20:32])


def arp_answers(ns: Any, ifname: str, mac: str, source: str, target: str,
                listen: float = 1.0) -> set[str]:
    """Send one ARP request for ``target`` from ``ns``'s ``ifname``; the MACs that answered."""
    own = bytes.fromhex(mac.replace(":", ""))
    frame = (b"\xff" * 6 + own + struct.pack("!H", 0x0806)
             + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + own + IPv4Address(source).packed
             + b"\0" * 6 + IPv4Address(target).packed)
    heard = _arp_heard(ns, ifname, lambda sock: sock.send(frame.ljust(60, b"\0")), listen)
    return {sha.hex(":") for op, sha, spa in heard
            if op == 2 and spa == IPv4Address(target).packed}


def arp_request_sources(ns: Any, ifname: str, trigger: Callable[[], object],
                        listen: float = 1.0) -> set[str]:
    """Sender addresses of the ARP requests ``ns`` sees on ``ifname`` while ``trigger`` runs
    (and ``listen`` seconds after)."""
    heard = _arp_heard(ns, ifname, lambda _sock: trigger(), limit(listen))
    return {str(IPv4Address(spa)) for op, _, spa in heard if op == 1}


@dataclass(frozen=True)
class Conn:
    """One entry of /proc/net/ip_vs_conn (a persistence template has cport 0, state NONE)."""

    proto: str
    client: str
    cport: int
    vaddr: str
    vport: int
    daddr: str
    dport: int
    state: str


def connections(ns: Any) -> list[Conn]:
    """The IPVS connection table of ``ns`` (read in-process: cheap enough to poll)."""
    with ns.entered():
        text = Path("/proc/thread-self/net/ip_vs_conn").read_text()
    out = []
    for line in text.splitlines()[1:]:
        f = line.split()
        addr = [str(IPv4Address(int(f[i], 16))) for i in (1, 3, 5)]
        out.append(Conn(f[0], addr[0], int(f[2], 16), addr[1], int(f[4], 16), addr[2],
                        int(f[6], 16), f[7]))
    return out
