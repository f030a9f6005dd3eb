"""Wiring for the kernel tier: tests that talk to a real kernel's IPVS.

* Every test collected from this folder is marked ``kernel``: the host tier deselects them
  (``-m "not kernel"``) and ``scripts/vm-pytest.sh`` runs them inside a VM (``-m kernel``).
* Outside the harness, a kernel test is *skipped* when we are not root or IPVS is not there.
  Inside the harness (``PIRANHA_KERNEL_TIER=1``, set by ``scripts/vm-guest.sh``) the same
  condition is an *error*: the VM is supposed to have IPVS, so its absence is a broken harness.
* ``netns`` gives each test a fresh, uniquely named network namespace (see :class:`NetNS`);
  ``netns_factory`` makes more of them. Tests must never touch the init namespace's IPVS
  table and must only use 198.51.100.0/24, 10.200.0.0/24 and 2001:db8::/32 inside namespaces
  they created.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

KERNEL_DIR = Path(__file__).resolve().parent
IN_HARNESS = os.environ.get("PIRANHA_KERNEL_TIER") == "1"

#: addresses every fresh namespace gets (the brand-new namespace rejects real servers with
#: EINVAL until it has an interface with an address and a route)
PUBLIC_IF, PUBLIC_ADDR = "pub0", "198.51.100.1/24"
PRIVATE_IF, PRIVATE_ADDR = "priv0", "10.200.0.1/24"
PUBLIC_ADDR6 = "2001:db8:100::1/64"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # tryfirst: the marker must be there before `-m` deselects (also a built-in hook)
    for item in items:
        if KERNEL_DIR in item.path.resolve().parents:
            item.add_marker(pytest.mark.kernel)


@functools.cache
def kernel_unavailable_reason() -> str | None:
    """Why kernel tests cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return "needs root"
    if shutil.which("ip") is None:
        return "needs iproute2 (`ip`)"
    if not (Path("/proc/net/ip_vs").exists() or Path("/sys/module/ip_vs").exists()):
        return "needs a kernel with IPVS loaded (/proc/net/ip_vs missing)"
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("kernel") is None:
        return
    reason = kernel_unavailable_reason()
    if reason is None:
        return
    if IN_HARNESS:
        pytest.fail(f"kernel tier: {reason} (the harness should have provided it)", pytrace=False)
    pytest.skip(f"kernel test: {reason}; run `make kernel-test` to run it in a VM")


@pytest.fixture(autouse=True)
def _init_namespace_ipvs_untouched(request: pytest.FixtureRequest) -> Iterator[None]:
    """Guard: a kernel test must leave the init namespace's IPVS table as it found it."""
    table = Path("/proc/net/ip_vs")
    if request.node.get_closest_marker("kernel") is None or kernel_unavailable_reason():
        yield
        return
    before = table.read_text()
    yield
    after = table.read_text()
    if after != before:
        pytest.fail(
            "this test changed the init namespace's IPVS table (tests must use their own "
            f"netns):\n--- before\n{before}--- after\n{after}",
            pytrace=False,
        )


class NetNS:
    """A network namespace created for one test.

    ``name``: its name (``ip netns`` / ``/run/netns/<name>``).
    ``run(argv)``: run a command inside it; returns ``CompletedProcess`` (text, output
    captured, ``check=True`` unless told otherwise).
    ``socket(cls, **kw)``: a pyroute2 socket object (``IPVS``, ``IPRoute``, ...) inside it.
    ``ipvs()``: shorthand for ``socket(pyroute2.IPVS)``.
    ``entered()``: context manager that switches this thread into the namespace (for plain
    ``socket.socket`` objects). pyroute2 objects create their socket lazily, possibly after
    the block is left: give them ``netns=`` through :meth:`socket` instead.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"NetNS({self.name!r})"

    def run(
        self, argv: Sequence[str], *, check: bool = True, timeout: float = 120, **kw: Any
    ) -> subprocess.CompletedProcess[str]:
        kw.setdefault("capture_output", True)
        return subprocess.run(
            ["ip", "netns", "exec", self.name, *argv],
            check=check,
            text=True,
            timeout=timeout,
            **kw,
        )

    def socket(self, cls: Callable[..., Any], **kw: Any) -> Any:
        return cls(netns=self.name, **kw)

    def ipvs(self) -> Any:
        from pyroute2 import IPVS

        return self.socket(IPVS)

    @contextlib.contextmanager
    def entered(self) -> Iterator[NetNS]:
        from pyroute2 import netns as pr_netns

        pr_netns.pushns(self.name)
        try:
            yield self
        finally:
            pr_netns.popns()


def _ip(*args: str, stdin: str | None = None) -> None:
    proc = subprocess.run(
        ["ip", *args], input=stdin, text=True, capture_output=True, timeout=60, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")


def _create_netns(name: str) -> NetNS:
    _ip("netns", "add", name)
    try:
        # one `ip` process for the whole set-up (process spawns are slow in the VM)
        _ip(
            "-n",
            name,
            "-batch",
            "-",
            stdin="\n".join(
                [
                    "link set lo up",
                    f"link add {PUBLIC_IF} type dummy",
                    f"addr add {PUBLIC_ADDR} dev {PUBLIC_IF}",
                    f"addr add {PUBLIC_ADDR6} dev {PUBLIC_IF} nodad",
                    f"link set {PUBLIC_IF} up",
                    f"link add {PRIVATE_IF} type dummy",
                    f"addr add {PRIVATE_ADDR} dev {PRIVATE_IF}",
                    f"link set {PRIVATE_IF} up",
                    "",
                ]
            ),
        )
    except BaseException:
        _delete_netns(name)
        raise
    return NetNS(name)


def _delete_netns(name: str) -> None:
    subprocess.run(["ip", "netns", "delete", name], capture_output=True, timeout=60, check=False)


@pytest.fixture
def netns_factory() -> Iterator[Callable[[], NetNS]]:
    """Call it to get another fresh namespace (all are deleted after the test)."""
    created: list[str] = []

    def make() -> NetNS:
        name = f"pirt-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        ns = _create_netns(name)
        created.append(name)
        return ns

    yield make
    for name in reversed(created):
        _delete_netns(name)


@pytest.fixture
def netns(netns_factory: Callable[[], NetNS]) -> NetNS:
    """A fresh namespace: lo up, pub0 = 198.51.100.1/24 + 2001:db8:100::1/64,
    priv0 = 10.200.0.1/24."""
    return netns_factory()
