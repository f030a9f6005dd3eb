"""piranha-gui's write path: canonical text, atomic replace, backup, mode kept."""

from __future__ import annotations

import os
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from piranha.config import load, render
from piranha.gui import store

SAMPLE = Path(__file__).resolve().parents[2] / "conf" / "lvs.cf"


@pytest.fixture
def cluster():
    return load(str(SAMPLE)).cluster


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_write_keeps_the_previous_file_as_backup_and_the_mode(tmp_path, cluster):
    cf = tmp_path / "lvs.cf"
    old = SAMPLE.read_bytes()
    cf.write_bytes(old)
    cf.chmod(0o640)
    text = render(replace(cluster, serial_no=2))
    store.write(str(cf), text, old)
    assert cf.read_text() == text
    assert (tmp_path / "lvs.cf.bak").read_bytes() == old
    assert mode(cf) == 0o640 and mode(tmp_path / "lvs.cf.bak") == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lvs.cf", "lvs.cf.bak"]


def test_a_file_with_a_heartbeat_key_becomes_root_only(tmp_path, cluster):
    cf = tmp_path / "lvs.cf"
    cf.write_text(render(cluster))
    cf.chmod(0o664)
    text = render(replace(cluster, heartbeat_key="0123456789abcdef0123"))
    store.write(str(cf), text, cf.read_bytes())
    assert mode(cf) == 0o600
    assert mode(tmp_path / "lvs.cf.bak") == 0o664  # the old content had no key


def test_a_new_file_without_backup(tmp_path, cluster):
    cf = tmp_path / "sub" / "lvs.cf"
    store.write(str(cf), render(cluster), None)
    assert mode(cf) == store.NEW_MODE
    assert not (tmp_path / "sub" / "lvs.cf.bak").exists()


def test_write_replaces_by_rename(tmp_path, cluster):
    cf = tmp_path / "lvs.cf"
    cf.write_text(render(cluster))
    before = os.stat(cf).st_ino
    store.write(str(cf), render(replace(cluster, serial_no=9)), cf.read_bytes())
    assert os.stat(cf).st_ino != before  # a new inode: readers never see a half file


def test_failed_write_leaves_the_file_and_no_temporary(tmp_path, cluster, monkeypatch):
    cf = tmp_path / "lvs.cf"
    cf.write_text(render(cluster))

    def broken(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError):
        store.write(str(cf), "garbage\n", cf.read_bytes())
    assert cf.read_text() == render(cluster)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lvs.cf"]


def test_read_loads_or_reports(tmp_path):
    cf = tmp_path / "lvs.cf"
    missing = store.read(str(cf))
    assert missing.data is None and missing.cluster is not None and missing.tag == "none"
    cf.write_text("primary = 10.0.0.1\nbogus = 1\n")
    broken = store.read(str(cf))
    assert broken.cluster is None
    assert [e.message for e in broken.errors] == ["unknown keyword 'bogus' in the global section"]
    cf.write_text("primary = 10.0.0.1\n")
    good = store.read(str(cf))
    assert good.cluster is not None and good.tag == store.tag_of(b"primary = 10.0.0.1\n")
    assert good.tag != broken.tag
