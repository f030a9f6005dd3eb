"""sd_notify(3) without libsystemd: one datagram to the socket named by $NOTIFY_SOCKET.

pulse runs as ``Type=notify`` under systemd (contrib/pulse.service) and reports
``READY=1`` once its heartbeat sockets are bound, ``STOPPING=1`` on SIGTERM.

Rules:
* No NOTIFY_SOCKET (not started by systemd): do nothing, return False.
* A notify failure must never take the daemon down: OSError is swallowed and
  reported as False. The socket is non-blocking, so a wedged systemd costs a
  lost message, never a stalled heartbeat loop.
* Only AF_UNIX addresses: an absolute path, or ``@name`` for the abstract
  namespace. Other forms (e.g. systemd 254's ``vsock:``) return False.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping


def notify(state: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send ``state`` (e.g. "READY=1\\nSTATUS=active"); True if the datagram went out."""
    env = os.environ if environ is None else environ
    address = _address(env.get("NOTIFY_SOCKET", ""))
    if address is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.setblocking(False)
            sock.sendto(state.encode("utf-8"), address)
    except OSError:
        return False
    return True


def _address(name: str) -> bytes | None:
    """The AF_UNIX address for a NOTIFY_SOCKET value, or None if unusable."""
    if name.startswith("@") and len(name) > 1:
        return b"\0" + os.fsencode(name[1:])
    if name.startswith("/"):
        return os.fsencode(name)
    return None
