"""Property tests of the lvs.cf loader and renderer.

(a) ``loads(render(c)).cluster == c`` for generated, internally consistent models, and rendering
    is idempotent;
(b) whatever the input (text, bytes, mutated example files), ``loads`` returns a ``LoadResult``
    or raises ``ConfigErrors`` -- nothing else -- and every message is located inside the file.
"""

from __future__ import annotations

import re
from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from piranha.config import LoadResult, loads, render
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
from testkit.examples import examples
from testkit.resolver import FakeResolver

VALID = Path(__file__).resolve().parents[1] / "data" / "valid"
EXAMPLES = [p.read_bytes() for p in sorted(VALID.glob("*.cf"))]
SETTINGS = settings(max_examples=examples(150), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


RESOLVER = FakeResolver()


# -- (a) valid models ------------------------------------------------------------------------

def _quotable(value: str) -> bool:
    """The renderer can quote it: not both quote characters directly before a blank."""
    return not (re.search(r'"[ \t]', value) and re.search(r"'[ \t]", value))


_char = st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from(
    ' \t"\'#=\\{}')
#: free text: blanks, both quotes, '#', '=', backslashes, non-ASCII; no control characters
texts = st.text(_char, max_size=24).filter(_quotable)
words = texts.filter(lambda s: s.strip() != "")
#: block names: no blanks (space or tab), never empty
names = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters=" \t")
                | st.sampled_from('"\'#={}'), min_size=1, max_size=12).filter(_quotable)
devices = st.from_regex(r"[A-Za-z0-9_.@:-]{1,15}", fullmatch=True)
ipv4 = st.ip_addresses(v=4).filter(lambda a: int(a) != 0)
ipv6 = st.ip_addresses(v=6).filter(lambda a: int(a) != 0)
seconds = st.one_of(
    st.integers(1, 10**7).map(float),
    st.floats(min_value=0.001, max_value=10**7, allow_nan=False, allow_infinity=False),
    st.sampled_from([0.5, 1.5, 2.25, 0.1]),
)
commands = st.tuples(st.from_regex(r"/[a-z/._-]{0,15}", fullmatch=True), texts).map(
    lambda p: f"{p[0]} {p[1]}".rstrip() if p[1].strip() else p[0]).filter(_quotable)
regexes = st.sampled_from(["HTTP/1.[01] 200", "^OK", "a|b", "x*", "[0-9]+ ready"])


def _prefix(family: int) -> st.SearchStrategy[int | None]:
    return st.none() | st.integers(1, 32 if family == 4 else 128)


@st.composite
def real_servers(draw: Any, family: int, vport: int, fwmark: int, network: Network,
                 count: int) -> tuple[RealServer, ...]:
    servers: list[RealServer] = []
    used_names: set[str] = set()
    endpoints: set[tuple[Any, int]] = set()
    for _ in range(count):
        name = draw(names.filter(lambda n: n not in used_names))
        used_names.add(name)
        same_family = ipv4 if family == 4 else ipv6
        address = draw(st.none() | (ipv4 | ipv6 if network is Network.TUNNEL else same_family))
        active = address is not None and draw(st.booleans())
        port = draw(st.just(vport) | st.integers(0 if fwmark else 1, 65535))
        if active and (address, port) in endpoints:
            active = False
        if active:
            endpoints.add((address, port))
        servers.append(RealServer(name=name, address=address, active=active,
                                  weight=draw(st.integers(0, 65535)), port=port))
    return tuple(servers)


@st.composite
def virtual_servers(draw: Any, name: str, network: Network) -> VirtualServer:
    family = draw(st.sampled_from([4, 6]))
    address = draw(st.none() | st.builds(InterfaceAddress, ipv4 if family == 4 else ipv6,
                                         devices))
    if address is None:
        family = 4
    fwmark = draw(st.just(0) | st.integers(1, 2**32 - 1))
    port = draw(st.integers(0 if fwmark else 1, 65535))
    persistent = draw(st.just(0) | st.integers(1, 2**31 - 1))
    full = 32 if family == 4 else 128
    pmask = draw(st.none() | st.integers(1, full - 1)) if persistent else None
    use_regex = draw(st.booleans())
    send_program = draw(st.none() | words)
    expect = draw(st.none() | (regexes if use_regex and send_program is None else texts))
    load_monitor = draw(st.none() | words.filter(lambda s: s != "none"))
    servers = draw(real_servers(family, port, fwmark, network, draw(st.integers(0, 3))))
    return VirtualServer(
        name=name, address=address, active=address is not None and draw(st.booleans()),
        vip_nmask=draw(_prefix(family)),
        sorry_server=draw(st.none() | (ipv4 if family == 4 else ipv6)), fwmark=fwmark,
        port=port, protocol=draw(st.sampled_from(ServiceProtocol)),
        scheduler=draw(st.sampled_from(SCHEDULERS)), persistent=persistent, pmask=pmask,
        send=draw(st.none() | texts), expect=expect, use_regex=use_regex,
        send_program=send_program, load_monitor=load_monitor, timeout=draw(seconds),
        reentry=draw(st.just(0.0) | seconds), quiesce_server=draw(st.booleans()),
        client_monitor=draw(words), servers=servers)


@st.composite
def failover_services(draw: Any, name: str, fos: bool) -> FailoverService:
    address = draw(st.none() | st.builds(InterfaceAddress, ipv4 | ipv6, devices))
    family = 6 if address is not None and address.ip.version == 6 else 4
    start_cmd, stop_cmd = draw(st.none() | commands), draw(st.none() | commands)
    runnable = address is not None and (not fos or (start_cmd and stop_cmd))
    return FailoverService(
        name=name, address=address, active=bool(runnable) and draw(st.booleans()),
        vip_nmask=draw(_prefix(family)), port=draw(st.integers(0, 65535)),
        protocol=draw(st.sampled_from(ServiceProtocol)), send=draw(st.none() | texts),
        expect=draw(st.none() | texts), send_program=draw(st.none() | words),
        timeout=draw(seconds), start_cmd=start_cmd, stop_cmd=stop_cmd)


def _unique_services(virtuals: list[VirtualServer]) -> list[VirtualServer]:
    """Deactivate a virtual that repeats an active one's VIP:port:proto or fwmark."""
    seen: set[tuple[Any, ...]] = set()
    out = []
    for vs in virtuals:
        if vs.active and vs.address is not None:
            key: tuple[Any, ...] = (("fwmark", vs.fwmark, vs.address.ip.version) if vs.fwmark
                                    else (vs.address.ip, vs.port, vs.protocol))
            if key in seen:
                vs = replace(vs, active=False)
            seen.add(key)
        out.append(vs)
    return out


@st.composite
def directors(draw: Any) -> dict[str, Any]:
    family = draw(st.sampled_from([ipv4, ipv6]))
    primary = draw(family)
    backup = draw(st.none() | family)
    if draw(st.booleans()):  # no private lines: Piranha copies the public addresses
        primary_private, backup_private = primary, backup
    else:
        primary_private = draw(family)
        backup_private = draw(st.none() | family)
    backup_active = backup is not None and draw(st.booleans())
    if backup_active and backup_private is None:
        backup_private = draw(family)
    return dict(primary=primary, primary_private=primary_private, backup=backup,
                backup_private=backup_private, backup_active=backup_active)


@st.composite
def clusters(draw: Any) -> Cluster:
    service = draw(st.sampled_from(ServiceType))
    network = draw(st.sampled_from(Network))
    virtual_names = draw(st.lists(names, max_size=3, unique=True))
    failover_names = draw(st.lists(names, max_size=2, unique=True))
    nat_router = draw(st.none() | st.builds(InterfaceAddress, ipv4 | ipv6, devices))
    router_family = 6 if nat_router is not None and nat_router.ip.version == 6 else 4
    return Cluster(
        serial_no=draw(st.integers(-(2**63), 2**63 - 1)),
        **draw(directors()),
        primary_shared=draw(st.none() | words), service=service,
        rsh_command=draw(words), backup_shared=draw(st.none() | words),
        heartbeat=draw(st.booleans()), heartbeat_port=draw(st.integers(1, 65535)),
        keepalive=draw(seconds), deadtime=draw(seconds), network=network,
        nat_router=nat_router, nat_nmask=draw(_prefix(router_family)),
        reservation_conflict_action=draw(st.sampled_from([None, "nothing", "preempt"])),
        debug_level=draw(words), ipvsadm=draw(words),
        active_cmd=draw(st.none() | commands), inactive_cmd=draw(st.none() | commands),
        monitor_links=draw(st.booleans()), syncdaemon=draw(st.booleans()),
        syncd_iface=draw(devices), syncd_id=draw(st.integers(0, 255)),
        tcp_timeout=draw(st.integers(0, 2**31 - 1)),
        tcpfin_timeout=draw(st.integers(0, 2**31 - 1)),
        udp_timeout=draw(st.integers(0, 2**31 - 1)), hard_shutdown=draw(st.booleans()),
        virtuals=tuple(_unique_services(
            [draw(virtual_servers(n, network)) for n in virtual_names])),
        failovers=tuple(draw(failover_services(n, service is ServiceType.FOS))
                        for n in failover_names),
    )


@SETTINGS
@given(clusters())
def test_render_then_load_gives_the_same_model(cluster: Cluster) -> None:
    text = render(cluster)
    result = loads(text, "r.cf", RESOLVER)
    assert result.cluster == cluster
    assert render(result.cluster) == text
    assert loads(text.replace("\n", "\r\n"), "r.cf", RESOLVER).cluster == cluster


def _rich_cluster() -> Cluster:
    """One model with the awkward values spelled out, so the round trip is always tried."""
    server = RealServer("web1", IPv6Address("2001:db8:1::11"), True, 7, 8080)
    return Cluster(
        primary=IPv6Address("2001:db8::1"), primary_private=IPv6Address("2001:db8:ff::1"),
        backup=IPv6Address("2001:db8::2"), backup_private=IPv6Address("2001:db8:ff::2"),
        backup_active=True, keepalive=0.25, deadtime=1.5, rsh_command="ssh -o 'A=b' #x",
        active_cmd='/usr/local/bin/up "a b" \\n', network=Network.TUNNEL,
        nat_router=InterfaceAddress(IPv4Address("192.168.1.254"), "eth1:1"), nat_nmask=25,
        virtuals=(
            VirtualServer(
                name="#www", address=InterfaceAddress(IPv6Address("2001:db8::80"), "eth0:1"),
                active=True, vip_nmask=64, sorry_server=IPv6Address("2001:db8::99"),
                fwmark=0, port=443, scheduler="mh", persistent=30, pmask=56,
                send='GET / HTTP/1.0\\r\\n\\r\\n', expect="it's \"quoted\" = #1",
                load_monitor="ruptime", timeout=0.5, reentry=0.0, servers=(server,)),
            VirtualServer(name="=", address=InterfaceAddress(IPv4Address("10.0.0.80"), "eth0:2"),
                          active=True, fwmark=5, port=0, scheduler="ovf",
                          servers=(RealServer("}", IPv4Address("10.0.1.1"), True, 1, 0),)),
        ),
        failovers=(FailoverService("f", InterfaceAddress(IPv4Address("10.0.0.21"), "eth0:3"),
                                   True, 24, 21, start_cmd="/bin/start", stop_cmd="/bin/stop"),),
    )


def test_round_trip_of_awkward_values() -> None:
    cluster = _rich_cluster()
    text = render(cluster)
    assert loads(text, "r.cf", RESOLVER).cluster == cluster
    assert render(loads(text, "r.cf", RESOLVER).cluster) == text
    assert loads(text.replace("\n", "\r"), "r.cf", RESOLVER).cluster == cluster


# -- (b) fuzzing ---------------------------------------------------------------------------

FUZZ = settings(max_examples=examples(200), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


def physical_lines(data: str | bytes) -> int:
    if isinstance(data, bytes):
        data = data.decode("utf-8", "surrogateescape")
    # \r\n, \n and a lone \r each end a line
    return len(re.findall(r"\r\n|\r|\n", data)) + (not re.search(r"[\r\n]\Z", data))


def check_loads(data: str | bytes) -> None:
    """``loads`` returns a LoadResult or raises ConfigErrors with located messages."""
    try:
        result = loads(data, "fuzz.cf", RESOLVER)
    except ConfigErrors as exc:
        assert exc.errors
        problems = exc.errors + exc.warnings
        report = exc.report()
        assert report.endswith("configuration not loaded")
        assert "\n" not in "".join(p.message for p in problems)
        report.encode("utf-8")  # printable: no lone surrogates
    else:
        assert isinstance(result, LoadResult)
        problems = list(result.warnings)
        render(result.cluster)
    limit = physical_lines(data)
    for problem in problems:
        assert problem.filename == "fuzz.cf"
        assert 0 <= problem.line <= limit, problem
        assert problem.column >= 0, problem


@FUZZ
@given(st.text())
def test_arbitrary_text(text: str) -> None:
    check_loads(text)


@FUZZ
@given(st.binary())
def test_arbitrary_bytes(data: bytes) -> None:
    check_loads(data)


_WORDS = ["virtual", "server", "failover", "{", "}", "=", "primary", "address", "port",
          "active", "1", "0", "fwmark", "pmask", "persistent", "2001:db8::1", "eth0:1", "#",
          '"', "'", "use_regex", "expect", "service", "fos", "network", "tunnel"]
lines_of_words = st.lists(st.lists(st.sampled_from(_WORDS), max_size=5).map(" ".join),
                          max_size=30).map("\n".join)


@FUZZ
@given(lines_of_words)
def test_keyword_soup(text: str) -> None:
    check_loads(text)


_INSERTS = [b'"', b"'", b"{", b"}", b"=", b"\r", b"\r\n", b"\n", b"\x00", b"\xff", b"\xc3",
            b"#", b" ", b"\t", b"server s {", b"virtual v {", b"}}", b"= =", b"0x", b"-1",
            b"fwmark = 1", b"port = 0", b"pmask = 24", b"active = 1", b"use_regex = 1",
            b"address = 2001:db8::1 eth0:9", b"service = fos", b"failover f {", b"[", b"]"]
mutations = st.lists(st.tuples(st.sampled_from(["delete", "swap", "insert", "tokens"]),
                               st.integers(0, 10**6), st.integers(0, 10**6),
                               st.sampled_from(_INSERTS)), min_size=1, max_size=8)


def mutate(data: bytes, ops: list[tuple[str, int, int, bytes]]) -> bytes:
    for op, i, j, insert in ops:
        lines = data.split(b"\n")
        if op == "delete":
            del lines[i % len(lines)]
        elif op == "swap":
            a, b = i % len(lines), j % len(lines)
            lines[a], lines[b] = lines[b], lines[a]
        elif op == "tokens":
            n = i % len(lines)
            tokens = lines[n].split(b" ")
            a, b = i % len(tokens), j % len(tokens)
            tokens[a], tokens[b] = tokens[b], tokens[a]
            lines[n] = b" ".join(tokens)
        else:
            joined = b"\n".join(lines)
            at = i % (len(joined) + 1)
            lines = (joined[:at] + insert + joined[at:]).split(b"\n")
        data = b"\n".join(lines)
    return data


@FUZZ
@given(st.sampled_from(EXAMPLES), mutations)
def test_mutated_example_files(example: bytes, ops: list[tuple[str, int, int, bytes]]) -> None:
    check_loads(mutate(example, ops))


@FUZZ
@given(st.sampled_from(EXAMPLES), mutations)
def test_mutated_example_files_with_dos_line_ends(example: bytes,
                                                  ops: list[tuple[str, int, int, bytes]]) -> None:
    check_loads(mutate(example, ops).replace(b"\n", b"\r\n"))


def test_examples_load_with_the_fake_resolver() -> None:
    assert len(EXAMPLES) >= 3
    for data in EXAMPLES:
        check_loads(data)
        assert loads(data, "x.cf", RESOLVER).cluster.primary is not None
