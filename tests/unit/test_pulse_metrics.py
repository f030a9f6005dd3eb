"""pulse's Prometheus families: keepalived's state numbers, counts by reason and state, and
promtool's verdict on the text."""

from __future__ import annotations

import shutil
import subprocess

from prometheus_client.parser import text_string_to_metric_families

from piranha.director.counters import PulseCounters
from piranha.director.metrics import KEEPALIVED_STATE, Sample, families
from piranha.heartbeat.events import DirectorState
from piranha.heartbeat.packet import Reason
from piranha.metrics import render


def sample(state: DirectorState, counters: PulseCounters) -> Sample:
    c = counters
    return Sample(state, True, c.started, c.heartbeats_sent, c.heartbeats_received,
                  dict(c.rejected), dict(c.transitions), c.lvsd_exits, c.partner_seen, True, True)


def values(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def test_states_are_keepalived_numbers():
    assert [KEEPALIVED_STATE[s] for s in (DirectorState.INIT, DirectorState.STANDBY,
                                          DirectorState.ACTIVE, DirectorState.BLOCKED)] \
        == [0, 1, 2, 3]
    assert set(KEEPALIVED_STATE) == set(DirectorState)


def test_counts_by_reason_and_state_with_every_series_present():
    c = PulseCounters(started=100.0)
    c.sent(), c.sent(), c.heard(123.5), c.reject(Reason.BAD_MAC), c.reject(Reason.BAD_MAC)
    c.entered(DirectorState.STANDBY), c.entered(DirectorState.ACTIVE), c.lvsd_exited()
    got = values(render(families(sample(DirectorState.ACTIVE, c))))
    assert got[("piranha_pulse_state", frozenset())] == 2
    assert got[("piranha_pulse_heartbeats_sent_total", frozenset())] == 2
    assert got[("piranha_pulse_partner_last_seen_timestamp_seconds", frozenset())] == 123.5
    rejected = {dict(k[1])["reason"]: v for k, v in got.items()
                if k[0] == "piranha_pulse_heartbeats_rejected_total"}
    assert rejected["bad_mac"] == 2 and rejected["replayed"] == 0
    assert set(rejected) == {r.name.lower() for r in Reason}  # zeros too: rate() needs them
    assert got[("piranha_pulse_transitions_total", frozenset({("state", "active")}))] == 1
    assert got[("piranha_pulse_lvsd_exits_total", frozenset())] == 1
    assert c.generation == 8  # every count moved the generation the loop publishes on


def test_promtool_accepts_pulse_metrics():
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: `make bootstrap` installs Debian's prometheus"
    text = render(families(sample(DirectorState.STANDBY, PulseCounters())))
    proc = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
