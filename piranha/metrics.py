"""Prometheus endpoints: the text exposition (format 0.0.4) and the HTTP server of one daemon.

The daemon's own families are rendered here, not by prometheus_client: its renderer costs
~20 us a sample, 2.2 s for lvsd at 11,000 IPVS entries (``bench/metrics_bench.py``), far over
the 100 ms a scrape may take. The process metrics (CPU, memory, fds) still come from
prometheus_client's ProcessCollector, appended to each scrape.

A daemon's loop hands :meth:`Endpoint.publish` its state; ``take`` copies what a scrape needs
(so the loop goes on changing its tables), and a scrape, on a server thread, renders the
latest copy with ``render``: a scrape never waits for the loop nor touches the kernel.
The server answers ``GET /metrics`` only; it holds at most :data:`MAX_CLIENTS` connections
(more are closed at once, so a connection flood costs no thread) and drops a client that sends
nothing for :data:`CLIENT_TIMEOUT` seconds.
"""

from __future__ import annotations

import math
import socket
import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Generic, TypeVar

from piranha.model import Listen

S = TypeVar("S")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MAX_CLIENTS = 8
CLIENT_TIMEOUT = 10.0


def escape(value: str) -> str:
    """A label value as the text format quotes it."""
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def labels(names: tuple[str, ...], values: Iterable[object]) -> str:
    """``{name="value",...}`` (empty for no names)."""
    if not names:
        return ""
    return "{" + ",".join(f'{n}="{escape(str(v))}"'
                          for n, v in zip(names, values, strict=True)) + "}"


def number(value: float) -> str:
    """A sample value: integers as integers, floats exactly, infinities as Prometheus spells
    them."""
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


class Family:
    """One metric family: its HELP and TYPE lines, then one line per sample. A counter's
    name is given without ``_total``; its samples carry it."""

    __slots__ = ("name", "lines")

    def __init__(self, name: str, kind: str, help_text: str) -> None:
        self.name = f"{name}_total" if kind == "counter" else name
        self.lines = [f"# HELP {self.name} {help_text}", f"# TYPE {self.name} {kind}"]

    def add(self, label_text: str, value: float) -> None:
        """A sample; ``label_text`` from :func:`labels`."""
        self.lines.append(f"{self.name}{label_text} {number(value)}")

    def add_as(self, suffix: str, label_text: str, value: float) -> None:
        """A sample of a summary's or histogram's series (``_count``, ``_sum``, ``_bucket``)."""
        self.lines.append(f"{self.name}{suffix}{label_text} {number(value)}")

    def extend(self, samples: Iterable[tuple[str, float]]) -> None:
        """Many samples (the fast path: integers need no :func:`number`)."""
        name = self.name
        self.lines.extend([f"{name}{t} {v if type(v) is int else number(v)}"
                           for t, v in samples])


def render(families: Iterable[Family]) -> str:
    """The text of ``families``."""
    lines: list[str] = []
    for family in families:
        lines += family.lines
    return "\n".join(lines) + "\n" if lines else ""


class Endpoint(Generic[S]):
    """One daemon's ``/metrics``: the latest published sample, plus process metrics."""

    def __init__(self, take: Callable[[Any], S], render_sample: Callable[[S], Iterable[Family]]):
        from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector

        self._take, self._render = take, render_sample
        self._lock = threading.Lock()
        self._sample: S | None = None
        self._process = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=self._process)
        PlatformCollector(registry=self._process)
        self._server: ThreadingHTTPServer | None = None
        self._serving = False

    def publish(self, source: object) -> None:
        """Make what ``source`` shows now what the next scrape shows (the loop calls this)."""
        sample = self._take(source)
        with self._lock:
            self._sample = sample

    def text(self) -> bytes:
        """One scrape."""
        from prometheus_client import generate_latest

        with self._lock:
            sample = self._sample
        ours = "" if sample is None else render(self._render(sample))
        # "replace": an lvs.cf name with bytes that are not UTF-8 must not break the scrape
        return ours.encode("utf-8", "replace") + generate_latest(self._process)

    def serve(self, where: Listen) -> None:
        """Listen on ``where`` (OSError if it cannot) and answer on threads of its own."""
        self.bind(where)
        self.start()

    def bind(self, where: Listen) -> None:
        """Listen on ``where`` (OSError if it cannot); nothing is answered before
        :meth:`start` (a daemon binds before it forks into the background, then starts)."""
        family = socket.AF_INET6 if where.address.version == 6 else socket.AF_INET
        server_class = type("Server", (_Server,), {"address_family": family})
        self._server = server_class((str(where.address), where.port), _handler(self))

    def start(self) -> None:
        """Answer scrapes, on a thread of its own."""
        assert self._server is not None
        threading.Thread(target=self._server.serve_forever, name="metrics",
                         daemon=True).start()
        self._serving = True

    @property
    def port(self) -> int:
        """The port listened on (what port 0 became)."""
        assert self._server is not None
        return int(self._server.server_address[1])

    def close(self) -> None:
        """Stop listening."""
        if self._server is not None:
            if self._serving:  # shutdown() waits for serve_forever, forever if it never ran
                self._server.shutdown()
            self._server.server_close()
            self._server, self._serving = None, False


class _Server(ThreadingHTTPServer):
    """A thread per connection, at most :data:`MAX_CLIENTS` of them."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]):
        self._slots = threading.BoundedSemaphore(MAX_CLIENTS)
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


def _handler(endpoint: Endpoint[Any]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = CLIENT_TIMEOUT  # a client that stalls loses its connection
        protocol_version = "HTTP/1.0"

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.path.split("?", 1)[0] != "/metrics":
                self._reply(404, b"only /metrics is served here\n", "text/plain")
                return
            self._reply(200, endpoint.text(), CONTENT_TYPE)

        def _reply(self, code: int, body: bytes, kind: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            """Quiet: a scrape every few seconds is not news."""

    return Handler
