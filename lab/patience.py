"""How long the tests, the demo and the benches wait: every limit scales with one knob.

Limits are generous for a busy machine (each is several times what an idle one needs), and
``PIRANHA_PATIENCE`` (a factor, default 1) multiplies all of them at once, for a machine slower
still. Nothing here sleeps for a fixed time to let something happen: :func:`wait_for` polls a
condition, returns as soon as it holds, and when the limit is hit says what it waited for and
the last state it saw.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

KNOB = "PIRANHA_PATIENCE"


def _factor(text: str | None) -> float:
    if not text:
        return 1.0
    try:
        value = float(text)
    except ValueError:
        raise SystemExit(f"{KNOB}={text!r}: expected a factor such as 2 or 0.5") from None
    if not 0 < value < 1000:
        raise SystemExit(f"{KNOB}={text!r}: expected a factor between 0 and 1000")
    return value


FACTOR = _factor(os.environ.get(KNOB))
#: the limit for anything that waits for a daemon to start (pulse, lvsd, the web tool): a
#: Python daemon takes ~0.5 s on a host but 20-90 s in the kernel tier's emulated VM on a busy
#: machine, where even ``python -c pass`` takes ~5 s
START = 300.0


def limit(seconds: float) -> float:
    """``seconds`` scaled by the knob."""
    return seconds * FACTOR


class TimedOut(AssertionError):
    """A condition did not hold within its limit (an AssertionError, so pytest shows it)."""


def wait_for(what: str, check: Callable[[], Any], timeout: float, step: float = 0.05,
             show: Callable[[], object] | None = None) -> float:
    """Poll ``check`` until truthy; the seconds it took.

    ``timeout`` is scaled by the knob. On expiry :class:`TimedOut` names ``what`` and the last
    state seen: ``show()`` when given, else the last value ``check`` returned.
    """
    allowed = limit(timeout)
    start = time.monotonic()
    while True:
        last = check()
        if last:
            return time.monotonic() - start
        if time.monotonic() - start > allowed:
            seen = show() if show is not None else last
            raise TimedOut(f"timed out after {allowed:g} s waiting for {what} "
                           f"({KNOB}={FACTOR:g}); last seen: {_short(seen)}")
        time.sleep(step)


def _short(value: object, size: int = 2000) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= size else text[:size] + f"... ({len(text)} characters)"
