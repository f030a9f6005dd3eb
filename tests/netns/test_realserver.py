"""``piranha realserver`` for real, in a fresh network namespace on the host: VIPs on lo, the ARP
sysctls, the state file, ``--undo`` restoring exactly what was there before, ``--print``.

Runs the venv's ``piranha`` console script under ``ip netns exec`` (host tier; needs root).
Addresses: 198.51.100.0/24 and 2001:db8::/32, inside the namespace only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.netns import Netns, delete, ip

PIRANHA = str(Path(sys.executable).with_name("piranha"))
VIP, VIP2, VIP6 = "198.51.100.10", "198.51.100.11", "2001:db8::10"
ARP = ["net.ipv4.conf.all.arp_ignore", "net.ipv4.conf.all.arp_announce",
       "net.ipv4.conf.lo.arp_ignore", "net.ipv4.conf.lo.arp_announce"]


@pytest.fixture
def ns() -> Iterator[Netns]:
    space = Netns(f"pirrs-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    try:
        ip("netns", "add", space.name)
        ip("-n", space.name, "link", "set", "lo", "up")
        yield space
    finally:
        delete(space)


def piranha(ns: Netns, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", ns.name, PIRANHA, "realserver", *args],
                          text=True, capture_output=True, timeout=60, check=False)


def lo(ns: Netns) -> list[str]:
    """``ADDRESS/PREFIX LABEL`` of every global address on lo."""
    info = json.loads(ip("-n", ns.name, "-j", "addr", "show", "dev", "lo", "scope", "global"))
    return [f"{a['local']}/{a['prefixlen']} {a.get('label', '-')}"
            for link in info for a in link["addr_info"] if "local" in a]


def arp(ns: Netns) -> list[str]:
    return ns.exec(["sysctl", "-n", *ARP]).stdout.split()


def test_setup_is_idempotent_and_undo_restores_what_was_there(ns: Netns, tmp_path: Path) -> None:
    state = tmp_path / "rs.json"
    ns.exec(["sysctl", "-qw", "net.ipv4.conf.all.arp_announce=1"])  # an admin's own setting
    run = piranha(ns, "--vip", VIP, "--vip", VIP6, "--state-file", str(state))
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [
        "piranha: sysctl -w net.ipv4.conf.all.arp_ignore=1 (was 0)",
        "piranha: sysctl -w net.ipv4.conf.all.arp_announce=2 (was 1)",
        "piranha: sysctl -w net.ipv4.conf.lo.arp_ignore=1 (was 0)",
        "piranha: sysctl -w net.ipv4.conf.lo.arp_announce=2 (was 0)",
        f"piranha: ip addr add {VIP}/32 dev lo label lo:piranha",
        f"piranha: ip addr add {VIP6}/128 dev lo"]
    assert sorted(lo(ns)) == [f"{VIP}/32 lo:piranha", f"{VIP6}/128 -"]
    assert arp(ns) == ["1", "2", "1", "2"]
    saved = json.loads(state.read_text())
    assert saved == {"vips": [VIP, VIP6], "sysctls": {
        "net.ipv4.conf.all.arp_announce": "1", "net.ipv4.conf.all.arp_ignore": "0",
        "net.ipv4.conf.lo.arp_announce": "0", "net.ipv4.conf.lo.arp_ignore": "0"},
        "method": "sysctl", "backend": "nft", "real_ip": ""}

    # again, plus one more VIP: nothing changes twice, the original values stay recorded
    run = piranha(ns, "--vip", VIP, "--vip", VIP2, "--state-file", str(state))
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [f"piranha: {VIP}/32 is already on lo",
                                       f"piranha: ip addr add {VIP2}/32 dev lo label lo:piranha"]
    assert json.loads(state.read_text())["sysctls"] == saved["sysctls"]

    # undo one VIP: the others are still served, so ARP stays suppressed
    run = piranha(ns, "--undo", "--vip", VIP, "--state-file", str(state))
    assert run.stdout.splitlines() == [f"piranha: ip addr del {VIP}/32 dev lo"]
    assert arp(ns) == ["1", "2", "1", "2"]
    # undo the rest (every VIP still recorded): sysctls back to what they were, file gone
    run = piranha(ns, "--undo", "--state-file", str(state))
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [
        f"piranha: ip addr del {VIP6}/128 dev lo",
        f"piranha: ip addr del {VIP2}/32 dev lo",
        "piranha: sysctl -w net.ipv4.conf.all.arp_announce=1 (was 2)",
        "piranha: sysctl -w net.ipv4.conf.all.arp_ignore=0 (was 1)",
        "piranha: sysctl -w net.ipv4.conf.lo.arp_announce=0 (was 2)",
        "piranha: sysctl -w net.ipv4.conf.lo.arp_ignore=0 (was 1)"]
    assert lo(ns) == []
    assert arp(ns) == ["0", "1", "0", "0"]
    assert not state.exists()


def test_undo_without_a_record_leaves_the_sysctls(ns: Netns, tmp_path: Path) -> None:
    ip("-n", ns.name, "addr", "add", f"{VIP}/32", "dev", "lo")
    ns.exec(["sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1"])
    run = piranha(ns, "--undo", "--vip", VIP, "--state-file", str(tmp_path / "none.json"))
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [
        f"piranha: ip addr del {VIP}/32 dev lo",
        "piranha: ARP sysctls left as they are (no record of piranha changing them)"]
    assert arp(ns)[0] == "1"


def test_print_changes_nothing(ns: Netns, tmp_path: Path) -> None:
    run = piranha(ns, "--vip", VIP, "--print", "--state-file", str(tmp_path / "s.json"))
    assert run.stdout.splitlines() == [
        "sysctl -w net.ipv4.conf.all.arp_ignore=1", "sysctl -w net.ipv4.conf.all.arp_announce=2",
        "sysctl -w net.ipv4.conf.lo.arp_ignore=1", "sysctl -w net.ipv4.conf.lo.arp_announce=2",
        f"ip addr add {VIP}/32 dev lo label lo:piranha"]
    assert lo(ns) == [] and arp(ns) == ["0", "0", "0", "0"]
    assert not (tmp_path / "s.json").exists()


def test_errors(ns: Netns, tmp_path: Path) -> None:
    run = piranha(ns, "--vip", "198.51.100.300", "--state-file", str(tmp_path / "s.json"))
    assert run.returncode == 2
    assert "Invalid value for '--vip': '198.51.100.300' does not appear to be an IPv4 or " \
           "IPv6 address" in run.stderr
    run = piranha(ns, "--undo", "--state-file", str(tmp_path / "s.json"))
    assert run.returncode == 2
    assert f"give at least one --vip (nothing recorded in {tmp_path / 's.json'})" in run.stderr
    (tmp_path / "bad.json").write_text("[")
    run = piranha(ns, "--vip", VIP, "--state-file", str(tmp_path / "bad.json"))
    assert run.returncode == 1
    assert run.stderr.startswith(f"piranha: realserver: cannot read state file "
                                 f"{tmp_path / 'bad.json'}: ")
