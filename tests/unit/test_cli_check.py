"""`piranha check` and the daemons' -t mode: exit codes and exact output."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from piranha import lvs, pulse
from piranha.cli.admin import cli

ROOT = Path(__file__).resolve().parents[2]
BROKEN = """\
primary = 203.0.113.10
# a comment line still counts
virtual www {
     active = 1
     address = 203.0.113.80 eth0:1
     scheduler = wrrr
     server web1 {
         address = 192.168.10.11
         active = 1
         weight = 70000
     }
}
"""


def run_check(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["check", *args])
    return result.exit_code, result.output


def test_sample_config_is_ok() -> None:
    code, out = run_check(str(ROOT / "conf/lvs.cf"))
    assert code == 0
    assert out == (f"{ROOT / 'conf/lvs.cf'}: OK, service = lvs, 2 virtual services (2 active), "
                   "6 active real-server entries, 0 warnings\n")


def test_broken_file_prints_every_error_with_location(tmp_path: Path) -> None:
    path = tmp_path / "lvs.cf"
    path.write_text(BROKEN)
    code, out = run_check(str(path))
    assert code == 1
    assert out.splitlines() == [
        f"{path}:6:18: error: scheduler: expected one of rr, wrr, lc, wlc, lblc, lblcr, dh, sh, "
        "sed, nq, fo, ovf, mh; found 'wrrr'",
        f"{path}:10:19: error: weight: expected an integer 0..65535, found 70000",
        "2 errors; configuration not loaded",
    ]


def test_warnings_are_printed_but_the_file_is_ok(tmp_path: Path) -> None:
    path = tmp_path / "lvs.cf"
    path.write_text("primary = 203.0.113.10\nsync = 1\n")
    code, out = run_check(str(path))
    assert code == 0
    assert out.splitlines() == [
        f"{path}:1:1: warning: no active virtual service: pulse and lvsd will have nothing to run",
        f"{path}:2:1: warning: 'sync' is a legacy global keyword; ignored",
        f"{path}: OK, service = lvs, 0 virtual services (0 active), 0 active real-server "
        "entries, 2 warnings",
    ]


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    code, out = run_check(str(tmp_path / "nope.cf"))
    assert code == 1
    assert out == (f"{tmp_path / 'nope.cf'}:0:0: error: cannot read file: No such file or "
                   "directory\n1 error; configuration not loaded\n")


def test_lvsd_test_start_loads_the_config(capsys) -> None:
    # pulse -t also needs the config's interfaces: tests/netns/test_pulse_failover.py
    assert lvs.main(["-t", "-c", str(ROOT / "conf/lvs.cf")]) == 0
    out = capsys.readouterr().out
    assert "lvs: virtual service https: 3 active real servers" in out


def test_lvsd_test_start_prints_every_step_lvsd_takes_in_its_order(tmp_path: Path,
                                                                    capsys) -> None:
    path = tmp_path / "lvs.cf"
    path.write_text("primary = 10.0.0.1\nservice = lvs\ntcp_timeout = 900\n"
                    "udp_timeout = 300\nvirtual www {\n     active = 1\n"
                    "     address = 10.0.0.80 eth0:1\n     persistent = 60\n"
                    "     pmask = 255.255.255.0\n     server a {\n"
                    "         address = 10.0.1.1\n         active = 1\n     }\n}\n")
    assert lvs.main(["-t", "-c", str(path)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "lvs: virtual service www: 1 active real servers",
        "lvs: would run: ipvsadm --set 900 0 300",  # the timeouts first, as lvsd sets them
        "lvs: would run: ipvsadm -A -t 10.0.0.80:80 -s wlc -p 60 -M 255.255.255.0",
        "lvs: would run: ipvsadm -a -t 10.0.0.80:80 -r 10.0.1.1:80 -m -w 1"]


def test_daemons_refuse_a_broken_config(tmp_path: Path, capsys) -> None:
    path = tmp_path / "lvs.cf"
    path.write_text(BROKEN)
    for main in (pulse.main, lvs.main):
        try:
            main(["-t", "-c", str(path)])
        except SystemExit as exc:
            assert exc.code == 1
        else:
            raise AssertionError("a broken config must exit 1")
    err = capsys.readouterr().err
    assert err.count("2 errors; configuration not loaded") == 2
