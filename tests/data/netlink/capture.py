"""Capture ipvsadm's IPVS netlink traffic in the kernel lab as golden data (root, in the VM).

    bench/vm-run.sh python tests/data/netlink/capture.py    # writes build/vm-run/netlink/

Creates a namespace with an ``nlmon`` tap, runs each ipvsadm command of ``COMMANDS`` in it and
keeps, per command: the IPVS request ipvsadm sent (``requests/<name>.hex``), the kernel's reply
datagrams (``replies/<name>-<n>.hex``) and ipvsadm's output (``replies/<name>.txt``). A few TCP
SYNs to 198.51.100.80:80 before the listings make the counters non-zero. Copy the results into
tests/data/netlink/ and review the diff; tests/golden/test_ipvs_wire.py reads them.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

NS = "pircap"
IPVS_FAMILY_NAME = b"IPVS"
V6 = "[2001:db8:100::80]"
#: name -> ipvsadm arguments, run in this order
COMMANDS = {
    "add-service-tcp": "-A -t 198.51.100.80:80 -s wlc",
    "add-service-udp-persistent": "-A -u 198.51.100.80:53 -s rr -p 300 -M 255.255.255.0",
    "add-service-sctp-sched-flags":
        "-A --sctp-service 198.51.100.80:3868 -s sh -b sh-fallback,sh-port",
    "add-service-fwmark": "-A -f 7 -s rr",
    "add-service-fwmark6-persistent": "-A -f 8 -6 -s rr -p 60 -M 64",
    "add-service-ipv6": f"-A -t {V6}:443 -s wrr",
    "add-service-pe-sip": "-A -u 198.51.100.81:5060 -s rr -p 60 --pe sip",
    "add-service-one-packet": "-A -u 198.51.100.82:1812 -s wlc -o",
    "edit-service": "-E -t 198.51.100.80:80 -s rr",
    "add-dest-masq-thresholds": "-a -t 198.51.100.80:80 -r 10.200.0.11:8080 -m -w 3 -x 100 -y 10",
    "add-dest-route": "-a -t 198.51.100.80:80 -r 10.200.0.12 -g -w 1",
    "add-dest-gue-csum":
        "-a -t 198.51.100.80:80 -r 10.200.0.13 -i --tun-type gue --tun-port 6080 --tun-csum",
    "add-dest-gre-csum": "-a -t 198.51.100.80:80 -r 10.200.0.14 -i --tun-type gre --tun-csum",
    "add-dest-ipv6": f"-a -t {V6}:443 -r [2001:db8:100::11]:443 -m -w 2",
    "add-dest-fwmark": "-a -f 7 -r 10.200.0.15 -g -w 0",
    "edit-dest": "-e -t 198.51.100.80:80 -r 10.200.0.11:8080 -m -w 5",
    "list": "-Ln",
    "list-stats": "-Ln --stats --exact",
    "del-dest": "-d -t 198.51.100.80:80 -r 10.200.0.11:8080",
    "zero-service": "-Z -t 198.51.100.80:80",
    "zero-all": "-Z",
    "set-timeouts": "--set 1000 100 200",
    "list-timeouts": "-L -n --timeout",
    "start-daemon-master": "--start-daemon master --mcast-interface pub0 --syncid 5"
                           " --sync-maxlen 1400 --mcast-group 224.0.0.99 --mcast-port 8849"
                           " --mcast-ttl 2",
    "start-daemon-backup-ipv6": "--start-daemon backup --mcast-interface pub0 --syncid 6"
                                " --mcast-group ff02::1:81",
    "list-daemons": "-L -n --daemon",
    "stop-daemon-master": "--stop-daemon master",
    "del-service": "-D -t 198.51.100.80:80",
    "flush": "-C",
}
TOPOLOGY = """link set lo up
link add pub0 type dummy
addr add 198.51.100.1/24 dev pub0
addr add 2001:db8:100::1/64 dev pub0 nodad
link set pub0 up
link add priv0 type dummy
addr add 10.200.0.1/24 dev priv0
link set priv0 up
link add nlmon0 type nlmon
link set nlmon0 up
"""


def enter_namespace() -> None:
    """Create the capture namespace (with its nlmon tap) and move this process into it."""
    subprocess.run(["modprobe", "nlmon"], check=True)
    subprocess.run(["ip", "netns", "add", NS], check=True)
    subprocess.run(["ip", "-n", NS, "-batch", "-"], input=TOPOLOGY, text=True, check=True)
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{NS}", os.O_RDONLY)
    if libc.setns(fd, 0x40000000) != 0:  # CLONE_NEWNET
        raise OSError(ctypes.get_errno(), "setns")


def drain(tap: socket.socket) -> list[bytes]:
    """Every datagram the tap has queued."""
    out = []
    while True:
        try:
            out.append(tap.recv(1 << 20))
        except BlockingIOError:
            return out


def ipvs_family(datagrams: list[bytes]) -> int:
    """The IPVS family id, from the controller's reply ipvsadm received."""
    for data in datagrams:
        length, kind = struct.unpack_from("=IH", data)
        if kind == 16 and data[16] == 1 and IPVS_FAMILY_NAME + b"\0" in data:  # NEWFAMILY
            return struct.unpack_from("=H", data, data.index(b"\x06\x00\x01\x00", 20) + 4)[0]
    raise RuntimeError("no CTRL_CMD_NEWFAMILY reply seen")


def syn(port: int = 80) -> None:
    """One TCP SYN to the test service, for IPVS to count."""
    with socket.socket() as s, contextlib.suppress(BlockingIOError):
        s.setblocking(False)
        s.connect(("198.51.100.80", port))


def write_hex(path: Path, title: str, data: bytes) -> None:
    """Write ``data`` as hex lines under a ``# title`` comment."""
    lines = [data[i:i + 32].hex() for i in range(0, len(data), 32)]
    path.write_text(f"# {title}\n" + "\n".join(lines) + "\n")


def main() -> None:
    """Run every command of COMMANDS under the tap and write what was seen."""
    out = Path(os.environ.get("PIRANHA_OUT", "build")) / "netlink"
    (out / "requests").mkdir(parents=True, exist_ok=True)
    (out / "replies").mkdir(parents=True, exist_ok=True)
    enter_namespace()
    tap = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    tap.bind(("nlmon0", 0))
    tap.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)  # SO_RCVBUFFORCE: dumps are big datagrams
    tap.setblocking(False)
    for name, args in COMMANDS.items():
        if name == "list":
            syn(), syn()
            time.sleep(2.5)  # let the rate estimator run once
        drain(tap)
        proc = subprocess.run(["ipvsadm", *args.split()], capture_output=True, text=True)
        time.sleep(0.05)
        grams = drain(tap)
        family = ipvs_family(grams)
        ipvs = [g for g in grams if struct.unpack_from("=H", g, 4)[0] in (family, 2, 3)]
        requests = [g for g in ipvs if struct.unpack_from("=H", g, 6)[0] & 1 and g[16] != 15]
        replies = [g for g in ipvs if not struct.unpack_from("=H", g, 6)[0] & 1]
        title = f"ipvsadm {args}"
        if requests and not name.startswith("list"):
            write_hex(out / "requests" / f"{name}.hex", title, requests[-1])
        for n, g in enumerate(r for r in replies if struct.unpack_from("=H", r, 4)[0] != 2):
            write_hex(out / "replies" / f"{name}-{n}.hex", title, g)
        if proc.stdout:
            (out / "replies" / f"{name}.txt").write_text(proc.stdout)
        print(f"{name}: exit {proc.returncode}, {len(requests)} requests, {len(replies)} replies",
              proc.stderr.strip(), file=sys.stderr)
    # leave no sync daemon behind (the namespace would stop it, but say so)
    subprocess.run(["ipvsadm", "--stop-daemon", "backup"], capture_output=True)
    subprocess.run(["ip", "netns", "delete", NS])


if __name__ == "__main__":
    main()
