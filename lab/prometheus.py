"""A real Prometheus server (Debian 12's package) in a lab namespace, as the tests' oracle of
the metrics endpoints and the shipped alert rules.

:class:`Prometheus` writes a configuration scraping the given targets every second and
evaluating the given rule files every second, runs ``ip netns exec NS prometheus`` with its
storage under the test's folder, and answers queries and the alert list through its HTTP API
(from inside the namespace, where it listens on 127.0.0.1).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lab.netlab import Netns
from lab.patience import START, wait_for

PORT = 9090


def quick_rules(text: str, wait: str = "2s") -> str:
    """Alert rules with every ``for:`` shortened to ``wait``: the test sees an alert fire
    without waiting the minutes a production rule waits (the expressions stay as shipped)."""
    return re.sub(r"(?m)^(\s*)for: \S+$", rf"\1for: {wait}", text)


class Prometheus:
    """``prometheus`` in ``ns``; ``jobs`` maps a job name to its targets (host:port)."""

    def __init__(self, ns: Netns, folder: Path, jobs: Mapping[str, Sequence[str]],
                 rules: Sequence[Path] = ()) -> None:
        self.ns, self.dir = ns, folder
        folder.mkdir(parents=True, exist_ok=True)
        config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s",
                             "scrape_timeout": "900ms"},
                  "rule_files": [str(r) for r in rules],
                  "scrape_configs": [{"job_name": job, "static_configs": [{"targets": list(t)}]}
                                     for job, t in jobs.items()]}
        self.config = folder / "prometheus.yml"
        self.config.write_text(json.dumps(config, indent=2))  # JSON is YAML
        self.log = folder / "prometheus.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", ns.name, "prometheus", f"--config.file={self.config}",
                 f"--storage.tsdb.path={folder / 'data'}",
                 f"--web.listen-address=127.0.0.1:{PORT}"],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for("Prometheus ready", self._ready, START, step=0.2, show=self.text)

    def text(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited {self.proc.returncode}:\n{self.text()}")
        return self._get("/-/ready") is not None

    def _get(self, path: str) -> bytes | None:
        """GET ``path`` from inside the namespace; the body of a 200, else None."""
        with self.ns.entered():
            sock = socket.socket()
        with sock:
            sock.settimeout(10)
            try:
                sock.connect(("127.0.0.1", PORT))
                sock.sendall(f"GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n".encode())
                reply = b""
                while chunk := sock.recv(65536):
                    reply += chunk
            except OSError:
                return None
        head, _, body = reply.partition(b"\r\n\r\n")
        return body if head.split(b" ", 2)[1:2] == [b"200"] else None

    def api(self, path: str, **params: str) -> Any:
        """The ``data`` of an API answer (None when Prometheus does not answer)."""
        body = self._get(f"/api/v1/{path}?{urllib.parse.urlencode(params)}")
        return None if body is None else json.loads(body)["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's samples (``metric`` labels and ``value``)."""
        data = self.api("query", query=expr)
        return [] if data is None else list(data["result"])

    def firing(self) -> list[dict[str, str]]:
        """The labels of every firing alert."""
        data = self.api("alerts")
        return [] if data is None else [a["labels"] for a in data["alerts"]
                                        if a["state"] == "firing"]

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)
