"""Heartbeat datagrams: Piranha's exact bytes, validation order, and the authenticated format."""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Callable

import pytest

from piranha.heartbeat.packet import (
    AUTH_SIZE,
    AuthCodec,
    Heartbeat,
    Magic,
    Mode,
    PlainCodec,
    Reason,
    Rejected,
    ReplayWindow,
    decode,
    encode,
)

PARTNER, PARTNER_PRIVATE, STRANGER = "198.51.100.2", "192.0.2.2", "198.51.100.66"
KEY = b"0123456789abcdef0123456789abcdef"
WALL = 1_700_000_000.0

# Reference section 2.3: value, and the bytes an x86 pulse puts on the wire.
GOLDEN = [
    (Magic.RUNNING, 0xBDADDBDA, "da db ad bd"),
    (Magic.STOPPED, 0xADBDDABD, "bd da bd ad"),
    (Magic.FOS_RUNNING, 0xBEEFBABE, "be ba ef be"),
    (Magic.FOS_STOPPED, 0xDEADBEEF, "ef be ad de"),
    (Magic.FOS_STOPME, 0xDEADDADA, "da da ad de"),
    (Magic.HOLD, 0xDEAFBABE, "be ba af de"),
    (Magic.HELD, 0xDEAFDADA, "da da af de"),
]


@pytest.mark.parametrize(("magic", "value", "wire"), GOLDEN)
def test_plain_encoding_is_piranhas_bytes(magic: Magic, value: int, wire: str) -> None:
    assert magic == value
    assert encode(magic) == bytes.fromhex(wire)
    assert PlainCodec([PARTNER]).encode(magic, WALL) == bytes.fromhex(wire)


@pytest.mark.parametrize(("magic", "value", "wire"), GOLDEN)
def test_fos_and_lvs_accept_their_own_values(magic: Magic, value: int, wire: str) -> None:
    lvs = {Magic.RUNNING, Magic.STOPPED, Magic.FOS_STOPME, Magic.HOLD, Magic.HELD}
    fos = {Magic.FOS_RUNNING, Magic.FOS_STOPPED, Magic.FOS_STOPME, Magic.HOLD, Magic.HELD}
    for mode, accepted in ((Mode.LVS, lvs), (Mode.FOS, fos)):
        result = decode(bytes.fromhex(wire), mode)
        if magic in accepted:
            assert result == Heartbeat(magic)
        else:
            assert result == Rejected(Reason.INCOMPATIBLE, f"0x{value:08x}")


def test_big_endian_peer_is_incompatible() -> None:
    assert decode(struct.pack(">I", Magic.RUNNING)) == Rejected(Reason.INCOMPATIBLE, "0xdadbadbd")


def test_longer_datagram_is_read_as_its_first_four_bytes() -> None:
    assert decode(encode(Magic.STOPPED) + b"trailing junk") == Heartbeat(Magic.STOPPED)


@pytest.mark.parametrize("data", [b"", b"\xbd", b"\xbd\xda\xbd"])
def test_short_datagram_is_a_bad_heartbeat_packet(data: bytes) -> None:
    result = decode(data)
    assert result == Rejected(Reason.TOO_SHORT, f"{len(data)} bytes")
    assert str(result) == f"bad heartbeat packet: {len(data)} bytes"


def test_rejection_texts_are_pulses_log_lines() -> None:
    assert Reason.INCOMPATIBLE.value == (
        "Incompatible heartbeat received -- other system not using identical services")
    assert Reason.UNEXPECTED_SENDER.value == "Unexpected heartbeat"
    assert str(Rejected(Reason.UNEXPECTED_SENDER, "10.0.0.9")) == (
        "Unexpected heartbeat from 10.0.0.9")


def test_plain_codec_filters_the_sender_first() -> None:
    codec = PlainCodec([PARTNER, PARTNER_PRIVATE])
    assert codec.decode(encode(Magic.RUNNING), PARTNER, WALL) == Heartbeat(Magic.RUNNING)
    assert codec.decode(encode(Magic.RUNNING), PARTNER_PRIVATE, WALL) == Heartbeat(Magic.RUNNING)
    # a stranger's garbage is refused for the address, before its size is looked at
    assert codec.decode(b"", STRANGER, WALL) == Rejected(
        Reason.UNEXPECTED_SENDER, STRANGER)


# ---- authenticated format --------------------------------------------------------------------


def pair(max_skew: float = 10.0) -> tuple[AuthCodec, AuthCodec]:
    """A sender codec (the backup; its partner is us) and a receiver codec (the primary; its
    partner is the sender)."""
    return (AuthCodec(KEY, ["198.51.100.1"], max_skew=max_skew, primary=False),
            AuthCodec(KEY, [PARTNER, PARTNER_PRIVATE], max_skew=max_skew))


def reason(result: Heartbeat | Rejected) -> Reason | None:
    return result.reason if isinstance(result, Rejected) else None


def test_authenticated_layout_exact_bytes() -> None:
    sender, _ = pair()
    data = sender.encode(Magic.RUNNING, 1_700_000_000.25)
    stamp = 1_700_000_000_250_000
    signed = b"PHB\x02" + bytes.fromhex("dadbadbd") + stamp.to_bytes(8, "big") * 2
    backup_key = hmac.new(KEY, b"piranha heartbeat v2 backup", hashlib.sha256).digest()
    assert data == signed + hmac.new(backup_key, signed, hashlib.sha256).digest()
    assert len(data) == AUTH_SIZE == 56
    # the next packet: sequence + 1, its own timestamp
    later = sender.encode(Magic.STOPPED, 1_700_000_001.0)
    assert later[4:24] == (bytes.fromhex("bddabdad") + (stamp + 1).to_bytes(8, "big")
                           + (1_700_000_001_000_000).to_bytes(8, "big"))


def test_authenticated_round_trip() -> None:
    sender, receiver = pair()
    data = sender.encode(Magic.STOPPED, WALL)
    assert receiver.decode(data, PARTNER, WALL + 0.01) == Heartbeat(
        Magic.STOPPED, authenticated=True, seq=int(WALL * 1e6), timestamp=WALL)


def test_old_pulse_sees_authenticated_packet_as_incompatible() -> None:
    data = pair()[0].encode(Magic.RUNNING, WALL)
    assert reason(decode(data)) is Reason.INCOMPATIBLE  # what a 0.8.6 pulse logs, loudly


def test_plain_packet_refused_in_authenticated_mode() -> None:
    _, receiver = pair()
    assert receiver.decode(encode(Magic.RUNNING), PARTNER, WALL) == Rejected(
        Reason.NOT_AUTHENTICATED, "4 bytes")


@pytest.mark.parametrize(
    ("mangle", "expected"),
    [
        (lambda d: d[:3] + b"\x03" + d[4:], Reason.MALFORMED),  # unknown version
        (lambda d: d[:3] + b"\x01" + d[4:], Reason.MALFORMED),  # version 1: one key both ways
        (lambda d: d[:-1], Reason.MALFORMED),  # truncated
        (lambda d: d + b"\x00", Reason.MALFORMED),  # padded
        (lambda d: d[:4] + encode(Magic.STOPPED) + d[8:], Reason.BAD_MAC),  # magic flipped
        (lambda d: d[:8] + (2**63).to_bytes(8, "big") + d[16:], Reason.BAD_MAC),  # seq edited
        (lambda d: d[:-1] + bytes([d[-1] ^ 1]), Reason.BAD_MAC),  # MAC edited
    ],
)
def test_tampering_is_rejected(mangle: Callable[[bytes], bytes], expected: Reason) -> None:
    sender, receiver = pair()
    data = mangle(sender.encode(Magic.RUNNING, WALL))
    assert reason(receiver.decode(data, PARTNER, WALL)) is expected
    assert receiver.window.highest is None  # nothing was recorded


def test_wrong_key_is_rejected() -> None:
    forger = AuthCodec(b"not the shared key, same length!", ["198.51.100.1"])
    _, receiver = pair()
    assert receiver.decode(forger.encode(Magic.STOPPED, WALL), PARTNER, WALL) == Rejected(
        Reason.BAD_MAC)


def test_unexpected_sender_is_checked_before_the_mac() -> None:
    sender, receiver = pair()
    result = receiver.decode(sender.encode(Magic.RUNNING, WALL), STRANGER, WALL)
    assert result == Rejected(Reason.UNEXPECTED_SENDER, STRANGER)


def test_replay_is_rejected() -> None:
    sender, receiver = pair()
    data = sender.encode(Magic.STOPPED, WALL)
    assert isinstance(receiver.decode(data, PARTNER, WALL), Heartbeat)
    assert receiver.decode(data, PARTNER, WALL + 1) == Rejected(
        Reason.REPLAYED, f"sequence {int(WALL * 1e6)}")
    # the same bytes on the other path are the same packet
    assert reason(receiver.decode(data, PARTNER_PRIVATE, WALL + 1)) is Reason.REPLAYED


def test_reordering_between_paths_is_tolerated_but_not_twice() -> None:
    sender, receiver = pair()
    public = sender.encode(Magic.RUNNING, WALL)
    private = sender.encode(Magic.RUNNING, WALL)
    assert isinstance(receiver.decode(private, PARTNER_PRIVATE, WALL), Heartbeat)
    assert isinstance(receiver.decode(public, PARTNER, WALL), Heartbeat)  # older, unseen
    assert reason(receiver.decode(public, PARTNER, WALL)) is Reason.REPLAYED


@pytest.mark.parametrize(("offset", "ok"), [(-10.0, True), (10.0, True), (-10.5, False),
                                            (10.5, False), (-3600.0, False)])
def test_timestamp_must_be_within_max_skew(offset: float, ok: bool) -> None:
    sender, receiver = pair(max_skew=10.0)
    result = receiver.decode(sender.encode(Magic.RUNNING, WALL + offset), PARTNER, WALL)
    if ok:
        assert isinstance(result, Heartbeat)
    else:
        assert result == Rejected(Reason.STALE, f"{offset:+.3f}s from our clock")


def test_sequence_keeps_growing_across_a_sender_restart() -> None:
    first, receiver = pair()
    for i in range(100):
        assert isinstance(receiver.decode(first.encode(Magic.RUNNING, WALL + i * 0.01),
                                          PARTNER, WALL + i * 0.01), Heartbeat)
    restarted = AuthCodec(KEY, ["198.51.100.1"], primary=False)  # a new pulse, 1 s later
    assert isinstance(receiver.decode(restarted.encode(Magic.STOPPED, WALL + 1), PARTNER,
                                      WALL + 1), Heartbeat)


def test_authenticated_incompatible_magic() -> None:
    sender = AuthCodec(KEY, ["198.51.100.1"], mode=Mode.FOS, primary=False)
    _, receiver = pair()
    result = receiver.decode(sender.encode(Magic.FOS_RUNNING, WALL), PARTNER, WALL)
    assert result == Rejected(Reason.INCOMPATIBLE, "0xbeefbabe")


def test_key_and_skew_are_checked() -> None:
    with pytest.raises(ValueError, match=r"^heartbeat key must be at least 16 bytes$"):
        AuthCodec(b"short", [PARTNER])
    with pytest.raises(ValueError, match=r"^max_skew must be positive$"):
        AuthCodec(KEY, [PARTNER], max_skew=0)


def test_replay_window() -> None:
    window = ReplayWindow(size=4)
    for seq in (10, 12, 11):
        assert window.fresh(seq)
        window.accept(seq)
    assert [window.fresh(s) for s in (8, 9, 10, 11, 12, 13)] == [
        False, True, False, False, False, True]  # 8 is older than the window
    window.accept(100)
    assert not window.fresh(99 - 3) and window.fresh(99) and not window.fresh(100)


def test_a_reflected_heartbeat_is_refused_and_moves_nothing() -> None:
    backup, primary = pair()
    genuine = backup.encode(Magic.RUNNING, WALL)
    assert isinstance(primary.decode(genuine, PARTNER, WALL), Heartbeat)
    seen = primary.window.highest
    # the primary's own heartbeats, sent back to it from the partner's address: refused, and
    # the window stays where the partner's genuine sequence put it
    for i in range(1, 4):
        own = primary.encode(Magic.STOPPED, WALL + i)
        assert primary.decode(own, PARTNER, WALL + i) == Rejected(Reason.REFLECTED)
    assert primary.window.highest == seen
    assert isinstance(primary.decode(backup.encode(Magic.RUNNING, WALL + 4), PARTNER, WALL + 4),
                      Heartbeat)
    # the other way round: the backup's own RUNNING reflected to it is refused too
    mirror = AuthCodec(KEY, ["198.51.100.1"], primary=False)
    assert mirror.decode(mirror.encode(Magic.RUNNING, WALL), "198.51.100.1", WALL) == Rejected(
        Reason.REFLECTED)


def test_a_long_gap_costs_constant_time_and_memory() -> None:
    window = ReplayWindow()
    window.accept(10**6)
    window.accept(10**6 + 86_400 * 10**6)  # a day later, in microseconds
    assert window._seen == 1 and window.highest == 10**6 + 86_400 * 10**6
    assert window.fresh(window.highest - 1) and not window.fresh(window.highest)
