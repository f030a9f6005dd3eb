"""The IPVS backend protocol, and the errno -> message mapping both backends share.

``apply(ops)`` applies every op it can and returns the failures, each a ``KernelError``
naming its op; the caller decides what an EEXIST on add or ENOENT on delete means.
"""

from __future__ import annotations

import errno as E
import os
from collections.abc import Sequence
from typing import Protocol

from piranha.errors import KernelError
from piranha.ipvs.types import (
    AddDest,
    AddService,
    Daemon,
    DelDest,
    DelService,
    Dest,
    EditDest,
    EditService,
    Info,
    Op,
    Query,
    Service,
    ServiceKey,
    StartDaemon,
    StopDaemon,
    Table,
    Timeouts,
    Zero,
)


class IpvsBackend(Protocol):
    """What lvsd and the CLI need from the kernel's IPVS table."""

    def dump(self) -> Table:
        """Every service with its destinations."""
        ...

    def get_service(self, key: ServiceKey) -> tuple[Service, tuple[Dest, ...]]:
        """One service and its destinations; KernelError(ESRCH) when absent."""
        ...

    def apply(self, ops: Sequence[Op]) -> list[KernelError]:
        """Apply ``ops`` in order; return the ones that failed (the others stay applied)."""
        ...

    def info(self) -> Info:
        """IPVS version and connection table size."""
        ...

    def timeouts(self) -> Timeouts:
        """The current connection timeouts."""
        ...

    def daemons(self) -> list[Daemon]:
        """Running sync daemons, master first."""
        ...


_SERVICE_OPS = (AddService, EditService, DelService, Zero)
_DEST_OPS = (AddDest, EditDest, DelDest)

#: (op types, errno) -> ipvsadm 1.31's message (ipvs_strerror)
_MESSAGES: list[tuple[tuple[type, ...], int, str]] = [
    ((AddService,), E.EEXIST, "Service already exists"),
    ((AddService, EditService), E.ENOENT, "Scheduler or persistence engine not found"),
    ((EditService, DelService, Zero, Query), E.ESRCH, "No such service"),
    (_DEST_OPS, E.ESRCH, "Service not defined"),
    ((AddDest,), E.EEXIST, "Destination already exists"),
    ((EditDest, DelDest), E.ENOENT, "No such destination"),
    ((StartDaemon,), E.EEXIST, "Daemon has already run"),
    ((StopDaemon,), E.ESRCH, "No daemon is running"),
]
_ANY = {
    E.EPERM: "Permission denied (you must be root)",
    E.EINVAL: "Invalid operation.  Possibly wrong module version, address not unicast, ...",
    E.ENOPROTOOPT: "Protocol not available",
    E.ENOMEM: "Memory allocation problem",
    E.EOPNOTSUPP: "Operation not supported with IPv6",
    E.EAFNOSUPPORT: "Operation not supported with specified address family",
    E.EMSGSIZE: "Module is wrong version",
}


def strerror(op: object, errno: int) -> str:
    """The message ipvsadm prints when ``op`` fails with ``errno``."""
    for types, code, message in _MESSAGES:
        if errno == code and isinstance(op, types):
            return message
    return _ANY.get(errno) or os.strerror(errno)


def kernel_error(op: object, errno: int) -> KernelError:
    """A KernelError for ``op`` with ipvsadm's message."""
    return KernelError(op, errno, strerror(op, errno))
