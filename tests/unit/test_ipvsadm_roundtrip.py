"""Generated tables restored by piranha-ipvsadm into FakeIpvs save back canonically.

The same generator drives the VM differential tests (tests/kernel/test_ipvsadm_diff.py);
here it checks the parser on the odd spellings and the -S format on the fake, quickly.

ipvsadm's service comparator is no total order (``r = s1->fwmark - s2->fwmark`` on two u32s
kept in an ``int``: a difference of exactly 2**31 is INT_MIN both ways round), so what -S
prints depends on the order the kernel dumps the services in; the explicit cases below pin
the bytes real ipvsadm 1.31 prints (checked against glibc 2.36's qsort).
"""

from __future__ import annotations

import io
import random
from ipaddress import IPv4Address

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from piranha.ipvs.types import Proto, Service, ServiceKey, SvcFlags
from piranha.ipvsadm.main import main
from testkit.examples import examples
from testkit.ipvs import RecordingFake
from testkit.ipvsadm_gen import GenService, GenTable, canonical_save, restore_script, tables


def run(argv, backend, stdin=""):
    out, err = io.StringIO(), io.StringIO()
    status = main(argv, backend=backend, stdin=io.StringIO(stdin), stdout=out, stderr=err,
                  prog="ipvsadm", env={})
    return out.getvalue(), err.getvalue(), status


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables(), st.randoms(use_true_random=False), st.sampled_from([0, 0, 1, 0x80, 0xFF]))
def test_restore_then_save_is_canonical(table, rng: random.Random, salt: int):
    backend = RecordingFake(salt=salt)
    script = restore_script(table, rng)
    assert run(["-R"], backend, script) == ("", "", 0), script
    assert len(backend.applied) == (1 if table.services else 0)
    assert run(["-Sn"], backend)[0] == canonical_save(table, salt), script


FLAGS = SvcFlags.SCHED1 | SvcFlags.SCHED2 | SvcFlags.SCHED3
MARK_2_31 = Service(ServiceKey.mark(2**31), "rr", FLAGS)
TCP_21 = Service(ServiceKey.inet(Proto.TCP, IPv4Address("198.51.100.2"), 21), "rr", FLAGS)


def restored(script: str) -> RecordingFake:
    backend = RecordingFake()
    assert run(["-R"], backend, script) == ("", "", 0)
    return backend


def test_mark_2_31_lists_after_an_address_service_whatever_the_restore_order():
    """The falsifying example: fwmark 2147483648 and TCP 198.51.100.2:21.

    The kernel dumps its address-hashed table before its fwmark table, so libipvs hands qsort
    [TCP, FWM]; glibc's merge compares cmp(TCP, FWM) = (int)(0u - 2147483648u) = INT_MIN <= 0
    and keeps TCP first. The mark prints with 1.31's ``"-f %d"`` / ``"FWM  %d"``.
    """
    want_save = ("-A -t 198.51.100.2:21 -s rr -b flag-1,flag-2,flag-3\n"
                 "-A -f -2147483648 -s rr -b flag-1,flag-2,flag-3\n")
    want_list = ("IP Virtual Server version 1.2.1 (size=4096)\n"
                 "Prot LocalAddress:Port Scheduler Flags\n"
                 "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
                 "TCP  198.51.100.2:21 rr (flag-1,flag-2,flag-3)\n"
                 "FWM  -2147483648 rr (flag-1,flag-2,flag-3)\n")
    mark = "-A -f 2147483648 -s rr -b flag-1,flag-2,flag-3\n"
    tcp = "-A -t 198.51.100.2:21 -s rr -b flag-1,flag-2,flag-3\n"
    for script in (mark + tcp, tcp + mark):
        backend = restored(script)
        assert ServiceKey.mark(2**31) in {s.key for s in backend.dump().services}  # unsigned
        assert run(["-Sn"], backend) == (want_save, "", 0)
        assert run(["-Ln"], backend) == (want_list, "", 0)
    # the oracle, given the services in the generated (FWM first) order, agrees
    table = GenTable([GenService(MARK_2_31), GenService(TCP_21)])
    assert canonical_save(table) == want_save
    assert canonical_save(GenTable([GenService(TCP_21), GenService(MARK_2_31)])) == want_save


def test_marks_2_31_apart_list_newest_first():
    """Marks 1 and 2147483649 share a fwmark bucket (the kernel lists it newest first) and
    compare "less" both ways, so the one added last is saved first."""
    old_first = "-A -f 1 -s rr\n-A -f 2147483649 -s rr\n"
    assert run(["-Sn"], restored(old_first))[0] == "-A -f -2147483647 -s rr\n-A -f 1 -s rr\n"
    new_first = "-A -f 2147483649 -s rr\n-A -f 1 -s rr\n"
    assert run(["-Sn"], restored(new_first))[0] == "-A -f 1 -s rr\n-A -f -2147483647 -s rr\n"


def test_the_save_of_a_mark_2_31_does_not_restore():
    """1.31 prints the mark with %d but parses it into an unsigned long: its own -S line for
    such a mark is refused, and -R stops there."""
    assert run(["-R"], RecordingFake(), "-A -f -2147483648 -s rr\n") == (
        "", "invalid fwmark value `-2147483648' specified\n", 2)


def test_dests_2_31_apart_list_newest_first():
    """Real servers whose second IPv6 word differs by 2**31 tie both ways too; the kernel lists
    a service's real servers newest first, so the one added last is saved first."""
    svc = "-A -u [2001:db8::53]:53 -s rr\n"
    a = "-a -u [2001:db8::53]:53 -r [2001:db8:0:0::2]:53 -m -w 1\n"
    b = "-a -u [2001:db8::53]:53 -r [2001:db8:8000:0::2]:53 -m -w 1\n"
    saved_a = "-a -u [2001:db8::53]:53 -r [2001:db8::2]:53 -m -w 1\n"
    saved_b = "-a -u [2001:db8::53]:53 -r [2001:db8:8000::2]:53 -m -w 1\n"
    assert run(["-Sn"], restored(svc + a + b))[0] == svc + saved_b + saved_a
    assert run(["-Sn"], restored(svc + b + a))[0] == svc + saved_a + saved_b
