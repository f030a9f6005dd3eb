"""``piranha realserver --method arptables|redirect`` for real, with both backends (nft, and the
arptables/iptables/ip6tables commands), on a LAN of namespaces on the host.

No director here (the host has no IPVS; tests/kernel/test_e2e_forwarding.py runs both methods
behind a real one): the client routes the VIP via the real server, which is what direct
routing does to a frame (the real server's MAC, the VIP as destination). Each test shows the
real server answering for the VIP, ARP never naming it, and ``--undo`` leaving nothing behind.
Addresses: 198.51.100.0/24, inside the namespaces only.
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path
from typing import Any

import pytest

from lab.e2e import (
    C_MAC,
    RS_MAC,
    VIP,
    NameServer,
    arp_answers,
    arp_request_sources,
    lan,
    piranha,
    serve,
)
from lab.netlab import Lan, ask, ip

RS, CLIENT, PORT = "198.51.100.11", "198.51.100.100", 8080
BACKENDS = ["nft", "iptables"]


def _tools(backend: str, *tools: str) -> None:
    needed = ["nft"] if backend == "nft" else list(tools)
    missing = [t for t in needed if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (installed by scripts/bootstrap.sh)")


def _dr_lan(net: Lan) -> tuple[Any, Any]:
    """rs and a client that sends VIP traffic to rs as a DR director would."""
    rs = net.add("rs", f"{RS}/24", RS_MAC[1]).ns
    client = net.add("client", f"{CLIENT}/24", C_MAC, [f"route add {VIP}/32 via {RS}"]).ns
    serve(NameServer(rs, "rs", PORT))
    return rs, client


def _realserver(rs: Any, state: Path, *args: str) -> str:
    run = piranha(rs, "realserver", "--state-file", str(state), *args)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


def _firewall(ns: Any) -> str:
    return ns.exec(["nft", "list", "ruleset"]).stdout


def _send_from_vip(rs: Any) -> None:
    """A datagram from the VIP to the client, which rs first has to resolve by ARP."""
    ip("-n", rs.name, "neigh", "flush", "all")
    with rs.entered():
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        sock.bind((VIP, 0))
        sock.sendto(b"hello", (CLIENT, 9))


@pytest.mark.parametrize("backend", BACKENDS)
def test_arptables_method_keeps_the_vip_out_of_arp(backend: str, tmp_path: Path) -> None:
    _tools(backend, "arptables")
    state = tmp_path / "rs.json"
    with lan() as net:
        rs, client = _dr_lan(net)
        # control: a VIP on lo with no measure is answered by ARP and shown in requests
        ip("-n", rs.name, "addr", "add", f"{VIP}/32", "dev", "lo")
        assert arp_answers(client, "eth0", C_MAC, CLIENT, VIP) == {RS_MAC[1]}
        assert arp_request_sources(client, "eth0", lambda: _send_from_vip(rs)) == {VIP}
        ip("-n", rs.name, "addr", "del", f"{VIP}/32", "dev", "lo")

        out = _realserver(rs, state, "--vip", VIP, "--method", "arptables",
                          "--backend", backend, "--real-ip", RS)
        assert out.rstrip().endswith(f"piranha: ip addr add {VIP}/32 dev lo label lo:piranha")
        assert ask(client, VIP, PORT, timeout=5) == "rs"  # accepted through the VIP
        assert arp_answers(client, "eth0", C_MAC, CLIENT, VIP) == set()
        assert arp_request_sources(client, "eth0", lambda: _send_from_vip(rs)) == {RS}

        out = _realserver(rs, state, "--undo")
        assert f"piranha: ip addr del {VIP}/32 dev lo" in out
        assert VIP not in rs.exec(["ip", "-o", "addr"]).stdout
        assert "piranha" not in _firewall(rs)
        assert not state.exists()


@pytest.mark.parametrize("backend", BACKENDS)
def test_redirect_method_needs_no_vip_on_the_real_server(backend: str, tmp_path: Path) -> None:
    _tools(backend, "iptables", "ip6tables")
    state = tmp_path / "rs.json"
    with lan() as net:
        rs, client = _dr_lan(net)
        assert ask(client, VIP, PORT, timeout=1) is None  # control: rs drops what is not its own

        out = _realserver(rs, state, "--vip", VIP, "--method", "redirect", "--backend", backend)
        assert "ip addr add" not in out
        assert VIP not in rs.exec(["ip", "-o", "addr"]).stdout
        assert ask(client, VIP, PORT, timeout=5) == "rs"
        assert arp_answers(client, "eth0", C_MAC, CLIENT, VIP) == set()  # nobody holds it
        recorded = state.read_text()
        assert '"method": "redirect"' in recorded and f'"backend": "{backend}"' in recorded

        # a second run with another method is refused, naming what is set up
        run = piranha(rs, "realserver", "--state-file", str(state), "--vip", VIP)
        assert run.returncode == 2
        assert f"set up with --method redirect --backend {backend} for {VIP}; run --undo" \
            in run.stderr

        _realserver(rs, state, "--undo")
        assert ask(client, VIP, PORT, timeout=1) is None
        assert "piranha" not in _firewall(rs)
        assert not state.exists()


def test_print_and_option_errors(tmp_path: Path) -> None:
    with lan() as net:
        rs = net.add("rs", f"{RS}/24", RS_MAC[1]).ns
        state = str(tmp_path / "rs.json")
        run = piranha(rs, "realserver", "--vip", VIP, "--method", "redirect", "--backend",
                      "iptables", "--print", "--state-file", state)
        assert run.returncode == 0, run.stderr
        assert run.stdout.splitlines()[-1] == \
            f"iptables -t nat -A piranha-rs -d {VIP}/32 -j REDIRECT"
        assert "piranha" not in _firewall(rs) and not Path(state).exists()
        for args, error in [
                (["--method", "arptables"], "--method arptables needs --real-ip"),
                (["--method", "arptables", "--real-ip", VIP], f"--real-ip: {VIP} must be this "
                 "machine's own IPv4 address, not a VIP"),
                (["--real-ip", RS], "--real-ip is only for --method arptables")]:
            run = piranha(rs, "realserver", "--vip", VIP, *args, "--state-file", state)
            assert run.returncode == 2 and error in run.stderr, run.stderr
