"""Nanny's loop with a fake probe and a fake clock; CheckSpec; adoption; the command line."""

from __future__ import annotations

import math
import signal
from ipaddress import ip_address

import pytest

from piranha import nanny
from piranha.health.check import CheckSpec
from piranha.health.nannyloop import NannyLoop
from piranha.health.probe import ProgramProbe, SocketProbe
from piranha.health.report import DestId
from piranha.health.types import ProbeResult, ServerState, Target
from piranha.model import ServiceProtocol
from testkit.lvsd import cluster, conf, dest, server


class Script:
    """A probe that returns scripted results and advances the clock by its duration."""

    def __init__(self, clock: list[float], results: list[bool], duration: float = 0.01):
        self.clock, self.results, self.duration = clock, list(results), duration
        self.calls: list[tuple[Target, float]] = []

    def check(self, target: Target, timeout: float) -> ProbeResult:
        self.calls.append((target, timeout))
        self.clock[0] += self.duration
        ok = self.results.pop(0)
        return ProbeResult(ok, "ok" if ok else "CONNECT refused", self.duration)


def spec(**kw) -> CheckSpec:
    vs = cluster(conf(server("web1", 11, weight=kw.pop("weight", 1)), extra=kw.pop("extra", "")))
    return CheckSpec.for_server(vs.virtuals[0], vs.virtuals[0].servers[0])


def run(spec_: CheckSpec, results: list[bool], adopt=None):
    clock = [0.0]
    sent = []
    probe = Script(clock, results)
    loop = NannyLoop(spec_, spec_.tracker(adopt), probe, sent.append, lambda: clock[0])
    return loop, clock, sent, probe


def test_first_good_probe_admits_then_a_failure_removes() -> None:
    loop, clock, sent, probe = run(spec(), [True, True, False])
    assert loop.step() == pytest.approx(1.0)
    assert [(r.state, r.weight) for r in sent] == [(ServerState.UP, 1)]
    assert probe.calls[0] == (Target(ip_address("10.200.0.11"), 80), 1.0)
    assert loop.step() == pytest.approx(1.0)  # not due yet: no probe
    assert len(probe.calls) == 1
    clock[0] += 1.0
    loop.step()
    clock[0] += 1.0
    loop.step()
    assert [(r.state, r.weight) for r in sent] == [(ServerState.UP, 1), (ServerState.DOWN, None)]
    assert sent[-1].dest == dest(11) and sent[-1].reason == "CONNECT refused"


def test_reentry_needs_reentry_over_timeout_good_probes() -> None:
    loop, clock, sent, _ = run(spec(), [True, False, True, True])
    for _ in range(4):
        loop.step()
        clock[0] += 1.0
    # 2 good after failure
    assert [r.state for r in sent] == [ServerState.UP, ServerState.DOWN, ServerState.UP]


def test_adopted_server_stays_in_and_confirms_with_its_first_verdict() -> None:
    loop, clock, sent, _ = run(spec(weight=8), [True, True, False], adopt=8)
    loop.step()
    assert [(r.state, r.weight, r.reason) for r in sent] == [(ServerState.UP, 8, "ok")]
    clock[0] += 1.0
    loop.step()
    assert len(sent) == 1  # nothing new to say
    clock[0] += 1.0
    loop.step()
    assert [(r.state, r.weight) for r in sent][1:] == [(ServerState.DOWN, None)]


def test_first_failed_probe_of_a_new_server_is_told_too() -> None:
    loop, _, sent, _ = run(spec(), [False])
    loop.step()
    assert [(r.state, r.weight, r.reason) for r in sent] == [(ServerState.DOWN, None,
                                                              "CONNECT refused")]


def test_adopt_rules() -> None:
    quiet = spec(extra="quiesce_server = 1")
    assert quiet.tracker(0).entry_weight == 0 and quiet.tracker(0).state is ServerState.DOWN
    assert spec().tracker(0).entry_weight is None
    assert spec().tracker(5).entry_weight == 5
    assert spec().tracker(None).state is ServerState.DOWN


def test_signals_force_down_up_and_resume() -> None:
    loop, clock, sent, probe = run(spec(), [True, True])
    loop.step()
    loop.on_signal(signal.SIGUSR1)
    assert sent[-1].state is ServerState.DOWN and "SIGUSR1" in sent[-1].reason
    clock[0] += 5
    assert loop.step() == math.inf and len(probe.calls) == 1  # frozen: no probes
    loop.on_signal(signal.SIGUSR2)
    assert sent[-1].state is ServerState.UP and sent[-1].weight == 1
    loop.on_signal(signal.SIGHUP)
    loop.step()
    assert len(probe.calls) == 2


def test_check_spec_picks_the_probe_and_compares_by_value() -> None:
    assert isinstance(spec().probe(), SocketProbe)
    program = spec(extra='send_program = "/bin/check %h %p"\n    expect = "OK"')
    assert isinstance(program.probe(), ProgramProbe)
    assert spec() == spec() and spec() != spec(weight=2)
    uptime = cluster(conf(server("a", 11), extra="load_monitor = uptime",
                          globals_="rsh_command = ssh"))
    vs = uptime.virtuals[0]
    assert CheckSpec.for_server(vs, vs.servers[0], uptime.rsh_command).loadcmd == "ssh"


def test_command_line_is_piranhas() -> None:
    args = nanny.parser().parse_args(
        ["-c", "-h", "10.0.0.2", "-p", "80", "-r", "8080", "-f", "3", "-u", "-s", "PING\\r\\n",
         "-x", "PONG", "-q", "--regex", "-a", "15", "-I", "/sbin/ipvsadm", "-t", "0.5", "-w", "4",
         "-V", "10.0.0.80", "-M", "g", "-U", "none", "--nodaemon", "--lvs"])
    s = nanny.spec_from_args(args)
    assert s.dest == DestId(ip_address("10.0.0.80"), 80, ServiceProtocol.UDP,
                            ip_address("10.0.0.2"), 8080, 3)
    assert (s.send, s.expect, s.use_regex, s.quiesce, s.timeout, s.reentry, s.weight) == (
        "PING\\r\\n", "PONG", True, True, 0.5, 15.0, 4)
    assert s.loadcmd is None
    default = nanny.spec_from_args(nanny.parser().parse_args(["-h", "10.0.0.2", "--lvs"]))
    assert (default.reentry, default.timeout, default.dest.rport) == (180.0, 10.0, 80)


def test_command_line_needs_lvs(capsys) -> None:
    assert nanny.main(["-h", "10.0.0.2", "--fos"]) == 1
    assert "only --lvs" in capsys.readouterr().err
    assert nanny.main(["-h", "10.0.0.2", "-t", "0", "--lvs"]) == 1
    assert "interval must be a positive number" in capsys.readouterr().err
