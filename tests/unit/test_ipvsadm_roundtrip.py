"""Generated tables restored by piranha-ipvsadm into FakeIpvs save back canonically.

The same generator drives the VM differential tests (tests/kernel/test_ipvsadm_diff.py);
here it checks the parser on the odd spellings and the -S format on the fake, quickly.
"""

from __future__ import annotations

import io
import random
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ipvsadm_stub import RecordingFake

sys.path.insert(0, str(Path(__file__).parents[1] / "kernel"))
from ipvsadm_gen import canonical_save, restore_script, tables  # noqa: E402

from piranha.cli.ipvsadm import main  # noqa: E402


def run(argv, backend, stdin=""):
    out, err = io.StringIO(), io.StringIO()
    status = main(argv, backend=backend, stdin=io.StringIO(stdin), stdout=out, stderr=err,
                  prog="ipvsadm", env={})
    return out.getvalue(), err.getvalue(), status


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables(), st.randoms(use_true_random=False))
def test_restore_then_save_is_canonical(table, rng: random.Random):
    backend = RecordingFake()
    script = restore_script(table, rng)
    assert run(["-R"], backend, script) == ("", "", 0), script
    assert len(backend.applied) == (1 if table.services else 0)
    assert run(["-Sn"], backend)[0] == canonical_save(table), script
