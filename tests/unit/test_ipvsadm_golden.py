"""piranha-ipvsadm against outputs captured from the real ipvsadm 1.31 (tests/data/ipvsadm).

Each case runs ``main()`` in-process over the stub backend holding what the real run started
with, and compares stdout, stderr and the exit status byte for byte, plus the table left
behind (as ``-Sn`` prints it). The system resolver is used: /etc/services is the same file
the capture saw, and the captured addresses have no host names.
"""

from __future__ import annotations

import io
import json
from ipaddress import ip_address
from pathlib import Path

import pytest

from piranha.ipvs.types import Proto, Service, ServiceKey, Table
from piranha.ipvsadm.main import main
from testkit.ipvs import StubIpvs

DATA = json.loads(
    (Path(__file__).parents[1] / "data" / "ipvsadm" / "real-ipvsadm-1.31.json").read_text())

#: argv cases where piranha-ipvsadm knowingly differs (see piranha/ipvsadm/ops.py)
KNOWN_DIFFERENCES = {
    ("-A", "-t", "198.51.100.10:80", "-p", "-M", "24"): "non-contiguous IPv4 mask refused",
}
PROBE_KEY = ServiceKey.inet(Proto.TCP, ip_address("198.51.100.10"), 81)


def run(argv, backend, stdin="", tmp_path=None):
    """main() in-process; (stdout, stderr, status)."""
    out, err = io.StringIO(), io.StringIO()
    conn = tmp_path / "ip_vs_conn" if tmp_path else Path("/nonexistent")
    if tmp_path:
        conn.write_text("Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires "
                        "PEName PEData\n")
    status = main(argv, backend=backend, stdin=io.StringIO(stdin), stdout=out, stderr=err,
                  prog="ipvsadm", env={}, conn_path=str(conn))
    return out.getvalue(), err.getvalue(), status


def saved(backend) -> str:
    """The table as ``-Sn`` prints it."""
    return run(["-Sn"], backend)[0]


def case_id(case) -> str:
    return " ".join(case["argv"]) or "(no args)"


@pytest.mark.parametrize("case", DATA["argv_cases"], ids=case_id)
def test_argv_case_matches_real_ipvsadm(case, tmp_path):
    if tuple(case["argv"]) in KNOWN_DIFFERENCES:
        pytest.skip(KNOWN_DIFFERENCES[tuple(case["argv"])])
    backend = StubIpvs(Table((Service(PROBE_KEY, "wlc"),), {PROBE_KEY: ()}))
    got = run(case["argv"], backend, tmp_path=tmp_path)
    assert got == (case["stdout"], case["stderr"], case["rc"])
    assert saved(backend) == case["after"]


@pytest.fixture(scope="module")
def restored():
    backend = StubIpvs()
    got = run(["-R"], backend, DATA["script"])
    return backend, got


def test_restore_of_the_reference_script(restored):
    result = DATA["script_result"]
    assert restored[1] == (result["stdout"], result["stderr"], result["rc"])


@pytest.mark.parametrize("argv", [k for k in DATA["listings"] if "nosort" not in k])
def test_listing_matches_real_ipvsadm(argv, restored, tmp_path):
    want = DATA["listings"][argv]
    assert run(argv.split(), restored[0], tmp_path=tmp_path) == \
        (want["stdout"], want["stderr"], want["rc"])


@pytest.mark.parametrize("name", list(DATA["restore_cases"]))
def test_restore_semantics_match_real_ipvsadm(name):
    case = DATA["restore_cases"][name]
    backend = StubIpvs()
    assert run(["-R"], backend, case["input"]) == (case["stdout"], case["stderr"], case["rc"])
    assert saved(backend) == case["after"]
