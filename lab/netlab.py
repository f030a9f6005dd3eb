"""A LAN of network namespaces for pulse, lvsd and their real servers: the demo's topology,
shared with the kernel tier's end-to-end tests and the host tier's pulse tests.

Topology: namespace ``<tag>-lan`` holds the bridges (``br0`` public, ``br1`` private); every
member namespace (directors, clients, real servers) gets an ``eth0`` plugged into one of them
with a fixed MAC, so lvs.cf can say ``eth0:1`` in every director. Only 198.51.100.0/24,
10.200.0.0/24 and 2001:db8::/32 are used, inside these namespaces.
:class:`Pulse` runs ``python -m piranha.pulse -n`` in a director namespace with every file
under one folder; its process group holds pulse, lvsd and the nannies, so ``crash`` kills the
whole director at once. Needs root and iproute2.
"""

from __future__ import annotations

import contextlib
import ctypes
import ftplib
import os
import random
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.patience import limit, wait_for

ROOT = Path(__file__).resolve().parents[1]
CLONE_NEWNET = 0x40000000
VIP = "198.51.100.10"


def ip(*args: str, stdin: str | None = None) -> str:
    """Run ``ip ARGS``; return stdout; raise with stderr on failure."""
    proc = subprocess.run(["ip", *args], input=stdin, text=True, capture_output=True,
                          timeout=limit(30), check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@dataclass(frozen=True)
class Netns:
    """A named network namespace (``/run/netns/NAME``)."""

    name: str

    def exec(self, argv: list[str], timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside the namespace (text mode, output captured, no check); the
        limit is scaled (:mod:`lab.patience`): a CLI starts slowly in the emulated VM."""
        return subprocess.run(["ip", "netns", "exec", self.name, *argv], text=True,
                              capture_output=True, timeout=limit(timeout), check=False)

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """Switch this thread into the namespace for the block (sockets made inside stay)."""
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
        try:
            _setns(target)
            # the guard the whole module relies on: we really are in the test namespace
            assert os.stat("/proc/thread-self/ns/net").st_ino == os.fstat(target).st_ino
            yield
        finally:
            _setns(home)
            os.close(target)
            os.close(home)


def delete(ns: Netns) -> None:
    """Delete namespace ``ns`` (quietly: it may not exist)."""
    subprocess.run(["ip", "netns", "delete", ns.name], capture_output=True, check=False)



@dataclass
class Member:
    """One namespace on the LAN: its address on eth0 and the MAC it uses."""

    ns: Netns
    addr: str  # with prefix, e.g. 198.51.100.1/24
    mac: str

    @property
    def ip(self) -> str:
        return self.addr.split("/")[0]


@dataclass
class Lan:
    """The bridge namespace and its members; ``create`` builds it, ``delete`` removes it all."""

    tag: str
    members: dict[str, Member] = field(default_factory=dict)

    @property
    def bridge(self) -> Netns:
        return Netns(f"{self.tag}-lan")

    def add(self, name: str, addr: str, mac: str, extra: list[str] | None = None,
            bridge: str = "br0") -> Member:
        """Create namespace ``name``, eth0 on ``bridge`` (``extra``: more ``ip`` batch lines)."""
        member = Member(Netns(f"{self.tag}-{name}"), addr, mac)
        ip("netns", "add", member.ns.name)
        peer = f"v{len(self.members)}{name[:8]}"
        ip("-n", self.bridge.name, "-batch", "-", stdin="\n".join([
            f"link add {peer} type veth peer name eth0 netns {member.ns.name}",
            f"link set {peer} master {bridge}", f"link set {peer} up", ""]))
        ip("-n", member.ns.name, "-batch", "-", stdin="\n".join([
            "link set lo up", f"link set eth0 address {mac}", f"addr add {addr} dev eth0",
            "link set eth0 up", *(extra or []), ""]))
        sysctl(member.ns, "net.ipv6.conf.all.disable_ipv6=1")
        self.members[name] = member
        return member

    def create(self, bridges: tuple[str, ...] = ("br0",)) -> None:
        """The bridge namespace with ``bridges`` (br0: the public LAN, br1: a private one)."""
        ip("netns", "add", self.bridge.name)
        lines = ["link set lo up"]
        for br in bridges:
            lines += [f"link add {br} type bridge forward_delay 0", f"link set {br} up"]
        ip("-n", self.bridge.name, "-batch", "-", stdin="\n".join([*lines, ""]))

    def plug(self, name: str, bridge: str, ifname: str, addr: str, mac: str,
             extra: list[str] | None = None) -> None:
        """Give member ``name`` another interface ``ifname`` on ``bridge``."""
        member = self.members[name]
        peer = f"w{len(self.members)}{ifname}{name[:6]}"
        ip("-n", self.bridge.name, "-batch", "-", stdin="\n".join([
            f"link add {peer} type veth peer name {ifname} netns {member.ns.name}",
            f"link set {peer} master {bridge}", f"link set {peer} up", ""]))
        ip("-n", member.ns.name, "-batch", "-", stdin="\n".join([
            f"link set {ifname} address {mac}", f"addr add {addr} dev {ifname}",
            f"link set {ifname} up", *(extra or []), ""]))

    def delete(self) -> None:
        for member in self.members.values():
            delete(member.ns)
        delete(self.bridge)

    def __getitem__(self, name: str) -> Member:
        return self.members[name]


SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1


def set_links(ns: Netns, state: str, *devices: str) -> None:
    """Set ``devices`` in ``ns`` "up" or "down" at once, with ioctls from this process: no
    ``ip`` to start and no library to import inside a timed window (each costs seconds in
    the emulated VM)."""
    import fcntl
    import struct
    with ns.entered():
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        for dev in devices:
            req = struct.pack("16sH14x", dev.encode(), 0)
            flags = struct.unpack("16sH14x", fcntl.ioctl(sock, SIOCGIFFLAGS, req))[1]
            flags = flags | IFF_UP if state == "up" else flags & ~IFF_UP
            fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH14x", dev.encode(), flags))


def sysctl(ns: Netns, *settings: str) -> None:
    ns.exec(["sysctl", "-qw", *settings])


def addresses(ns: Netns) -> str:
    """``ip -o addr`` in ``ns``."""
    return ns.exec(["ip", "-o", "addr", "show"]).stdout


def has_vip(ns: Netns, vip: str = VIP) -> bool:
    return f" {vip}/" in addresses(ns)


def neighbour_mac(ns: Netns, address: str) -> str | None:
    """The MAC ``ns`` has for ``address`` in its ARP table (None when it has none)."""
    out = ns.exec(["ip", "neigh", "show", address]).stdout.split()
    return out[out.index("lladdr") + 1] if "lladdr" in out else None


class TcpServer:
    """A TCP listener in ``ns`` on 0.0.0.0:``port``, its accept loop in a thread; a subclass
    answers each connection in :meth:`handle` (on a thread of its own when ``threaded``).
    Subclasses set their own attributes before calling ``__init__``: serving starts there."""

    threaded = False
    backlog = 64

    def __init__(self, ns: Netns, port: int) -> None:
        with ns.entered():
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("0.0.0.0", port))
        self.sock.listen(self.backlog)
        threading.Thread(target=self._serve, daemon=True).start()

    def handle(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self.threaded:
                threading.Thread(target=self.handle, args=(conn,), daemon=True).start()
            else:
                self.handle(conn)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


class NameServer(TcpServer):
    """A TCP server in ``ns`` on 0.0.0.0:``port`` answering every connection with a minimal
    HTTP response whose body is ``name`` (nanny's default check of port 80 expects "HTTP")."""

    def __init__(self, ns: Netns, name: str, port: int = 8080) -> None:
        body = name.encode()
        self.reply = b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        super().__init__(ns, port)

    def handle(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.settimeout(0.5)
            with contextlib.suppress(OSError):
                conn.recv(4096)  # the request, if the client sends one before reading
            conn.sendall(self.reply)


class EchoServer(TcpServer):
    """A TCP echo server in ``ns`` on 0.0.0.0:``port``: long-lived connections for tests of
    connection survival (each connection gets its own thread)."""

    threaded = True

    def __init__(self, ns: Netns, port: int = 7) -> None:
        super().__init__(ns, port)

    def handle(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            while data := conn.recv(4096):
                conn.sendall(data)


def ask(client: Netns, address: str, port: int = 8080, timeout: float = 0.3) -> str | None:
    """Connect from ``client`` to address:port; what the server said, None on failure."""
    with client.entered():
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with sock:
        sock.settimeout(timeout)
        try:
            sock.connect((address, port))
            sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
            reply = b""
            while chunk := sock.recv(4096):
                reply += chunk
        except OSError:
            return None
    head, _, body = reply.partition(b"\r\n\r\n")
    return body.decode() if head.startswith(b"HTTP/1.0 200") and body else None


class Pulse:
    """pulse -n in a director namespace; files (and lvsd's) under ``tmp / name``."""

    def __init__(self, member: Member, tmp: Path, name: str, config: str,
                 args: list[str] | None = None, lvsd_args: list[str] | None = None) -> None:
        self.member, self.name = member, name
        self.dir = tmp / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cf = self.dir / "lvs.cf"
        self.cf.write_text(config)
        self.cf.chmod(0o600)
        self.log = self.dir / "pulse.log"
        self.args, self.lvsd_args = list(args or []), list(lvsd_args or [])
        self.proc: subprocess.Popen[bytes] | None = None
        self.offset = 0  # where the current run's output starts in the log

    @property
    def status_file(self) -> Path:
        return self.dir / "status.json"

    def argv(self, *extra: str) -> list[str]:
        lvsd = [f"--status-file={self.status_file}", f"--control-socket={self.dir}/lvsd.sock",
                f"--state-file={self.dir}/state.json", f"--pidfile={self.dir}/lvs.pid",
                "--reconcile-interval=1", *self.lvsd_args]
        return ["ip", "netns", "exec", self.member.ns.name, sys.executable, "-m",
                "piranha.pulse", "-c", str(self.cf), f"--pidfile={self.dir}/pulse.pid",
                f"--status-file={self.dir}/pulse.status.json",
                *[f"--lvsd-option={a}" for a in lvsd], *self.args, *extra]

    def start(self, *extra: str) -> None:
        self.offset = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.argv("-n", *extra), stdout=out,
                                         stderr=subprocess.STDOUT, cwd=ROOT,
                                         start_new_session=True)

    def state(self) -> dict[str, Any]:
        """pulse's status file ({} when absent)."""
        import json
        try:
            return dict(json.loads((self.dir / "pulse.status.json").read_text()))
        except (OSError, ValueError):
            return {}

    def text(self, run_only: bool = False) -> str:
        """The log; with ``run_only`` just what the current run wrote."""
        with open(self.log, "rb") as f:
            f.seek(self.offset if run_only else 0)
            return f.read().decode(errors="replace")

    def wait_log(self, needle: str, timeout: float) -> float:
        """Wait for ``needle`` in the current run's output."""
        return wait_for(f"{self.name}: {needle!r} in its log",
                        lambda: needle in self.text(run_only=True), timeout)

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait; the exit status (None if it had to be killed)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(limit(timeout))
        except subprocess.TimeoutExpired:
            self.crash()
            return None

    def kill(self) -> None:
        """SIGKILL pulse, lvsd and every nanny (the process group); does not wait."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    def crash(self) -> None:
        """:meth:`kill`, then wait for pulse to be gone, like pulling the plug."""
        if self.proc is None:
            return
        self.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(limit(10))


@contextlib.contextmanager
def running(*pulses: Pulse, diagnose: Callable[[], str] | None = None) -> Iterator[None]:
    """Make sure every pulse is dead when the block ends (SIGKILL of the group); on a failure
    print each pulse's log and ``diagnose()`` first, so the test report says what happened."""
    try:
        yield
    except BaseException:
        for p in pulses:
            print(f"----- {p.name}: {p.log} -----\n{p.text()[-6000:]}")
        if diagnose is not None:
            print(f"----- diagnosis -----\n{diagnose()}")
        raise
    finally:
        for p in pulses:
            p.crash()


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def spoof_udp(ns: Netns, src: str, dst: str, port: int, payload: bytes) -> None:
    """Send one UDP datagram from ``ns`` with a forged source address (a raw IP socket)."""
    import struct
    from ipaddress import IPv4Address
    s, d = IPv4Address(src).packed, IPv4Address(dst).packed
    udp = struct.pack("!HHHH", port, port, 8 + len(payload), 0) + payload
    pseudo = s + d + struct.pack("!BBH", 0, socket.IPPROTO_UDP, len(udp))
    udp = udp[:6] + struct.pack("!H", _checksum(pseudo + udp) or 0xFFFF) + udp[8:]
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64,
                         socket.IPPROTO_UDP, 0, s, d)
    header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
    with ns.entered():
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    with sock:
        sock.sendto(header + udp, (dst, 0))


def payload(name: str, size: int = 65536) -> bytes:
    """The file a server called ``name`` serves: its name, then bytes seeded by the name."""
    return f"{name}\n".encode() + random.Random(name).randbytes(size)


class FtpServer(TcpServer):
    """A tiny FTP server in ``ns`` on 0.0.0.0:21, one thread per session, one file.

    USER, PASS, SYST, PWD, TYPE, PASV, PORT, RETR, QUIT. The welcome line names the server.
    PASV listens on a port of ``passive`` at the control connection's local address (what
    real daemons announce); active data connections come from port 20, as RFC 959 has it and
    as ip_vs_ftp expects (it creates the director's entry for RIP:20 -> client).
    """

    threaded = True
    backlog = 16

    def __init__(self, ns: Any, name: str, files: dict[str, bytes],
                 passive: tuple[int, int] = (10000, 20000)) -> None:
        self.ns, self.name, self.files, self.passive = ns, name, files, passive
        self.log: list[str] = []
        super().__init__(ns, 21)

    def handle(self, conn: socket.socket) -> None:
        """One FTP session."""
        data: socket.socket | None = None  # passive listener
        port: tuple[str, int] | None = None  # active target
        with conn, contextlib.suppress(OSError):
            conn.settimeout(60)
            lines = conn.makefile("rb")
            conn.sendall(f"220 {self.name} ready\r\n".encode())
            for raw in lines:
                cmd, _, arg = raw.decode("latin-1").strip().partition(" ")
                cmd = cmd.upper()
                self.log.append(raw.decode("latin-1").strip())
                if cmd == "QUIT":
                    conn.sendall(b"221 bye\r\n")
                    break
                if cmd == "PASV":
                    if data is not None:
                        data.close()
                    data = self._listen(conn.getsockname()[0])
                    host, pport = data.getsockname()
                    nums = host.replace(".", ",")
                    reply = f"227 Entering Passive Mode ({nums},{pport >> 8},{pport & 255})"
                elif cmd == "PORT":
                    parts = [int(p) for p in arg.split(",")]
                    port = (".".join(map(str, parts[:4])), parts[4] * 256 + parts[5])
                    data, reply = None, "200 PORT ok"
                elif cmd == "RETR":
                    reply = self._retr(conn, arg, data, port)
                    data = port = None
                else:
                    reply = {"USER": "331 password please", "PASS": "230 logged in",
                             "SYST": "215 UNIX Type: L8", "PWD": '257 "/"',
                             "TYPE": "200 type ok"}.get(cmd, "502 not implemented")
                conn.sendall(reply.encode() + b"\r\n")

    def _retr(self, conn: socket.socket, name: str, data: socket.socket | None,
              port: tuple[str, int] | None) -> str:
        content = self.files.get(name)
        if content is None or (data is None and port is None):
            return "550 no such file" if content is None else "425 use PASV or PORT first"
        conn.sendall(b"150 opening data connection\r\n")
        if data is not None:
            with data:
                data.settimeout(20)
                sock, _ = data.accept()
        else:
            assert port is not None
            with self.ns.entered():
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((conn.getsockname()[0], 20))
            sock.settimeout(20)
            sock.connect(port)
        with sock:
            sock.sendall(content)
        return "226 transfer complete"

    def _listen(self, address: str) -> socket.socket:
        with self.ns.entered():
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        while True:
            try:
                sock.bind((address, random.randint(*self.passive)))
            except OSError:
                continue
            sock.listen(1)
            return sock


@dataclass
class Fetched:
    welcome: str  # the server's 220 line
    pasv_host: str | None  # the address the 227 reply announced (passive mode)
    content: bytes


def ftp_fetch(client: Any, address: str, name: str, passive: bool,
              timeout: float = 20) -> Fetched:
    """Log in to address:21 from ``client`` and RETR ``name`` in passive or active mode.

    The client connects to the address the 227 reply names (stdlib ftplib ignores it by
    default), so a passive fetch proves what the director told the client.
    """
    with client.entered():
        ftp = ftplib.FTP(timeout=timeout)
        ftp.trust_server_pasv_ipv4_address = True
        try:
            welcome = ftp.connect(address, 21)
            ftp.login("anonymous", "piranha@")
            ftp.set_pasv(passive)
            host = ftp.makepasv()[0] if passive else None
            chunks: list[bytes] = []
            ftp.retrbinary(f"RETR {name}", chunks.append)
            ftp.quit()
        finally:
            ftp.close()
    return Fetched(welcome, host, b"".join(chunks))
