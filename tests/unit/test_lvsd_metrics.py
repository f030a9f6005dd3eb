"""lvsd's Prometheus exposition: names, labels, types, values and escaping, from an engine on
the in-memory table; promtool (Debian's prometheus package) checks the text as Prometheus
would."""

from __future__ import annotations

import shutil
import subprocess

from prometheus_client.parser import text_string_to_metric_families

from piranha.health.types import ServerState
from piranha.ipvs.types import DelDest, DestKey, ServiceKey
from piranha.lvsd.book import Health
from piranha.lvsd.metrics import STATES, endpoint, server_state
from piranha.metrics import escape, number
from testkit.lvsd import VIP, conf, dest, make_lab, server


def scrape(lab) -> str:
    exporter = endpoint()
    exporter.publish(lab.engine)
    return exporter.text().decode()


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float:
    """The one sample of ``name`` whose labels include ``labels``."""
    found = [v for (n, ls), v in samples(text).items()
             if n == name and set(labels.items()) <= ls]
    assert len(found) == 1, (name, labels, found)
    return found[0]


def three_servers():
    lab = make_lab(conf(server("rs1", 1, weight=3) + server("rs2", 2) + server("rs3", 3)))
    lab.report(dest(1), ServerState.UP, 3)
    lab.report(dest(2), ServerState.UP, 1)
    lab.report(dest(3), ServerState.DOWN, None)
    return lab


def test_real_server_health_and_the_kernel_entries_are_exposed_with_node_exporter_labels():
    text = scrape(three_servers())
    assert value(text, "piranha_realserver_up", virtual_server="web", server="rs1") == 1
    assert value(text, "piranha_realserver_up", server="rs3") == 0
    assert value(text, "piranha_realserver_state", server="rs3", state="down") == 1
    assert value(text, "piranha_realserver_state", server="rs3", state="up") == 0
    for state in STATES:  # one series per state, so a state change never leaves a gap
        value(text, "piranha_realserver_state", server="rs1", state=state)
    assert value(text, "piranha_ipvs_backend_weight", server="rs1", local_address=VIP,
                 local_port="80", proto="TCP", local_mark="", remote_address="10.200.0.1",
                 remote_port="80") == 3
    assert value(text, "piranha_ipvs_service_backends", virtual_server="web") == 2
    assert value(text, "piranha_virtual_realservers", virtual_server="web") == 3
    assert value(text, "piranha_virtual_realservers_up", virtual_server="web") == 2
    assert value(text, "piranha_virtual_sorry_server_active", virtual_server="web") == 0
    assert value(text, "piranha_lvsd_reconciles_total") >= 4
    assert value(text, "piranha_lvsd_kernel_operations_total") == 3  # service + 2 dests
    assert "process_resident_memory_bytes" in text and "python_info" in text


def test_counters_are_counters_and_every_name_has_the_prefix():
    text = scrape(three_servers())
    kinds = {f.name: f.type for f in text_string_to_metric_families(text)}
    assert kinds["piranha_ipvs_backend_connections"] == "counter"
    assert kinds["piranha_ipvs_backend_incoming_bytes"] == "counter"
    assert kinds["piranha_ipvs_backend_connections_active"] == "gauge"
    assert kinds["piranha_lvsd_drift_repairs"] == "counter"
    ours = [n for n in kinds if not n.startswith(("process_", "python_"))]
    assert ours and all(n.startswith("piranha_") for n in ours)


def test_a_hand_removed_entry_counts_as_a_repaired_drift_and_a_health_change_does_not():
    lab = three_servers()
    before = value(scrape(lab), "piranha_lvsd_drift_repairs_total")
    lab.report(dest(2), ServerState.DOWN, None)  # lvsd's own change: no drift
    assert value(scrape(lab), "piranha_lvsd_drift_repairs_total") == before
    skey = ServiceKey.inet(6, lab.ipvs.dump().services[0].key.addr, 80)
    assert lab.ipvs.apply([DelDest(skey, DestKey(dest(1).rip, 80))]) == []
    lab.engine.reconcile()
    assert value(scrape(lab), "piranha_lvsd_drift_repairs_total") == before + 1


def test_odd_lvs_cf_names_are_escaped_and_read_back_whole():
    odd = 'it"s\\odd'
    text = conf(f"    server '{odd}' {{\n        address = 10.200.0.1\n        active = 1\n"
                "    }\n")
    lab = make_lab(text)
    lab.report(dest(1), ServerState.UP, 1)
    out = scrape(lab)
    assert 'server="it\\"s\\\\odd"' in out
    assert value(out, "piranha_realserver_up", server=odd) == 1


def test_state_names_the_drain_first_then_the_verdict():
    up = Health(ServerState.UP, 1, 0.0, "ok", reported=True)
    down = Health(ServerState.DOWN, None, 0.0, "refused", reported=True)
    assert server_state(up, True, 1) == "draining"
    assert server_state(Health(ServerState.UP, 1, 0.0, "assumed"), False, 1) == "unknown"
    assert server_state(None, False, None) == "unknown"
    assert server_state(up, False, 1) == "up"
    assert server_state(down, False, 0) == "quiesced"
    assert server_state(down, False, None) == "down"


def test_an_empty_exporter_serves_process_metrics_only():
    text = endpoint().text().decode()
    assert "piranha_" not in text and "process_cpu_seconds_total" in text


def test_values_and_label_escaping_follow_the_text_format():
    assert number(3) == "3" and number(0.25) == "0.25" and number(1e300) == "1e+300"
    assert number(float("inf")) == "+Inf" and number(float("nan")) == "NaN"
    assert escape('a\\b"c\nd') == 'a\\\\b\\"c\\nd'
    assert escape("plain") == "plain"


def test_promtool_accepts_a_scrape():
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: `make bootstrap` installs Debian's prometheus"
    proc = subprocess.run([promtool, "check", "metrics"], input=scrape(three_servers()),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_lvsd_metrics_is_read_located_and_written_back():
    import pytest

    from piranha.config import loads
    from piranha.config.render import render
    from piranha.errors import ConfigErrors

    head = "primary = 10.0.0.1\nservice = lvs\n"
    for text, want in (("9747", "127.0.0.1:9747"), ("0.0.0.0:9100", "0.0.0.0:9100"),
                       ("[::1]:9747", "[::1]:9747")):
        cluster = loads(f"{head}lvsd_metrics = {text}\n").cluster
        assert str(cluster.lvsd_metrics) == want
        assert loads(render(cluster)).cluster.lvsd_metrics == cluster.lvsd_metrics
    for bad in ("x:80", "127.0.0.1:0", "[::1]", "99999", "1.2.3:80", "²"):
        with pytest.raises(ConfigErrors) as exc:
            loads(f"{head}lvsd_metrics = {bad}\n")
        assert "lvs.cf:3:16: error: lvsd_metrics: expected [ADDRESS:]PORT" in str(exc.value)
        assert f"found '{bad}'" in str(exc.value)
    assert loads(head).cluster.lvsd_metrics is None  # off unless asked


def test_the_endpoint_holds_at_most_max_clients_connections_and_drops_stalled_ones():
    import socket
    import urllib.request
    from ipaddress import ip_address

    from piranha.metrics import MAX_CLIENTS
    from piranha.model import Listen

    exporter = endpoint()
    exporter.serve(Listen(ip_address("127.0.0.1"), 0))
    url = f"http://127.0.0.1:{exporter.port}/metrics"
    idle = [socket.create_connection(("127.0.0.1", exporter.port)) for _ in range(MAX_CLIENTS)]
    try:
        extra = socket.create_connection(("127.0.0.1", exporter.port), timeout=10)
        extra.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        assert extra.recv(100) == b""  # closed at once: no thread spent on it
        extra.close()
    finally:
        for s in idle:
            s.close()

    def answered() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=10) as reply:
                return b"process_cpu_seconds_total" in reply.read()
        except OSError:
            return False
    from lab.patience import wait_for
    wait_for("a scrape answered once the idle connections closed", answered, 10)
    exporter.close()
