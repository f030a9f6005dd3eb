"""End to end through a real director: a client reaches the VIP, IPVS forwards with each of
lvs.cf's three methods (nat, direct, tunnel), real servers answer with their name.

Each test builds its own LAN of namespaces (``lab.e2e``), runs lvsd for real in the director's
namespace, waits for both real servers to be in the table (their nannies reported UP), then
asks the VIP until rr has shown both. Direct-routing and tunnel real servers are configured
by ``piranha realserver --vip VIP`` run inside their namespace: the helper is what is tested
there, down to ARP (only the director may answer for the VIP).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from lab.e2e import (
    C_MAC,
    D_MAC,
    RS_MAC,
    VIP,
    NameServer,
    add_director,
    add_nat_servers,
    arp_answers,
    ask,
    config,
    explained,
    lan,
    make_realservers,
    neighbour_mac,
    piranha,
    serve,
    start_lvsd,
    sysctl,
    sysctls,
    virtual,
)
from lab.lvsd import Lvsd
from lab.patience import wait_for

PORT = 8080
ARP = ["net.ipv4.conf.all.arp_ignore", "net.ipv4.conf.all.arp_announce",
       "net.ipv4.conf.lo.arp_ignore", "net.ipv4.conf.lo.arp_announce"]


def both_answer(client: Any) -> set[str]:
    """Ask the VIP until both real servers answered (rr); every answer seen."""
    seen: set[str] = set()

    def asked() -> bool:
        seen.add(ask(client, VIP, PORT, timeout=2.0) or "-")
        return {"rs1", "rs2"} <= seen
    wait_for("answers from rs1 and rs2 through the VIP", asked, 30, step=0)
    return seen


def test_nat_client_reaches_both_real_servers(tmp_path: Path) -> None:
    cf = config("nat", virtual("web", PORT, ["10.200.0.11", "10.200.0.12"]))
    with lan(("br0", "br1")) as net:
        add_director(net, nat=True)
        add_nat_servers(net)
        client = net.add("client", "198.51.100.100/24", C_MAC).ns
        for n in (1, 2):
            serve(NameServer(net[f"rs{n}"].ns, f"rs{n}", PORT))
        lvsd: Lvsd | None = None
        with explained(net, lambda: lvsd):
            lvsd = start_lvsd(net, tmp_path, cf, 2)
            assert both_answer(client) == {"rs1", "rs2"}
            answers = [ask(client, VIP, PORT, timeout=2.0) for _ in range(4)]
            assert answers in (["rs1", "rs2"] * 2, ["rs2", "rs1"] * 2)  # rr alternates


def test_direct_routing_with_piranha_realserver_and_quiet_arp(tmp_path: Path) -> None:
    cf = config("direct", virtual("web", PORT, ["198.51.100.11", "198.51.100.12"]))
    with lan() as net:
        add_director(net, nat=False)
        for n in (1, 2):
            net.add(f"rs{n}", f"198.51.100.1{n}/24", RS_MAC[n])
        client = net.add("client", "198.51.100.100/24", C_MAC).ns
        rs1, rs2 = net["rs1"].ns, net["rs2"].ns
        make_realservers(net, tmp_path)
        assert sysctls(rs1, *ARP) == ["1", "2", "1", "2"]
        assert f"{VIP}/32" in rs1.exec(["ip", "-o", "addr", "show", "dev", "lo"]).stdout
        for n in (1, 2):
            serve(NameServer(net[f"rs{n}"].ns, f"rs{n}", PORT))
        lvsd: Lvsd | None = None
        with explained(net, lambda: lvsd):
            lvsd = start_lvsd(net, tmp_path, cf, 2)
            assert both_answer(client) == {"rs1", "rs2"}
            # the client learnt the VIP's MAC from the director, and only the director answers
            assert neighbour_mac(client, VIP) == D_MAC
            assert arp_answers(client, "eth0", C_MAC, "198.51.100.100", VIP) == {D_MAC}
            # control: with arp_ignore back at 0, rs2 answers too, so the probe would see it
            sysctl(rs2, "net.ipv4.conf.all.arp_ignore=0", "net.ipv4.conf.lo.arp_ignore=0")
            assert arp_answers(client, "eth0", C_MAC, "198.51.100.100", VIP) == {
                D_MAC, RS_MAC[2]}
            # --undo: the VIP leaves lo, the sysctls get back the values they had (0)
            undo = piranha(rs1, "realserver", "--undo", "--state-file",
                           str(tmp_path / "rs1.json"))
            assert undo.returncode == 0, undo.stdout + undo.stderr
            assert f"ip addr del {VIP}/32 dev lo" in undo.stdout
            assert VIP not in rs1.exec(["ip", "-o", "addr", "show", "dev", "lo"]).stdout
            assert sysctls(rs1, *ARP) == ["0", "0", "0", "0"]
            assert not (tmp_path / "rs1.json").exists()


def test_direct_routing_with_arptables_and_redirect_real_servers(tmp_path: Path) -> None:
    """The talk's two other answers to the ARP problem, one per real server: rs1 keeps the
    VIP on lo behind arptables rules (the arptables command), rs2 holds no VIP at all and
    redirects VIP traffic to itself (nft)."""
    cf = config("direct", virtual("web", PORT, ["198.51.100.11", "198.51.100.12"]))
    with lan() as net:
        add_director(net, nat=False)
        for n in (1, 2):
            net.add(f"rs{n}", f"198.51.100.1{n}/24", RS_MAC[n])
        client = net.add("client", "198.51.100.100/24", C_MAC).ns
        rs1, rs2 = net["rs1"].ns, net["rs2"].ns
        make_realservers(net, tmp_path, options={
            1: ["--method", "arptables", "--backend", "iptables", "--real-ip", "198.51.100.11"],
            2: ["--method", "redirect"]})
        assert sysctls(rs1, *ARP) == ["0", "0", "0", "0"]  # no sysctl with either method
        assert f"{VIP}/32" in rs1.exec(["ip", "-o", "addr", "show", "dev", "lo"]).stdout
        assert VIP not in rs2.exec(["ip", "-o", "addr"]).stdout
        for n in (1, 2):
            serve(NameServer(net[f"rs{n}"].ns, f"rs{n}", PORT))
        lvsd: Lvsd | None = None
        with explained(net, lambda: lvsd):
            lvsd = start_lvsd(net, tmp_path, cf, 2)
            assert both_answer(client) == {"rs1", "rs2"}
            assert neighbour_mac(client, VIP) == D_MAC
            assert arp_answers(client, "eth0", C_MAC, "198.51.100.100", VIP) == {D_MAC}
            for n, rs in ((1, rs1), (2, rs2)):
                undo = piranha(rs, "realserver", "--undo", "--state-file",
                               str(tmp_path / f"rs{n}.json"))
                assert undo.returncode == 0, undo.stdout + undo.stderr
                assert "piranha" not in rs.exec(["nft", "list", "ruleset"]).stdout
            assert VIP not in rs1.exec(["ip", "-o", "addr"]).stdout
            # with the measures gone, neither real server takes VIP traffic any more
            assert ask(client, VIP, PORT, timeout=2.0) is None


def tunl0_rx(ns: Any) -> int:
    """Packets received on ``ns``'s tunl0 (decapsulated IPIP)."""
    out = ns.exec(["ip", "-s", "-j", "link", "show", "tunl0"]).stdout
    return int(json.loads(out)[0]["stats64"]["rx"]["packets"])


def test_tunnel_real_servers_decapsulate_ipip(tmp_path: Path) -> None:
    probe = subprocess.run(["modprobe", "ipip"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.skip("network = tunnel needs the ipip module on the real servers; "
                    f"`modprobe ipip` failed: {probe.stderr.strip()}")
    cf = config("tunnel", virtual("web", PORT, ["198.51.100.11", "198.51.100.12"]))
    with lan() as net:
        add_director(net, nat=False)
        for n in (1, 2):
            # the IPIP fallback device of the namespace receives what the director
            # encapsulates; the VIP itself is on lo (piranha realserver)
            rs = net.add(f"rs{n}", f"198.51.100.1{n}/24", RS_MAC[n], ["link set tunl0 up"])
            sysctl(rs.ns, "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.tunl0.rp_filter=0")
        client = net.add("client", "198.51.100.100/24", C_MAC).ns
        make_realservers(net, tmp_path)
        for n in (1, 2):
            serve(NameServer(net[f"rs{n}"].ns, f"rs{n}", PORT))
        lvsd: Lvsd | None = None
        with explained(net, lambda: lvsd):
            lvsd = start_lvsd(net, tmp_path, cf, 2)
            assert both_answer(client) == {"rs1", "rs2"}
            assert all(tunl0_rx(net[f"rs{n}"].ns) > 0 for n in (1, 2))
            assert neighbour_mac(client, VIP) == D_MAC
