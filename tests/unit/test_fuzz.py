"""Fuzz targets: everything that parses input from a file, a socket or a command line, fed
mutated and random input. The property for all: the input is accepted or refused with the
project's own error type (a located message), never another exception, and a huge input is
refused or read without blowing up.

Bounded for the host tier (hypothesis' profiles: ``fast`` 10 examples, the default 100,
``HYPOTHESIS_PROFILE=thorough`` 2,000 for a nightly-style run; see tests/conftest.py).
"""

from __future__ import annotations

import contextlib
import json
import random
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from piranha.config import LoadResult, loads
from piranha.errors import ConfigErrors, PiranhaError
from piranha.health import report
from piranha.heartbeat.packet import AuthCodec, Heartbeat, Magic, PlainCodec, Rejected
from piranha.ipvsadm.args import parse as ipvsadm_parse
from piranha.ipvsadm.commands import Command, Exit
from piranha.lvsd import control
from testkit.lookup import StaticLookup
from testkit.resolver import no_dns

SAMPLES = [p.read_bytes() for p in
           sorted((Path(__file__).resolve().parents[1] / "data" / "valid").glob("*.cf"))]
KEY = b"correct-horse-battery-staple-0123"
PRIMARY, BACKUP = "198.51.100.1", "198.51.100.2"
SLOW = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def load(data: bytes) -> LoadResult | ConfigErrors:
    try:
        return loads(data, "f.cf", resolver=no_dns())
    except ConfigErrors as exc:  # the only refusal allowed: every message located
        for error in exc.errors:
            assert error.filename == "f.cf" and error.line >= 0 and error.column >= 0
        return exc


def mutate(data: bytes, rnd: random.Random, count: int) -> bytes:
    """``count`` byte-level mutations: flips, deletions, insertions of nasty bytes."""
    buf = bytearray(data)
    nasty = [b"\0", b"\xff", b"\xc3", b"{", b"}", b"=", b'"', b"\r", b"\n", b"#",
             b"9" * 60, b"-", b"0x", b"virtual x {\n"]
    for _ in range(count):
        at = rnd.randrange(len(buf) + 1)
        kind = rnd.randrange(3)
        if kind == 0 and buf:
            buf[min(at, len(buf) - 1)] ^= 1 << rnd.randrange(8)
        elif kind == 1 and buf:
            del buf[at:at + rnd.randrange(1, 8)]
        else:
            buf[at:at] = rnd.choice(nasty)
    return bytes(buf)


@SLOW
@given(st.sampled_from(SAMPLES), st.randoms(use_true_random=False), st.integers(1, 20))
def test_the_lvs_cf_loader_survives_mutated_files(sample, rnd, count):
    load(mutate(sample, rnd, count))


@SLOW
@given(st.binary(max_size=2000))
@example(b"\0" * 100)
@example(b"virtual a {\n" * 5000)  # deep nesting
@example(b"serial_no = " + b"9" * 100_000 + b"\n")  # a huge number
@example(b"primary = 10.0.0.1\nkeepalive = 1e999999\n")
@example("primary = 10.0.0.1\n# \udcff\n".encode("utf-8", "surrogateescape"))
def test_the_lvs_cf_loader_survives_random_bytes(data):
    load(data)


def test_a_huge_file_is_read_without_blowing_up():
    servers = "".join(f"     server s{n} {{\n         address = 10.{n >> 16 & 255}.{n >> 8 & 255}."
                      f"{n & 255}\n         active = 1\n     }}\n" for n in range(1, 20_001))
    text = ("primary = 10.255.0.1\nvirtual v {\n     active = 1\n"
            "     address = 10.255.0.80 eth0:1\n     port = 80\n" + servers + "}\n")
    result = load(text.encode())
    assert isinstance(result, LoadResult) and len(result.cluster.virtuals[0].servers) == 20_000


def codecs() -> tuple[AuthCodec, AuthCodec]:
    """(the primary's codec, the backup's), sharing the key."""
    return (AuthCodec(KEY, [BACKUP], primary=True), AuthCodec(KEY, [PRIMARY], primary=False))


@given(st.binary(max_size=100), st.sampled_from([PRIMARY, BACKUP, "203.0.113.9"]),
       st.floats(allow_nan=True, allow_infinity=True))
def test_heartbeat_decoders_refuse_garbage_with_a_reason(data, sender, wall):
    for codec in (PlainCodec([PRIMARY]), codecs()[1]):
        got = codec.decode(data, sender, wall if wall == wall else 0.0)
        assert isinstance(got, (Heartbeat, Rejected))


@given(st.lists(st.tuples(st.integers(0, 35), st.integers(0, 255)), min_size=1, max_size=4),
       st.floats(-1e6, 1e6))
def test_a_mutated_authenticated_heartbeat_is_never_accepted(flips, gap):
    sender, receiver = codecs()
    good = sender.encode(Magic.RUNNING, 1e9)
    bad = bytearray(good)
    for at, xor in flips:
        bad[at] ^= xor
    got = receiver.decode(bytes(bad), PRIMARY, 1e9 + gap % 5)
    assert isinstance(got, Rejected) or bytes(bad) == good


@given(st.integers(1, 50), st.floats(0, 1e7))
def test_replayed_reflected_and_late_heartbeats_are_refused(count, gap):
    primary, backup = codecs()
    sent = [primary.encode(Magic.RUNNING, 1e9 + i) for i in range(count)]
    for i, datagram in enumerate(sent):
        assert isinstance(backup.decode(datagram, PRIMARY, 1e9 + i), Heartbeat)
    for datagram in sent:  # replayed
        assert isinstance(backup.decode(datagram, PRIMARY, 1e9 + count), Rejected)
    mine = backup.encode(Magic.RUNNING, 1e9 + count)  # reflected back at its sender
    assert isinstance(backup.decode(mine, PRIMARY, 1e9 + count), Rejected)
    # a restarted receiver (no window yet) refuses a capture older than max_skew (10 s)
    assert isinstance(codecs()[1].decode(sent[-1], PRIMARY, 1e9 + count + 10.5 + gap), Rejected)


@given(st.one_of(st.binary(max_size=600), st.text(max_size=300).map(str.encode),
                 st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                              lambda inner: st.lists(inner, max_size=4)
                              | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                              max_leaves=20).map(lambda v: json.dumps(v).encode())))
@example(b"[" * 100_000)
@example(b'{"dest": ' + b"9" * 10_000 + b"}")
@example(b'{"kind": "stats", "failures": [1e400], "v": 1}')
def test_report_and_control_decoders_raise_only_their_own_errors(data):
    with contextlib.suppress(PiranhaError):
        report.decode(data)
    with contextlib.suppress(PiranhaError):
        report.decode_message(data)
    with contextlib.suppress(PiranhaError):
        control.parse(data)


TOKENS = ["-A", "-a", "-e", "-d", "-D", "-E", "-L", "-l", "-n", "-t", "-u", "-f", "-r", "-w",
          "-s", "-p", "-M", "-g", "-m", "-i", "-x", "-y", "-c", "-S", "-R", "-Z", "--set",
          "--start-daemon", "--stop-daemon", "--mcast-interface", "--syncid", "--json",
          "--stats", "--rate", "--exact", "10.0.0.1:80", "[2001:db8::1]:80", "1", "0", "-1",
          "65536", "rr", "wlc", "x", "", "=", "-Ln", "-ttt", "--tun-type", "gue", "9" * 40]


@SLOW
@given(st.lists(st.sampled_from(TOKENS) | st.text(max_size=12), max_size=10))
def test_the_ipvsadm_argument_parser_raises_only_exit(argv):
    try:
        assert isinstance(ipvsadm_parse(["ipvsadm", *argv], StaticLookup({}, {})), Command)
    except Exit as exc:
        assert isinstance(exc.status, int)
