"""send_arp on a real veth pair: the frame captured on the far end, checked byte by byte.

Sender: namespace A (``pxa0``, 02:00:00:c0:ff:ee); receiver: namespace B (``pxb0``).
"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Callable
from ipaddress import IPv6Address, ip_address
from pathlib import Path

import pytest

from lab.netns import IF_A, IF_B, Capture, Veth
from piranha import send_arp
from piranha.net import arp

VIP, VIP6 = "198.51.100.10", "2001:db8::1"
MAC = bytes.fromhex("020000c0ffee")
PYTHON = sys.executable
CONSOLE_SCRIPT = Path(sys.executable).parent / "send_arp"

# Reference section 5, field by field, for VIP announced at MAC.
GOLDEN_ARP = bytes.fromhex(
    "ffffffffffff" "020000c0ffee" "0806"  # Ethernet: broadcast, our MAC, ARP
    "0001" "0800" "06" "04" "0002"  # Ethernet/IPv4, 6/4, OPER 2 (reply)
    "020000c0ffee" "c633640a"  # sender MAC, sender IP 198.51.100.10
    "020000c0ffee" "c633640a"  # target MAC and IP: the same again
) + bytes(18)  # padding to 60

GOLDEN_NA = bytes.fromhex(
    "333300000001" "020000c0ffee" "86dd"  # all-nodes multicast, our MAC, IPv6
    "60000000" "0020" "3a" "ff"  # v6, payload 32, ICMPv6, hop limit 255
    "20010db8000000000000000000000001" "ff020000000000000000000000000001"
    "8800" "f87c"  # neighbour advertisement, code 0, checksum
    "20000000" "20010db8000000000000000000000001"  # Override, target = VIP
    "0201" "020000c0ffee"  # target link-layer address option
)


def is_arp(frame: bytes) -> bool:
    return frame[12:14] == b"\x08\x06"


def is_na(frame: bytes) -> bool:
    return frame[12:14] == b"\x86\xdd" and frame[20] == 58 and frame[54] == 136


def argv(src_ip: str = VIP) -> list[str]:
    # exactly how pulse calls it: MAC as 12 uppercase digits, the broadcast address as target
    return ["-i", IF_A, src_ip, "020000C0FFEE", "198.51.100.255", "ffffffffffff"]


def test_in_process_sends_the_60_byte_frame(veth: Veth, capture: Capture,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    with veth.a.entered():
        assert send_arp.main(argv()) == 0
    assert capsys.readouterr() == ("", "")
    assert capture.wait_for(is_arp) == [GOLDEN_ARP]


def test_console_script_in_the_namespace(veth: Veth, capture: Capture) -> None:
    if not CONSOLE_SCRIPT.exists():
        pytest.skip(f"console script not installed at {CONSOLE_SCRIPT}")
    proc = veth.a.exec([str(CONSOLE_SCRIPT), *argv()])
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    assert capture.wait_for(is_arp) == [GOLDEN_ARP]


def test_python_m_in_the_namespace(veth: Veth, capture: Capture) -> None:
    proc = veth.a.exec([PYTHON, "-m", "piranha.send_arp", "-i", IF_A, VIP, "02:00:00:c0:ff:ee",
                        "0.0.0.0", "ff:ff:ff:ff:ff:ff"])
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    assert capture.wait_for(is_arp) == [GOLDEN_ARP]


def test_five_announcements_like_pulse(veth: Veth, capture: Capture) -> None:
    with veth.a.entered():
        for _ in range(5):
            assert send_arp.main(argv()) == 0
    assert capture.wait_for(is_arp, count=5) == [GOLDEN_ARP] * 5


def test_ipv6_gets_an_unsolicited_neighbour_advertisement(veth: Veth, capture: Capture) -> None:
    with veth.a.entered():
        assert send_arp.main(argv(VIP6)) == 0
    assert capture.wait_for(is_na) == [GOLDEN_NA]


def test_our_na_equals_the_one_the_kernel_builds(veth: Veth, capture: Capture) -> None:
    # an independent check of the ICMPv6 checksum: a raw ICMPv6 socket makes the kernel
    # compute it, for the same message from the same source
    ours = arp.neighbor_advert(IPv6Address(VIP6), MAC)
    message = ours[54:56] + b"\0\0" + ours[58:]
    with veth.a.entered():
        index = socket.if_nametoindex(IF_A)
        with socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6) as sock:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
            sock.bind((VIP6, 0, 0, index))
            sock.sendto(message, ("ff02::1", 0, 0, index))
    assert capture.wait_for(is_na) == [ours] == [GOLDEN_NA]


def neighbour(veth: Veth, address: str) -> str:
    return veth.b.exec(["ip", "neigh", "show", address, "dev", IF_B]).stdout.strip()


@pytest.mark.parametrize(("address", "is_frame", "golden"),
                         [(VIP, is_arp, GOLDEN_ARP), (VIP6, is_na, GOLDEN_NA)],
                         ids=["arp", "neighbour-advert"])
def test_the_receiving_kernel_updates_its_neighbour_cache(
        veth: Veth, capture: Capture, address: str, is_frame: Callable[[bytes], bool],
        golden: bytes) -> None:
    veth.b.exec(["ip", "neigh", "replace", address, "lladdr", "02:00:00:00:00:99",
                 "dev", IF_B, "nud", "stale"])
    # like pulse, announce again until it sticks: a just-created veth may drop the first
    # ones (IPv6 on the far end is not ready for a fraction of a second)
    for _ in range(40):
        with veth.a.entered():
            frame = arp.announce(IF_A, ip_address(address))  # MAC looked up from the device
        assert frame == golden
        if "02:00:00:c0:ff:ee" in neighbour(veth, address):
            break
        time.sleep(0.05)
    assert neighbour(veth, address) == f"{address} lladdr 02:00:00:c0:ff:ee STALE"
    assert capture.wait_for(is_frame)[0] == golden


def test_interface_mac(veth: Veth) -> None:
    with veth.a.entered():
        assert arp.interface_mac(IF_A) == MAC


def test_unknown_device(veth: Veth, capsys: pytest.CaptureFixture[str]) -> None:
    with veth.a.entered():
        assert send_arp.main(["-i", "nosuchdev0", VIP, "020000c0ffee", VIP, "ffffffffffff"]) == 1
    assert capsys.readouterr() == ("", "sendto: No such device\n")


def test_without_cap_net_raw(veth: Veth) -> None:
    proc = veth.a.exec(["setpriv", "--bounding-set=-net_raw", "--inh-caps=-net_raw",
                        PYTHON, "-m", "piranha.send_arp", *argv()])
    if "setpriv" in proc.stderr:
        pytest.skip(f"setpriv cannot drop CAP_NET_RAW here: {proc.stderr.strip()}")
    assert (proc.returncode, proc.stderr) == (1, "socket: Operation not permitted\n")


def test_a_kept_frame_sender_sends_every_frame_byte_exact(veth: Veth, capture: Capture) -> None:
    """pulse's FrameSender: one socket, many frames, on the device named per call."""
    with veth.a.entered():
        sender = arp.FrameSender()
    try:
        for _ in range(3):
            sender(IF_A, GOLDEN_ARP)
        sender(IF_A, GOLDEN_NA)
        with pytest.raises(arp.SendError, match=r"^sendto: "):
            sender("nosuchdev0", GOLDEN_ARP)
    finally:
        sender.close()
    got = capture.wait_for(lambda f: is_arp(f) or is_na(f), count=4)
    assert got == [GOLDEN_ARP] * 3 + [GOLDEN_NA]
