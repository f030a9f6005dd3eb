"""Helpers of the lvsd kernel tests: real servers in a namespace, an lvsd process, the table.

* :class:`Listener`: a TCP server (thread) whose socket lives in a namespace; ``stop()``
  closes it (new connections are refused at once), ``start()`` opens it again;
* :class:`Lvsd`: ``ip netns exec NS python -m piranha.lvs -n ...`` with every file under the
  test's tmp_path, its stdout in a log file, a 1 s reconcile timer;
* :func:`table`: the namespace's IPVS table as ``ipvsadm -Sn`` lines (NetlinkIpvs, in-process,
  cheap enough to poll every 50 ms); :func:`wait_for` polls a condition with a deadline.

The guest's PID 1 does not reap orphans: the pytest process makes itself a child subreaper
so the nannies of a SIGKILLed lvsd become its children, and reaps them by pid.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lab import patience
from lab.netlab import ROOT
from piranha.ipvsadm.rules import op_text

PR_SET_CHILD_SUBREAPER = 36


def subreaper() -> None:
    """Make this process the reaper of its orphaned descendants (nannies of a killed lvsd)."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def reap(pids: list[int], timeout: float = 30.0) -> None:
    """Wait for ``pids`` (our children or adopted orphans) to end."""
    deadline = time.monotonic() + patience.limit(timeout)
    left = set(pids)
    while left and time.monotonic() < deadline:
        for pid in list(left):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                left.discard(pid)
        time.sleep(0.05)


def nat_triangle(netns_factory: Callable[[], Any]) -> tuple[Any, Any, Any]:
    """(director, client, real server): three fresh namespaces joined by veths. The director
    holds 198.51.100.129/25 and the VIP 198.51.100.180 towards the client (.130) and routes for
    the real server 10.200.0.130, whose default route is the director's 10.200.0.129."""
    subreaper()
    d, c, r = netns_factory(), netns_factory(), netns_factory()
    for ns in (c, r):
        ns.run(["ip", "link", "del", "pub0"])
        ns.run(["ip", "link", "del", "priv0"])
    d.run(["ip", "link", "add", "dc", "type", "veth", "peer", "name", "cd", "netns", c.name])
    d.run(["ip", "link", "add", "dr", "type", "veth", "peer", "name", "rd", "netns", r.name])
    script = ["addr add 198.51.100.129/25 dev dc", "addr add 198.51.100.180/32 dev dc",
              "link set dc up", "addr add 10.200.0.129/25 dev dr", "link set dr up"]
    d.run(["ip", "-batch", "-"], input="\n".join(script) + "\n")
    d.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
    c.run(["ip", "-batch", "-"], input="addr add 198.51.100.130/25 dev cd\nlink set cd up\n")
    r.run(["ip", "-batch", "-"], input="addr add 10.200.0.130/25 dev rd\nlink set rd up\n"
          "route add default via 10.200.0.129\n")
    return d, c, r


def wait_for(what: str, check: Callable[[], Any], timeout: float, step: float = 0.05,
             show: Callable[[], object] | None = None) -> float:
    """:func:`lab.patience.wait_for`, printing how long it took (the kernel tier's timings)."""
    took = patience.wait_for(what, check, timeout, step, show)
    print(f"lvsd-lab: {what}: {took:.2f} s", flush=True)
    return took


class Listener:
    """A TCP server in namespace ``ns`` at addr:port (IPv4 or IPv6); echoes what it reads."""

    def __init__(self, ns: Any, addr: str, port: int) -> None:
        self.ns, self.addr, self.port = ns, addr, port
        self.sock: socket.socket | None = None
        self.start()

    def start(self) -> None:
        """Listen (again)."""
        family = socket.AF_INET6 if ":" in self.addr else socket.AF_INET
        with self.ns.entered():
            sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.addr, self.port))
        sock.listen(64)
        self.sock = sock
        threading.Thread(target=self._accept, args=(sock,), daemon=True).start()

    def stop(self) -> None:
        """Stop listening: new connections are refused."""
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)
            self.sock.close()
            self.sock = None

    def _accept(self, sock: socket.socket) -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            threading.Thread(target=_echo, args=(conn,), daemon=True).start()


def _echo(conn: socket.socket) -> None:
    with conn:
        try:
            while data := conn.recv(4096):
                conn.sendall(data)
        except OSError:
            pass


class Lvsd:
    """An lvsd process in namespace ``ns`` with its files under ``tmp``."""

    def __init__(self, ns: Any, tmp: Path, config: str, args: list[str] | None = None) -> None:
        self.ns, self.tmp = ns, tmp
        self.args = list(args or [])  # more lvsd options (``--backend fake``)
        self.cf = tmp / "lvs.cf"
        self.cf.write_text(config)
        self.status, self.sock = tmp / "status.json", tmp / "lvsd.sock"
        self.state, self.pidfile = tmp / "state.json", tmp / "lvs.pid"
        self.logs: list[Path] = []
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start lvsd; return once its first status snapshot is written."""
        log = self.tmp / f"lvsd-{len(self.logs)}.log"
        self.logs.append(log)
        with contextlib.suppress(FileNotFoundError):
            self.status.unlink()
        argv = ["ip", "netns", "exec", self.ns.name, sys.executable, "-m", "piranha.lvs", "-n",
                "-c", str(self.cf), "--status-file", str(self.status), "--control-socket",
                str(self.sock), "--state-file", str(self.state), "--pidfile",
                str(self.pidfile), "--reconcile-interval", "1", *self.args]
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        wait_for("lvsd's first status snapshot", self.status.exists, patience.START)

    def snapshot(self) -> dict[str, Any]:
        """lvsd's current status snapshot."""
        return json.loads(self.status.read_text())  # type: ignore[no-any-return]

    def server(self, name: str) -> dict[str, Any]:
        """The snapshot entry of real server ``name``."""
        for vs in self.snapshot()["virtuals"]:
            for rs in vs["servers"]:
                if rs["name"] == name:
                    return rs  # type: ignore[no-any-return]
        raise KeyError(name)

    def log(self) -> str:
        """Everything the current lvsd printed."""
        return self.logs[-1].read_text()

    def ops(self) -> list[str]:
        """The kernel operations the current lvsd logged, as ipvsadm command lines."""
        return [line.split("ipvs: ", 1)[1] for line in self.log().splitlines()
                if line.startswith("lvsd: ipvs: ipvsadm")]

    def nanny_pids(self) -> list[int]:
        """Pids of the nannies in the current snapshot."""
        return [rs["nanny"]["pid"] for vs in self.snapshot()["virtuals"] for rs in vs["servers"]
                if rs["nanny"]["pid"]]

    def send(self, sig: int) -> None:
        """Send ``sig`` to lvsd."""
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        """Signal lvsd, wait for it and for its nannies; its exit status."""
        assert self.proc is not None
        nannies = self.nanny_pids() if self.status.exists() else []
        self.proc.send_signal(sig)
        code = self.proc.wait(patience.limit(timeout))
        reap(nannies)
        self.proc = None
        return code


_BACKENDS: dict[str, Any] = {}


def close_tables() -> None:
    """Close the netlink sockets :func:`table` opened (they keep their namespace alive)."""
    while _BACKENDS:
        _BACKENDS.popitem()[1].close()


def backend(ns: Any) -> Any:
    """A NetlinkIpvs on namespace ``ns`` (one per namespace, reused)."""
    from piranha.ipvs.netlink import NetlinkIpvs

    if ns.name not in _BACKENDS:
        _BACKENDS[ns.name] = NetlinkIpvs(ns.name)
    return _BACKENDS[ns.name]


def table(ns: Any) -> list[str]:
    """The namespace's IPVS table as sorted ipvsadm command lines."""
    from piranha.ipvs.types import AddDest, AddService

    dump = backend(ns).dump()
    lines = [op_text(AddService(s)) for s in dump.services]
    lines += [op_text(AddDest(k, d)) for k, ds in dump.dests.items() for d in ds]
    return sorted(line.removeprefix("ipvsadm ") for line in lines)


def weights(ns: Any) -> dict[str, int]:
    """'vip:port rip:port' -> weight of every destination."""
    out = {}
    for line in table(ns):
        parts = line.split()
        if parts[0] == "-a":
            out[f"{parts[2]} {parts[4]}"] = int(parts[parts.index("-w") + 1])
    return out
