"""Shared pieces of the failover and reload benchmarks (root, iproute2; IPVS in the VM).

* the namespace LAN of ``lab/netlab.py`` (re-exported: :class:`Lan`, :class:`NameServer`, ...);
* :class:`IpvsView`: a namespace's IPVS table read from ``/proc/net/ip_vs`` (a few ms even for
  11,000 entries, cheap enough to poll every 10-20 ms);
* :class:`Prober`: the client asking the VIP in a loop, every request timed;
* :class:`RtWatch`: rtnetlink address and neighbour events of some namespaces, time-stamped
  on arrival (when the new director raised the VIP, when the client's ARP entry moved);
* :class:`Heard`: when the standby received the partner's last heartbeat (or VRRP advert);
* :class:`Tracer`: counts the kernel's IPVS write requests (ftrace on the netlink and sockopt
  entry points), so "reload touches only what changed" is measured, not inferred from logs;
* :func:`spread` (median/min/max), :func:`markdown` (a table), :func:`save` ($PIRANHA_OUT).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from lab.lvsd import subreaper  # noqa: F401  (re-exported for the benches)
from lab.netlab import (  # noqa: F401  (re-exported for the benches)
    ROOT,
    Lan,
    Member,
    NameServer,
    Netns,
    Pulse,
    TcpServer,
    addresses,
    ask,
    delete,
    has_vip,
    sysctl,
)


def reap_orphans() -> None:
    """Collect every adopted child that has ended."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


# ---- the IPVS table -------------------------------------------------------------------------

def _endpoint(text: str) -> str:
    """``0AC8000B:1F90`` -> ``10.200.0.11:8080`` (a FWM mark is returned as it is)."""
    if ":" not in text or len(text) != 13:
        return text
    addr, port = text.split(":")
    return f"{IPv4Address(int(addr, 16))}:{int(port, 16)}"


def _hex(endpoint: str) -> str:
    addr, port = endpoint.rsplit(":", 1)
    return f"{int(IPv4Address(addr)):08X}:{int(port):04X}"


class IpvsView:
    """The IPVS table of one namespace through ``/proc/net/ip_vs`` (opened once, re-read)."""

    def __init__(self, ns: Netns) -> None:
        with ns.entered():  # /proc/thread-self/net is the namespace of the opening thread
            self.fd = os.open("/proc/thread-self/net/ip_vs", os.O_RDONLY)

    def text(self) -> str:
        os.lseek(self.fd, 0, os.SEEK_SET)
        chunks = []
        while chunk := os.read(self.fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks).decode()

    def table(self) -> dict[str, int | None]:
        """``{"TCP vip:port": None, "TCP vip:port -> rip:port": weight}``."""
        out: dict[str, int | None] = {}
        service = ""
        for line in self.text().splitlines()[3:]:
            parts = line.split()
            if not parts:
                continue
            if parts[0] == "->":
                out[f"{service} -> {_endpoint(parts[1])}"] = int(parts[3])
            else:
                service = f"{parts[0]} {_endpoint(parts[1])}"
                out[service] = None
        return out

    def entries(self) -> int:
        """Services + real-server entries (no parsing: counts lines)."""
        text = self.text()
        return max(0, text.count("\n") - 3)

    def weight(self, service: str, dest: str) -> int | None:
        """Weight of ``dest`` (``rip:port``) in TCP ``service`` (``vip:port``); None if absent."""
        text = self.text()
        start = text.find(f"\nTCP  {_hex(service)} ")
        if start < 0:
            return None
        end = text.find("\nTCP", start + 1)
        block = text[start:end if end >= 0 else len(text)]
        pos = block.find(f"  -> {_hex(dest)} ")
        if pos < 0:
            return None
        return int(block[pos:block.index("\n", pos)].split()[3])

    def close(self) -> None:
        os.close(self.fd)


def diff(before: dict[str, int | None], after: dict[str, int | None]) -> list[str]:
    """Entries added, removed or re-weighted between two :meth:`IpvsView.table` readings."""
    out = [f"+ {k}" for k in after if k not in before]
    out += [f"- {k}" for k in before if k not in after]
    out += [f"~ {k}: {before[k]} -> {after[k]}" for k in before
            if k in after and before[k] != after[k]]
    return out


# ---- the client ------------------------------------------------------------------------------

class Prober:
    """The client asking ``vip:port`` every ``gap`` s in a thread; (start, end, ok) per request.

    ``timeout`` bounds connect and each read: a request that meets the dead director's MAC
    fails after it, so it is also the resolution of "first success"."""

    def __init__(self, client: Netns, vip: str, port: int, timeout: float = 0.1,
                 gap: float = 0.02) -> None:
        self.client, self.vip, self.port, self.timeout, self.gap = client, vip, port, timeout, gap
        self.results: list[tuple[float, float, bool]] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopped.is_set():
            start = time.monotonic()
            ok = ask(self.client, self.vip, self.port, timeout=self.timeout) is not None
            self.results.append((start, time.monotonic(), ok))
            time.sleep(self.gap)

    def first_success_after(self, t: float) -> float | None:
        """Start time of the first successful request started after ``t``."""
        return next((s for s, _, ok in list(self.results) if s > t and ok), None)

    def stop(self) -> list[tuple[float, float, bool]]:
        self.stopped.set()
        self.thread.join(5)
        return self.results


# ---- rtnetlink events ------------------------------------------------------------------------

RTMGRP_NEIGH, RTMGRP_IPV4_IFADDR = 0x4, 0x10
RTM_NEWNEIGH, RTM_NEWADDR = 28, 20
IFA_ADDRESS, IFA_LOCAL = 1, 2
NDA_DST, NDA_LLADDR = 1, 2


class RtWatch:
    """Records (monotonic time, namespace name, address, MAC) of every IPv4 address added
    (MAC "") and every neighbour entry written (with its MAC) in the watched namespaces, as
    rtnetlink multicasts them (no polling): when a director raised the VIP, when the client's
    ARP entry for it moved."""

    def __init__(self, namespaces: Iterable[Netns]) -> None:
        self.socks: dict[int, tuple[socket.socket, str]] = {}
        for ns in namespaces:
            with ns.entered():
                sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            sock.bind((0, RTMGRP_IPV4_IFADDR | RTMGRP_NEIGH))
            self.socks[sock.fileno()] = (sock, ns.name)
        self.events: list[tuple[float, str, str, str]] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopped.is_set():
            ready, _, _ = select.select(list(self.socks), [], [], 0.2)
            for fd in ready:
                sock, name = self.socks[fd]
                data = sock.recv(65536)
                now = time.monotonic()
                for addr, mac in _rt_events(data):
                    self.events.append((now, name, addr, mac))

    def address_added(self, address: str, after: float) -> float | None:
        """Time of the first addition of ``address`` after ``after``."""
        return next((t for t, _, a, mac in list(self.events)
                     if a == address and not mac and t > after), None)

    def neighbour(self, address: str, mac: str, after: float) -> float | None:
        """Time the neighbour entry of ``address`` first said ``mac`` after ``after``."""
        return next((t for t, _, a, m in list(self.events)
                     if a == address and m == mac and t > after), None)

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(2)
        for sock, _ in self.socks.values():
            sock.close()


def _attrs(data: bytes, pos: int, end: int) -> dict[int, bytes]:
    out = {}
    while pos + 4 <= end:
        alen, atype = struct.unpack_from("=HH", data, pos)
        if alen < 4:
            break
        out[atype] = data[pos + 4:pos + alen]
        pos += (alen + 3) & ~3
    return out


def _rt_events(data: bytes) -> list[tuple[str, str]]:
    out = []
    offset = 0
    while offset + 16 <= len(data):
        length, kind = struct.unpack_from("=LH", data, offset)
        if length < 16:
            break
        end = offset + length
        if kind == RTM_NEWADDR and data[offset + 16] == socket.AF_INET:
            attrs = _attrs(data, offset + 16 + 8, end)  # nlmsghdr, ifaddrmsg
            raw = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS)
            if raw is not None and len(raw) == 4:
                out.append((str(IPv4Address(raw)), ""))
        elif kind == RTM_NEWNEIGH and data[offset + 16] == socket.AF_INET:
            attrs = _attrs(data, offset + 16 + 12, end)  # nlmsghdr, ndmsg
            dst, mac = attrs.get(NDA_DST), attrs.get(NDA_LLADDR)
            if dst is not None and len(dst) == 4 and mac:
                out.append((str(IPv4Address(dst)), mac.hex(":")))
        offset += (length + 3) & ~3
    return out


# ---- packets heard ---------------------------------------------------------------------------

ETH_P_ALL, ETH_P_IP = 0x0003, 0x0800
SO_TIMESTAMPNS = 35


class Heard:
    """Arrival times (monotonic, from the kernel's receive stamps) of the IPv4 packets from
    ``src`` with IP protocol ``proto`` (and UDP destination ``port``, and TCP flags among
    ``tcp_flags``) on ``ifname`` of ``ns``: the partner's heartbeats or VRRP adverts as the
    standby received them; a closed real server's resets answering the checks."""

    def __init__(self, ns: Netns, ifname: str, src: str, proto: int,
                 port: int | None = None, tcp_flags: int = 0, dst: str | None = None) -> None:
        # ETH_P_ALL: a socket bound to one protocol does not see outgoing packets
        with ns.entered():
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM,
                                      socket.htons(ETH_P_ALL))
        self.sock.bind((ifname, ETH_P_ALL))
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.src, self.proto, self.port = IPv4Address(src).packed, proto, port
        self.tcp_flags = tcp_flags
        self.dst = None if dst is None else IPv4Address(dst).packed
        self.times: list[float] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopped.is_set():
            ready, _, _ = select.select([self.sock], [], [], 0.2)
            if not ready:
                continue
            data, anc, _, addr = self.sock.recvmsg(2048, 64)
            if addr[1] != ETH_P_IP:
                continue
            offset = time.time() - time.monotonic()
            stamp = next((struct.unpack("qq", d[:16]) for lvl, kind, d in anc
                          if lvl == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS), None)
            if len(data) < 20 or data[9] != self.proto or data[12:16] != self.src:
                continue
            if self.dst is not None and data[16:20] != self.dst:
                continue
            ihl = (data[0] & 0xF) * 4
            if self.port is not None and (
                    len(data) < ihl + 4 or struct.unpack_from("!H", data, ihl + 2)[0] != self.port):
                continue
            if self.tcp_flags and (len(data) < ihl + 14 or not data[ihl + 13] & self.tcp_flags):
                continue
            wall = stamp[0] + stamp[1] / 1e9 if stamp else time.time()
            self.times.append(wall - offset)

    def first_after(self, t: float) -> float | None:
        """Arrival of the first matching packet after ``t``."""
        return min((x for x in list(self.times) if x > t), default=None)

    def at_phase(self, period: float, phase: float, timeout: float = 30.0) -> tuple[float, float]:
        """Sleep until ``phase`` x ``period`` after the arrival of a matching packet (the next
        one we can still make in time); (that arrival, now)."""
        since = time.monotonic()
        deadline = since + timeout
        while time.monotonic() < deadline:
            arrived = self.first_after(since)
            if arrived is None:
                time.sleep(0.002)
                continue
            target = arrived + phase * period
            now = time.monotonic()
            if now < target - 0.001:
                time.sleep(target - now)
                return arrived, time.monotonic()
            since = arrived  # noticed too late for this one: the next
        raise AssertionError(f"no packet from {IPv4Address(self.src)} within {timeout} s")

    def last_before(self, t: float) -> float | None:
        """Arrival of the last matching packet before ``t``."""
        return max((x for x in list(self.times) if x < t), default=None)

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(2)
        self.sock.close()


# ---- kernel-side counting of IPVS writes ----------------------------------------------------

TRACEFS = Path("/sys/kernel/tracing")
#: every IPVS write enters the kernel through one of these: generic netlink (ipvsadm 1.31,
#: keepalived, piranha) or the old sockopt interface
TRACED = ("ip_vs_genl_set_cmd", "do_ip_vs_set_ctl")


class Tracer:
    """ftrace's function tracer on the IPVS write entry points: how many write requests the
    kernel served between :meth:`clear` and :meth:`count`. ``available`` is False (and the
    counts None) where tracefs or those functions are missing."""

    def __init__(self) -> None:
        self.available = False
        self.reason = ""
        try:
            if not (TRACEFS / "current_tracer").exists():
                TRACEFS.mkdir(parents=True, exist_ok=True)
                subprocess.run(["mount", "-t", "tracefs", "nodev", str(TRACEFS)],
                               capture_output=True, check=False)
            known = set((TRACEFS / "available_filter_functions").read_text().split())
            self.functions = [f for f in TRACED if f in known]
            if not self.functions:
                self.reason = "no IPVS write function in available_filter_functions"
                return
            (TRACEFS / "tracing_on").write_text("0")
            (TRACEFS / "set_ftrace_filter").write_text("\n".join(self.functions) + "\n")
            (TRACEFS / "current_tracer").write_text("function")
            (TRACEFS / "buffer_size_kb").write_text("8192")
            (TRACEFS / "trace").write_text("")
            (TRACEFS / "tracing_on").write_text("1")
            self.available = True
        except OSError as exc:
            self.reason = f"ftrace unavailable: {exc}"

    def clear(self) -> None:
        if self.available:
            (TRACEFS / "trace").write_text("")

    def count(self) -> dict[str, int] | None:
        """Write requests since :meth:`clear`, per process name (``comm``); None if unavailable."""
        if not self.available:
            return None
        counts: dict[str, int] = {}
        for line in (TRACEFS / "trace").read_text().splitlines():
            if line.startswith("#") or not line.strip():
                continue
            comm = line.strip().split()[0].rsplit("-", 1)[0]
            counts[comm] = counts.get(comm, 0) + 1
        return counts

    def close(self) -> None:
        if self.available:
            with contextlib.suppress(OSError):
                (TRACEFS / "tracing_on").write_text("0")
                (TRACEFS / "current_tracer").write_text("nop")
                (TRACEFS / "set_ftrace_filter").write_text("")


# ---- figures ---------------------------------------------------------------------------------

def spread(values: Sequence[float]) -> dict[str, float | None]:
    """median, min and max of ``values`` (None each when empty)."""
    if not values:
        return {"median": None, "min": None, "max": None}
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def fmt(value: float | None, unit: str = " s", digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}{unit}"


def markdown(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def save(name: str, doc: object) -> Path | None:
    """Write ``doc`` as JSON to $PIRANHA_OUT/NAME (when set); the path written."""
    out = os.environ.get("PIRANHA_OUT")
    if not out:
        return None
    path = Path(out, name)
    path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    return path


def command_line() -> str:
    """How this benchmark was run, as it would be typed from the checkout."""
    script = Path(sys.argv[0]).resolve()
    with contextlib.suppress(ValueError):
        script = script.relative_to(ROOT)
    return " ".join([".venv/bin/python", str(script), *sys.argv[1:]])


def log(message: str) -> None:
    """Progress on stderr-like stdout, flushed (the VM log is read afterwards)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)
