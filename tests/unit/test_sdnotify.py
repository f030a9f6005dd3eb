"""sdnotify.notify against real AF_UNIX datagram sockets (path and abstract)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from piranha.sdnotify import notify

STATE = "READY=1\nSTATUS=active\nMAINPID=123"


@pytest.fixture
def receiver() -> Iterator[socket.socket]:
    """An unbound datagram socket the test binds; closed afterwards."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.settimeout(2.0)
    try:
        yield sock
    finally:
        sock.close()


def test_path_socket_receives_exact_bytes(receiver: socket.socket, tmp_path: Path) -> None:
    path = tmp_path / "notify.sock"
    receiver.bind(str(path))
    assert notify(STATE, {"NOTIFY_SOCKET": str(path)}) is True
    assert receiver.recv(4096) == b"READY=1\nSTATUS=active\nMAINPID=123"


def test_abstract_socket_receives_exact_bytes(receiver: socket.socket) -> None:
    name = f"piranha-sdnotify-test-{os.getpid()}"
    receiver.bind(b"\0" + name.encode())
    assert notify("STOPPING=1", {"NOTIFY_SOCKET": "@" + name}) is True
    assert receiver.recv(4096) == b"STOPPING=1"


def test_utf8_status_is_sent_as_utf8(receiver: socket.socket, tmp_path: Path) -> None:
    path = tmp_path / "n.sock"
    receiver.bind(str(path))
    assert notify("STATUS=réseau", {"NOTIFY_SOCKET": str(path)}) is True
    assert receiver.recv(4096) == "STATUS=réseau".encode()


def test_unset_socket_returns_false() -> None:
    assert notify("READY=1", {}) is False
    assert notify("READY=1", {"NOTIFY_SOCKET": ""}) is False


def test_process_environment_is_the_default(
    receiver: socket.socket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert notify("READY=1") is False
    path = tmp_path / "env.sock"
    receiver.bind(str(path))
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    assert notify("READY=1") is True
    assert receiver.recv(4096) == b"READY=1"


@pytest.mark.parametrize("value", ["relative/notify.sock", "@", "vsock:2:1234"])
def test_unsupported_addresses_return_false(value: str) -> None:
    assert notify("READY=1", {"NOTIFY_SOCKET": value}) is False


def test_missing_socket_file_returns_false(tmp_path: Path) -> None:
    assert notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "absent.sock")}) is False


def test_nobody_listening_returns_false(tmp_path: Path) -> None:
    # A socket file left behind by a receiver that has gone: ECONNREFUSED.
    path = tmp_path / "gone.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.close()
    assert notify("READY=1", {"NOTIFY_SOCKET": str(path)}) is False


def test_unbound_abstract_name_returns_false() -> None:
    name = f"@piranha-sdnotify-nobody-{os.getpid()}"
    assert notify("READY=1", {"NOTIFY_SOCKET": name}) is False


def test_stream_socket_returns_false(tmp_path: Path) -> None:
    path = tmp_path / "stream.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        server.listen()
        assert notify("READY=1", {"NOTIFY_SOCKET": str(path)}) is False
