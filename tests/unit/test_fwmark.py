"""``piranha fwmark-rules``: rules derived from lvs.cf (golden nft and iptables output), the
passive-port option, warnings, and ``--apply`` against a fake ``subprocess.run``."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from piranha import firewall, fwmark
from piranha.cli import admin
from piranha.config import loads

MIXED = """\
primary = 198.51.100.1
network = nat
virtual ftp {
    active = 1
    address = 198.51.100.10 eth0:1
    fwmark = 21
    port = 21
    persistent = 300
    server ftp1 {
        address = 10.200.0.11
        active = 1
    }
    server ftp2 {
        address = 10.200.0.12
        active = 1
    }
    server ftp3 {
        address = 10.200.0.13
        active = 0
    }
}
virtual web {
    active = 1
    address = 198.51.100.20 eth0:2
    fwmark = 80
    port = 80
    persistent = 600
    pmask = 255.255.255.0
    server w1 {
        address = 10.200.0.11
        active = 1
    }
}
virtual old {
    active = 0
    address = 198.51.100.30 eth0:3
    fwmark = 30
    port = 80
}
virtual plain {
    active = 1
    address = 198.51.100.40 eth0:4
    port = 8080
}
virtual dns6 {
    active = 1
    address = 2001:db8::53 eth0
    fwmark = 53
    port = 53
    protocol = udp
}
"""

NFT = """\
# piranha fwmark-rules: firewall marks of lvs.cf
# FTP passive ports: 10000-20000
table ip piranha
delete table ip piranha
table ip piranha {
\tchain prerouting {
\t\ttype filter hook prerouting priority mangle; policy accept;
\t\tip daddr 198.51.100.10 tcp dport 21 meta mark set 21  # ftp: virtual port
\t\tip daddr 198.51.100.10 tcp dport 10000-20000 meta mark set 21  # ftp: FTP passive ports
\t\tip daddr 198.51.100.20 tcp dport 80 meta mark set 80  # web: virtual port
\t}
\tchain postrouting {
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\tip saddr 10.200.0.11 tcp sport 20 masquerade  # ftp: active FTP data from port 20
\t\tip saddr 10.200.0.12 tcp sport 20 masquerade  # ftp: active FTP data from port 20
\t}
}
table ip6 piranha
delete table ip6 piranha
table ip6 piranha {
\tchain prerouting {
\t\ttype filter hook prerouting priority mangle; policy accept;
\t\tip6 daddr 2001:db8::53 udp dport 53 meta mark set 53  # dns6: virtual port
\t}
}
"""

IPTABLES = """\
iptables -t mangle -N piranha 2>/dev/null || iptables -t mangle -F piranha
iptables -t mangle -C PREROUTING -j piranha 2>/dev/null || iptables -t mangle -A PREROUTING -j piranha
iptables -t mangle -A piranha -p tcp -d 198.51.100.10/32 --dport 21 -j MARK --set-mark 21
iptables -t mangle -A piranha -p tcp -d 198.51.100.10/32 --dport 10000:20000 -j MARK --set-mark 21
iptables -t mangle -A piranha -p tcp -d 198.51.100.20/32 --dport 80 -j MARK --set-mark 80
iptables -t nat -N piranha 2>/dev/null || iptables -t nat -F piranha
iptables -t nat -C POSTROUTING -j piranha 2>/dev/null || iptables -t nat -A POSTROUTING -j piranha
iptables -t nat -A piranha -p tcp -s 10.200.0.11/32 --sport 20 -j MASQUERADE
iptables -t nat -A piranha -p tcp -s 10.200.0.12/32 --sport 20 -j MASQUERADE
ip6tables -t mangle -N piranha 2>/dev/null || ip6tables -t mangle -F piranha
ip6tables -t mangle -C PREROUTING -j piranha 2>/dev/null || ip6tables -t mangle -A PREROUTING -j piranha
ip6tables -t mangle -A piranha -p udp -d 2001:db8::53/128 --dport 53 -j MARK --set-mark 53
"""  # noqa: E501

DIRECT_FTP = """\
primary = 198.51.100.1
network = direct
virtual ftp {
    active = 1
    address = 198.51.100.10 eth0:1
    fwmark = 1
    port = 21
    server ftp1 {
        address = 198.51.100.11
        active = 1
    }
}
"""


def plan_of(text: str, passive: tuple[int, int] = fwmark.DEFAULT_PASSIVE) -> fwmark.Plan:
    return fwmark.plan(loads(text, "lvs.cf").cluster, passive)


def test_nft_script_golden() -> None:
    assert fwmark.nft_script(plan_of(MIXED), "lvs.cf") == NFT


def test_iptables_commands_golden() -> None:
    assert firewall.shell(fwmark.iptables_steps(plan_of(MIXED))) == IPTABLES


def test_passive_range_is_used_in_both_syntaxes() -> None:
    p = plan_of(MIXED, (30000, 30100))
    assert "tcp dport 30000-30100 meta mark set 21" in fwmark.nft_script(p, "x")
    assert "--dport 30000:30100 -j MARK" in firewall.shell(fwmark.iptables_steps(p))


def test_direct_routing_ftp_gets_marks_but_no_masquerade_and_a_persistence_warning() -> None:
    p = plan_of(DIRECT_FTP)
    assert p.rules == (
        fwmark.Mark("ftp", p.rules[0].vip, fwmark.ServiceProtocol.TCP, 21, 21, 1, "virtual port"),
        fwmark.Mark("ftp", p.rules[0].vip, fwmark.ServiceProtocol.TCP, 10000, 20000, 1,
                    "FTP passive ports"))
    assert p.warnings == ("virtual ftp: FTP with a firewall mark but no 'persistent': a data "
                          "connection may reach another real server",)
    assert "postrouting" not in fwmark.nft_script(p, "x")
    assert " nat " not in firewall.shell(fwmark.iptables_steps(p))


def test_no_fwmark_virtual_still_clears_piranhas_tables() -> None:
    p = plan_of("primary = 198.51.100.1\nvirtual w {\n active = 1\n"
                " address = 198.51.100.10 eth0:1\n port = 80\n}\n")
    assert p.rules == ()
    assert fwmark.nft_script(p, "f").splitlines()[2:] == [
        "table ip piranha", "delete table ip piranha",
        "table ip6 piranha", "delete table ip6 piranha"]
    assert firewall.shell(fwmark.iptables_steps(p)).splitlines() == [
        "iptables -t mangle -N piranha 2>/dev/null || iptables -t mangle -F piranha",
        "iptables -t mangle -C PREROUTING -j piranha 2>/dev/null || "
        "iptables -t mangle -A PREROUTING -j piranha"]


@pytest.mark.parametrize(("text", "expected"), [
    ("10000:20000", (10000, 20000)), ("1024-65535", (1024, 65535)), ("21:21", (21, 21))])
def test_parse_range(text: str, expected: tuple[int, int]) -> None:
    assert fwmark.parse_range(text) == expected


@pytest.mark.parametrize("text", ["", "10000", "20000:10000", "0:10", "1:65536", "a:b", "1:2:3"])
def test_parse_range_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"^expected LOW:HIGH with 1 <= LOW <= HIGH <= 65535"):
        fwmark.parse_range(text)


# ---- the command ----------------------------------------------------------------------------

@pytest.fixture
def cf(tmp_path: Path) -> Path:
    path = tmp_path / "lvs.cf"
    path.write_text(MIXED)
    return path


class FakeRun:
    """Stands in for subprocess.run: records calls; ``fail`` maps argv[:4] to (code, stderr)."""

    def __init__(self, fail: dict[tuple[str, ...], tuple[int, str]] | None = None,
                 missing: bool = False) -> None:
        self.calls: list[tuple[list[str], str | None]] = []
        self.fail, self.missing = fail or {}, missing

    def __call__(self, argv: list[str], input: str | None = None, **kw: Any) -> Any:
        self.calls.append((argv, input))
        if self.missing:
            raise FileNotFoundError(argv[0])
        code, err = self.fail.get(tuple(argv[:5]), (0, ""))
        return subprocess.CompletedProcess(argv, code, "", err)


def invoke(monkeypatch: pytest.MonkeyPatch, run: FakeRun, *args: str) -> Any:
    monkeypatch.setattr(subprocess, "run", run)
    return CliRunner().invoke(admin.cli, ["fwmark-rules", *args])


def test_prints_nft_by_default_and_runs_nothing(monkeypatch: pytest.MonkeyPatch,
                                                cf: Path) -> None:
    run = FakeRun()
    result = invoke(monkeypatch, run, "-c", str(cf))
    assert result.exit_code == 0
    assert result.output == NFT.replace("marks of lvs.cf", f"marks of {cf}")
    assert run.calls == []


def test_apply_nft_feeds_the_script_to_nft(monkeypatch: pytest.MonkeyPatch, cf: Path) -> None:
    run = FakeRun()
    result = invoke(monkeypatch, run, "-c", str(cf), "--apply")
    assert result.exit_code == 0, result.output
    assert run.calls == [(["nft", "-f", "-"], NFT.replace("marks of lvs.cf", f"marks of {cf}"))]
    assert result.output == "piranha: nft: 6 rules in tables ip/ip6 piranha\n"


def test_apply_nft_failure_shows_nfts_message(monkeypatch: pytest.MonkeyPatch, cf: Path) -> None:
    run = FakeRun({("nft", "-f", "-"): (1, "Error: Could not process rule: No such file\n")})
    result = invoke(monkeypatch, run, "-c", str(cf), "--apply")
    assert result.exit_code == 1
    assert result.output == ("piranha: nft -f - failed (exit 1):\n"
                             "Error: Could not process rule: No such file\n")


def test_apply_without_the_tool_says_what_to_install(monkeypatch: pytest.MonkeyPatch,
                                                     cf: Path) -> None:
    result = invoke(monkeypatch, FakeRun(missing=True), "-c", str(cf), "--apply")
    assert result.exit_code == 1
    assert result.output == "piranha: cannot run nft: command not found (install nftables)\n"
    result = invoke(monkeypatch, FakeRun(missing=True), "-c", str(cf), "--apply",
                    "--backend", "iptables")
    assert result.output.splitlines()[-1] == (
        "piranha: cannot run iptables: command not found (install iptables)")


def test_apply_iptables_runs_the_fallback_only_when_needed(monkeypatch: pytest.MonkeyPatch,
                                                           cf: Path) -> None:
    # the mangle chain exists already (-N fails: flush it); PREROUTING lacks the jump (-C fails)
    run = FakeRun({("iptables", "-t", "mangle", "-N", "piranha"): (1, "Chain already exists"),
                   ("iptables", "-t", "mangle", "-C", "PREROUTING"): (1, "Bad rule")})
    result = invoke(monkeypatch, run, "-c", str(cf), "--apply", "--backend", "iptables")
    assert result.exit_code == 0, result.output
    ran = [" ".join(argv) for argv, _ in run.calls]
    assert ran[:5] == ["iptables -t mangle -N piranha", "iptables -t mangle -F piranha",
                       "iptables -t mangle -C PREROUTING -j piranha",
                       "iptables -t mangle -A PREROUTING -j piranha",
                       "iptables -t mangle -A piranha -p tcp -d 198.51.100.10/32 --dport 21 -j "
                       "MARK --set-mark 21"]
    assert ran[5:7] == ["iptables -t mangle -A piranha -p tcp -d 198.51.100.10/32 --dport "
                        "10000:20000 -j MARK --set-mark 21",
                        "iptables -t mangle -A piranha -p tcp -d 198.51.100.20/32 --dport 80 -j "
                        "MARK --set-mark 80"]
    assert ran[7] == "iptables -t nat -N piranha"  # succeeded: no flush
    assert ran[8] == "iptables -t nat -C POSTROUTING -j piranha"  # jump present: no -A
    assert len(ran) == 14
    assert result.output.splitlines()[0] == (
        "piranha: iptables -t mangle -N piranha 2>/dev/null || iptables -t mangle -F piranha")


def test_apply_iptables_stops_at_the_first_real_failure(monkeypatch: pytest.MonkeyPatch,
                                                        cf: Path) -> None:
    run = FakeRun({("iptables", "-t", "mangle", "-A", "piranha"): (2, "iptables: No chain\n")})
    result = invoke(monkeypatch, run, "-c", str(cf), "--apply", "--backend", "iptables")
    assert result.exit_code == 1
    assert result.output.splitlines()[-2:] == [
        "piranha: iptables -t mangle -A piranha -p tcp -d 198.51.100.10/32 --dport 21 -j MARK "
        "--set-mark 21 failed (exit 2):", "iptables: No chain"]
    assert len(run.calls) == 3


def test_bad_passive_ports_and_bad_config(monkeypatch: pytest.MonkeyPatch, cf: Path,
                                          tmp_path: Path) -> None:
    result = invoke(monkeypatch, FakeRun(), "-c", str(cf), "--passive-ports", "20000:10000")
    assert result.exit_code == 2
    assert ("Invalid value for '--passive-ports': expected LOW:HIGH with 1 <= LOW <= HIGH <= "
            "65535, found '20000:10000'") in result.output
    bad = tmp_path / "bad.cf"
    bad.write_text("primary = 198.51.100.1\nvirtual w {\n active = 1\n scheduler = wrrr\n}\n")
    result = invoke(monkeypatch, FakeRun(), "-c", str(bad))
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"{bad}:2:1: error: virtual 'w' is active but has no address (expected 'address = IP "
        "DEVICE')",
        f"{bad}:4:14: error: scheduler: expected one of rr, wrr, lc, wlc, lblc, lblcr, dh, sh, "
        "sed, nq, fo, ovf, mh; found 'wrrr'",
        "2 errors; configuration not loaded"]


def test_warning_goes_to_stderr(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "lvs.cf"
    path.write_text(DIRECT_FTP)
    monkeypatch.setattr(subprocess, "run", FakeRun())
    result = CliRunner().invoke(admin.cli, ["fwmark-rules", "-c", str(path)])
    assert result.exit_code == 0
    assert result.stderr == ("piranha: warning: virtual ftp: FTP with a firewall mark but no "
                             "'persistent': a data connection may reach another real server\n")
    assert "meta mark set 1" in result.stdout
