"""`piranha ipvsadm-alias`: piranha-ipvsadm under the name ipvsadm, and back, never clobbering."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from piranha.cli.admin import cli


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["ipvsadm-alias", *args])
    return result.exit_code, result.output


def test_install_reinstall_and_undo(tmp_path: Path) -> None:
    target = tmp_path / "bin" / "piranha-ipvsadm"
    target.parent.mkdir()
    target.write_text("#!/bin/sh\n")
    folder = tmp_path / "sbin"
    link = folder / "ipvsadm"
    assert run("--dir", str(folder), "--target", str(target)) == (
        0, f"piranha: {link} -> {target}\n")
    assert link.resolve() == target
    assert run("--dir", str(folder), "--target", str(target))[0] == 0  # idempotent
    assert run("--undo", "--dir", str(folder)) == (0, f"piranha: removed {link}\n")
    assert not link.exists() and not link.is_symlink()
    assert run("--undo", "--dir", str(folder)) == (0, f"piranha: {link}: no alias installed\n")


def test_a_real_ipvsadm_is_never_replaced_nor_removed(tmp_path: Path) -> None:
    target = tmp_path / "piranha-ipvsadm"
    target.write_text("")
    (tmp_path / "ipvsadm").write_text("the real one")
    code, out = run("--dir", str(tmp_path), "--target", str(target))
    assert code == 1 and "exists and is not piranha's alias" in out
    code, out = run("--undo", "--dir", str(tmp_path))
    assert code == 1 and "is not piranha's alias: left alone" in out
    assert (tmp_path / "ipvsadm").read_text() == "the real one"


def test_a_missing_target_is_refused(tmp_path: Path) -> None:
    code, out = run("--dir", str(tmp_path), "--target", str(tmp_path / "piranha-ipvsadm"))
    assert code == 1 and "no piranha-ipvsadm at" in out
    assert not (tmp_path / "ipvsadm").is_symlink()
