"""piranha-ipvsadm vs the real ipvsadm 1.31, byte for byte, on the real kernel (VM tier).

Both directions, on the same hypothesis-generated tables (testkit/ipvsadm_gen.py):

1. the real ``ipvsadm -R`` builds a table in the test's namespace and lists it in every mode;
   piranha-ipvsadm (``main()`` in-process over ``NetlinkIpvs`` opened in that namespace) lists
   the same kernel state, and stdout must match byte for byte;
2. piranha-ipvsadm then flushes and restores the same script; the real ``ipvsadm -Sn`` must
   print the canonical save text of the table.

To keep the VM time down, one real ``ipvsadm -R`` process per table does everything real-side:
it first saves what piranha-ipvsadm built for the previous table, then flushes, builds, and
lists in every mode, with ``-L --timeout`` lines as separators (their output cannot occur in
a listing). Hand-written edge cases (IPv6 fwmark, every tunnel type and checksum flag,
thresholds, weights above 65535, a sync daemon, a live connection entry,
long host names for the 33/28-column cuts) and the captured argv corpus run live as well.
"""

from __future__ import annotations

import difflib
import io
import json
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from piranha.ipvsadm.main import main
from piranha.ipvsadm.sort import sort_services
from testkit.ipvsadm_gen import GenTable, canonical_save, restore_script, tables

MARK_LINE = "-L --timeout"
MARK = "Timeout (tcp tcpfin udp): 900 120 300\n"
#: listing modes compared for every table (besides one single-service listing)
MODES = (["-L"], ["-Ln"], ["-Ln", "--stats"], ["-Ln", "--rate"], ["-Ln", "--thresholds"],
         ["-Ln", "--persistent-conn"], ["-Ln", "--tun-info"], ["-Ln", "--nosort"], ["-S"],
         ["-Sn"], ["-l", "--numeric", "--sort"])
#: modes whose output does not depend on a generated table: compared in the edge-case test
MORE_MODES = (["-Ln", "--stats", "--exact"], ["-Ln", "--nosort", "--tun-info"], ["-Lnc"],
              ["-L", "--daemon"])
#: tables per hypothesis example x examples = generated tables per run (plus the 137 live
#: argv cases and the hand-written edge cases: over 330 compared cases per run)
TABLES_PER_EXAMPLE, EXAMPLES = 10, 20
GOLDEN = Path(__file__).parents[1] / "data" / "ipvsadm" / "real-ipvsadm-1.31.json"


class Tools:
    """Both tools on one namespace: the real ipvsadm (processes) and ours (in-process)."""

    def __init__(self, ns):
        from piranha.ipvs.netlink import NetlinkIpvs

        self.ns = ns
        self.backend = NetlinkIpvs(ns.name)
        self.spawns = 0

    def real(self, argv: list[str], stdin: str | None = None) -> tuple[str, str, int]:
        """``ipvsadm ARGV`` inside the namespace."""
        self.spawns += 1
        proc = self.ns.run(["ipvsadm", *argv], input=stdin, check=False)
        return proc.stdout, proc.stderr, proc.returncode

    def ours(self, argv: list[str], stdin: str = "", **kw) -> tuple[str, str, int]:
        """piranha-ipvsadm's ``main()`` on the same namespace's table."""
        out, err = io.StringIO(), io.StringIO()
        status = main(argv, backend=self.backend, stdin=io.StringIO(stdin), stdout=out,
                      stderr=err, prog="ipvsadm", env={}, **kw)
        return out.getvalue(), err.getvalue(), status


@pytest.fixture
def tools(netns) -> Iterator[Tools]:
    t = Tools(netns)
    yield t
    t.backend.close()


def single_service_modes(table: GenTable) -> list[list[str]]:
    """``-Ln <first service>`` (none for an empty table: a missing one ends a real -R)."""
    if not table.services:
        return []
    first = sort_services([g.service for g in table.services])[0].key
    if first.fwmark:  # by its unsigned mark: -S would print marks >= 2**31 negative
        return [["-Ln", "-f", str(first.fwmark), *(["-6"] if first.family == 10 else [])]]
    name = canonical_save(table).split("\n")[0][3:].split(" -s ")[0]
    return [["-Ln", *name.split(" ")]]


def real_script(previous_save: bool, script: str, modes: list[list[str]]) -> str:
    """The real tool's whole job for one table, as one -R input."""
    lines = (["-Sn"] if previous_save else []) + ["-C", script.rstrip("\n")]
    for mode in modes:
        lines += [MARK_LINE, " ".join(mode)]
    return "\n".join(line for line in lines if line) + "\n"


def same(got: str, want: str, context: str) -> None:
    """Assert equal texts, showing a unified diff (real ipvsadm = ---, ours = +++)."""
    if got != want:
        diff = "".join(difflib.unified_diff(want.splitlines(True), got.splitlines(True),
                                            "ipvsadm", "piranha-ipvsadm"))
        raise AssertionError(f"{context}\n{diff}")


def check_tables(tools: Tools, batch: list[GenTable], rng: random.Random) -> None:
    """Both directions for each table; the save of one is checked by the next real run."""
    pending: tuple[str, str] | None = None  # (expected -Sn, script) of what we built last
    for i, table in enumerate(batch):
        script = restore_script(table, rng)
        real_before = STATS["real_s"]
        # name look-ups are slow in the VM: the resolving modes on every other table only
        modes = [m for m in MODES if i % 2 == 0 or "-n" in m or "-Ln" in m or "-Sn" in m
                 or "--numeric" in m]
        modes += single_service_modes(table)
        started = time.perf_counter()
        out, err, status = tools.real(["-R"], real_script(pending is not None, script, modes))
        STATS["real_s"] += time.perf_counter() - started
        assert (err, status) == ("", 0), f"real ipvsadm refused:\n{script}"
        chunks = out.split(MARK)
        if pending is not None:
            assert chunks.pop(0) == pending[0], f"ipvsadm -Sn after our -R of:\n{pending[1]}"
        else:
            assert chunks.pop(0) == ""
        for mode, want in zip(modes, chunks, strict=True):
            same(tools.ours(mode)[0], want, f"ipvsadm {' '.join(mode)} after:\n{script}")
        assert tools.ours(["-C"]) == ("", "", 0)
        assert tools.ours(["-R"], script) == ("", "", 0), script
        STATS["ours_s"] += time.perf_counter() - started - STATS["real_s"] + real_before
        pending = (canonical_save(table), script)
    if pending is not None:
        assert tools.real(["-Sn"])[0] == pending[0], f"ipvsadm -Sn after our -R of:\n{pending[1]}"


@settings(max_examples=EXAMPLES, deadline=None, database=None, phases=[Phase.generate],
          derandomize=os.environ.get("PIRANHA_IPVSADM_RANDOM") != "1",
          suppress_health_check=list(HealthCheck))
@given(st.lists(tables(min_services=1), min_size=TABLES_PER_EXAMPLE,
                max_size=TABLES_PER_EXAMPLE),
       st.randoms(use_true_random=False))
def test_generated_tables_both_directions(tools, batch, rng):
    started = time.perf_counter()
    check_tables(tools, batch, rng)
    STATS["tables"] += len(batch)
    STATS["entries"] += sum(len(t.services) + sum(len(g.dests) for g in t.services)
                            for t in batch)
    STATS["seconds"] += time.perf_counter() - started


STATS = {"tables": 0, "entries": 0, "seconds": 0.0, "real_s": 0.0, "ours_s": 0.0}


def test_generated_tables_report(capsys):
    """Not a check: how many generated tables the test above compared, and how fast."""
    with capsys.disabled():
        print(f"\ngenerated tables compared: {STATS['tables']} ({STATS['entries']} services+dests)"
              f" in {STATS['seconds']:.1f}s (real ipvsadm processes {STATS['real_s']:.1f}s,"
              f" piranha-ipvsadm in-process {STATS['ours_s']:.1f}s)")


def test_argv_corpus_live(tools):
    """The captured corpus (parse errors, popt quirks, kernel errors) against the live kernel."""
    data = json.loads(GOLDEN.read_text())
    skip = {("-A", "-t", "198.51.100.10:80", "-p", "-M", "24")}  # non-contiguous mask
    for case in data["argv_cases"]:
        if tuple(case["argv"]) in skip or case["argv"] in (["-Lnc"], ["-lnc"]):
            continue
        tools.ours(["-C"])
        tools.ours(["-A", "-t", "198.51.100.10:81"])
        got = tools.ours(case["argv"])
        assert got == (case["stdout"], case["stderr"], case["rc"]), case["argv"]
        assert tools.ours(["-Sn"])[0] == case["after"], case["argv"]
    # and the real tool still says what was captured (spot check a few, one process each)
    for case in data["argv_cases"][:: max(1, len(data["argv_cases"]) // 8)]:
        tools.ours(["-C"])
        tools.ours(["-A", "-t", "198.51.100.10:81"])
        assert tools.real(case["argv"]) == (case["stdout"], case["stderr"], case["rc"])


EDGE_SCRIPT = """\
-A -t 198.51.100.100:80 -s wlc
-a -t 198.51.100.100:80 -r 10.200.0.11:80 -g -w 1
-a -t 198.51.100.100:80 -r 10.200.0.12:80 -g -w 0
-a -t 198.51.100.100:80 -r 10.200.0.1:80 -m -w 3
-A -t 198.51.100.100:443 -s rr -p -M 255.255.255.0
-a -t 198.51.100.100:443 -r 198.51.100.5:8443 -m -w 2 -x 100 -y 10
-a -t 198.51.100.100:443 -r 10.200.0.7:8443 -m -w 2147483647
-A -u [2001:db8::53]:53 -s rr -o
-a -u [2001:db8::53]:53 -r [2001:db8::a1]:53 -m -w 1
-a -u [2001:db8::53]:53 -r 10.200.0.53 -i --tun-type gue --tun-port 6081 --tun-remcsum
-A -f 7 -s sh -b sh-fallback,sh-port
-a -f 7 -r 10.200.0.21 -i -w 1 --tun-type gue --tun-port 6080 --tun-nocsum
-a -f 7 -r 10.200.0.22 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum
-a -f 7 -r 10.200.0.23 -i -w 1 --tun-type gre --tun-csum
-a -f 7 -r 10.200.0.24 -i -w 1 --tun-type gre --tun-nocsum
-a -f 7 -r 10.200.0.25 -i -w 70000
-a -f 7 -r [2001:db8::25]:0 -i -w 1 --tun-type ipip
-A -f 4294967295 -6 -s wrr -p 600 -M 64 --pe sip
-a -f 4294967295 -6 -r [2001:db8:100::9]:0 -m -w 5
-A -f 2147483648 -s mh -b mh-port
-A --sctp-service 198.51.100.7:9 -s sed -p 1
-A -t 198.51.100.8:0 -s lblcr -p 2678400 -M 255.255.255.128 -b flag-2
-a -t 198.51.100.8:0 -r 10.200.0.8:0 -m -x 5
-A -u 198.51.100.9:5060 -s dh -p --pe sip -o
"""


def test_edge_cases_list_identically_and_round_trip(tools):
    out, err, status = tools.real(["-R"], EDGE_SCRIPT)
    assert (out, err, status) == ("", "", 0)
    modes = [*MODES, *MORE_MODES, ["-Ln", "-f", "4294967295", "-6"],
             ["-L", "-u", "[2001:db8::53]:53"],
             ["-Ln", "--sctp-service", "198.51.100.7:9"], ["-L", "--timeout"]]
    for mode in modes:
        assert tools.ours(mode) == tools.real(mode), mode
    saved = tools.real(["-Sn"])[0]
    assert tools.ours(["-C"]) == ("", "", 0)
    assert tools.ours(["-R"], EDGE_SCRIPT) == ("", "", 0)
    assert tools.real(["-Sn"])[0] == saved


def test_json_agrees_with_the_kernel(tools):
    assert tools.real(["-R"], EDGE_SCRIPT)[2] == 0
    doc = json.loads(tools.ours(["-L", "--json"])[0])
    assert (doc["schema"], doc["version"], doc["conn_tab_size"]) == ("piranha-ipvsadm/1",
                                                                    "1.2.1", 4096)
    text = tools.real(["-Ln"])[0]
    assert len(doc["services"]) == sum(1 for line in text.splitlines()[3:]
                                       if not line.startswith("  ->"))
    mark = next(s for s in doc["services"] if s["fwmark"] == 7)
    assert [d["tunnel"] for d in mark["dests"]][:2] == [
        {"type": "gue", "port": 6080, "csum": "nocsum"},
        {"type": "gue", "port": 6080, "csum": "csum"}]


def test_daemons_timeouts_and_errors(tools):
    for argv in (["--start-daemon", "master", "--mcast-interface", "pub0", "--syncid", "7"],
                 ["--start-daemon", "backup", "--mcast-interface", "pub0", "--mcast-port",
                  "9000", "--mcast-ttl", "3", "--sync-maxlen", "1200",
                  "--mcast-group", "239.1.2.3"]):
        assert tools.ours(argv) == ("", "", 0), argv
    assert tools.ours(["-L", "--daemon"]) == tools.real(["-L", "--daemon"])
    assert tools.ours(["--start-daemon", "master", "--mcast-interface", "pub0"]) == \
        tools.real(["--start-daemon", "master", "--mcast-interface", "pub0"])
    assert tools.real(["--stop-daemon", "master"])[2] == 0
    assert tools.ours(["--stop-daemon", "master"]) == tools.real(["--stop-daemon", "master"])
    assert tools.ours(["--set", "100", "0", "50"]) == ("", "", 0)
    assert tools.ours(["-L", "--timeout"]) == tools.real(["-L", "--timeout"])
    assert tools.real(["--set", "900", "120", "300"])[2] == 0
    for argv in (["-A", "-t", "198.51.100.3:80", "-s", "nosuch"], ["-E", "-f", "9"],
                 ["-a", "-t", "198.51.100.3:80", "-r", "10.200.0.3"], ["-Z", "-f", "3"],
                 ["-a", "-f", "3", "-r", "224.0.0.1", "-m"]):
        assert tools.ours(argv) == tools.real(argv), argv


def test_connection_listing_with_a_live_entry(tools, netns):
    import socket

    script = "-A -u 198.51.100.1:53 -s rr\n-a -u 198.51.100.1:53 -r 10.200.0.5:5353 -m\n"
    assert tools.real(["-R"], script)[2] == 0
    with netns.entered():
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("198.51.100.1", 40000))
        sock.sendto(b"ping", ("198.51.100.1", 53))
        sock.close()
        proc = "/proc/thread-self/net/ip_vs_conn"
        assert len(Path(proc).read_text().splitlines()) == 2
        for mode in (["-Lnc"], ["-Lc"], ["-Lnc", "--persistent-conn"]):
            want = tools.real(mode)
            got = tools.ours(mode, conn_path=proc)
            # the expiry counts down between the two reads: compare without the expire column
            assert [line[:4] + line[10:] for line in got[0].splitlines()] == \
                [line[:4] + line[10:] for line in want[0].splitlines()]
            assert got[1:] == want[1:]


@pytest.fixture
def long_host_names():
    """Long names for some test addresses in the guest's /etc/hosts (a VM overlay), restored."""
    if os.environ.get("PIRANHA_KERNEL_TIER") != "1":
        pytest.skip("edits /etc/hosts: only inside the VM harness")
    hosts = Path("/etc/hosts")
    original = hosts.read_text()
    names = {"198.51.100.70": "a-very-long-virtual-server-name.example.internal",
             "10.200.0.71": "real-server-number-seventy-one.example.internal",
             "2001:db8::72": "ipv6-real-server-seventy-two.example.internal"}
    hosts.write_text(original + "".join(f"{a} {n}\n" for a, n in names.items()))
    yield names
    hosts.write_text(original)


def test_long_host_names_are_cut_like_ipvsadm(tools, long_host_names):
    script = ("-A -t 198.51.100.70:80\n-a -t 198.51.100.70:80 -r 10.200.0.71 -m\n"
              "-A -t [2001:db8::72]:443\n-a -t [2001:db8::72]:443 -r [2001:db8::72]:8443 -m\n")
    assert tools.real(["-R"], script)[2] == 0
    for mode in (["-L"], ["-L", "--stats"], ["-L", "--thresholds"], ["-S"],
                 ["-L", "-t", "198.51.100.70:80"]):
        assert tools.ours(mode) == tools.real(mode), mode
    assert tools.ours(["-L"])[0].splitlines()[3:5] == [
        "TCP  a-very-long-virtual-server-n wlc",
        "  -> real-server-number-seventy-o Masq    1      0          0         "]


def test_timing_report(tools, capsys):
    """Not a check: how long one table's real run and our listings take in this VM."""
    started = time.perf_counter()
    tools.real(["-Ln"])
    real = time.perf_counter() - started
    started = time.perf_counter()
    tools.ours(["-Ln"])
    ours = time.perf_counter() - started
    with capsys.disabled():
        print(f"\nipvsadm -Ln process: {real:.3f}s, piranha-ipvsadm -Ln in-process: {ours:.3f}s")
