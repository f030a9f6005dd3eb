"""A real Prometheus (Debian's package) scrapes pulse and lvsd on two directors in namespaces
and evaluates the shipped alert rules (their ``for:`` waits shortened): a real server dies and
``PiranhaRealServerDown`` fires; the primary dies and ``PiranhaPulseDown`` fires while the
backup's state series goes from 1 (backup) to 2 (master). Every query of the shipped Grafana
dashboard must return data. lvsd runs on its in-memory table
here (no IPVS on the host); the checks, heartbeats and failover are real."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.netlab import Lan, NameServer, Pulse, running
from lab.patience import wait_for
from lab.prometheus import Prometheus, quick_rules

ROOT = Path(__file__).resolve().parents[2]
CONFIG = """\
serial_no = 1
primary = 198.51.100.1
service = lvs
backup_active = 1
backup = 198.51.100.2
heartbeat = 1
heartbeat_port = 5390
keepalive = 0.2
deadtime = 0.6
network = direct
pulse_metrics = 0.0.0.0:9748
lvsd_metrics = 0.0.0.0:9747
virtual web {
     active = 1
     address = 198.51.100.80 eth0:1
     port = 80
     timeout = 1
     reentry = 1
     server rs1 {
         address = 198.51.100.100
         active = 1
     }
     server rs2 {
         address = 198.51.100.100
         port = 8081
         active = 1
     }
}
"""


@pytest.fixture
def lan() -> Iterator[Lan]:
    net = Lan(f"pm{os.getpid() % 10000}{uuid.uuid4().hex[:4]}")
    try:
        net.create()
        net.add("d1", "198.51.100.1/24", "02:00:00:00:00:01")
        net.add("d2", "198.51.100.2/24", "02:00:00:00:00:02")
        net.add("mon", "198.51.100.100/24", "02:00:00:00:00:64")
        yield net
    finally:
        net.delete()


def firing(prom: Prometheus, alert: str, **labels: str) -> bool:
    return any(a["alertname"] == alert and labels.items() <= a.items() for a in prom.firing())


def value(prom: Prometheus, expr: str) -> float | None:
    result = prom.query(expr)
    return float(result[0]["value"][1]) if len(result) == 1 else None


def test_a_real_prometheus_sees_the_alerts_fire_and_the_failover_in_the_series(
        lan: Lan, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(quick_rules((ROOT / "contrib/prometheus/piranha-rules.yml").read_text()))
    # the real servers, on the monitor's box
    rs1 = NameServer(lan["mon"].ns, "rs1", port=80)
    rs2 = NameServer(lan["mon"].ns, "rs2", port=8081)
    fake = ["--backend=fake"]
    p1 = Pulse(lan["d1"], tmp_path, "d1", CONFIG, [], fake)
    p2 = Pulse(lan["d2"], tmp_path, "d2", CONFIG, [], fake)
    prom = Prometheus(lan["mon"].ns, tmp_path / "prom",
                      {"piranha-pulse": ["198.51.100.1:9748", "198.51.100.2:9748"],
                       "piranha-lvsd": ["198.51.100.1:9747", "198.51.100.2:9747"]}, [rules])
    try:
        with running(p1, p2, diagnose=prom.text):
            p1.start()
            p2.start()
            d1 = 'instance="198.51.100.1:9748"'
            d2 = 'instance="198.51.100.2:9748"'
            wait_for("Prometheus scraping d1 master, d2 backup",
                     lambda: (value(prom, f"piranha_pulse_state{{{d1}}}"),
                              value(prom, f"piranha_pulse_state{{{d2}}}")) == (2, 1), 60,
                     step=0.5, show=lambda: prom.query("piranha_pulse_state"))
            rs1_up = 'piranha_realserver_up{instance="198.51.100.1:9747",server="rs1"}'
            wait_for("rs1 up in Prometheus", lambda: value(prom, rs1_up) == 1, 60, step=0.5,
                     show=lambda: prom.query("piranha_realserver_up"))
            assert not firing(prom, "PiranhaRealServerDown")

            rs1.close()
            wait_for("PiranhaRealServerDown firing for rs1",
                     lambda: firing(prom, "PiranhaRealServerDown", server="rs1",
                                    instance="198.51.100.1:9747"), 60, step=0.5,
                     show=prom.firing)
            assert not firing(prom, "PiranhaVirtualServerHasNoRealServer")  # rs2 serves
            # every query of the shipped Grafana dashboard is valid PromQL with data behind it
            # (here, after a failed check: failure series exist once a check failed)
            dashboard = json.loads((ROOT / "contrib/grafana/piranha-dashboard.json").read_text())
            exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
            wait_for("data behind every dashboard query",
                     lambda: all(prom.query(e) for e in exprs), 60, step=1,
                     show=lambda: [e for e in exprs if not prom.query(e)])

            p1.crash()
            wait_for("PiranhaPulseDown firing for d1",
                     lambda: firing(prom, "PiranhaPulseDown", instance="198.51.100.1:9748"),
                     60, step=0.5, show=prom.firing)
            wait_for("d2 master in Prometheus",
                     lambda: value(prom, f"piranha_pulse_state{{{d2}}}") == 2, 60, step=0.5)
            # the series itself holds the transition: backup before, master now
            seen = value(prom, f"min_over_time(piranha_pulse_state{{{d2}}}[10m])")
            assert seen == 1, prom.query(f"piranha_pulse_state{{{d2}}}[10m]")
            assert value(prom, f'piranha_pulse_transitions_total{{{d2},state="active"}}') == 1
            assert not firing(prom, "PiranhaSplitBrain")
    finally:
        prom.close()
        rs1.close()
        rs2.close()
