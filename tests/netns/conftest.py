"""Host-side namespace tests: two network namespaces joined by a veth pair.

* Runs in the host tier; needs root and iproute2, otherwise every test here is skipped with
  the reason. Addresses: 198.51.100.0/24 and 2001:db8::/32, inside our namespaces only.
* ``veth`` is module-scoped (set-up costs ~50 ms) and always deleted, even on failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from lab.netns import Capture, Netns, Veth, create_veth, delete, unavailable_reason


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = unavailable_reason()
    if reason is None:
        return
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.path).startswith(here):
            item.add_marker(pytest.mark.skip(reason=f"netns test: {reason}"))


@pytest.fixture(scope="module")
def veth() -> Iterator[Veth]:
    """Two fresh namespaces joined by a veth pair; deleted afterwards whatever happens."""
    tag = f"pirarp-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    pair = Veth(Netns(f"{tag}-a"), Netns(f"{tag}-b"))
    try:
        create_veth(pair.a, pair.b)
        yield pair
    finally:
        delete(pair.a)
        delete(pair.b)


@pytest.fixture
def capture(veth: Veth) -> Iterator[Capture]:
    """A fresh capture on the far end of the veth pair, noise drained."""
    cap = Capture(veth.b)
    cap.drain()
    yield cap
    cap.close()
