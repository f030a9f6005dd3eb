"""Everything lvsd decides, with the kernel, the process runner and the clocks injected.

The engine holds the configuration, each real server's :class:`~piranha.lvsd.book.Health`
(from its nanny's reports), the operator's drains, and one supervised nanny per active real
server. Whatever happens (a report, a nanny's exit, a reload, a drain, the timer) ends in
:meth:`Engine.reconcile`: ``desired(config, weights)`` diffed against the kernel's *current*
table, so an entry removed or changed by hand is repaired, and services lvs.cf does not own
are never touched. The daemon loop (:mod:`piranha.lvsd.loop`) only moves bytes and signals.

Decisions that differ from Piranha 0.8.6 are documented where they are made:

* start: the table is adopted, never flushed (``ipvsadm -C``): an entry lvs.cf owns keeps its
  weight until its nanny says otherwise, so established connections survive an lvsd restart;
* a nanny that dies is restarted with backoff (``hard_shutdown = 0``), adopting the weight
  lvsd holds; ``hard_shutdown = 1`` (the default) still shuts lvsd down, as Piranha did;
* reload applies everything that changed (weights, schedulers, persistence, checks) as a
  minimal diff and keeps the health of every real server whose check did not change;
* the sorry server waits one check interval after a virtual starts before going in, so a
  starting lvsd does not flash it in front of healthy servers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any, Protocol

from piranha.health.check import CheckSpec
from piranha.health.report import DestId, HealthReport, StatsReport
from piranha.health.stats import CheckStats
from piranha.health.types import ServerState
from piranha.ipvs.backend import IpvsBackend
from piranha.ipvs.types import DelService, DestKey, Op, ServiceKey, Table
from piranha.lvsd.apply import Applier
from piranha.lvsd.book import Health, HealthBook
from piranha.lvsd.control import Request
from piranha.lvsd.drains import Commands, Drains
from piranha.lvsd.planner import Decision, World, decide
from piranha.lvsd.statefile import SavedState
from piranha.lvsd.view import EngineView, transition_line
from piranha.model import Cluster
from piranha.reconcile import dest_key, owned_keys, plan, service_key, set_timeouts
from piranha.supervise.children import Main, Supervisor
from piranha.supervise.policy import RestartPolicy
from piranha.supervise.runner import ProcessRunner, exit_text

#: seconds after a virtual starts during which its sorry server is not added
SORRY_GRACE_MARGIN = 0.5
NannyMain = Callable[[CheckSpec, "int | None"], tuple[Main, Iterable[int]]]
Clock = Callable[[], float]


#: events kept for the loop at most
MAX_EVENTS = 10000


class Log(Protocol):
    """The logging calls the engine makes (a ``logging.Logger`` fits)."""

    def info(self, msg: str) -> None: ...
    def warning(self, msg: str) -> None: ...
    def error(self, msg: str) -> None: ...


def check_specs(cluster: Cluster) -> dict[DestId, CheckSpec]:
    """One check per active real server of each active virtual (duplicates once)."""
    specs: dict[DestId, CheckSpec] = {}
    for vs in cluster.active_virtuals():
        if vs.address is None:
            continue
        for rs in vs.servers:
            if rs.active and rs.address is not None:
                spec = CheckSpec.for_server(vs, rs, cluster.rsh_command)
                specs.setdefault(spec.dest, spec)
    return specs


def entry_keys(cluster: Cluster) -> dict[DestId, tuple[ServiceKey, DestKey]]:
    """Where each real server's entry sits in the kernel's table."""
    keys: dict[DestId, tuple[ServiceKey, DestKey]] = {}
    for vs in cluster.active_virtuals():
        for rs in vs.servers:
            if vs.address is not None and rs.active and rs.address is not None:
                keys.setdefault(DestId.for_server(vs, rs), dest_key(cluster.network, vs, rs))
    return keys


def weight_only(before: CheckSpec, after: CheckSpec) -> bool:
    """True when two checks differ in the configured weight alone, without load feedback
    (whose weights follow the load, so its nanny must restart to learn the new one)."""
    return (before != after and after.loadcmd is None
            and replace(before, weight=after.weight) == after)


class Engine:
    """lvsd's state and decisions."""

    def __init__(self, cluster: Cluster, config_path: str, backend: IpvsBackend,
                 runner: ProcessRunner, nanny_main: NannyMain, log: Log, *,
                 clock: Clock, wall: Clock, policy: RestartPolicy | None = None,
                 stop_timeout: float = 5.0) -> None:
        self.cluster, self.config_path, self.backend = cluster, config_path, backend
        self.nanny_main, self.log, self.clock, self.wall = nanny_main, log, clock, wall
        self.applier = Applier(backend, log.info, log.error)
        self.supervisor: Supervisor[DestId] = Supervisor(runner, self._make_nanny, policy,
                                                         stop_timeout)
        self.specs = check_specs(cluster)
        #: the weight each running nanny was started with (a reload that changes only the
        #: weight keeps the nanny; :meth:`on_report` maps its weights to the new one)
        self.nanny_weight: dict[DestId, int] = {}
        self.where = entry_keys(cluster)
        self.health = HealthBook()
        self.drains = Drains()
        self.commands = Commands(self.drains, log.info)
        self.retired: frozenset[ServiceKey] = frozenset()
        self.grace: dict[ServiceKey, float] = {}
        self.table, self.want = Table(), Table()
        self.started = wall()
        self.reloads = 0
        #: kernel changes made although lvsd wanted nothing new (a hand edit, a flush)
        self.drift_repairs = 0
        #: each real server's check counts: its nanny's pid, what its predecessors counted,
        #: and everything counted (the metrics show the totals; they never go backwards)
        self.checks: dict[DestId, tuple[int, CheckStats, CheckStats]] = {}
        self.check_totals: dict[DestId, CheckStats] = {}
        #: what watchers of the control socket are told (the loop takes them every turn)
        self.events: list[dict[str, Any]] = []
        self.stopped = False

    # -- life cycle ---------------------------------------------------------------------------

    def start(self, saved: SavedState | None = None) -> None:
        """Adopt the kernel's table and ``saved`` state, start every nanny, reconcile once."""
        now, saved = self.clock(), saved or SavedState()
        self.drains = Drains({d: v for d, v in saved.drains.items() if d in self.specs})
        self.commands = Commands(self.drains, self.log.info)
        self.retired = frozenset(saved.owned - owned_keys(self.cluster))
        self._set_timeouts(None)
        table = self.backend.dump()
        kernel = {(skey, d.key): d.weight for skey, ds in table.dests.items() for d in ds}
        for dest, spec in self.specs.items():
            self.health.set(dest, self._adopted(spec, kernel.get(self.where[dest])))
        self._start_grace(self.cluster, now)
        self.supervisor.start_many(self.specs, now)
        self.reconcile()

    def shutdown(self) -> None:
        """Stop every nanny and remove every entry lvs.cf owns (Piranha's SIGTERM)."""
        now = self.clock()
        self.log.info("shutting down: stopping nannies and removing owned services")
        for dest in list(self.specs):
            self.supervisor.stop(dest, now)
        owned = owned_keys(self.cluster) | self.retired
        self.applier.reconcile(lambda actual: plan(actual, Table(), owned))
        self.retired, self.stopped = frozenset(), True

    def reload(self, new: Cluster) -> None:
        """Apply a validated new configuration as a minimal diff."""
        now, old, old_specs = self.clock(), self.cluster, self.specs
        new_specs = check_specs(new)
        for dest in old_specs.keys() - new_specs.keys():
            self.supervisor.stop(dest, now)
            self.health.drop(dest)
            self.checks.pop(dest, None)
            self.check_totals.pop(dest, None)
        self.drains.keep_only(new_specs)
        restart = []
        for dest, spec in new_specs.items():
            before = old_specs.get(dest)
            if before == spec:
                continue
            if before is None or not weight_only(before, spec):  # else the nanny stays
                if before is not None:
                    self.supervisor.stop(dest, now)
                restart.append(dest)
            self.health.set(dest, self._carried(before, spec, self.health.get(dest)))
        self.cluster, self.specs, self.where = new, new_specs, entry_keys(new)
        self.retired |= owned_keys(old) - owned_keys(new)
        self.reloads += 1
        self._emit({"event": "reload", "time": self.wall(), "servers": len(new_specs)})
        self._set_timeouts(old)
        self._start_grace(new, now, only_new=old)
        self.supervisor.start_many(restart, now)
        self.log.info(f"reloaded {self.config_path}: {len(new_specs)} real servers, "
                      f"{len(new_specs.keys() - old_specs.keys())} added, "
                      f"{len(old_specs.keys() - new_specs.keys())} removed")
        self.reconcile()

    # -- events -------------------------------------------------------------------------------

    def on_report(self, pid: int, report: HealthReport) -> bool:
        """Take a nanny's report; True when the server's state or weight changed."""
        dest = self.supervisor.key_of(pid)
        if dest != report.dest:
            self.log.warning(f"ignored a report about {report.dest} from pid {pid} "
                             "(not that server's current nanny)")
            return False
        old = self.health[dest]
        weight = self._mapped_weight(dest, report)
        new = Health(report.state, weight, self.wall(), report.reason, True)
        if (old.state, old.weight) == (new.state, new.weight):
            if not old.reported:  # a nanny's first verdict confirming what lvsd held
                self.health.set(dest, replace(old, reason=report.reason, reported=True))
            return False
        self.health.set(dest, new)
        spec = self.specs[dest]
        self.log.info(transition_line(spec, old, new))
        self._event("health", spec, {"from": old.state.value, "to": new.state.value,
                                     "weight": new.weight, "reason": new.reason})
        return True

    def on_stats(self, pid: int, report: StatsReport) -> bool:
        """Take a nanny's check counts; False (ignored) if not from that server's nanny."""
        dest = self.supervisor.key_of(pid)
        if dest != report.dest:
            return False
        held = self.checks.get(dest)
        if held is None:
            before = CheckStats()
        elif held[0] != pid:  # a new nanny counts from zero: keep its predecessors' counts
            before = held[2]
        else:
            before = held[1]
        total = before.plus(report.stats)
        self.checks[dest] = (pid, before, total)
        self.check_totals[dest] = total
        return True

    def on_exit(self, pid: int, status: int) -> bool:
        """Account for a reaped child; True when lvsd must shut down (hard_shutdown)."""
        ended = self.supervisor.exited(pid, status, self.clock())
        if ended is None or ended.expected:
            return False
        spec = self.specs[ended.key]
        who = f"{spec.vs_name}/{spec.rs_name}"
        self._event("nanny", spec, {"exit": exit_text(status),
                                    "restart_in": None if self.cluster.hard_shutdown
                                    else ended.restart_in})
        if self.cluster.hard_shutdown:
            self.log.error(f"nanny for child {who} died ({exit_text(status)})! "
                           "shutting down lvs (hard_shutdown = 1)")
            return True
        if ended.restart_in is None:
            self.log.error(f"nanny for child {who} died ({exit_text(status)}) too often; "
                           "giving up on it: manual action needed!")
        else:
            self.log.error(f"nanny for child {who} died ({exit_text(status)}); restarting it "
                           f"in {ended.restart_in:g} s")
        return False

    def tick(self) -> None:
        """Restart nannies whose backoff ended, escalate stuck stops."""
        for child in self.supervisor.tick(self.clock()):
            spec = self.specs[child.key]
            self.log.info(f"restarted nanny for {spec.vs_name}/{spec.rs_name} "
                          f"(restart {child.restarts}, pid {child.pid})")

    def next_deadline(self) -> float | None:
        """The earliest monotonic time something is due (restart, kill, grace end, drain)."""
        now, wall = self.clock(), self.wall()
        times = [t for t in self.grace.values() if t > now]
        times += [deadline - wall + now for deadline in self.drains.deadlines()]
        due = self.supervisor.next_deadline()
        if due is not None:
            times.append(due)
        return min(times, default=None)

    def control(self, req: Request) -> tuple[bool, str]:
        """Run a control-socket command, reconcile if it changed something; (ok, message)."""
        answer = self.commands.run(req, self.cluster, self.specs, self.wall())
        if answer.changed:
            self.reconcile()
        return answer.ok, answer.message

    # -- the table ----------------------------------------------------------------------------

    def reconcile(self) -> list[Op]:
        """Make the kernel match config + health + drains; the ops applied."""
        now, wall = self.clock(), self.wall()
        world = World(self.cluster, self.where, self.health.view(), self.drains.view(),
                      self.retired, self.grace)
        decision: Decision | None = None

        def make_plan(actual: Table) -> list[Op]:
            nonlocal decision
            decision = decide(world, actual, now, wall)
            return decision.ops

        outcome = self.applier.reconcile(make_plan)
        assert decision is not None  # the applier plans at least once
        self._commit(decision, outcome.table, outcome.applied)
        return outcome.applied

    def _commit(self, decision: Decision, table: Table, applied: list[Op]) -> None:
        """Take in what a reconcile did: finished drains, the tables, retired services gone."""
        for dest in self.drains.finish(decision.finished):
            spec = self.specs[dest]
            self.log.info(f"rs={spec.target} vs={spec.vs_name} drained: entry removed")
            self._event("drained", spec, {})
        if applied and decision.want == self.want:  # nothing new was wanted: the kernel drifted
            self.drift_repairs += len(applied)
        self.want, self.table = decision.want, table
        gone = {op.key for op in applied if isinstance(op, DelService)}
        still = frozenset(k for k in self.retired - gone if table.service(k) is not None)
        if still != self.retired:
            self.retired = still

    # -- views --------------------------------------------------------------------------------

    def generation(self) -> tuple[int, ...]:
        """Moves whenever something the status snapshot shows changed."""
        return (self.health.generation, self.drains.generation, self.supervisor.generation,
                self.applier.ops_applied, self.reloads)

    def state_generation(self) -> tuple[object, ...]:
        """Moves whenever :meth:`saved_state` may have changed (cheap, unlike building it)."""
        return (self.drains.generation, self.reloads, self.retired, self.stopped)

    def saved_state(self) -> SavedState:
        """What the state file must hold now (nothing owned once shut down)."""
        owned = set() if self.stopped else set(owned_keys(self.cluster) | self.retired)
        return SavedState(owned, dict(self.drains.view()))

    def view(self) -> EngineView:
        """A read-only view for the status snapshot."""
        return EngineView(self.cluster, self.config_path, self.specs, self.where,
                          self.health.view(), self.drains.view(), self.supervisor.get,
                          self.table, self.want, self.started, self.applier.ops_applied)

    def take_events(self) -> list[dict[str, Any]]:
        """The events since the last call."""
        events, self.events = self.events, []
        return events

    # -- helpers ------------------------------------------------------------------------------

    def _event(self, kind: str, spec: CheckSpec, fields: dict[str, Any]) -> None:
        self._emit({"event": kind, "time": self.wall(), "virtual": spec.vs_name,
                    "server": spec.rs_name, "address": str(spec.target), **fields})

    def _emit(self, event: dict[str, Any]) -> None:
        if len(self.events) >= MAX_EVENTS:  # nobody took them (an engine outside the loop)
            del self.events[:MAX_EVENTS // 2]
        self.events.append(event)

    def _make_nanny(self, dest: DestId) -> tuple[Main, Iterable[int]]:
        health = self.health.get(dest)
        self.nanny_weight[dest] = self.specs[dest].weight
        return self.nanny_main(self.specs[dest], None if health is None else health.weight)

    def _mapped_weight(self, dest: DestId, report: HealthReport) -> int | None:
        """The weight of an UP report from a nanny started with another configured weight:
        its full weight is the new one, a slow-start step is capped by it."""
        started, now = self.nanny_weight.get(dest), self.specs[dest].weight
        weight = report.weight
        if report.state is not ServerState.UP or weight is None or started in (None, now):
            return weight
        return now if weight == started else min(weight, now)

    def _adopted(self, spec: CheckSpec, weight: int | None) -> Health:
        tracker = spec.tracker(weight)
        if weight is not None:
            self.log.info(f"rs={spec.target} vs={spec.vs_name} adopted from the kernel at "
                          f"weight {weight}: {tracker.state.value}")
        reason = "adopted from the kernel" if weight is not None else "not checked yet"
        return Health(tracker.state, tracker.entry_weight, self.wall(), reason)

    def _carried(self, before: CheckSpec | None, spec: CheckSpec,
                 health: Health | None) -> Health:
        """The health a real server keeps across a reload that changed its check."""
        if before is None or health is None:
            return Health(ServerState.DOWN, None, self.wall(), "not checked yet")
        weight = health.weight
        if health.state is ServerState.UP and weight and spec.weight != before.weight:
            self.log.info(f"rs={spec.target} vs={spec.vs_name} UP weight {weight}->"
                          f"{spec.weight} reason=\"weight changed in {self.config_path}\"")
            weight = spec.weight
        tracker = spec.tracker(weight)
        return Health(tracker.state, tracker.entry_weight, self.wall(), health.reason, True)

    def _start_grace(self, cluster: Cluster, now: float, only_new: Cluster | None = None) -> None:
        old = owned_keys(only_new) if only_new is not None else frozenset()
        for vs in cluster.active_virtuals():
            if vs.address is not None and service_key(vs) not in old:
                self.grace[service_key(vs)] = now + vs.timeout + SORRY_GRACE_MARGIN

    def _set_timeouts(self, old: Cluster | None) -> None:
        op = set_timeouts(self.cluster, old)
        if op is not None:
            for failure in self.applier.apply([op]):
                self.log.error(f"ipvs: setting timeouts failed: {failure.message}")
