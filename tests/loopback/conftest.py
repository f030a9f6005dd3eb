"""Fixtures of the loopback tier: real servers on 127.0.0.1 and ::1 (see lab.loopback)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lab.loopback import Servers


@pytest.fixture
def servers() -> Iterator[Servers]:
    """A server factory whose servers die with the test."""
    s = Servers()
    yield s
    s.close()
