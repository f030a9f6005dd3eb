"""The ipvsadm argv parser: popt scanning, value quirks, the legality table, argv -> ops."""

from __future__ import annotations

import re
from ipaddress import ip_address

import pytest

from piranha.ipvs.types import (
    AddDest,
    AddService,
    DelDest,
    Dest,
    DestKey,
    Family,
    Forward,
    Proto,
    Service,
    ServiceKey,
    SvcFlags,
    TunFlags,
    TunType,
    Zero,
)
from piranha.ipvsadm.args import COMMANDS, LEGALITY, OPTIONS, POPT_TABLE, parse
from piranha.ipvsadm.commands import Exit, PoptFailure
from piranha.ipvsadm.ops import command_op, prefix_of_mask
from piranha.ipvsadm.popt import PoptError, Scanner
from piranha.ipvsadm.values import inet_aton, string_to_number
from testkit.lookup import StaticLookup

RESOLVER = StaticLookup({"web1": ip_address("10.0.0.5"), "v6only": ip_address("2001:db8::5")},
                          {("http", "tcp"): 80, ("domain", "udp"): 53})

#: ipvsadm.c's commands_v_options, copied character for character (columns in OPTIONS order,
#: without piranha's json column)
C_MATRIX = {
    "add-service":    "xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx",
    "edit-service":   "xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx",
    "delete-service": "xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "flush":          "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "list":           " 11xxxxxxxxx11       xxxxxxx xxxxx",
    "add-server":     "xx+xxx+    xxxxxxxxxxxxxxxxxx     ",
    "delete-server":  "xx+xxx+xxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "edit-server":    "xx+xxx+    xxxxxxxxxxxxxxxxxx     ",
    "set":            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "start-daemon":   "xxxxxxxxxxx xxxxxxx xxxx    xxxxxx",
    "stop-daemon":    "xxxxxxxxxxxxxxxxxxx xxxxxxxxxxxxxx",
    "restore":        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "save":           " xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "zero":           "xx xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
}


def p(*argv: str):
    """Parse ``ipvsadm ARGV``."""
    return parse(["ipvsadm", *argv], RESOLVER, {})


def refusal(*argv: str) -> tuple[int, str]:
    """(status, stderr) of a refused command line."""
    with pytest.raises(Exit) as info:
        p(*argv)
    return info.value.status, info.value.stderr


def test_legality_table_is_ipvsadms_matrix():
    assert list(LEGALITY) == list(COMMANDS)
    for cmd, row in C_MATRIX.items():
        assert "".join(LEGALITY[cmd].get(o, "x") for o in OPTIONS[:34]) == row, cmd


def test_json_is_only_legal_with_list():
    assert [c for c in COMMANDS if "json" in LEGALITY[c]] == ["list"]


@pytest.mark.parametrize(("cmd", "argv"), [
    ("add-service", ["-A", "-t", "1.2.3.4:80"]), ("zero", ["-Z"]), ("save", ["-S"]),
    ("flush", ["-C"]), ("set", ["--set", "1", "2", "3"]), ("restore", ["-R"]),
])
def test_every_illegal_option_is_named_by_the_table(cmd, argv):
    illegal = {"-n": "numeric", "-c": "connection", "--stats": "stats", "-o": "ops",
               "--tun-info": "tun-info", "--json": "json"}
    for flag, name in illegal.items():
        if LEGALITY[cmd].get(name, "x") == "x":
            assert refusal(*argv, flag) == (2, f"Illegal '{name}' option with the '{cmd}' "
                                               "command\n")


def test_clustering_and_optional_persistent_values():
    assert p("-Ln").options == {"numeric"}
    assert p("-Lnc").options == {"numeric", "connection"}
    for argv, timeout in ((["-p"], 360), (["-p", "600"], 600), (["-p600"], 600),
                          (["--persistent=600"], 600), (["-p=7"], 7), (["-p", "-s", "rr"], 360)):
        ce = p("-A", "-t", "1.2.3.4:0", *argv)
        assert (ce.svc.timeout, ce.svc.flags & 1) == (timeout, 1)


def test_popt_scanner_leftovers_and_double_dash():
    scanner = Scanner(["x", "a", "-L", "--", "-n", "b"], POPT_TABLE)
    assert scanner.get() == ("L", None)
    assert scanner.get() is None
    assert scanner.leftovers == ["a", "-n", "b"]


def test_popt_scanner_bang_expansion_takes_the_next_plain_argument():
    scanner = Scanner(["x", "-t", "!#:+", "1.2.3.4:80", "-n"], POPT_TABLE)
    assert scanner.get() == ("t", "1.2.3.4:80")
    assert scanner.get() == ("n", None)
    assert scanner.get() is None and scanner.leftovers == []


def test_popt_errors_after_the_command():
    with pytest.raises(PoptFailure) as info:
        p("-L", "--nosuch")
    assert (info.value.status, info.value.stderr) == (255, "--nosuch: unknown option\n")
    assert refusal("-L", "--stats=1") == (255, "--stats=1: option does not take an argument\n")
    with pytest.raises(PoptError):
        Scanner(["x", "-q"], POPT_TABLE).get()


def test_posixly_correct_stops_at_the_first_plain_argument():
    ce_env = {"POSIXLY_CORRECT": "1"}
    with pytest.raises(Exit) as info:
        parse(["ipvsadm", "-L", "x", "-n"], RESOLVER, ce_env)
    assert info.value.stderr == "unexpected argument x\n"


def test_a_second_command_is_an_invalid_option_not_multiple_commands():
    assert refusal("-L", "-A") == (2, "invalid option `-A'\n")
    assert refusal("-L", "--start-daemon", "master") == (2, "invalid option `master'\n")


def test_first_option_must_be_a_command():
    assert refusal("-n", "-L") == (255, "Try `ipvsadm -h' or 'ipvsadm --help' for more "
                                        "information.\n")


@pytest.mark.parametrize(("text", "addr"), [
    ("10.1", "10.0.0.1"), ("0x0a000001", "10.0.0.1"), ("012.1.1.1", "10.1.1.1"),
    ("1.2.3.4 ", "1.2.3.4"), ("1.2.65535", "1.2.255.255"), ("255.255.255.255", "255.255.255.255"),
])
def test_inet_aton_accepts_glibc_forms(text, addr):
    assert inet_aton(text) == ip_address(addr)


@pytest.mark.parametrize("text", ["", "1.2.3.4.5", "256.1.1.1", "1.2.65536", "08", "0x", "a.b",
                                  "1.2.3.4x", "4294967296", " 1.2.3.4"])
def test_inet_aton_rejects(text):
    assert inet_aton(text) is None


@pytest.mark.parametrize(("text", "value"), [
    ("5", 5), ("+5", 5), (" 5", 5), ("-0", 0), ("65535", 65535),
    ("5 ", None), ("", None), ("x", None), ("65536", None), ("99999999999999999999", None),
])
def test_string_to_number_is_strtol_on_the_whole_string(text, value):
    assert string_to_number(text, 0, 65535) == value


def test_service_address_forms():
    assert p("-A", "-t", "web1:http").svc.addr == ip_address("10.0.0.5")
    assert p("-A", "-t", "web1:http").svc.port == 80
    ce = p("-A", "-t", "[2001:db8::1]:443")
    assert (ce.svc.af, ce.svc.port, ce.svc.netmask) == (10, 443, 128)
    assert p("-A", "-u", "2001:db8::1", "-p").svc.port == 0  # bare IPv6: no port
    assert refusal("-A", "-t", "[1.2.3.4]:80")[1] == \
        "Zero port specified for non-persistent service\n"
    assert refusal("-A", "-t", "v6only:80")[1] == \
        "illegal virtual server address[:port] specified\n"


def test_real_server_port_defaults_and_forcing():
    add = command_op(p("-a", "-t", "1.2.3.4:80", "-r", "10.0.0.9:8080"))
    assert isinstance(add, AddDest) and add.dest.port == 80  # -g forces the service port
    add = command_op(p("-a", "-t", "1.2.3.4:80", "-r", "10.0.0.9:8080", "-m"))
    assert add.dest.port == 8080
    add = command_op(p("-a", "-t", "1.2.3.4:80", "-r", "10.0.0.9", "-m"))
    assert add.dest.port == 80
    add = command_op(p("-a", "-r", "10.0.0.9", "-m", "-t", "1.2.3.4:80"))
    assert add.dest.port == 0  # -r before -t copies the port the service had then


def test_add_service_op():
    op = command_op(p("-A", "-t", "1.2.3.4:80", "-s", "sh", "-p", "60", "-M", "255.255.0.0",
                      "-b", "sh-port,sh-fallback", "--pe", "sip"))
    key = ServiceKey.inet(Proto.TCP, ip_address("1.2.3.4"), 80)
    assert op == AddService(Service(key, "sh", SvcFlags.PERSISTENT | SvcFlags.SCHED1
                                    | SvcFlags.SCHED2, 60, 16, "sip"))


def test_fwmark_ipv6_service_and_default_scheduler():
    op = command_op(p("-E", "-f", "4294967295", "-6", "-M", "64", "-p"))
    assert op.service.key == ServiceKey.mark(2**32 - 1, Family.INET6)
    assert (op.service.scheduler, op.service.netmask, op.service.timeout) == ("wlc", 64, 360)


@pytest.mark.parametrize(("text", "mark"), [
    ("2147483648", 2**31), ("4294967295", 2**32 - 1), ("+7", 7), (" 7", 7),
    # what -S prints for marks >= 2**31 (its "-f %d"): strtol gives a negative long, which as
    # the unsigned long ``l`` is > UINT_MAX, so 1.31 cannot read its own save of such a mark
    ("-2147483648", None), ("-1", None), ("0", None), ("-0", None), ("4294967296", None),
    ("7 ", None), ("0x10", None), ("", None), ("99999999999999999999", None),
])
def test_fwmark_is_strtol_into_an_unsigned_long_up_to_uint_max(text, mark):
    """ipvsadm.c parse_fwmark: ``l = strtol(buf, &end, 10)`` with ``unsigned long l``, refused
    if ``*end != '\\0' || end == buf || errno == ERANGE || l <= 0 || l > UINT_MAX``."""
    if mark is None:
        assert refusal("-A", "-f", text) == (2, f"invalid fwmark value `{text}' specified\n")
    else:
        assert command_op(p("-A", "-f", text)).service.key == ServiceKey.mark(mark)


def test_tunnel_dest_op():
    op = command_op(p("-a", "-f", "7", "-r", "[2001:db8::7]:0", "-i", "--tun-type", "gue",
                      "--tun-port", "6080", "--tun-remcsum", "-w", "2147483647", "-x", "5"))
    assert op.dest == Dest(ip_address("2001:db8::7"), 0, Forward.TUNNEL, 2**31 - 1, 5, 0,
                           TunType.GUE, 6080, TunFlags.REMCSUM)


def test_delete_server_and_zero_ops():
    op = command_op(p("-d", "-t", "1.2.3.4:80", "-r", "10.0.0.1:81"))
    assert op == DelDest(ServiceKey.inet(Proto.TCP, ip_address("1.2.3.4"), 80),
                         DestKey(ip_address("10.0.0.1"), 81))
    assert command_op(p("-Z")) == Zero(None)
    assert command_op(p("-Z", "-t", "0.0.0.0:0")) == Zero(None)


def test_non_contiguous_ipv4_mask_is_refused():
    assert prefix_of_mask(0xFFFFFF00) == 24 and prefix_of_mask(0) == 0
    assert prefix_of_mask(0x18) is None
    with pytest.raises(Exit) as info:
        command_op(p("-A", "-t", "1.2.3.4:80", "-p", "-M", "24"))
    assert info.value.stderr == "illegal virtual server persistent mask specified\n"


def test_help_and_version_texts():
    with pytest.raises(Exit) as info:
        p("-h")
    assert info.value.status == 0 and info.value.stderr == ""
    assert info.value.stdout.startswith(
        "ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)\nUsage:\n"
        "  ipvsadm -A|E virtual-service [-s scheduler]")
    assert re.search(r"\n  --mcast-ttl ttl {21}Multicast TTL \(default=1\)\n$", info.value.stdout)


def test_a_huge_number_overflows_like_c_instead_of_raising() -> None:
    from piranha.ipvsadm.values import LONG_MAX

    assert string_to_number("9" * 5000, 0, 100) is None
    from piranha.ipvsadm import values
    assert values.strtol("9" * 5000) == (LONG_MAX, 5000, True)
    assert values.strtol("0" * 5000 + "7") == (7, 5001, False)
    assert inet_aton("1.2.3." + "9" * 5000) is None
