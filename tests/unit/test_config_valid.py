"""Valid lvs.cf files: the section 1.9 examples, Piranha's parser defaults, the tokenizer rules,
the project's extensions, name resolution, repeated keys, warnings and line numbering.

Every load goes through ``FakeResolver``: no test touches DNS or /etc/services.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

import pytest

from piranha.config import LoadResult, loads
from piranha.errors import ConfigErrors
from piranha.model import (
    SCHEDULERS,
    Cluster,
    FailoverService,
    InterfaceAddress,
    Network,
    RealServer,
    ServiceProtocol,
    ServiceType,
    VirtualServer,
)
from testkit.resolver import FakeResolver

VALID = Path(__file__).resolve().parents[1] / "data" / "valid"
V4 = IPv4Address
V6 = IPv6Address


def load(text: str | bytes, resolver: FakeResolver | None = None) -> LoadResult:
    return loads(text, "t.cf", resolver or FakeResolver())


def cluster(text: str | bytes) -> Cluster:
    return load(text).cluster


def warnings(text: str | bytes) -> list[str]:
    return [str(w) for w in load(text).warnings]


def errors(text: str | bytes) -> list[str]:
    with pytest.raises(ConfigErrors) as caught:
        load(text)
    return [str(e) for e in caught.value.errors]


PRIMARY = "primary = 10.0.0.1\n"
NO_ACTIVE = "t.cf:1:1: warning: no active virtual service: pulse and lvsd will have nothing to run"


def one_virtual(body: str = "", servers: str = "", name: str = "www",
                address: str = "10.0.0.80 eth0:1") -> str:
    return (f"{PRIMARY}virtual {name} {{\n     active = 1\n     address = {address}\n"
            f"{body}{servers}}}\n")


def virtual_of(text: str) -> VirtualServer:
    (vs,) = cluster(text).virtuals
    return vs


# -- section 1.9 examples -------------------------------------------------------------------

EXAMPLE_A = Cluster(
    serial_no=14,
    primary=V4("203.0.113.10"),
    primary_private=V4("10.255.0.1"),
    primary_shared=None,
    service=ServiceType.LVS,
    rsh_command="ssh",
    backup_active=True,
    backup=V4("203.0.113.11"),
    backup_private=V4("10.255.0.2"),
    backup_shared=None,
    heartbeat=True,
    heartbeat_port=539,
    keepalive=6.0,
    deadtime=18.0,
    network=Network.NAT,
    nat_router=InterfaceAddress(V4("192.168.10.254"), "eth1:1"),
    nat_nmask=24,
    reservation_conflict_action=None,
    debug_level="NONE",
    ipvsadm="/sbin/ipvsadm",
    active_cmd=None,
    inactive_cmd=None,
    monitor_links=True,
    syncdaemon=True,
    syncd_iface="eth1",
    syncd_id=7,
    tcp_timeout=900,
    tcpfin_timeout=120,
    udp_timeout=300,
    hard_shutdown=True,
    virtuals=(
        VirtualServer(
            name="www",
            address=InterfaceAddress(V4("203.0.113.80"), "eth0:1"),
            active=True,
            vip_nmask=24,
            sorry_server=V4("192.168.10.50"),
            fwmark=0,
            port=80,
            protocol=ServiceProtocol.TCP,
            scheduler="wlc",
            persistent=0,
            pmask=None,
            send="GET /health HTTP/1.0\\r\\n\\r\\n",  # backslashes kept: nanny expands them
            expect="HTTP/1.[01] 200",
            use_regex=True,
            send_program=None,
            load_monitor="uptime",
            timeout=6.0,
            reentry=15.0,
            quiesce_server=False,
            client_monitor="/usr/sbin/nanny",
            servers=(
                # no port line: the virtual's port read so far
                RealServer(name="web1", address=V4("192.168.10.11"), active=True, weight=100,
                           port=80),
                RealServer(name="web2", address=V4("192.168.10.12"), active=True, weight=50,
                           port=8080),
            ),
        ),
    ),
    failovers=(),
)

EXAMPLE_B = Cluster(
    serial_no=3,
    primary=V4("198.51.100.2"),
    primary_private=V4("198.51.100.2"),  # derived: no primary_private line
    primary_shared=None,
    service=ServiceType.LVS,
    rsh_command="rsh",
    backup_active=True,
    backup=V4("198.51.100.3"),
    backup_private=V4("198.51.100.3"),  # derived from backup
    backup_shared=None,
    heartbeat=True,
    heartbeat_port=539,
    keepalive=2.0,
    deadtime=6.0,
    network=Network.DIRECT,
    nat_router=None,
    nat_nmask=None,
    reservation_conflict_action=None,
    debug_level="NONE",
    ipvsadm="/sbin/ipvsadm",
    active_cmd=None,
    inactive_cmd=None,
    monitor_links=False,
    syncdaemon=False,
    syncd_iface="eth0",
    syncd_id=0,
    tcp_timeout=0,
    tcpfin_timeout=0,
    udp_timeout=0,
    hard_shutdown=True,
    virtuals=(
        VirtualServer(
            name="web_bundle",
            address=InterfaceAddress(V4("198.51.100.80"), "eth0:1"),
            active=True,
            vip_nmask=32,  # a /32 VIP mask is kept (only pmask /32 means "unset")
            sorry_server=None,
            fwmark=80,
            port=80,
            protocol=ServiceProtocol.TCP,
            scheduler="wlc",
            persistent=600,
            pmask=24,  # 255.255.255.0
            send="GET / HTTP/1.0\\r\\n\\r\\n",
            expect="HTTP",
            use_regex=False,
            send_program=None,
            load_monitor=None,  # "none"
            timeout=6.0,
            reentry=15.0,
            quiesce_server=True,
            client_monitor="/usr/sbin/nanny",
            servers=(
                RealServer(name="rs1", address=V4("198.51.100.21"), active=True, weight=1,
                           port=80),
                RealServer(name="rs2", address=V4("198.51.100.22"), active=True, weight=1,
                           port=80),
            ),
        ),
    ),
    failovers=(),
)

EXAMPLE_C = Cluster(
    serial_no=9,
    primary=V4("203.0.113.10"),
    primary_private=V4("203.0.113.10"),
    backup_active=True,
    backup=V4("203.0.113.11"),
    backup_private=V4("203.0.113.11"),
    heartbeat=True,
    keepalive=6.0,
    deadtime=18.0,
    network=Network.NAT,
    nat_router=InterfaceAddress(V4("192.168.20.254"), "eth1:2"),
    nat_nmask=24,
    virtuals=(
        VirtualServer(
            name="ftp",
            address=InterfaceAddress(V4("203.0.113.21"), "eth0:2"),
            active=True,
            vip_nmask=24,
            fwmark=21,
            port=21,
            persistent=300,
            expect="220",
            timeout=10.0,
            reentry=30.0,
            servers=(
                RealServer(name="ftp1", address=V4("192.168.20.11"), active=True, port=21),
                RealServer(name="ftp2", address=V4("192.168.20.12"), active=True, port=21),
            ),
        ),
    ),
)

EXAMPLE_D = Cluster(
    primary=V4("203.0.113.10"),
    primary_private=V4("203.0.113.10"),
    virtuals=(
        VirtualServer(
            name="dns",
            address=InterfaceAddress(V4("203.0.113.53"), "eth0:3"),
            active=True,
            port=53,
            protocol=ServiceProtocol.UDP,
            send_program="/usr/local/sbin/check_dns %h",
            expect="OK",
            scheduler="rr",
            timeout=5.0,
            reentry=20.0,
            servers=(RealServer(name="ns1", address=V4("192.168.10.31"), active=True, port=53),),
        ),
    ),
)


@pytest.mark.parametrize(("filename", "expected"), [
    ("a_nat_web_farm.cf", EXAMPLE_A),
    ("b_direct_routing_fwmark.cf", EXAMPLE_B),
    ("c_ftp_nat_fwmark.cf", EXAMPLE_C),
    ("d_udp_dns_send_program.cf", EXAMPLE_D),
])
def test_example_file_gives_the_expected_model(filename: str, expected: Cluster) -> None:
    resolver = FakeResolver()
    result = loads((VALID / filename).read_bytes(), filename, resolver)
    assert result.cluster == expected
    assert result.warnings == ()
    assert resolver.lookups == []  # only literal addresses: nothing to resolve


def test_example_a_derived_values() -> None:
    c = cluster((VALID / "a_nat_web_farm.cf").read_bytes())
    assert [s.port for s in c.virtuals[0].servers] == [80, 8080]
    assert c.active_virtuals() == c.virtuals
    assert (c.primary_private, c.backup_private) == (V4("10.255.0.1"), V4("10.255.0.2"))


def test_example_files_parse_the_same_with_any_line_ends() -> None:
    for path in sorted(VALID.glob("*.cf")):
        lf = path.read_bytes()
        assert b"\r" not in lf
        expected = cluster(lf)
        assert cluster(lf.replace(b"\n", b"\r\n")) == expected
        assert cluster(lf.replace(b"\n", b"\r")) == expected
        assert cluster(lf.rstrip(b"\n")) == expected  # no final newline


# -- defaults (sections 1.2-1.5) -------------------------------------------------------------

def test_only_primary_gives_piranhas_parser_defaults() -> None:
    result = load("primary = 10.0.0.1\n")
    assert result.cluster == Cluster(
        serial_no=0,
        primary=V4("10.0.0.1"),
        primary_private=V4("10.0.0.1"),
        primary_shared=None,
        service=ServiceType.LVS,
        rsh_command="rsh",
        backup_active=False,
        backup=None,
        backup_private=None,
        backup_shared=None,
        heartbeat=False,
        heartbeat_port=539,
        keepalive=2.0,
        deadtime=5.0,
        network=Network.NAT,
        nat_router=None,
        nat_nmask=None,
        reservation_conflict_action=None,
        debug_level="NONE",
        ipvsadm="/sbin/ipvsadm",
        active_cmd=None,
        inactive_cmd=None,
        monitor_links=False,
        syncdaemon=False,
        syncd_iface="eth0",
        syncd_id=0,
        tcp_timeout=0,
        tcpfin_timeout=0,
        udp_timeout=0,
        hard_shutdown=True,
        virtuals=(),
        failovers=(),
    )
    assert [str(w) for w in result.warnings] == [NO_ACTIVE]


def test_virtual_and_server_defaults() -> None:
    vs = virtual_of(PRIMARY + "virtual v {\n     server s {\n     }\n}\n")
    assert vs == VirtualServer(
        name="v",
        address=None,
        active=False,  # Piranha: active defaults to 0
        vip_nmask=None,
        sorry_server=None,
        fwmark=0,
        port=80,
        protocol=ServiceProtocol.TCP,
        scheduler="wlc",
        persistent=0,
        pmask=None,
        send=None,
        expect=None,
        use_regex=False,
        send_program=None,
        load_monitor=None,
        timeout=10.0,
        reentry=180.0,
        quiesce_server=False,
        client_monitor="/usr/sbin/nanny",
        servers=(RealServer(name="s", address=None, active=False, weight=1, port=80),),
    )


def test_failover_defaults() -> None:
    c = cluster(PRIMARY + "failover f {\n}\n")
    assert c.failovers == (FailoverService(
        name="f", address=None, active=False, vip_nmask=None, port=80, protocol=ServiceProtocol.TCP,
        send=None, expect=None, send_program=None, timeout=10.0, start_cmd=None,
        stop_cmd=None),)


def test_fos_service_with_a_runnable_failover() -> None:
    c = cluster(PRIMARY + "service = fos\nfailover ftp {\n     active = 1\n"
                "     address = 10.0.0.21 eth0:2\n     port = ftp\n     expect = \"220\"\n"
                "     start_cmd = \"/etc/rc.d/init.d/vsftpd start\"\n"
                "     stop_cmd = '/etc/rc.d/init.d/vsftpd stop'\n}\n")
    assert c.service is ServiceType.FOS
    assert c.failovers == (FailoverService(
        name="ftp", address=InterfaceAddress(V4("10.0.0.21"), "eth0:2"), active=True, port=21,
        expect="220", start_cmd="/etc/rc.d/init.d/vsftpd start",
        stop_cmd="/etc/rc.d/init.d/vsftpd stop"),)


def test_private_addresses() -> None:
    both = cluster(PRIMARY + "backup = 10.0.0.2\nprimary_private = 10.1.0.1\n"
                   "backup_private = 10.1.0.2\n")
    assert (both.primary_private, both.backup_private) == (V4("10.1.0.1"), V4("10.1.0.2"))
    derived = cluster(PRIMARY + "backup = 10.0.0.2\n")
    assert (derived.primary_private, derived.backup_private) == (V4("10.0.0.1"), V4("10.0.0.2"))
    # primary_private without backup_private: fine while there is no active backup
    lone = cluster(PRIMARY + "primary_private = 10.1.0.1\n")
    assert (lone.primary_private, lone.backup_private) == (V4("10.1.0.1"), None)


def test_backup_zero_means_no_backup() -> None:
    c = cluster(PRIMARY + "backup = 0.0.0.0\n")
    assert (c.backup, c.backup_private, c.backup_active) == (None, None, False)


# -- tokenizer rules -------------------------------------------------------------------------

def test_comments_and_blank_lines() -> None:
    text = ("# comment\n\n   # indented comment\n\t\n" + PRIMARY
            + "keepalive = 3 # trailing comment\n" + "virtual v { # opens v\n"
            + "     port = 81\t#tab before the comment\n} # end of v\n")
    c = cluster(text)
    assert c.keepalive == 3.0
    assert c.virtuals[0].port == 81


def test_hash_inside_a_token_is_not_a_comment() -> None:
    assert cluster(PRIMARY + "rsh_command = my#rsh\n").rsh_command == "my#rsh"
    assert errors(PRIMARY + "keepalive = 3#x\n") == [
        "t.cf:2:13: error: keepalive: expected a number of seconds, found '3#x'"]


def test_blanks_and_tabs_separate_tokens() -> None:
    c = cluster("\tprimary\t=   10.0.0.1  \t\nvirtual\tv\t{\n\tport\t=\t81\n}\n")
    assert (c.primary, c.virtuals[0].port) == (V4("10.0.0.1"), 81)


@pytest.mark.parametrize("line", ["port=81", "port= 81", "port =81", "port = 81",
                                  "port\t=\t81"])
def test_equals_may_touch_key_or_value(line: str) -> None:
    assert virtual_of(one_virtual(f"     {line}\n")).port == 81


def test_quotes_are_stripped_and_keep_blanks() -> None:
    vs = virtual_of(one_virtual('     send = "GET / HTTP/1.0\\r\\n\\r\\n"\n'
                                "     expect = 'HTTP/1.1 200 OK'\n"))
    assert vs.send == "GET / HTTP/1.0\\r\\n\\r\\n"
    assert vs.expect == "HTTP/1.1 200 OK"  # Piranha kept single quotes; we strip them


@pytest.mark.parametrize(("written", "value"), [
    ('"abc"def"', 'abc"def'),  # a quote not followed by a blank does not close
    ("'it's'", "it's"),
    ('"a\\"b"', 'a\\"b'),
    ('"a # b = c"', "a # b = c"),
    ('"\'single\' inside"', "'single' inside"),
    ("'\"double\" inside'", '"double" inside'),
    ('""', ""),
    ('"  padded  "', "  padded  "),
    ('"tab\there"', "tab\there"),
])
def test_quoted_token_ends_at_a_same_quote_before_a_blank(written: str, value: str) -> None:
    assert virtual_of(one_virtual(f"     expect = {written}\n")).expect == value


def test_backslash_does_not_escape_a_quote() -> None:
    # '\" ' closes the token: the value is 'a \' and 'b"' is an extra token
    assert errors(one_virtual('     expect = "a \\" b"\n')) == [
        "t.cf:5:21: error: expect: unexpected 'b\"' after the value (expected end of line; "
        "quote a value that contains blanks)"]


def test_quoted_names_and_quoted_address() -> None:
    c = cluster(PRIMARY + 'virtual "www" {\n     active = 1\n'
                '     address = "10.0.0.80" eth0:1\n     server \'web 1\' {\n     }\n}\n'
                'virtual "my www" {\n}\n')
    assert [v.name for v in c.virtuals] == ["www", "my www"]
    assert c.virtuals[0].address == InterfaceAddress(V4("10.0.0.80"), "eth0:1")
    assert c.virtuals[0].servers[0].name == "web 1"


def test_keywords_are_case_sensitive() -> None:
    assert errors(PRIMARY + "Keepalive = 3\n") == [
        "t.cf:2:1: error: unknown keyword 'Keepalive' in the global section "
        "(did you mean 'keepalive'?)"]


def test_text_after_closing_brace_only_as_comment() -> None:
    assert cluster(one_virtual().replace("}\n", "}   # end\n")).virtuals[0].name == "www"
    assert errors(one_virtual().replace("}\n", "} x\n")) == [
        "t.cf:5:3: error: unexpected 'x' after '}' (expected end of line or a # comment)"]


# -- extensions and fixes pinned by the project ------------------------------------------------

def test_crlf_and_cr_only_files_parse_fully() -> None:
    text = one_virtual("     port = 8080\n", "     server s {\n         address = 10.0.1.1\n"
                       "     }\n")
    expected = cluster(text)
    assert expected.virtuals[0].servers[0].port == 8080
    assert cluster(text.replace("\n", "\r\n")) == expected
    assert cluster(text.replace("\n", "\r")) == expected


def test_line_ends_keep_line_numbers_of_warnings_and_errors() -> None:
    text = "# c1\n#c2\n\n" + one_virtual("     fwmark = 010\n     port = 0\n")
    lf = warnings(text)
    assert lf == ["t.cf:8:15: warning: fwmark: '010' is octal (a leading 0 means base 8), "
                  "read as 8"]
    assert warnings(text.replace("\n", "\r\n")) == lf
    assert warnings(text.replace("\n", "\r")) == lf
    broken = text.replace("port = 0", "port = x")
    lf_errors = errors(broken)
    assert lf_errors == ["t.cf:9:13: error: port: expected a port number or a service name, "
                         "found 'x', which is not a known TCP service"]
    assert errors(broken.replace("\n", "\r\n")) == lf_errors
    assert errors(broken.replace("\n", "\r")) == lf_errors


def test_mixed_line_ends_and_stray_carriage_returns() -> None:
    text = one_virtual("     port = 81\n")
    appended = text.replace("\n", "\r\n", 3)  # CRLF lines, then lines appended with LF
    assert cluster(appended) == cluster(text)
    # a lone CR ends a line wherever it is (README), even inside a comment
    stray = "# a comment with a stray \r inside\n" + text + "keepalive = x\n"
    assert errors(stray) == [
        "t.cf:2:8: error: expected '=' after 'inside', found end of line",
        "t.cf:9:13: error: keepalive: expected a number of seconds, found 'x'"]


def test_line_numbers_count_comment_and_blank_lines() -> None:
    text = "# 1\n\n# 3\n" + PRIMARY + "    # 5\nkeepalive = never\n"
    assert errors(text) == [
        "t.cf:6:13: error: keepalive: expected a number of seconds, found 'never'"]


@pytest.mark.parametrize(("written", "seconds"), [
    ("0.5", 0.5), ("2.25", 2.25), (".5", 0.5), ("3.", 3.0), ("7", 7.0), ("0x10", 16.0)])
def test_fractional_seconds(written: str, seconds: float) -> None:
    c = cluster(f"{PRIMARY}keepalive = {written}\ndeadtime = 100\n"
                f"virtual v {{\n     timeout = {written}\n     reentry = {written}\n}}\n")
    assert c.keepalive == seconds
    assert (c.virtuals[0].timeout, c.virtuals[0].reentry) == (seconds, seconds)


@pytest.mark.parametrize(("key", "text"), [
    ("keepalive", f"{PRIMARY}keepalive = 017\ndeadtime = 100\nvirtual v {{\n}}\n"),
    ("deadtime", f"{PRIMARY}deadtime = 017\nvirtual v {{\n}}\n"),
    ("timeout", f"{PRIMARY}virtual v {{\n     timeout = 017\n}}\n"),
    ("reentry", f"{PRIMARY}virtual v {{\n     reentry = 017\n}}\n")])
def test_seconds_with_a_leading_zero_are_octal_as_piranha_read_them(key: str, text: str) -> None:
    result = load(text)
    owner = result.cluster.virtuals[0] if key in ("timeout", "reentry") else result.cluster
    assert getattr(owner, key) == 15.0
    octal = [w.message for w in result.warnings if "octal" in w.message]
    assert octal == [f"{key}: '017' is octal (a leading 0 means base 8), read as 15"]
    # a fraction is decimal whatever its leading zeros (an extension: Piranha had none)
    fraction = load(text.replace("017", "017.5"))
    owner = fraction.cluster.virtuals[0] if key in ("timeout", "reentry") else fraction.cluster
    assert getattr(owner, key) == 17.5
    assert not [w for w in fraction.warnings if "octal" in w.message]


def test_a_virtual_whose_active_servers_all_weigh_zero_is_warned_about() -> None:
    servers = ("     server a {\n         address = 10.0.1.1\n         active = 1\n"
               "         weight = 0\n     }\n"
               "     server b {\n         address = 10.0.1.2\n         active = {b}\n"
               "         weight = {w}\n     }\n")
    zero = load(one_virtual("", servers.replace("{b}", "1").replace("{w}", "0")))
    assert [str(w) for w in zero.warnings] == [
        "t.cf:8:19: warning: virtual 'www': every active real server has weight 0, so the "
        "virtual gets no traffic (only a sorry_server could answer)"]
    for b, w in (("1", "1"), ("0", "5")):  # one server with weight, or the weighty one inactive
        other = load(one_virtual("", servers.replace("{b}", b).replace("{w}", w)))
        assert bool(other.warnings) == (b == "0"), other.warnings


def test_reentry_may_be_zero_but_timeout_may_not() -> None:
    assert virtual_of(one_virtual("     reentry = 0\n")).reentry == 0.0
    assert errors(one_virtual("     timeout = 0\n")) == [
        "t.cf:5:16: error: timeout: expected a number of seconds > 0, found 0"]


def test_values_piranha_accepted_but_could_not_run_are_refused_with_their_place() -> None:
    """The README lists these three among the deliberate differences, with the reasons."""
    assert errors(one_virtual("     reentry = -1\n")) == [
        "t.cf:5:16: error: reentry: expected a number of seconds >= 0, found -1"]
    server = "     server a {\n         address = 10.0.0.1\n         weight = -5\n     }\n"
    assert errors(one_virtual("", server)) == [
        "t.cf:7:19: error: weight: expected an integer 0..65535, found -5"]


def test_ipv6_virtual_servers_and_masks() -> None:
    vs = virtual_of(one_virtual(
        "     vip_nmask = 64\n     sorry_server = 2001:db8::99\n     persistent = 60\n"
        "     pmask = /48\n",
        "     server a {\n         address = 2001:db8:1::11\n         active = 1\n     }\n"
        "     server b {\n         address = web6.example\n         port = 8080\n     }\n",
        address="2001:db8::80 eth0:1"))
    assert vs.address == InterfaceAddress(V6("2001:db8::80"), "eth0:1")
    assert (vs.vip_nmask, vs.pmask, vs.sorry_server) == (64, 48, V6("2001:db8::99"))
    assert vs.servers == (
        RealServer("a", V6("2001:db8:1::11"), True, 1, 80),
        RealServer("b", V6("2001:db8:1::11"), False, 1, 8080),
    )


def test_ipv6_full_pmask_is_unset() -> None:
    vs = virtual_of(one_virtual("     persistent = 60\n     pmask = 128\n",
                                address="2001:db8::80 eth0:1"))
    assert vs.pmask is None


def test_ipv6_directors() -> None:
    c = cluster("primary = 2001:db8::1\nbackup = [2001:db8::2]\nbackup_active = 1\n")
    assert (c.primary, c.backup, c.backup_private) == (V6("2001:db8::1"), V6("2001:db8::2"),
                                                       V6("2001:db8::2"))


def test_ipv6_virtual_with_ipv4_servers_is_fine_when_tunnelling() -> None:
    text = one_virtual("", "     server a {\n         address = 10.0.1.1\n     }\n",
                       address="2001:db8::80 eth0:1")
    assert cluster("network = tunnel\n" + text).network is Network.TUNNEL


@pytest.mark.parametrize(("written", "prefix"), [
    ("255.255.255.0", 24), ("24", 24), ("/24", 24), ("255.255.255.255", 32),
    ("255.0.0.0", 8), ("128.0.0.0", 1), ("/32", 32), ("0.0.0.0", None), ("0", None),
    ("/0", None)])
def test_masks_dotted_or_prefix_length(written: str, prefix: int | None) -> None:
    c = cluster(one_virtual(f"     vip_nmask = {written}\n").replace(
        "virtual", f"nat_nmask = {written}\nvirtual"))
    assert (c.nat_nmask, c.virtuals[0].vip_nmask) == (prefix, prefix)


@pytest.mark.parametrize(("written", "prefix"), [
    ("255.255.255.255", None), ("/32", None), ("32", None), ("255.255.255.0", 24),
    ("0.0.0.0", None), ("16", 16)])
def test_pmask_normalisation(written: str, prefix: int | None) -> None:
    vs = virtual_of(one_virtual(f"     persistent = 300\n     pmask = {written}\n"))
    assert (vs.persistent, vs.pmask) == (300, prefix)


def test_pmask_all_ones_without_persistence_is_not_an_error() -> None:
    assert virtual_of(one_virtual("     pmask = 255.255.255.255\n")).pmask is None


def test_pmask_without_persistence_is_ignored_with_a_warning_as_piranha_did() -> None:
    # Piranha's GUI writes such files; lvs passed -M only together with -p
    result = load(one_virtual("     pmask = 255.255.255.0\n"))
    assert result.cluster.virtuals[0].pmask is None
    assert [str(w) for w in result.warnings] == [
        "t.cf:5:6: warning: pmask: ignored without persistent > 0 (as Piranha did); set "
        "persistent or remove pmask"]
    persistent = load(one_virtual("     persistent = 60\n     pmask = 255.255.255.0\n"))
    assert persistent.cluster.virtuals[0].pmask == 24 and not persistent.warnings


def test_bad_masks_are_errors() -> None:
    assert errors(one_virtual("     vip_nmask = 255.255.0.255\n")) == [
        "t.cf:5:18: error: vip_nmask: expected a netmask with contiguous bits (255.255.255.0) "
        "or a prefix length such as 24, found '255.255.0.255'"]


@pytest.mark.parametrize(("written", "value", "warning"), [
    ("16", 16, None), ("0x10", 16, None), ("0X1f", 31, None), ("+7", 7, None),
    ("010", 8, "'010' is octal (a leading 0 means base 8), read as 8"), ("0", 0, None)])
def test_integers_are_strtol_base_0(written: str, value: int, warning: str | None) -> None:
    result = load(one_virtual(f"     fwmark = {written}\n"))
    assert result.cluster.virtuals[0].fwmark == value
    assert [w.message for w in result.warnings] == ([f"fwmark: {warning}"] if warning else [])


@pytest.mark.parametrize(("written", "value"), [
    ("0", False), ("1", True), ("0x1", True), ("0x0", False), ("01", True), ("00", False),
    ("+1", True)])
def test_booleans_in_any_strtol_spelling(written: str, value: bool) -> None:
    assert virtual_of(one_virtual(f"     quiesce_server = {written}\n")).quiesce_server is value


@pytest.mark.parametrize("written", ["yes", "true", "2", "-1", "0x2", '""'])
def test_other_booleans_are_errors(written: str) -> None:
    text = one_virtual(f"     quiesce_server = {written}\n")
    assert errors(text) == [f"t.cf:5:23: error: quiesce_server: expected 0 or 1, found "
                            f"'{written.strip(chr(34))}'"]


def test_monitor_links_is_any_integer() -> None:
    assert cluster(PRIMARY + "monitor_links = 5\n").monitor_links is True
    assert cluster(PRIMARY + "monitor_links = 0\n").monitor_links is False


@pytest.mark.parametrize(("written", "address"), [
    ("10.80", "10.0.0.80"), ("192.168.2572", "192.168.10.12"), ("3232238091", "192.168.10.11"),
    ("0xc0a80a63", "192.168.10.99"), ("010.0.0.1", "8.0.0.1")])
def test_inet_aton_short_forms_with_a_warning(written: str, address: str) -> None:
    result = load(one_virtual(f"     sorry_server = {written}\n"))
    assert result.cluster.virtuals[0].sorry_server == V4(address)
    assert [str(w) for w in result.warnings] == [
        f"t.cf:5:21: warning: sorry_server: '{written}' is not a plain dotted quad; "
        f"read as {address} (inet_aton)"]


def test_server_port_defaults_to_virtual_port_read_so_far() -> None:
    text = one_virtual("     port = 443\n",
                       "     server a {\n         address = 10.0.1.1\n     }\n"
                       "     server b {\n         address = 10.0.1.2\n         port = 8443\n"
                       "     }\n     port = 444\n"
                       "     server c {\n         address = 10.0.1.3\n     }\n")
    result = load(text)
    vs = result.cluster.virtuals[0]
    assert vs.port == 444
    assert [(s.name, s.port) for s in vs.servers] == [("a", 443), ("b", 8443), ("c", 444)]
    assert [str(w) for w in result.warnings] == [
        "t.cf:6:6: warning: server 'a' uses port 443, the virtual's port when the server "
        "block was read (a later 'port' line does not apply to it)"]


def test_server_port_default_before_any_port_line_is_80() -> None:
    text = one_virtual("", "     server a {\n     }\n     port = 81\n")
    assert virtual_of(text).servers[0].port == 80


def test_legacy_keys_are_accepted_with_a_warning_and_dropped() -> None:
    plain = one_virtual()
    legacy = plain.replace("virtual", "sync = 1\nvirtual").replace(
        "     active = 1\n", "     active = 1\n     master = 10.0.0.2\n     dirs = [ /a /b ]\n")
    result = load(legacy)
    assert result.cluster == cluster(plain)
    assert [str(w) for w in result.warnings] == [
        "t.cf:2:1: warning: 'sync' is a legacy global keyword; ignored",
        "t.cf:5:6: warning: 'master' is a legacy virtual keyword; ignored",
        "t.cf:6:6: warning: 'dirs' is a legacy virtual keyword; ignored",
    ]


def test_gui_only_keys_are_accepted_with_a_warning() -> None:
    text = one_virtual('     expect_program = "/bin/check"\n     deadtime = 18\n',
                       "     server a {\n         address = 10.0.1.1\n"
                       "         nmask = 255.255.255.0\n     }\n")
    text += "failover f {\n     heartbeat = 1\n}\n"
    result = load(text)
    assert result.cluster.virtuals[0].servers == (RealServer("a", V4("10.0.1.1")),)
    gui = ("has no effect (Piranha's GUI could write it, its daemons rejected it); ignored")
    assert [str(w) for w in result.warnings] == [
        f"t.cf:5:6: warning: 'expect_program' in a virtual block {gui}",
        f"t.cf:6:6: warning: 'deadtime' in a virtual block {gui}",
        f"t.cf:9:10: warning: 'nmask' in a server block {gui}",
        f"t.cf:13:6: warning: 'heartbeat' in a failover block {gui}",
    ]


def test_keys_of_the_other_service_kind_have_no_effect() -> None:
    result = load(one_virtual('     start_cmd = "/bin/true"\n')
                  + "failover f {\n     scheduler = rr\n}\n")
    assert [str(w) for w in result.warnings] == [
        "t.cf:5:6: warning: 'start_cmd' has no effect in a virtual block; ignored",
        "t.cf:8:6: warning: 'scheduler' has no effect in a failover block; ignored",
    ]


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_every_scheduler_is_accepted(scheduler: str) -> None:
    assert virtual_of(one_virtual(f"     scheduler = {scheduler}\n")).scheduler == scheduler


def test_extra_schedulers_beyond_piranha() -> None:
    assert {"sed", "nq", "fo", "ovf", "mh"} <= set(SCHEDULERS)


def test_primary_is_required() -> None:
    assert errors("backup = 10.0.0.2\n") == [
        "t.cf:1:1: error: missing 'primary = IP' (the primary director's address)"]


def test_empty_file() -> None:
    for empty in ("", b""):
        with pytest.raises(ConfigErrors) as caught:
            load(empty)
        assert caught.value.report() == ("t.cf:0:0: error: empty configuration file\n"
                                         "1 error; configuration not loaded")


# -- service names, host names ----------------------------------------------------------------

def test_service_names_for_virtual_port_and_heartbeat_port() -> None:
    resolver = FakeResolver()
    c = load(one_virtual("     port = https\n").replace("virtual", "heartbeat_port = http\n"
                                                       "virtual"), resolver).cluster
    assert (c.heartbeat_port, c.virtuals[0].port) == (80, 443)
    assert set(resolver.lookups) == {("service", "http"), ("service", "https")}


def test_service_names_for_failover_port() -> None:
    assert cluster(PRIMARY + "failover f {\n     port = ftp\n}\n").failovers[0].port == 21


def test_real_server_port_takes_numbers_only() -> None:
    resolver = FakeResolver()
    text = one_virtual("", "     server a {\n         address = 10.0.1.1\n         port = http\n"
                       "     }\n")
    with pytest.raises(ConfigErrors) as caught:
        load(text, resolver)
    assert [str(e) for e in caught.value.errors] == [
        "t.cf:7:17: error: port: expected an integer, found 'http'"]
    assert ("service", "http") not in resolver.lookups


def test_host_names_are_resolved_through_the_resolver() -> None:
    resolver = FakeResolver()
    c = load("primary = director1\nbackup = director2\n" + one_virtual(
        "", "     server a {\n         address = web1.example\n         active = 1\n     }\n"
    ).removeprefix(PRIMARY), resolver).cluster
    assert (c.primary, c.backup) == (V4("203.0.113.10"), V4("203.0.113.11"))
    assert c.virtuals[0].servers[0].address == V4("192.168.10.11")
    assert resolver.lookups == [("host", "director1"), ("host", "director2"),
                                ("host", "web1.example")]


def test_unresolvable_host_is_an_error() -> None:
    assert errors("primary = nosuch.example\n") == [
        "t.cf:1:11: error: primary: expected an IP address or host name, found "
        "'nosuch.example' which does not resolve"]


def test_sorry_server_takes_no_host_name() -> None:
    resolver = FakeResolver()
    with pytest.raises(ConfigErrors):
        load(one_virtual("     sorry_server = web1.example\n"), resolver)
    assert resolver.lookups == []


# -- repeated keys, warnings --------------------------------------------------------------------

def test_last_repeated_key_wins() -> None:
    c = cluster(PRIMARY + "keepalive = 3\nkeepalive = 4\nprimary = 10.0.0.9\n" + one_virtual(
        "     scheduler = rr\n     scheduler = lc\n", "     server a {\n         weight = 5\n"
        "         weight = 6\n     }\n").removeprefix(PRIMARY))
    assert (c.keepalive, c.primary) == (4.0, V4("10.0.0.9"))
    assert c.virtuals[0].scheduler == "lc"
    assert c.virtuals[0].servers[0].weight == 6


def test_deadtime_not_above_keepalive_is_warned_only_where_heartbeats_go() -> None:
    base = "primary = 10.0.0.1\nkeepalive = 6\ndeadtime = 6\n"
    rest = one_virtual().removeprefix(PRIMARY)
    assert warnings(base + "backup = 10.0.0.2\nbackup_active = 1\n" + rest) == [
        "t.cf:3:1: warning: deadtime (6 s) should be longer than keepalive (6 s), or the "
        "partner is declared dead between heartbeats"]
    assert warnings(base + "backup = 10.0.0.2\nbackup_active = 0\n" + rest) == []


def test_warnings_text() -> None:
    text = ("primary = 10.0.0.1\nkeepalive = 6\ndeadtime = 6\nbackup_private = 10.1.0.2\n"
            "backup_active = 1\n" + one_virtual(
                "     persistent = -5\n     send = \"x\"\n     send_program = \"/bin/check %h\"\n"
            ).removeprefix(PRIMARY))
    assert warnings(text) == [  # no deadtime warning: without a backup no heartbeats go
        "t.cf:4:1: warning: backup_private: ignored because primary_private is not set (the "
        "public addresses are used)",
        "t.cf:5:1: warning: backup_active = 1 but no backup address is set; running without "
        "a backup director",
        "t.cf:9:6: warning: persistent: a negative value means no persistence; read as 0",
        "t.cf:10:6: warning: send: ignored because send_program is set",
    ]
    c = cluster(text)
    assert (c.backup_active, c.backup_private, c.virtuals[0].persistent) == (False, None, 0)


def test_fos_without_active_failover_warns() -> None:
    assert warnings(PRIMARY + "service = fos\n") == [
        "t.cf:1:1: warning: service = fos but no active failover service"]


def test_inactive_blocks_need_no_address() -> None:
    c = cluster(PRIMARY + "virtual spare {\n     active = 0\n     server s {\n"
                "         active = 0\n     }\n}\n")
    assert c.active_virtuals() == ()


def test_empty_send_is_allowed() -> None:
    assert virtual_of(one_virtual('     send = ""\n')).send == ""


def test_loads_accepts_bytes_and_text() -> None:
    text = one_virtual('     expect = "caf\u00e9"\n')
    assert cluster(text) == cluster(text.encode("utf-8"))
    assert virtual_of(text).expect == "caf\u00e9"


def test_a_huge_integer_is_a_located_error_not_a_crash() -> None:
    huge = "9" * 5000
    for line, column in ((f"serial_no = {huge}", 13), (f"keepalive = 0x{huge}", 13)):
        with pytest.raises(ConfigErrors) as caught:
            load(f"primary = 203.0.113.10\n{line}\n")
        assert [(e.line, e.column) for e in caught.value.errors] == [(2, column)]
        assert "integer too large (5" in caught.value.errors[0].message


def test_leading_zeros_do_not_count_as_size() -> None:
    result = load(f"primary = 203.0.113.10\nserial_no = {'0' * 5000}7\n")
    assert result.cluster.serial_no == 7
