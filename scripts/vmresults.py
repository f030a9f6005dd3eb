#!/usr/bin/env python3
"""Judge the test tiers from the files pytest left behind (standard library only).

A tier's results folder holds ``junit.xml`` (pytest's ``--junitxml``) and ``exitcode`` (pytest's
exit status). The kernel tier's folder is written from inside the VM, whose own exit status
cannot be trusted, so the files are the only source of truth.

    vmresults.py check NAME DIR [--allow-empty]    one tier: print its line, exit 0 if it passed
    vmresults.py summary NAME:DIR[:allow-empty]...  every tier's line, then the total line
                                                    ``N passed, N failed``; exit 0 if all passed

A tier passes when its files exist, no test failed or errored, pytest exited 0 and at least one
test ran. With ``allow-empty``, pytest's exit 5 ("no tests collected") is accepted (with a note).
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

#: pytest's exit status when it collected no test
EXIT_NO_TESTS = 5


class ResultsError(Exception):
    """A results file is missing or unreadable."""


@dataclass(frozen=True)
class Counts:
    passed: int = 0
    failed: int = 0  # failures and errors
    skipped: int = 0

    @property
    def ran(self) -> int:
        return self.passed + self.failed

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            self.passed + other.passed, self.failed + other.failed, self.skipped + other.skipped
        )


@dataclass(frozen=True)
class Verdict:
    tier: str
    ok: bool
    line: str
    counts: Counts


def parse_junit(path: Path) -> Counts:
    """Count the test cases of a pytest junit report, by outcome."""
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        raise ResultsError(f"{path} is missing") from None
    except (ET.ParseError, OSError) as exc:
        raise ResultsError(f"{path} is unreadable: {exc}") from None
    if root.tag not in ("testsuites", "testsuite"):
        raise ResultsError(f"{path} is not a junit report (root element <{root.tag}>)")
    passed = failed = skipped = 0
    for case in root.iter("testcase"):
        tags = {child.tag for child in case}
        if tags & {"failure", "error"}:
            failed += 1
        elif "skipped" in tags:
            skipped += 1
        else:
            passed += 1
    return Counts(passed, failed, skipped)


def read_exitcode(path: Path) -> int:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        raise ResultsError(f"{path} is missing") from None
    try:
        return int(text)
    except ValueError:
        raise ResultsError(f"{path} does not hold an exit status: {text!r}") from None


def judge(tier: str, results: Path, *, allow_empty: bool = False) -> Verdict:
    """Read one tier's folder and decide whether it passed."""
    try:
        exitcode = read_exitcode(results / "exitcode")
        counts = parse_junit(results / "junit.xml")
    except ResultsError as exc:
        return Verdict(tier, False, f"{tier} tier: NO RESULTS ({exc})", Counts())
    problems: list[str] = []
    notes: list[str] = []
    if counts.failed:
        problems.append("tests failed")
    if exitcode == EXIT_NO_TESTS and allow_empty:
        notes.append("no tests collected (pytest exit 5), accepted for this tier")
    elif exitcode == EXIT_NO_TESTS:
        problems.append("no tests collected (pytest exit 5)")
    elif exitcode != 0:
        problems.append(f"pytest exited {exitcode}")
    if counts.ran == 0 and not allow_empty and exitcode != EXIT_NO_TESTS:
        problems.append("no test ran")
    line = f"{tier} tier: {counts.passed} passed, {counts.failed} failed, {counts.skipped} skipped"
    if problems:
        line += " (FAILED: " + "; ".join(problems) + ")"
    elif notes:
        line += " (note: " + "; ".join(notes) + ")"
    return Verdict(tier, not problems, line, counts)


def total_line(verdicts: list[Verdict]) -> str:
    """``N passed, N failed`` over all tiers; a failed tier counts at least one failure."""
    passed = sum(v.counts.passed for v in verdicts)
    failed = sum(max(v.counts.failed, 0 if v.ok else 1) for v in verdicts)
    return f"{passed} passed, {failed} failed"


def parse_spec(spec: str) -> tuple[str, Path, bool]:
    """``NAME:DIR`` or ``NAME:DIR:allow-empty`` (DIR may itself contain colons)."""
    name, sep, rest = spec.partition(":")
    if not (name and sep and rest):
        raise argparse.ArgumentTypeError(f"bad tier spec {spec!r}: NAME:DIR[:allow-empty]")
    suffix = ":allow-empty"
    if rest.endswith(suffix) and len(rest) > len(suffix):
        return name, Path(rest[: -len(suffix)]), True
    return name, Path(rest), False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="judge one tier")
    check.add_argument("name")
    check.add_argument("dir", type=Path)
    check.add_argument("--allow-empty", action="store_true")
    summary = sub.add_parser("summary", help="judge every tier and print the total line")
    summary.add_argument("tiers", nargs="+", type=parse_spec)
    args = parser.parse_args(argv)

    if args.command == "check":
        verdict = judge(args.name, args.dir, allow_empty=args.allow_empty)
        print(verdict.line)
        return 0 if verdict.ok else 1
    verdicts = [judge(name, path, allow_empty=empty) for name, path, empty in args.tiers]
    for verdict in verdicts:
        print(verdict.line)
    print(total_line(verdicts))
    return 0 if all(v.ok for v in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
