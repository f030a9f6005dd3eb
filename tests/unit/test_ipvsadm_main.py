"""piranha-ipvsadm's main(): connections, JSON, batching of -R, IPVS-less hosts, lean imports."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from ipaddress import ip_address

import pytest

from piranha.errors import IpvsUnavailable
from piranha.ipvs.types import AddDest, AddService, Daemon, DaemonState
from piranha.ipvsadm import main as cli
from piranha.ipvsadm.main import main
from testkit.ipvs import StubIpvs, TableBackend
from testkit.lookup import StaticLookup
from testkit.tables import example_table, lines

PROC = lines(
    "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData",
    "TCP CB007109 C822 0A000064 0050 0A00000B 0050 ESTABLISHED     898",
    "TCP CB007109 0000 0A000064 01BB C0A80105 20FB NONE            359",
    "UDP C6336402 14E9 0A000035 0035 0A000015 0035 UDP             291",
    "UDP 2001:0db8:0000:0000:0000:0000:0000:0001 14E9 2001:0db8:0000:0000:0000:0000:0000:0053 "
    "0035 2001:0db8:0000:0000:0000:0000:0000:00a1 0035 UDP              10",
    "UDP 0A000001 13C4 0A000064 13C4 0A00000C 13C4 ESTABLISHED    6000 sip 3a1b",
)


def run(argv, backend=None, stdin="", **kw):
    out, err = io.StringIO(), io.StringIO()
    status = main(argv, backend=backend or TableBackend(example_table()), stdin=io.StringIO(stdin),
                  stdout=out, stderr=err, prog="ipvsadm", env={}, **kw)
    return out.getvalue(), err.getvalue(), status


def test_connection_listing(tmp_path):
    proc = tmp_path / "ip_vs_conn"
    proc.write_text(PROC)
    resolver = StaticLookup({}, {("http", "tcp"): 80, ("domain", "udp"): 53})
    out, err, status = run(["-Lc"], conn_path=str(proc), resolver=resolver)
    assert (err, status) == ("", 0)
    assert out == lines(
        "IPVS connection entries",
        "pro expire state       source             virtual            destination",
        "TCP 14:58  ESTABLISHED 203.0.113.9:51234  10.0.0.100:http    10.0.0.11:http",
        "TCP 05:59  NONE        203.0.113.9:0      10.0.0.100:443     192.168.1.5:8443",
        "UDP 04:51  UDP         198.51.100.2:5353  10.0.0.53:domain   10.0.0.21:domain",
        "UDP 00:10  UDP         [2001:db8::1]:5353 [2001:db8::53]:domain [2001:db8::a1]:domain",
        "UDP 100:00 ESTABLISHED 10.0.0.1:5060      10.0.0.100:5060    10.0.0.12:5060",
    )
    out, _, _ = run(["-Lnc", "--persistent-conn"], conn_path=str(proc))
    assert out.splitlines()[1] == ("pro expire state       source             virtual       "
                                   "     destination        pe name          pe_data")
    assert out.splitlines()[-1] == ("UDP 100:00 ESTABLISHED 10.0.0.1:5060      10.0.0.100:5060"
                                    "    10.0.0.12:5060   sip                3a1b")


def test_connection_listing_errors(tmp_path):
    assert run(["-Lnc"], conn_path=str(tmp_path / "missing")) == \
        ("", "cannot open file /proc/net/ip_vs_conn\n", 1)
    (tmp_path / "empty").write_text("")
    assert run(["-Lnc"], conn_path=str(tmp_path / "empty")) == \
        ("", "unexpected input from /proc/net/ip_vs_conn\n", 1)


def test_single_service_listing_has_no_header():
    out, err, status = run(["-Ln", "-t", "10.0.0.100:443"])
    assert out == lines(
        "Prot LocalAddress:Port Scheduler Flags",
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
        "TCP  10.0.0.100:443 rr persistent 360 mask 255.255.255.0",
        "  -> 192.168.1.5:8443             Masq    2      5          3         ",
        "  -> 10.1.0.7:8443                Masq    2      0          0         ",
    )
    assert run(["-Ln", "-t", "10.0.0.100:444"]) == ("", "No such service\n", 1)


def test_daemon_listing_master_first():
    backend = TableBackend(example_table(), [
        Daemon(DaemonState.BACKUP, "eth1", 9),
        Daemon(DaemonState.MASTER, "eth0", 0, 1472, ip_address("224.0.0.81"), 8848, 1),
    ])
    assert run(["-L", "--daemon"], backend) == (lines(
        "master sync daemon (mcast=eth0, syncid=0, maxlen=1472, group=224.0.0.81, port=8848,"
        " ttl=1)",
        "backup sync daemon (mcast=eth1, syncid=9)"), "", 0)


def test_daemon_and_timeout_commands():
    backend = StubIpvs()
    assert run(["--start-daemon", "master", "--mcast-interface", "dummy0"], backend)[2] == 0
    assert run(["--start-daemon", "master"], backend) == ("", "Daemon has already run\n", 255)
    assert run(["--stop-daemon", "backup"], backend) == ("", "No daemon is running\n", 255)
    assert run(["--set", "10", "0", "20"], backend)[2] == 0
    assert run(["-L", "--timeout"], backend)[0] == "Timeout (tcp tcpfin udp): 10 120 20\n"


def test_json_listing_schema():
    out, err, status = run(["-L", "--json", "--stats", "-n"])
    doc = json.loads(out)
    assert (err, status) == ("", 0)
    assert list(doc) == ["schema", "version", "conn_tab_size", "services"]
    assert (doc["schema"], doc["version"], doc["conn_tab_size"]) == ("piranha-ipvsadm/1",
                                                                    "1.2.1", 4096)
    assert [s["port"] for s in doc["services"]] == [80, 443, 0]
    tls = doc["services"][1]
    assert tls == {
        "protocol": "tcp", "family": "inet", "address": "10.0.0.100", "port": 443, "fwmark": 0,
        "scheduler": "rr", "sched_flags": [], "persistent": True, "timeout": 360, "netmask": 24,
        "pe": None, "one_packet": False, "stats": tls["stats"], "dests": tls["dests"]}
    assert tls["dests"][0] == {
        "address": "192.168.1.5", "family": "inet", "port": 8443, "forward": "masq",
        "weight": 2, "u_threshold": 100, "l_threshold": 10, "active_conns": 5,
        "inactive_conns": 3, "persistent_conns": 4, "tunnel": None,
        "stats": {k: 0 for k in ("conns", "inpkts", "outpkts", "inbytes", "outbytes", "cps",
                                 "inpps", "outpps", "inbps", "outbps")}}
    mark = doc["services"][2]
    assert (mark["address"], mark["fwmark"], mark["sched_flags"]) == (None, 7,
                                                                     ["sh-fallback", "sh-port"])
    assert mark["dests"][0]["tunnel"] == {"type": "gue", "port": 6080, "csum": "nocsum"}


def test_json_for_timeouts_daemons_and_connections(tmp_path):
    assert json.loads(run(["-L", "--timeout", "--json"])[0]) == {
        "schema": "piranha-ipvsadm/1", "timeouts": {"tcp": 900, "tcpfin": 120, "udp": 300}}
    assert json.loads(run(["-L", "--daemon", "--json"])[0]) == {
        "schema": "piranha-ipvsadm/1", "daemons": []}
    proc = tmp_path / "conn"
    proc.write_text(PROC)
    conns = json.loads(run(["-Lc", "--json"], conn_path=str(proc))[0])["connections"]
    assert conns[0] == {"protocol": "TCP", "client": {"address": "203.0.113.9", "port": 51234},
                        "virtual": {"address": "10.0.0.100", "port": 80},
                        "destination": {"address": "10.0.0.11", "port": 80},
                        "state": "ESTABLISHED", "expires": 898, "pe_name": None,
                        "pe_data": None}
    assert (conns[-1]["pe_name"], conns[-1]["pe_data"]) == ("sip", "3a1b")
    assert run(["-S", "--json"]) == ("", "Illegal 'json' option with the 'save' command\n", 2)


def test_restore_applies_all_lines_in_one_call_and_reports_in_line_order():
    backend = StubIpvs()
    script = lines(
        "-A -t 10.0.0.1:80",
        "-a -t 10.0.0.1:80 -r 10.0.1.1 -m",
        "-A -t 10.0.0.1:80",
        "-a -t 10.0.0.2:80 -r 10.0.1.1 -m --bogus",
        "-a -t 10.0.0.9:80 -r 10.0.1.1 -m",
        "-A -t 10.0.0.3:80 -s rr",
    )
    out, err, status = run(["-R"], backend, script)
    assert (out, status) == ("", 0)
    assert err == lines("Service already exists", "--bogus: unknown option",
                        "Service not defined")
    assert [len(call) for call in backend.applied] == [5]
    assert [type(op) for op in backend.applied[0]] == [AddService, AddDest, AddService, AddDest,
                                                       AddService]


def test_restore_flushes_the_batch_before_a_listing_line():
    backend = StubIpvs()
    out, err, status = run(["-R"], backend, "-A -t 10.0.0.1:80\n-Sn\n-A -t 10.0.0.2:80\n")
    assert (out, err, status) == ("-A -t 10.0.0.1:80 -s wlc\n", "", 0)
    assert [len(call) for call in backend.applied] == [1, 1]


def test_restore_parse_error_applies_the_lines_before_it():
    backend = StubIpvs()
    out, err, status = run(["-R"], backend, "-A -t 10.0.0.1:80\n-A -t 10.0.0.1:80\n-A -x\n"
                                            "-A -t 10.0.0.3:80 -w 1\n-A -t 10.0.0.2:80\n")
    assert (err, status) == ("Service already exists\n-x: missing argument\n"
                             "Illegal 'weight' option with the 'add-service' command\n", 2)
    assert run(["-Sn"], backend)[0] == "-A -t 10.0.0.1:80 -s wlc\n"


class Unavailable:
    def info(self):
        raise IpvsUnavailable("no IPVS")

    def apply(self, ops):
        raise IpvsUnavailable("no IPVS")


@pytest.mark.parametrize("argv", [["-Ln"], ["-C"], []])
def test_no_ipvs_prints_ipvsadms_message_and_a_hint(argv):
    out, err, status = run(argv, Unavailable())
    assert (out, status) == ("", 2)
    first, second, hint = err.splitlines()
    assert first == "Can't initialize ipvs: Protocol not available"
    assert second == "Are you sure that IP Virtual Server is built in the kernel or as module?"
    assert "ip_vs" in hint and "VM" in hint


def test_opening_the_kernel_backend_can_fail_too(monkeypatch):
    def refuse():
        raise IpvsUnavailable("no IPVS")

    monkeypatch.setattr(cli, "open_kernel_backend", refuse)
    err = io.StringIO()
    status = main(["-Ln"], stdout=io.StringIO(), stderr=err, prog="ipvsadm", env={})
    assert status == 2
    assert err.getvalue().startswith("Can't initialize ipvs: Protocol not available\n")


def test_help_version_and_argument_errors_need_no_backend(monkeypatch):
    monkeypatch.setattr(cli, "open_kernel_backend", lambda: pytest.fail("opened the kernel"))
    for argv, status in ((["-h"], 0), (["-v"], 0), (["-L", "-x", "1"], 2), (["-n"], 255)):
        assert main(argv, stdout=io.StringIO(), stderr=io.StringIO(), env={}) == status


def test_importing_the_cli_does_not_import_pyroute2():
    code = ("import sys, piranha.ipvsadm.main as m; "
            "m.main(['-h'], stdout=__import__('io').StringIO()); "
            "print(sorted(n for n in sys.modules if n.startswith(('pyroute2', 'click'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
