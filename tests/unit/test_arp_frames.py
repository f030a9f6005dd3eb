"""Announcement frames: Piranha's 60-byte gratuitous ARP and the IPv6 neighbour advertisement."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import pytest

from piranha.net.arp import (
    announcement,
    format_mac,
    gratuitous_arp,
    icmpv6_checksum,
    neighbor_advert,
    parse_mac,
)

VIP = IPv4Address("198.51.100.10")
VIP6 = IPv6Address("2001:db8::10")
MAC = bytes.fromhex("020000c0ffee")

# Reference section 5, field by field.
GOLDEN_ARP = bytes.fromhex(
    "ffffffffffff"  # 0  Ethernet destination: TARGET_MAC (pulse passes ffffffffffff)
    "020000c0ffee"  # 6  Ethernet source: SRC_MAC
    "0806"  # 12 EtherType ARP
    "0001"  # 14 HTYPE Ethernet
    "0800"  # 16 PTYPE IPv4
    "06" "04"  # 18 HLEN, PLEN
    "0002"  # 20 OPER 2: reply
    "020000c0ffee"  # 22 sender MAC
    "c633640a"  # 28 sender IP 198.51.100.10
    "020000c0ffee"  # 32 target MAC = SRC_MAC
    "c633640a"  # 38 target IP = SRC_IP
    + "00" * 18  # 42 padding
)

def test_gratuitous_arp_is_the_60_byte_frame_of_section_5() -> None:
    frame = gratuitous_arp(VIP, MAC)
    assert len(frame) == 60
    assert frame == GOLDEN_ARP


def test_gratuitous_arp_to_a_unicast_target_mac() -> None:
    target = bytes.fromhex("0a0b0c0d0e0f")
    frame = gratuitous_arp(VIP, MAC, target)
    assert frame[:6] == target and frame[6:] == GOLDEN_ARP[6:]


def ones_complement_sum(data: bytes) -> int:
    """Independent RFC 1071 sum (byte pairs, end-around carry), for checking."""
    if len(data) % 2:
        data += b"\0"
    total = 0
    for i in range(0, len(data), 2):
        total += data[i] << 8 | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return total


def test_neighbor_advert_layout() -> None:
    frame = neighbor_advert(VIP6, MAC)
    assert len(frame) == 86
    head = bytes.fromhex(
        "333300000001" "020000c0ffee" "86dd"
        "60000000" "0020" "3a" "ff"
        "20010db8000000000000000000000010"
        "ff020000000000000000000000000001"
        "8800")
    tail = bytes.fromhex("20000000" "20010db8000000000000000000000010" "0201" "020000c0ffee")
    assert frame[:56] == head
    assert frame[58:] == tail
    assert frame[56:58] == bytes.fromhex("f85e")  # golden, checked by the kernel in tests/netns


def test_neighbor_advert_checksum_verifies() -> None:
    for ip, mac in ((VIP6, MAC), (IPv6Address("2001:db8:ffff::ffff"), b"\xff" * 6),
                    (IPv6Address("2001:db8::"), b"\x00" * 6)):
        frame = neighbor_advert(ip, mac)
        pseudo = frame[22:38] + frame[38:54] + (32).to_bytes(4, "big") + b"\0\0\0\x3a"
        assert ones_complement_sum(pseudo + frame[54:]) == 0xFFFF


def test_icmpv6_checksum_of_odd_length() -> None:
    src, dst = IPv6Address("2001:db8::1"), IPv6Address("2001:db8::2")
    message = bytes.fromhex("800000000001000161")  # echo request, 1 byte of data
    checksum = icmpv6_checksum(src, dst, message)
    filled = message[:2] + checksum.to_bytes(2, "big") + message[4:]
    pseudo = src.packed + dst.packed + len(message).to_bytes(4, "big") + b"\0\0\0\x3a"
    assert ones_complement_sum(pseudo + filled) == 0xFFFF


def test_neighbor_advert_router_flag_and_destinations() -> None:
    assert neighbor_advert(VIP6, MAC, router=True)[58:62] == bytes.fromhex("a0000000")
    target = bytes.fromhex("0a0b0c0d0e0f")
    assert neighbor_advert(VIP6, MAC, target)[:6] == target
    assert neighbor_advert(VIP6, MAC, b"\xff" * 6)[:6] == bytes.fromhex("333300000001")


def test_announcement_picks_the_family() -> None:
    assert announcement(VIP, MAC) == GOLDEN_ARP
    assert announcement(VIP6, MAC) == neighbor_advert(VIP6, MAC)


@pytest.mark.parametrize("text", ["020000c0ffee", "02:00:00:c0:ff:ee", "02:00:00:C0:FF:EE",
                                  "0200:00c0:ffee", "02:00:00:c0:ff:ee:"])
def test_parse_mac_accepts_what_send_arp_accepts(text: str) -> None:
    assert parse_mac(text) == MAC


@pytest.mark.parametrize("text", ["", "02:00:00:c0:ff", "2:00:00:c0:ff:ee", "02-00-00-c0-ff-ee",
                                  "02000 0c0ffee", "0g0000c0ffee",
                                  "020000c0ffee00",  # Piranha ignores the rest; we refuse
                                  "02:00:00:c0:ff:ee:11"])
def test_parse_mac_refuses(text: str) -> None:
    with pytest.raises(ValueError, match=r"^Invalid hardware address$"):
        parse_mac(text)


def test_format_mac() -> None:
    assert format_mac(MAC) == "02:00:00:c0:ff:ee"


def test_frame_builders_check_mac_length() -> None:
    with pytest.raises(ValueError, match=r"^mac must be 6 bytes, got 5$"):
        gratuitous_arp(VIP, MAC[:5])
    with pytest.raises(ValueError, match=r"^dest_mac must be 6 bytes, got 7$"):
        neighbor_advert(VIP6, MAC, MAC + b"\0")
