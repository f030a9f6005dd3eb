"""Send/expect text: nanny's escape translation and the reply matchers (pure, no I/O).

A matcher looks at the bytes received so far and decides as early as it can: a prefix fails
on the first differing byte and passes once it has as many bytes as the expected text; a
regex passes on the first match; ``*`` passes on any byte. ``final`` says no more bytes will
come (EOF, or the read cap), so an undecided matcher must decide then.

Differences from Piranha 0.8.6 (``pinger``/``convert_str`` in nanny.c), all deliberate:

* Piranha read once (``strlen(expect)`` bytes, or 254 for a regex), so a reply split across
  segments failed; here the probe keeps reading until the matcher decides.
* ``*`` in Piranha passed as soon as the socket was readable, even on an immediate EOF;
  here it needs at least one byte.
* An unknown escape (``\\d``) or a trailing backslash sent Piranha's ``convert_str`` into an
  endless loop (by code reading); here such backslashes are left alone.
* The regex is Python ``re`` on bytes with DOTALL, which is how POSIX ``regexec`` treats
  newlines (``.`` matches them, ``^``/``$`` anchor the whole reply; Python's ``$`` also
  matches before a final ``\n``). ERE and Python syntax agree on what nanny users write
  (classes, alternation, anchors, repeats); POSIX classes such as ``[[:digit:]]``, which
  Python lacks, are rewritten to their ASCII ranges first.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from typing import Protocol

_ESCAPES = {"\\": "\\", "r": "\r", "n": "\n", "t": "\t", "'": "'", '"': '"'}
_ESCAPE_RE = re.compile(r"\\([\\rnt'\"])")

#: how much of a reply a message quotes
SHOW_LIMIT = 48
#: POSIX bracket classes (C locale) as Python class contents
_POSIX_CLASSES = {
    b"alnum": b"0-9A-Za-z", b"alpha": b"A-Za-z", b"blank": b" \\t",
    b"cntrl": b"\\x00-\\x1f\\x7f", b"digit": b"0-9", b"graph": b"!-~", b"lower": b"a-z",
    b"print": b" -~",
    b"punct": re.escape(string.punctuation.encode()), b"space": b" \\t\\n\\r\\f\\v",
    b"upper": b"A-Z", b"xdigit": b"0-9A-Fa-f",
}
_POSIX_CLASS_RE = re.compile(rb"\[:(" + b"|".join(_POSIX_CLASSES) + rb"):\]")


def unescape(text: str) -> str:
    """``text`` with nanny's escapes ``\\\\ \\r \\n \\t \\' \\"`` made real; others left alone."""
    # re.sub scans left to right without overlap, exactly like convert_str: "\\\\n" -> "\\n"
    return _ESCAPE_RE.sub(lambda m: _ESCAPES[m.group(1)], text)


def to_bytes(text: str) -> bytes:
    """The bytes nanny puts on the wire for a configured string (UTF-8, raw bytes kept)."""
    return text.encode("utf-8", "surrogateescape")


def show(data: bytes, limit: int = SHOW_LIMIT) -> str:
    """A quoted, escaped, length-limited rendering of bytes for log messages."""
    text = repr(data[:limit])[1:]
    return text if len(data) <= limit else f"{text}... ({len(data)} bytes)"


@dataclass(frozen=True)
class Decision:
    """A matcher's verdict on a reply; ``detail`` completes "READ from HOST:PORT ..."."""

    ok: bool
    detail: str


class Expectation(Protocol):
    """Decides whether the reply received so far passes, fails, or needs more bytes."""

    def decide(self, reply: bytes, final: bool) -> Decision | None:
        """Pass/fail once decidable; None while more bytes could still change the answer."""
        ...


@dataclass(frozen=True)
class AnyReply:
    """``expect = "*"`` (and UDP without expect): any byte of reply passes."""

    def decide(self, reply: bytes, final: bool) -> Decision | None:
        """Pass on the first byte; fail if the reply ended empty."""
        if reply:
            return Decision(True, f"got a reply {show(reply)}")
        return Decision(False, "got no reply (connection closed)") if final else None


@dataclass(frozen=True)
class Prefix:
    """Plain ``expect``: the reply must start with these bytes."""

    text: bytes

    def decide(self, reply: bytes, final: bool) -> Decision | None:
        """Fail on the first wrong byte, pass once the whole prefix is there."""
        have = reply[: len(self.text)]
        if have != self.text[: len(have)]:
            return Decision(False, f"got unexpected reply {show(reply)} "
                                   f"(expected {show(self.text)})")
        if len(have) == len(self.text):
            return Decision(True, f"got expected reply {show(self.text)}")
        if final:
            return Decision(False, f"was too short: got {len(reply)} of {len(self.text)} "
                                   f"bytes {show(reply)} (expected {show(self.text)})")
        return None


@dataclass(frozen=True)
class Pattern:
    """``expect`` with ``use_regex = 1``: the regex must match somewhere in the reply."""

    source: bytes
    regex: re.Pattern[bytes] | None
    error: str | None = None

    @classmethod
    def compile(cls, source: bytes) -> Pattern:
        """A matcher for ``source``; a bad regex gives a matcher that always fails, like nanny."""
        try:
            return cls(source, re.compile(posix_classes(source), re.DOTALL))
        except re.error as exc:
            return cls(source, None, str(exc))

    def decide(self, reply: bytes, final: bool) -> Decision | None:
        """Pass on the first match; fail when the reply ended without one."""
        if self.regex is None:
            return Decision(False, f"cannot be checked: invalid expect regex "
                                   f"{show(self.source)} ({self.error})")
        if self.regex.search(reply):
            return Decision(True, f"matched regex {show(self.source)}")
        if final:
            return Decision(False, f"got {show(reply)} (no match for regex {show(self.source)})")
        return None


def posix_classes(source: bytes) -> bytes:
    """``source`` with POSIX classes (``[:digit:]`` inside brackets) as Python ranges."""
    return _POSIX_CLASS_RE.sub(lambda m: _POSIX_CLASSES[m.group(1)], source)


def expectation(expect: str | None, *, regex: bool, udp: bool) -> Expectation | None:
    """The matcher for an (already unescaped) expect string; None = do not read at all."""
    if expect is None:
        # Piranha read one byte on UDP without expect (then crashed on a NULL pointer when it
        # came): a UDP service can only prove it is alive by answering, so any reply passes
        return AnyReply() if udp else None
    data = to_bytes(expect)
    if regex:
        return Pattern.compile(data)
    return AnyReply() if data == b"*" else Prefix(data)
