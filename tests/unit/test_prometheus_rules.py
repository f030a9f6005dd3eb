"""The shipped alert rules (contrib/prometheus/) pass promtool's check and its rule unit tests,
which evaluate them on synthetic series with Prometheus's own engine."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

RULES = Path(__file__).resolve().parents[2] / "contrib" / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    assert tool, "promtool is missing: `make bootstrap` installs Debian's prometheus"
    return subprocess.run([tool, *args], cwd=RULES, capture_output=True, text=True, timeout=120)


def test_the_rules_are_valid():
    proc = promtool("check", "rules", "piranha-rules.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 13 rules found" in proc.stdout


def test_the_alerts_fire_when_they_should_and_only_then():
    proc = promtool("test", "rules", "piranha-rules.test.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_wrong_expectation_fails(tmp_path):
    """The rule tests can fail: the same file expecting rs2 (drained) to alert does."""
    text = (RULES / "piranha-rules.test.yml").read_text()
    wrong = text.replace("server: rs1", "server: rs2", 1)
    assert wrong != text
    (tmp_path / "piranha-rules.yml").write_text((RULES / "piranha-rules.yml").read_text())
    (tmp_path / "wrong.test.yml").write_text(wrong)
    tool = shutil.which("promtool")
    assert tool
    proc = subprocess.run([tool, "test", "rules", "wrong.test.yml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "FAILED" in proc.stdout + proc.stderr
