"""send_arp's command line: Piranha's argv rules, messages and exit codes (no sockets here;
tests/netns sends for real)."""

from __future__ import annotations

import errno
import os
import socket
from ipaddress import IPv4Address, IPv6Address

import pytest

from piranha import send_arp
from piranha.net.arp import SendError, gratuitous_arp, neighbor_advert

USAGE = ("send_arp: sends out custom ARP packet. Yuri Volobuev '97\n"
         "\tusage: send_arp [-i dev] src_ip_addr src_hw_addr targ_ip_addr tar_hw_addr\n\n\n")
MAC = bytes.fromhex("020000c0ffee")
VIP = "198.51.100.10"


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bytes]]:
    frames: list[tuple[str, bytes]] = []
    monkeypatch.setattr(send_arp, "send_frame", lambda dev, frame: frames.append((dev, frame)))
    return frames


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = send_arp.main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_pulse_style_call(sent: list[tuple[str, bytes]],
                          capsys: pytest.CaptureFixture[str]) -> None:
    args = ["-i", "eth1", VIP, "020000C0FFEE", "198.51.100.255", "ffffffffffff"]
    assert run(args, capsys) == (0, "", "")
    assert sent == [("eth1", gratuitous_arp(IPv4Address(VIP), MAC))]


def test_default_device_is_eth0(sent: list[tuple[str, bytes]],
                                capsys: pytest.CaptureFixture[str]) -> None:
    assert run([VIP, "02:00:00:c0:ff:ee", VIP, "ff:ff:ff:ff:ff:ff"], capsys)[0] == 0
    assert sent[0][0] == "eth0"


def test_target_ip_is_never_read(sent: list[tuple[str, bytes]],
                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert run([VIP, "020000c0ffee", "not an address", "0a0b0c0d0e0f"], capsys)[0] == 0
    assert sent == [("eth0", gratuitous_arp(IPv4Address(VIP), MAC, bytes.fromhex("0a0b0c0d0e0f")))]


@pytest.mark.parametrize("args", [
    [], ["--version"], ["-h"], [VIP], [VIP, "020000c0ffee", VIP],
    [VIP, "020000c0ffee", VIP, "ffffffffffff", "extra"],
    ["-x", "eth0", VIP, "020000c0ffee", VIP, "ffffffffffff"],  # 6 arguments, no -i
    ["-i", "eth0", VIP, "020000c0ffee", VIP],  # 5 arguments
    ["-i", "eth0", VIP, "020000c0ffee", VIP, "ffffffffffff", "extra"],
])
def test_usage(args: list[str], sent: list[tuple[str, bytes]],
               capsys: pytest.CaptureFixture[str]) -> None:
    assert run(args, capsys) == (1, "", USAGE)
    assert sent == []


def test_dash_i_with_two_fields_is_an_invalid_hardware_address(
        sent: list[tuple[str, bytes]], capsys: pytest.CaptureFixture[str]) -> None:
    # reference section 9, item 16: argc is 5, so Piranha goes on and reads a missing MAC
    assert run(["-i", "eth0", VIP, "020000c0ffee"], capsys) == (
        1, "", "Invalid hardware address\n")
    assert sent == []


@pytest.mark.parametrize("args", [
    [VIP, "020000c0ffee", VIP, "fffffffffff"],  # target MAC short
    [VIP, "02:00:00:c0:ff", VIP, "ffffffffffff"],  # source MAC short
    [VIP, "02-00-00-c0-ff-ee", VIP, "ffffffffffff"],
    [VIP, "020000c0ffee00", VIP, "ffffffffffff"],  # trailing digits: refused (Piranha: ignored)
    ["no.such.host.invalid", "zz", VIP, "ffffffffffff"],  # MACs are read before the IP
])
def test_invalid_hardware_address(args: list[str], sent: list[tuple[str, bytes]],
                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert run(args, capsys) == (1, "", "Invalid hardware address\n")


def test_unknown_host(monkeypatch: pytest.MonkeyPatch, sent: list[tuple[str, bytes]],
                      capsys: pytest.CaptureFixture[str]) -> None:
    def no_dns(name: str) -> str:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "gethostbyname", no_dns)
    assert run(["director.example", "020000c0ffee", VIP, "ffffffffffff"], capsys) == (
        1, "", "send_arp: unknown host director.example\n")


def test_host_names_resolve_like_gethostbyname(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "gethostbyname", lambda name: "198.51.100.77")
    assert send_arp.resolve("vip.example") == IPv4Address("198.51.100.77")


@pytest.mark.parametrize(("text", "address"), [
    ("198.51.100.10", IPv4Address(VIP)),
    ("198.51.25610", IPv4Address(VIP)),  # inet_addr short forms, as Piranha's C accepts
    ("0xc633640a", IPv4Address(VIP)),
    ("255.255.255.255", IPv4Address("255.255.255.255")),
    ("2001:db8::10", IPv6Address("2001:db8::10")),
])
def test_address_forms(text: str, address: IPv4Address | IPv6Address) -> None:
    assert send_arp.resolve(text) == address


def test_ipv6_sends_a_neighbour_advertisement(sent: list[tuple[str, bytes]],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["-i", "eth0", "2001:db8::10", "020000c0ffee", "::", "ffffffffffff"], capsys)[0] == 0
    assert sent == [("eth0", neighbor_advert(IPv6Address("2001:db8::10"), MAC))]


@pytest.mark.parametrize(("call", "code", "message"), [
    ("socket", errno.EPERM, "socket: Operation not permitted\n"),
    ("sendto", errno.ENODEV, "sendto: No such device\n"),
])
def test_send_errors_are_perror_lines(monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str], call: str,
                                      code: int, message: str) -> None:
    def fail(dev: str, frame: bytes) -> None:
        raise SendError(call, OSError(code, os.strerror(code)))

    monkeypatch.setattr(send_arp, "send_frame", fail)
    assert run([VIP, "020000c0ffee", VIP, "ffffffffffff"], capsys) == (1, "", message)
