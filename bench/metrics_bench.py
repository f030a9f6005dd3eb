"""Cost of lvsd's Prometheus endpoint at scale, on the host (in-memory IPVS table).

    .venv/bin/python -m bench.metrics_bench [--virtuals 1000 --reals 10 --runs 7]

Builds lvsd's engine for ``virtuals`` x ``reals`` real servers (default 1,000 x 10: with the
services, 11,000 entries), every server reported UP, then times, median of ``--runs``:
the loop's part (copying the engine's tables into a sample, what each reconcile costs lvsd's
loop while the endpoint is on) and a whole scrape (every family rendered to Prometheus text, plus
prometheus_client's process metrics, on the server's thread), beside prometheus_client
rendering the same families and the floor: formatting and joining the same lines, no logic.
Target (issue 15): a scrape under 100 ms at 11,000 entries.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Iterator

from prometheus_client import generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector, CollectorRegistry

from bench.reload_bench import lvs_cf
from piranha.health.report import HealthReport, StatsReport
from piranha.health.stats import CheckStats
from piranha.health.types import ProbeResult, ServerState
from piranha.lvsd.metrics import endpoint
from testkit.lvsd import make_lab


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--virtuals", type=int, default=1000)
    p.add_argument("--reals", type=int, default=10)
    p.add_argument("--runs", type=int, default=7)
    args = p.parse_args()
    lab = make_lab(lvs_cf(args.virtuals, args.reals, 1.0, {}))
    engine = lab.engine
    for dest, spec in engine.specs.items():
        child = engine.supervisor.get(dest)
        assert child is not None and child.pid is not None
        engine.on_report(child.pid, HealthReport(dest, ServerState.UP, spec.weight, "ok",
                                                 lab.clock.now))
        counts = CheckStats().record(ProbeResult(True, "ok", 0.002), 0.001, lab.clock.now)
        engine.on_stats(child.pid, StatsReport(dest, counts, lab.clock.now))
    engine.reconcile()
    engine.reconcile()  # the engine keeps the dump a reconcile starts from
    entries = len(engine.table.services) + sum(len(d) for d in engine.table.dests.values())
    exporter = endpoint()
    exporter.publish(engine)
    parsed = list(text_string_to_metric_families(exporter.text().decode()))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Replay(parsed))
    publish, scrape, library, floor, size, lines = [], [], [], [], 0, 0
    for _ in range(args.runs):
        t0 = time.perf_counter()
        exporter.publish(engine)
        t1 = time.perf_counter()
        text = exporter.text()
        t2 = time.perf_counter()
        generate_latest(registry)
        t3 = time.perf_counter()
        size, lines = len(text), text.count(10)
        floor.append(_floor(text))
        publish.append(t1 - t0)
        scrape.append(t2 - t1)
        library.append(t3 - t2)
    pm, sm = statistics.median(publish) * 1e3, statistics.median(scrape) * 1e3
    lm, fm = statistics.median(library) * 1e3, statistics.median(floor) * 1e3
    print(f"lvsd metrics, {entries} IPVS entries ({args.virtuals} virtuals x {args.reals} real "
          f"servers, each with its check counts), median of {args.runs} "
          f"(load average {os.getloadavg()[0]:.1f}):")
    print(f"  sample (lvsd's loop, per reconcile)  {pm:8.1f} ms")
    print(f"  scrape (the whole /metrics text)     {sm:8.1f} ms   target < 100 ms: "
          f"{'met' if sm < 100 else 'MISSED'}")
    print(f"  prometheus_client, same families     {lm:8.1f} ms   ({lm / sm:.1f}x ours)")
    print(f"  floor: format + join the same lines  {fm:8.1f} ms   (no logic at all)")
    print(f"  exposition size                      {size / 1e6:8.2f} MB, {lines} lines")


class Replay(Collector):
    """The families of one scrape of ours, for prometheus_client to render again."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def _floor(text: bytes) -> float:
    """Seconds to format and join lines of the same count and lengths, one int each."""
    rows = [(line[:line.rfind(" ")], 0) for line in text.decode().splitlines()]
    t0 = time.perf_counter()
    ("\n".join([f"{t} {v}" for t, v in rows]) + "\n").encode()
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
