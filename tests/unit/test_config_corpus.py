"""The invalid lvs.cf corpus: every ``tests/data/invalid/NAME.cf`` is rejected, and
``ConfigErrors.report()`` is exactly ``NAME.err`` (the file name in the messages is ``NAME.cf``).

To add a case, write ``NAME.cf`` (bytes matter: CRLF and CR-only files are written as such) and
``NAME.err``, then read the message: it must point at the offending token and say what was
expected and what was found.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from piranha.config import loads
from piranha.errors import ConfigErrors
from testkit.resolver import FakeResolver

INVALID = Path(__file__).resolve().parents[1] / "data" / "invalid"
CASES = sorted(INVALID.glob("*.cf"))
_LOCATION = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?:error|warning): .+$")


def report_of(path: Path) -> str:
    with pytest.raises(ConfigErrors) as caught:
        loads(path.read_bytes(), path.name, FakeResolver())
    return caught.value.report()


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_invalid_file_gives_exactly_the_expected_report(path: Path) -> None:
    expected = path.with_suffix(".err").read_text(encoding="utf-8")
    assert report_of(path) + "\n" == expected


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_every_message_is_located_inside_the_file(path: Path) -> None:
    data = path.read_bytes()
    # \r\n, \n and a lone \r each end a line (README: "lvs.cf: what differs")
    physical_lines = len(re.findall(rb"\r\n|\r|\n", data)) + (not re.search(rb"[\r\n]\Z", data))
    *messages, summary = report_of(path).split("\n")
    assert re.fullmatch(r"\d+ errors?; configuration not loaded", summary)
    assert messages
    for message in messages:
        match = _LOCATION.match(message)
        assert match, message
        assert match["file"] == path.name
        assert 0 <= int(match["line"]) <= physical_lines
        if int(match["line"]) > 0:
            assert int(match["col"]) >= 1


def test_corpus_is_big_enough_and_complete() -> None:
    assert len(CASES) >= 40
    stems = {p.stem for p in CASES}
    assert {p.stem for p in INVALID.glob("*.err")} == stems
    families = {stem.split("_")[0] for stem in stems}
    assert {"lex", "struct", "conv", "sem", "kw", "multi", "empty"} <= families


def test_multi_error_files_report_several_errors() -> None:
    multi = [p for p in CASES if p.stem.startswith("multi_")]
    assert len(multi) >= 5
    for path in multi:
        summary = report_of(path).rsplit("\n", 1)[1]
        assert int(summary.split()[0]) >= 4, path.name


def test_line_ends_do_not_change_the_report() -> None:
    lf = report_of(INVALID / "multi_globals.cf").replace("multi_globals.cf", "F")
    crlf = report_of(INVALID / "multi_crlf.cf").replace("multi_crlf.cf", "F")
    assert lf == crlf
    cr = report_of(INVALID / "multi_cr_only.cf").replace("multi_cr_only.cf", "F")
    assert cr == report_of(INVALID / "multi_virtual.cf").replace("multi_virtual.cf", "F")
    assert b"\r\n" in (INVALID / "multi_crlf.cf").read_bytes()
    assert b"\n" not in (INVALID / "multi_cr_only.cf").read_bytes()
