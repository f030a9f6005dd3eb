"""scripts/vmresults.py: how the harness judges a tier from junit.xml + exitcode."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "scripts" / "vmresults.py"
_spec = importlib.util.spec_from_file_location("vmresults", _PATH)
assert _spec is not None and _spec.loader is not None
vmresults = importlib.util.module_from_spec(_spec)
sys.modules["vmresults"] = vmresults  # dataclasses look their module up by name
_spec.loader.exec_module(vmresults)

Counts = vmresults.Counts


def junit(*cases: str, wrapper: str = "testsuites") -> str:
    body = "".join(
        f'<testcase classname="t" name="c{i}">{c}</testcase>' for i, c in enumerate(cases)
    )
    suite = f'<testsuite name="pytest" tests="{len(cases)}">{body}</testsuite>'
    return f"<{wrapper}>{suite}</{wrapper}>" if wrapper == "testsuites" else suite


def tier_dir(tmp_path: Path, xml: str | None, exitcode: str | None) -> Path:
    d = tmp_path / "results"
    d.mkdir()
    if xml is not None:
        (d / "junit.xml").write_text(xml)
    if exitcode is not None:
        (d / "exitcode").write_text(exitcode + "\n")
    return d


PASS = ""
FAIL = '<failure message="boom">tb</failure>'
ERROR = '<error message="collection failure">tb</error>'
SKIP = '<skipped type="pytest.skip" message="why">why</skipped>'
XFAIL = '<skipped type="pytest.xfail" message="">x</skipped>'


def test_parse_junit_counts_each_outcome(tmp_path):
    path = tmp_path / "junit.xml"
    path.write_text(junit(PASS, PASS, FAIL, ERROR, SKIP, XFAIL, "<system-out>x</system-out>"))
    assert vmresults.parse_junit(path) == Counts(passed=3, failed=2, skipped=2)


def test_parse_junit_accepts_a_bare_testsuite_root(tmp_path):
    path = tmp_path / "junit.xml"
    path.write_text(junit(PASS, SKIP, wrapper="testsuite"))
    assert vmresults.parse_junit(path) == Counts(passed=1, failed=0, skipped=1)


def test_failure_and_teardown_error_on_one_case_count_once(tmp_path):
    path = tmp_path / "junit.xml"
    path.write_text(junit(FAIL + ERROR))
    assert vmresults.parse_junit(path) == Counts(passed=0, failed=1, skipped=0)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "is missing"),
        ("<testsuites><testsuite>", "unreadable"),
        ("<html></html>", "not a junit report"),
    ],
)
def test_parse_junit_rejects_missing_or_bad_files(tmp_path, content, message):
    path = tmp_path / "junit.xml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(vmresults.ResultsError, match=message):
        vmresults.parse_junit(path)


def test_judge_passing_tier(tmp_path):
    verdict = vmresults.judge("kernel", tier_dir(tmp_path, junit(PASS, PASS, SKIP), "0"))
    assert verdict.ok
    assert verdict.line == "kernel tier: 2 passed, 0 failed, 1 skipped"


@pytest.mark.parametrize(
    ("xml", "exitcode", "reason"),
    [
        (None, "0", "NO RESULTS"),
        (junit(PASS), None, "NO RESULTS"),
        (junit(PASS), "garbage", "NO RESULTS"),
        (junit(PASS, FAIL), "1", "FAILED: tests failed; pytest exited 1"),
        (junit(PASS), "2", "FAILED: pytest exited 2"),
        (junit(), "5", "FAILED: no tests collected (pytest exit 5)"),
        (junit(SKIP), "0", "FAILED: no test ran"),
    ],
)
def test_judge_failing_tier(tmp_path, xml, exitcode, reason):
    verdict = vmresults.judge("kernel", tier_dir(tmp_path, xml, exitcode))
    assert not verdict.ok
    assert reason in verdict.line
    assert verdict.line.startswith("kernel tier: ")


def test_judge_allow_empty_accepts_no_tests_with_a_note(tmp_path):
    verdict = vmresults.judge("host", tier_dir(tmp_path, junit(), "5"), allow_empty=True)
    assert verdict.ok
    assert verdict.line.startswith("host tier: 0 passed, 0 failed, 0 skipped (note: ")


def test_judge_allow_empty_still_fails_on_failures(tmp_path):
    verdict = vmresults.judge("host", tier_dir(tmp_path, junit(FAIL), "1"), allow_empty=True)
    assert not verdict.ok


def test_total_line_counts_a_broken_tier_as_a_failure():
    ok = vmresults.Verdict("host", True, "", Counts(passed=10, failed=0, skipped=1))
    broken = vmresults.Verdict("kernel", False, "", Counts())
    failing = vmresults.Verdict("kernel", False, "", Counts(passed=1, failed=3))
    assert vmresults.total_line([ok]) == "10 passed, 0 failed"
    assert vmresults.total_line([ok, broken]) == "10 passed, 1 failed"
    assert vmresults.total_line([ok, failing]) == "11 passed, 3 failed"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("host:build/host", ("host", Path("build/host"), False)),
        ("host:build/host:allow-empty", ("host", Path("build/host"), True)),
        ("k:/a:b/c", ("k", Path("/a:b/c"), False)),
    ],
)
def test_parse_spec(spec, expected):
    assert vmresults.parse_spec(spec) == expected


@pytest.mark.parametrize("spec", ["host", "host:", ":dir"])
def test_parse_spec_rejects_incomplete_specs(spec):
    with pytest.raises(Exception, match="bad tier spec"):
        vmresults.parse_spec(spec)


def test_summary_prints_tiers_then_the_total_as_last_line(tmp_path, capsys):
    host = tmp_path / "host"
    kernel = tmp_path / "kernel"
    for d, xml, rc in ((host, junit(PASS, SKIP), "0"), (kernel, junit(PASS, FAIL), "1")):
        d.mkdir()
        (d / "junit.xml").write_text(xml)
        (d / "exitcode").write_text(rc)
    status = vmresults.main(["summary", f"host:{host}:allow-empty", f"kernel:{kernel}"])
    lines = capsys.readouterr().out.splitlines()
    assert status == 1
    assert lines == [
        "host tier: 1 passed, 0 failed, 1 skipped",
        "kernel tier: 1 passed, 1 failed, 0 skipped (FAILED: tests failed; pytest exited 1)",
        "2 passed, 1 failed",
    ]


def test_check_exit_status(tmp_path, capsys):
    d = tier_dir(tmp_path, junit(PASS), "0")
    assert vmresults.main(["check", "kernel", str(d)]) == 0
    assert capsys.readouterr().out == "kernel tier: 1 passed, 0 failed, 0 skipped\n"
    (d / "exitcode").unlink()
    assert vmresults.main(["check", "kernel", str(d)]) == 1
