"""FTP through a NAT director with Piranha's firewall-mark recipe, both transfer modes.

lvs.cf has one virtual with ``fwmark = 1``, ``port = 21``, ``persistent``; two real FTP servers
(``lab.netlab.FtpServer``) each serve a file starting with their own name. lvsd programs the
fwmark service; ``piranha fwmark-rules --apply`` (nft), run in the director's namespace, marks
port 21 and the passive range and masquerades the real servers' port 20. ip_vs_ftp is loaded
(scripts/vm-guest.sh). The client is Python's ftplib, told to trust the address of the 227
reply, so a passive fetch goes where the director said.

Why the masquerade rule is part of it: ip_vs_ftp rewrites the real server's address in a 227
reply through connection tracking, and IPVS turns tracking on in a namespace only for a
service whose port is 21, never for a fwmark service (port 0). With the marks alone (what
Piranha's manuals list first), active mode works but the 227 reply reaches the client with
the real server's private address; any nat rule, such as Red Hat's port-20 masquerade, turns
tracking on. The test shows both. (A plain ``port = 21`` virtual without fwmark needs no rule
at all: checked while writing this test, not repeated here.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from lab.e2e import (
    C_MAC,
    VIP,
    FtpServer,
    add_director,
    add_nat_servers,
    config,
    connections,
    explained,
    ftp_fetch,
    lan,
    nft,
    pasv_reply,
    payload,
    piranha,
    serve,
    start_lvsd,
    virtual,
)
from lab.lvsd import Lvsd

MARKS_ONLY = f"""\
table ip piranha {{
    chain prerouting {{
        type filter hook prerouting priority mangle; policy accept;
        ip daddr {VIP} tcp dport 21 meta mark set 1
        ip daddr {VIP} tcp dport 10000-20000 meta mark set 1
    }}
}}
"""
FTP_VIRTUAL = virtual("ftp", 21, ["10.200.0.11", "10.200.0.12"],
                      "    fwmark = 1\n    persistent = 60\n    protocol = tcp\n")


@pytest.fixture(autouse=True)
def _ip_vs_ftp_and_nft() -> None:
    if shutil.which("nft") is None:
        why = "needs nft (Debian package nftables, installed by scripts/bootstrap.sh)"
        if os.environ.get("PIRANHA_KERNEL_TIER") == "1":  # the VM must have it
            pytest.fail(why, pytrace=False)
        pytest.skip(why)
    if not Path("/sys/module/ip_vs_ftp").exists():
        probe = subprocess.run(["modprobe", "ip_vs_ftp"], capture_output=True, text=True,
                               check=False)
        assert probe.returncode == 0, f"modprobe ip_vs_ftp: {probe.stderr}"


def test_ftp_through_a_fwmark_nat_virtual_passive_and_active(tmp_path: Path) -> None:
    cf = config("nat", FTP_VIRTUAL)
    with lan(("br0", "br1")) as net:
        add_director(net, nat=True)
        add_nat_servers(net)
        client = net.add("client", "198.51.100.100/24", C_MAC).ns
        for n in (1, 2):
            serve(FtpServer(net[f"rs{n}"].ns, f"rs{n}", {"file.bin": payload(f"rs{n}")}))
        lvsd: Lvsd | None = None
        with explained(net, lambda: lvsd):
            lvsd = start_lvsd(net, tmp_path, cf, 2)
            # Piranha's marks alone: active works, the 227 reply keeps the private address
            nft(net["d"].ns, MARKS_ONLY)
            got = ftp_fetch(client, VIP, "file.bin", passive=False)
            assert got.content == payload(got.welcome.split()[1])
            assert pasv_reply(client, VIP) in ("10.200.0.11", "10.200.0.12")

            rules = piranha(net["d"].ns, "fwmark-rules", "-c", str(lvsd.cf), "--apply")
            assert rules.returncode == 0, rules.stdout + rules.stderr
            listed = net["d"].ns.exec(["nft", "list", "table", "ip", "piranha"]).stdout
            assert "tcp dport 10000-20000 meta mark set 0x00000001" in listed
            assert "tcp sport 20 masquerade" in listed

            got = ftp_fetch(client, VIP, "file.bin", passive=True)
            server = got.welcome.split()[1]
            # ip_vs_ftp rewrote the real server's own address in the 227 reply to the VIP,
            # and the data connection reached the server of the control connection
            assert got.pasv_host == VIP
            assert got.content == payload(server)

            got = ftp_fetch(client, VIP, "file.bin", passive=False)
            assert got.welcome.split()[1] == server  # persistence: same real server
            assert got.content == payload(server)
            # the active data connection came back through IPVS: VIP:20 -> client
            assert any(c.vport == 20 and c.client == "198.51.100.100"
                       for c in connections(net["d"].ns))
