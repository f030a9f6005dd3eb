"""What each step of pulse's activation costs on this machine (root; IPVS for the sync step).

    bench/vm-run.sh .venv/bin/python -m bench.activation_profile [--repeat 20]

In a scratch namespace (eth0 and eth1 on a bridge), times piranha's own adapters doing what
:class:`piranha.director.actuator.Actuator` does between "partner dead" and the VIP announced:

* the sync-daemon switch (stop backup, stop master, start master: one NetlinkIpvs.apply);
* ``Rtnl.link`` (pulse resolves the device index before each address add, and the MAC before
  each gratuitous ARP);
* ``Rtnl.add_address`` of a /32 (and its removal);
* ``send_frame`` (a new AF_PACKET socket per frame, as pulse sends them), and apart: the
  ``sendto`` on a socket kept open, and the close of such a socket, which waits for an RCU
  grace period in the kernel (``packet_release`` calls ``synchronize_net``);
* the status file write (``write_atomic``, no fsync).

Median and max of --repeat runs, in milliseconds. Used by failover_bench.py to explain where
pulse's reaction time goes.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from ipaddress import ip_address
from pathlib import Path

from lab.bench import Lan, markdown, save


def _timed(fn: Callable[[], object], repeat: int,
           before: Callable[[], object] | None = None) -> list[float]:
    out = []
    for _ in range(repeat):
        if before is not None:
            before()
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def profile(repeat: int = 20) -> dict[str, list[float]]:
    """Milliseconds per run of each activation step, measured in a scratch namespace."""
    from piranha.ipvs.netlink import NetlinkIpvs
    from piranha.ipvs.types import Daemon, DaemonState, StartDaemon, StopDaemon
    from piranha.lvsd.statefile import write_atomic
    from piranha.net.arp import announcement, send_frame
    from piranha.net.rtnl import Rtnl

    lan = Lan(f"ap{uuid.uuid4().hex[:5]}")
    times: dict[str, list[float]] = {}
    try:
        lan.create(("br0", "br1"))
        member = lan.add("d", "198.51.100.1/24", "02:00:00:00:01:01")
        lan.plug("d", "br1", "eth1", "10.200.0.1/24", "02:00:00:00:02:01")
        vip = ip_address("198.51.100.10")
        with member.ns.entered(), tempfile.TemporaryDirectory() as tmp:
            rtnl = Rtnl()
            try:
                ipvs = NetlinkIpvs()
            except Exception as exc:  # noqa: BLE001 - no IPVS here: skip that step
                print(f"(no sync-daemon step: {exc})")
            else:
                backup = Daemon(DaemonState.BACKUP, mcast_ifn="eth1", syncid=0)
                master = Daemon(DaemonState.MASTER, mcast_ifn="eth1", syncid=0)
                stops = [StopDaemon(DaemonState.BACKUP, 0), StopDaemon(DaemonState.MASTER, 0)]
                times["sync daemon backup -> master (3 IPVS ops)"] = _timed(
                    lambda: ipvs.apply([*stops, StartDaemon(master)]), repeat,
                    before=lambda: ipvs.apply([*stops, StartDaemon(backup)]))
                ipvs.apply(stops)
                ipvs.close()
            times["Rtnl.link (index or MAC lookup)"] = _timed(lambda: rtnl.link("eth0"), repeat)
            times["Rtnl.add_address /32"] = _timed(
                lambda: rtnl.add_address("eth0", vip, 32, "eth0:1"), repeat,
                before=lambda: rtnl.remove_address("eth0", vip, 32))
            frame = announcement(vip, rtnl.link("eth0").mac)  # type: ignore[union-attr]
            times["send_frame (new AF_PACKET socket per frame)"] = _timed(
                lambda: send_frame("eth0", frame), repeat)
            kept = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
            times["sendto on a kept AF_PACKET socket"] = _timed(
                lambda: kept.sendto(frame, ("eth0", 0x0806)), repeat)
            kept.close()
            socks: list[socket.socket] = []
            times["close of an AF_PACKET socket (synchronize_net)"] = _timed(
                lambda: socks.pop().close(), repeat,
                before=lambda: socks.append(socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)))
            status = str(Path(tmp, "pulse.status.json"))
            times["status file write (write_atomic, no fsync)"] = _timed(
                lambda: write_atomic(status, '{"state": "active"}\n' * 4, 0o644, sync=False),
                repeat)
            rtnl.close()
    finally:
        lan.delete()
    return times


def table(times: dict[str, list[float]]) -> str:
    rows = [[name, f"{statistics.median(v):.2f}", f"{max(v):.2f}"] for name, v in times.items()]
    return markdown(["activation step (piranha's adapters)", "median ms", "max ms"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    times = profile(args.repeat)
    print(table(times))
    save("activation_profile.json", times)


if __name__ == "__main__":
    main()
