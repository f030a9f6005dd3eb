"""lvsd's Prometheus metrics: what the engine knows, as metric families (pure).

:func:`sample_of` copies what a scrape needs from the engine (cheap: dict copies, no rehash);
:func:`families` renders a sample. :func:`endpoint` joins them into lvsd's
:class:`piranha.metrics.Endpoint`. IPVS counters are those of the dump of lvsd's last
reconcile (every ``--reconcile-interval`` seconds, and after every change).

Labels follow node_exporter's ipvs collector (``local_address``, ``local_port``,
``remote_address``, ``remote_port``, ``proto``, ``local_mark``; a fwmark service has an empty
address, port 0 and its mark) plus lvs.cf's names (``virtual_server``, ``server``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from piranha.health.check import CheckSpec
from piranha.health.report import DestId
from piranha.health.stats import BUCKETS, REASONS, CheckStats
from piranha.health.types import ServerState
from piranha.ipvs.types import Dest, DestKey, Proto, ServiceKey, Table
from piranha.lvsd.book import Health
from piranha.metrics import Endpoint, Family, labels
from piranha.model import Cluster
from piranha.reconcile import service_key, sorry_key

if TYPE_CHECKING:
    from piranha.lvsd.engine import Engine

#: every value of ``piranha_realserver_state``'s ``state`` label
STATES = ("up", "down", "draining", "quiesced", "unknown")
_SERVICE_LABELS = ("virtual_server", "local_address", "local_port", "proto", "local_mark")
_BACKEND_LABELS = (*_SERVICE_LABELS, "server", "remote_address", "remote_port")
_CHECK_LABELS = ("virtual_server", "server", "remote_address", "remote_port")
_TOTALS = (("connections", "Connections scheduled (IPVS counter)"),
           ("incoming_packets", "Packets in (IPVS counter)"),
           ("outgoing_packets", "Packets out (IPVS counter)"),
           ("incoming_bytes", "Bytes in (IPVS counter)"),
           ("outgoing_bytes", "Bytes out (IPVS counter)"))


@dataclass(frozen=True)
class Counters:
    """lvsd's running totals since start."""

    kernel_ops: int = 0
    kernel_op_errors: int = 0
    reconciles: int = 0
    drift_repairs: int = 0
    reloads: int = 0


@dataclass(frozen=True)
class Sample:
    """What one scrape shows: copies the loop made, never changed afterwards."""

    cluster: Cluster
    specs: Mapping[DestId, CheckSpec]
    where: Mapping[DestId, tuple[ServiceKey, DestKey]]
    health: Mapping[DestId, Health]
    draining: Mapping[DestId, object]
    restarts: Mapping[DestId, int]
    table: Table
    want: Table
    started: float
    counters: Counters = field(default_factory=Counters)
    #: check counts of each real server (nannies send them every STATS_EVERY seconds)
    checks: Mapping[DestId, CheckStats] = field(default_factory=dict)
    #: wall clock minus the monotonic clock the nannies stamp their last success with
    wall_offset: float = 0.0


def sample_of(engine: Engine) -> Sample:
    """What the engine shows now. Its specs and entry keys are replaced, never changed, on a
    reload: shared; the health and drain books change in place: copied."""
    applier = engine.applier
    return Sample(engine.cluster, engine.specs, engine.where, engine.health.copy(),
                  engine.drains.copy(), engine.supervisor.restart_counts(),
                  engine.table, engine.want, engine.started,
                  Counters(applier.ops_applied, applier.op_errors, applier.reconciles,
                           engine.drift_repairs, engine.reloads),
                  engine.check_totals.copy(), engine.wall() - engine.clock())


def endpoint() -> Endpoint[Sample]:
    """lvsd's /metrics."""
    return Endpoint(sample_of, Renderer().families)


def server_state(health: Health | None, draining: bool, weight: int | None) -> str:
    """One of :data:`STATES`: draining first, then the nanny's verdict (quiesced: DOWN with
    its entry kept at weight 0), unknown before the first report."""
    if draining:
        return "draining"
    if health is None or not health.reported:
        return "unknown"
    if health.state is ServerState.UP:
        return "up"
    return "quiesced" if weight == 0 else "down"


def _service_labels(name: str, key: ServiceKey) -> list[object]:
    if key.fwmark:
        return [name, "", 0, "", key.fwmark]
    return [name, key.addr, key.port, Proto(key.protocol).name, ""]


def _at(key: DestKey | Dest) -> tuple[int, int]:
    """An entry's key inside its service, cheap to hash (an address object's hash is not)."""
    return int(key.addr), key.port


class Layout:
    """The label texts of one configuration, made once per reload (not per scrape)."""

    def __init__(self, cluster: Cluster, specs: Mapping[DestId, CheckSpec],
                 where: Mapping[DestId, tuple[ServiceKey, DestKey]]) -> None:
        self.cluster, self.specs = cluster, specs
        #: lvs.cf's services: key -> (label values, label text)
        self.services: dict[ServiceKey, tuple[list[object], str]] = {}
        for vs in cluster.active_virtuals():
            if vs.address is not None:
                head = _service_labels(vs.name, service_key(vs))
                self.services[service_key(vs)] = head, labels(_SERVICE_LABELS, head)
        #: per service, :func:`_at` of an entry -> its backend label text
        self.backends: dict[ServiceKey, dict[tuple[int, int], str]] = {}
        #: per service (None: no entry), its real servers: dest, :func:`_at` of its entry,
        #: virtual's name, check label text, and that text with each of :data:`STATES`
        self.checks: dict[ServiceKey | None, list[tuple[DestId, tuple[int, int] | None, str,
                                                        str, tuple[str, ...]]]] = {}
        for dest, spec in specs.items():
            at = where.get(dest)
            text = labels(_CHECK_LABELS, (spec.vs_name, spec.rs_name, spec.target.addr,
                                          spec.target.port))
            states = tuple(f'{text[:-1]},state="{value}"}}' for value in STATES)
            self.checks.setdefault(None if at is None else at[0], []).append(
                (dest, None if at is None else _at(at[1]), spec.vs_name, text, states))
            if at is not None and at[0] in self.services:
                head = self.services[at[0]][0]
                self.backends.setdefault(at[0], {})[_at(at[1])] = labels(
                    _BACKEND_LABELS, (*head, spec.rs_name, at[1].addr, at[1].port))


class Renderer:
    """Renders samples, keeping the :class:`Layout` while the configuration stays."""

    def __init__(self) -> None:
        self._layout: Layout | None = None

    def layout(self, sample: Sample) -> Layout:
        layout = self._layout
        if layout is None or layout.cluster is not sample.cluster \
                or layout.specs is not sample.specs:
            layout = self._layout = Layout(sample.cluster, sample.specs, sample.where)
        return layout

    def families(self, sample: Sample) -> Iterator[Family]:
        """Every metric family of ``sample``."""
        layout = self.layout(sample)
        yield from _ipvs(sample, layout)
        yield from _checks(sample, layout)
        yield from _check_counts(sample, layout)
        yield from _director(sample)


_SERVICE_GAUGES = (("connections_active", "Active connections of a virtual service"),
                   ("connections_inactive", "Inactive connections of a virtual service"),
                   ("backends", "Real server entries of a virtual service in the kernel's "
                                "table"))
_BACKEND_GAUGES = (("connections_active", "Active connections of a real server entry"),
                   ("connections_inactive", "Inactive connections of a real server entry"),
                   ("connections_persistent", "Persistence templates of a real server entry"),
                   ("weight", "Weight of a real server entry in the kernel's table"))


def _ipvs(sample: Sample, layout: Layout) -> Iterator[Family]:
    services: list[tuple[str, ...] | tuple[object, ...]] = []
    rows: list[tuple[object, ...]] = []
    for svc in sample.table.services:
        known = layout.services.get(svc.key)
        if known is None:  # not lvs.cf's: lvsd leaves it alone, and so do its metrics
            continue
        head, text = known
        dests = sample.table.dests.get(svc.key, ())
        st = svc.stats
        services.append((text, sum(d.active_conns for d in dests),
                         sum(d.inact_conns for d in dests), len(dests),
                         st.conns, st.inpkts, st.outpkts, st.inbytes, st.outbytes))
        texts = layout.backends.get(svc.key, {})
        for d in dests:
            dl = texts.get(_at(d))
            if dl is None:  # in the table but not lvs.cf's server: a sorry server, a hand edit
                dl = labels(_BACKEND_LABELS, (*head, "", d.addr, d.port))
            st = d.stats
            rows.append((dl, d.active_conns, d.inact_conns, d.persist_conns, d.weight,
                         st.conns, st.inpkts, st.outpkts, st.inbytes, st.outbytes))
    kinds = [("gauge", n, h) for n, h in _SERVICE_GAUGES] + [("counter", n, h)
                                                           for n, h in _TOTALS]
    for column, (kind, name, doc) in enumerate(kinds, 1):
        fam = Family(f"piranha_ipvs_service_{name}", kind, doc)
        fam.extend([(r[0], r[column]) for r in services])  # type: ignore[misc]
        yield fam
    kinds = [("gauge", n, h) for n, h in _BACKEND_GAUGES] + [("counter", n, h)
                                                           for n, h in _TOTALS]
    for column, (kind, name, doc) in enumerate(kinds, 1):
        fam = Family(f"piranha_ipvs_backend_{name}", kind, doc)
        fam.extend([(r[0], r[column]) for r in rows])  # type: ignore[misc]
        yield fam


def _checks(sample: Sample, layout: Layout) -> Iterator[Family]:
    up = Family("piranha_realserver_up", "gauge",
                "1 when the health check passes and the real server is in rotation")
    state = Family("piranha_realserver_state", "gauge", "1 for the real server's current "
                   "state (up, down, draining, quiesced, unknown)")
    since = Family("piranha_realserver_state_since_timestamp_seconds", "gauge",
                   "When the real server entered its health state (Unix time)")
    restarts = Family("piranha_nanny_restarts", "counter",
                      "Restarts of the real server's health checker after it died")
    counts: dict[str, list[int]] = {}
    wanted = {skey: {_at(d): d.weight for d in ds} for skey, ds in sample.want.dests.items()}
    health_of, draining, restarted = sample.health.get, sample.draining, sample.restarts
    ups: list[tuple[str, float]] = []
    states: list[tuple[str, float]] = []
    sinces: list[tuple[str, float]] = []
    restart_rows: list[tuple[str, float]] = []
    for skey, group in layout.checks.items():
        weights = wanted.get(skey, {}) if skey is not None else {}
        for dest, at, vs_name, text, state_texts in group:
            _check_rows(dest, None if at is None else weights.get(at), vs_name, text,
                        state_texts, health_of(dest), dest in draining, restarted.get(dest, 0),
                        ups, states, sinces, restart_rows, counts)
    up.extend(ups)
    state.extend(states)
    since.extend(sinces)
    restarts.extend(restart_rows)
    servers = Family("piranha_virtual_realservers", "gauge",
                     "Active real servers of a virtual server")
    servers_up = Family("piranha_virtual_realservers_up", "gauge",
                        "Real servers of a virtual server in rotation")
    sorry = Family("piranha_virtual_sorry_server_active", "gauge",
                   "1 while the sorry server takes the virtual server's traffic")
    for vs in sample.cluster.active_virtuals():
        text = labels(("virtual_server",), (vs.name,))
        count = counts.get(vs.name, [0, 0])
        servers.add(text, count[0])
        servers_up.add(text, count[1])
        where = None if vs.address is None else sorry_key(sample.cluster.network, vs)
        in_use = where is not None and any(d.key == where[1]
                                           for d in sample.want.dests.get(where[0], ()))
        sorry.add(text, 1 if in_use else 0)
    yield from (up, state, since, restarts, servers, servers_up, sorry)


def _check_rows(dest: DestId, w: int | None, vs_name: str, text: str,
                state_texts: tuple[str, ...], health: Health | None, draining: bool,
                restarts: int, ups: list[tuple[str, float]], states: list[tuple[str, float]],
                sinces: list[tuple[str, float]], restart_rows: list[tuple[str, float]],
                counts: dict[str, list[int]]) -> None:
    """One real server's samples of the check families."""
    now = server_state(health, draining, w)
    in_rotation = now == "up" and bool(w)
    ups.append((text, 1 if in_rotation else 0))
    states += [(t, 1 if value == now else 0)
               for t, value in zip(state_texts, STATES, strict=True)]
    if health is not None:
        sinces.append((text, health.since))
    restart_rows.append((text, restarts))
    count = counts.setdefault(vs_name, [0, 0])
    count[0] += 1
    count[1] += in_rotation


def _check_counts(sample: Sample, layout: Layout) -> Iterator[Family]:
    """Per real server: check duration and lateness (count and sum), failures by reason
    (the reasons seen so far), last success; per virtual server: the duration histogram."""
    duration = Family("piranha_check_duration_seconds", "summary",
                      "How long the real server's health checks took")
    lateness = Family("piranha_check_lateness_seconds", "summary",
                      "How far the real server's health checks ran behind their schedule")
    failures = Family("piranha_check_failures", "counter",
                      "Failed health checks by reason (refused, timeout, unexpected_reply, "
                      "error, program)")
    last_ok = Family("piranha_realserver_last_success_timestamp_seconds", "gauge",
                     "When the real server last passed its health check (Unix time)")
    histogram = Family("piranha_virtual_check_duration_seconds", "histogram",
                       "How long the health checks of a virtual server's real servers took")
    checks, offset = sample.checks, sample.wall_offset
    per_virtual: dict[str, list[float]] = {}
    for group in layout.checks.values():
        for dest, _at, vs_name, text, _states in group:
            st = checks.get(dest)
            if st is None:
                continue
            duration.add_as("_count", text, st.checks)
            duration.add_as("_sum", text, st.duration_sum)
            lateness.add_as("_count", text, st.checks)
            lateness.add_as("_sum", text, st.lateness_sum)
            for reason, count in zip(REASONS, st.failures, strict=True):
                if count:
                    failures.add(f'{text[:-1]},reason="{reason}"}}', count)
            if st.last_ok is not None:
                last_ok.add(text, st.last_ok + offset)
            acc = per_virtual.setdefault(vs_name, [0.0] * (len(BUCKETS) + 2))
            for i, count in enumerate(st.duration):
                acc[i] += count
            acc[-1] += st.duration_sum
    for vs_name, acc in per_virtual.items():
        head = labels(("virtual_server",), (vs_name,))[:-1]
        running = 0
        for bound, in_bucket in zip((*map(repr, BUCKETS), "+Inf"), acc[:-1], strict=True):
            running += int(in_bucket)
            histogram.add_as("_bucket", f'{head},le="{bound}"}}', running)
        histogram.add_as("_count", head + "}", running)
        histogram.add_as("_sum", head + "}", acc[-1])
    yield from (duration, lateness, failures, last_ok, histogram)


def _director(sample: Sample) -> Iterator[Family]:
    c = sample.counters
    for name, doc, value in (
            ("kernel_operations", "IPVS changes lvsd applied", c.kernel_ops),
            ("kernel_operation_errors", "IPVS changes the kernel refused", c.kernel_op_errors),
            ("reconciles", "Reconcile runs (dump, plan, apply)", c.reconciles),
            ("drift_repairs", "IPVS changes that repaired a table changed behind lvsd's back",
             c.drift_repairs),
            ("reloads", "Configuration reloads that changed the configuration", c.reloads)):
        fam = Family(f"piranha_lvsd_{name}", "counter", doc)
        fam.add("", value)
        yield fam
    start = Family("piranha_lvsd_start_time_seconds", "gauge", "When lvsd started (Unix time)")
    start.add("", sample.started)
    yield start
