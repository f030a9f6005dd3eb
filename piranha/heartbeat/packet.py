"""Heartbeat datagrams: Piranha 0.8.6's 4-byte format and an authenticated extension.

Rules of this module (pure: no sockets, no clock reads; wall-clock time comes in as ``wall``):

* Plain format (Piranha 0.8.6, reference section 2.3): one 32-bit magic value, little-endian
  (x86 pulse sends it in host order). A longer datagram is read as its first 4 bytes, a
  shorter one is rejected, exactly like pulse's ``recvfrom`` into a 4-byte buffer.
* Authenticated format (an extension, off by default; both directors must enable it), 56 bytes:

  ======  ====  ==========================================================================
  offset  size  field
  ======  ====  ==========================================================================
  0       3     ``b"PHB"`` (as a little-endian magic it is no Piranha value, so an old
                pulse logs "Incompatible heartbeat received" rather than obeying it)
  3       1     format version, 2 (version 1 had one key for both directions; see below)
  4       4     magic, little-endian, the same values as the plain format
  8       8     sequence number, big-endian; starts at the sender's first wall-clock
                timestamp so it keeps growing across restarts
  16      8     timestamp, microseconds since the Unix epoch, big-endian
  24      32    HMAC-SHA256 over bytes 0-23 with the *sender's* direction key:
                HMAC-SHA256(shared key, ``"piranha heartbeat v2 primary"`` or ``"... backup"``)
  ======  ====  ==========================================================================

  A packet is accepted when its MAC verifies with the partner's direction key, its timestamp
  is within ``max_skew`` seconds of the receiver's clock and its sequence number was not seen
  before (a 64-packet sliding window tolerates reordering between the two heartbeat paths).
  The direction keys bind the sender's role under the MAC: a director's own heartbeat sent
  back to it (with the partner's source address) verifies only with its own key and is
  refused as reflected, so it can neither pose as the partner nor move the replay window.
  The window is shifted by at most its size, whatever the gap: constant time and memory.
* Validation order follows pulse: sender address, size, (MAC, freshness, replay,) magic.
  Every refusal is a :class:`Rejected` with a :class:`Reason`; nothing raises on bad input.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import struct
from collections.abc import Collection
from dataclasses import dataclass


class Magic(enum.IntEnum):
    """The heartbeat values pulse knows (``<I`` on the wire)."""

    #: LVS mode, sender is active
    RUNNING = 0xBDADDBDA
    #: LVS mode, sender is not active
    STOPPED = 0xADBDDABD
    #: FOS mode, sender is active
    FOS_RUNNING = 0xBEEFBABE
    #: FOS mode, sender is not active
    FOS_STOPPED = 0xDEADBEEF
    #: FOS "we are taking control"; accepted in LVS mode too (pulse reads it as RUNNING)
    FOS_STOPME = 0xDEADDADA
    #: never sent (pulse's hold logic is compiled out); accepted as a keepalive
    HOLD = 0xDEAFBABE
    #: never sent; accepted as a keepalive
    HELD = 0xDEAFDADA


class Mode(enum.Enum):
    """Which service type the director runs; each accepts a different magic set."""

    #: virtual servers (``service = lvs``)
    LVS = "lvs"
    #: legacy failover services (``service = fos``)
    FOS = "fos"


#: magic values each mode accepts (pulse: this mode's RUNNING/STOPPED, STOPME, HOLD, HELD)
ACCEPTED: dict[Mode, frozenset[Magic]] = {
    Mode.LVS: frozenset({Magic.RUNNING, Magic.STOPPED, Magic.FOS_STOPME, Magic.HOLD, Magic.HELD}),
    Mode.FOS: frozenset(
        {Magic.FOS_RUNNING, Magic.FOS_STOPPED, Magic.FOS_STOPME, Magic.HOLD, Magic.HELD}
    ),
}


class Reason(enum.Enum):
    """Why a datagram was not taken as a heartbeat (value: the log text)."""

    #: source address is neither of the partner's addresses (pulse logs it only with -v)
    UNEXPECTED_SENDER = "Unexpected heartbeat"
    #: fewer than 4 bytes
    TOO_SHORT = "bad heartbeat packet"
    #: 4 bytes that are not a magic value of this mode
    INCOMPATIBLE = "Incompatible heartbeat received -- other system not using identical services"
    #: authenticated mode got a datagram without the authenticated header
    NOT_AUTHENTICATED = "unauthenticated heartbeat in authenticated mode"
    #: authenticated header with the wrong size or an unknown version
    MALFORMED = "malformed authenticated heartbeat"
    #: the HMAC does not verify (wrong key or altered packet)
    BAD_MAC = "heartbeat authentication failed"
    #: timestamp too far from our clock (replay of an old packet, or unsynchronised clocks)
    STALE = "heartbeat timestamp outside the allowed clock skew"
    #: sequence number already seen, or older than the replay window
    REPLAYED = "replayed heartbeat"
    #: our own heartbeat sent back to us (it verifies with our direction key, not the partner's)
    REFLECTED = "reflected heartbeat (this director's own, sent back)"


@dataclass(frozen=True)
class Heartbeat:
    """One accepted heartbeat: the magic and, when authenticated, its sequence and time."""

    magic: Magic
    authenticated: bool = False
    seq: int | None = None
    timestamp: float | None = None


@dataclass(frozen=True)
class Rejected:
    """A datagram that was refused, and why (``detail`` adds context for the log line)."""

    reason: Reason
    detail: str = ""

    def __str__(self) -> str:
        if not self.detail:
            return self.reason.value
        # pulse's own wording for this one: "Unexpected heartbeat from 10.0.0.9"
        glue = " from " if self.reason is Reason.UNEXPECTED_SENDER else ": "
        return f"{self.reason.value}{glue}{self.detail}"


PLAIN_SIZE = 4
AUTH_HEADER = b"PHB\x02"
_DIRECTION = b"piranha heartbeat v2 "
AUTH_SIZE = 56
_BODY = struct.Struct(">QQ")
_MAGIC = struct.Struct("<I")
MIN_KEY_SIZE = 16
REPLAY_WINDOW = 64


def encode(magic: Magic) -> bytes:
    """The 4 bytes pulse sends for ``magic``."""
    return _MAGIC.pack(magic)


def decode(data: bytes, mode: Mode = Mode.LVS) -> Heartbeat | Rejected:
    """The plain heartbeat in ``data``, or why it is refused (pulse's size and magic checks)."""
    if len(data) < PLAIN_SIZE:
        return Rejected(Reason.TOO_SHORT, f"{len(data)} bytes")
    return _check_magic(_MAGIC.unpack_from(data)[0], mode, authenticated=False)


def _check_magic(
    value: int, mode: Mode, *, authenticated: bool, seq: int | None = None,
    timestamp: float | None = None,
) -> Heartbeat | Rejected:
    if value not in ACCEPTED[mode]:
        return Rejected(Reason.INCOMPATIBLE, f"0x{value:08x}")
    return Heartbeat(Magic(value), authenticated, seq, timestamp)


def sender_ok(sender: str, partners: Collection[str]) -> Rejected | None:
    """None when ``sender`` is one of the partner's addresses, else the rejection."""
    return None if sender in partners else Rejected(Reason.UNEXPECTED_SENDER, sender)


class ReplayWindow:
    """Sequence numbers seen lately: the highest one plus a bitmap of the 64 below it."""

    def __init__(self, size: int = REPLAY_WINDOW) -> None:
        self.size = size
        self.highest: int | None = None
        self._seen = 0  # bit i set: highest - i was accepted

    def fresh(self, seq: int) -> bool:
        """True when ``seq`` has not been accepted and is not older than the window."""
        if self.highest is None or seq > self.highest:
            return True
        offset = self.highest - seq
        return offset < self.size and not self._seen >> offset & 1

    def accept(self, seq: int) -> None:
        """Record ``seq`` as accepted (call only after :meth:`fresh` said yes)."""
        if self.highest is None or seq > self.highest:
            # a gap of a day shifts by the window's size, not by the gap (no huge integer)
            shift = self.size if self.highest is None else min(seq - self.highest, self.size)
            self._seen = (self._seen << shift | 1) & ((1 << self.size) - 1)
            self.highest = seq
        else:
            self._seen |= 1 << (self.highest - seq)


class PlainCodec:
    """Piranha-compatible heartbeats: 4-byte magic, sender-address filtering only."""

    authenticated = False

    def __init__(self, partners: Collection[str], mode: Mode = Mode.LVS) -> None:
        self.partners = frozenset(partners)
        self.mode = mode

    def encode(self, magic: Magic, wall: float) -> bytes:
        """The datagram for ``magic`` (``wall`` is unused: the plain format has no time)."""
        return encode(magic)

    def decode(self, data: bytes, sender: str, wall: float) -> Heartbeat | Rejected:
        """The heartbeat from ``sender`` in ``data``, or why it is refused."""
        return sender_ok(sender, self.partners) or decode(data, self.mode)


class AuthCodec:
    """Authenticated heartbeats: HMAC-SHA256, timestamp freshness and replay rejection."""

    authenticated = True

    def __init__(
        self, key: bytes, partners: Collection[str], mode: Mode = Mode.LVS,
        max_skew: float = 10.0, primary: bool = True,
    ) -> None:
        if len(key) < MIN_KEY_SIZE:
            raise ValueError(f"heartbeat key must be at least {MIN_KEY_SIZE} bytes")
        if max_skew <= 0:
            raise ValueError("max_skew must be positive")
        own, theirs = (b"primary", b"backup") if primary else (b"backup", b"primary")
        self._send_key = hmac.new(key, _DIRECTION + own, hashlib.sha256).digest()
        self._recv_key = hmac.new(key, _DIRECTION + theirs, hashlib.sha256).digest()
        self.partners = frozenset(partners)
        self.mode = mode
        self.max_skew = max_skew
        self.window = ReplayWindow()
        self._next_seq: int | None = None

    def encode(self, magic: Magic, wall: float) -> bytes:
        """The signed datagram for ``magic`` sent at wall-clock time ``wall``."""
        stamp = int(wall * 1_000_000)
        seq = stamp if self._next_seq is None else self._next_seq
        self._next_seq = seq + 1
        signed = AUTH_HEADER + _MAGIC.pack(magic) + _BODY.pack(seq, stamp)
        return signed + _mac(self._send_key, signed)

    def decode(self, data: bytes, sender: str, wall: float) -> Heartbeat | Rejected:
        """The verified heartbeat from ``sender`` in ``data``, or why it is refused."""
        refused = sender_ok(sender, self.partners) or self._check_format(data)
        if refused:
            return refused
        if not hmac.compare_digest(_mac(self._recv_key, data[:24]), data[24:]):
            if hmac.compare_digest(_mac(self._send_key, data[:24]), data[24:]):
                return Rejected(Reason.REFLECTED)
            return Rejected(Reason.BAD_MAC)
        seq, stamp = _BODY.unpack_from(data, 8)
        refused = self._check_fresh(seq, stamp / 1_000_000, wall)
        if refused:
            return refused
        result = _check_magic(
            _MAGIC.unpack_from(data, 4)[0], self.mode, authenticated=True, seq=seq,
            timestamp=stamp / 1_000_000,
        )
        if isinstance(result, Heartbeat):
            self.window.accept(seq)
        return result

    @staticmethod
    def _check_format(data: bytes) -> Rejected | None:
        if data[:3] != AUTH_HEADER[:3]:
            return Rejected(Reason.NOT_AUTHENTICATED, f"{len(data)} bytes")
        if data[3:4] != AUTH_HEADER[3:] or len(data) != AUTH_SIZE:
            return Rejected(Reason.MALFORMED, f"version {data[3:4].hex()}, {len(data)} bytes")
        return None

    def _check_fresh(self, seq: int, stamp: float, wall: float) -> Rejected | None:
        # The timestamp guards the first heartbeat after our start (no window yet: an old
        # capture must not pass). From then on the sequence number is the freshness, so a
        # wall-clock step on either director (NTP, a VM resumed) causes no takeover.
        if self.window.highest is None and abs(stamp - wall) > self.max_skew:
            return Rejected(Reason.STALE, f"{stamp - wall:+.3f}s from our clock")
        if not self.window.fresh(seq):
            return Rejected(Reason.REPLAYED, f"sequence {seq}")
        return None


def _mac(key: bytes, signed: bytes) -> bytes:
    return hmac.new(key, signed, hashlib.sha256).digest()


Codec = PlainCodec | AuthCodec
