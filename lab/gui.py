"""Helpers of the browser tests: a real piranha-gui process, an lvsd with the fake IPVS
backend, echo servers on loopback addresses, headless Chromium through selenium.

* :func:`free_port`: a TCP port nobody listens on (127.0.0.1);
* :class:`Proc`: a daemon started with ``-n`` whose output goes to a log file;
* :func:`start_gui`: piranha-gui on 127.0.0.1 with its password set by ``piranha-passwd
  --stdin`` and every path under the test's tmp folder;
* :func:`browser_or_skip`: a headless Chromium, or skip (fail when ``PIRANHA_REQUIRE_BROWSER``
  is set, as ``scripts/test.sh`` does: there the bootstrap installed it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from lab.netlab import ROOT
from lab.patience import limit, wait_for

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
PASSWORD = "correct horse battery"


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def listening(host: str, port: int) -> bool:
    """True when something accepts connections at host:port."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


class Proc:
    """A foreground daemon with its output in ``log``."""

    def __init__(self, argv: list[str], log: Path, cwd: Path = ROOT) -> None:
        self.log = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=cwd)

    def check_alive(self) -> bool:
        """True while running; AssertionError with its log once it has died."""
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.proc.args} exited {self.proc.returncode}:\n"
                                 f"{self.log.read_text()}")
        return True

    def stop(self) -> int:
        """SIGTERM, then wait; its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(limit(15))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(limit(5))
        return self.proc.returncode


class EchoServer:
    """A TCP server on host:port that echoes (a real server for nanny to check)."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(16)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn, contextlib.suppress(OSError):
                conn.settimeout(2)
                while data := conn.recv(4096):
                    conn.sendall(data)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def set_password(path: Path, password: str = PASSWORD) -> None:
    """``piranha-passwd --stdin -f path``."""
    subprocess.run([sys.executable, "-m", "piranha.gui.passwd", "--stdin", "-f", str(path)],
                   input=password + "\n", text=True, check=True, capture_output=True,
                   timeout=limit(30))


def start_gui(tmp: Path, config: Path, extra: list[str], host: str = "127.0.0.1") -> tuple[Proc,
                                                                                          str]:
    """piranha-gui in the foreground on a free port; the process and its base URL."""
    passwd = tmp / "piranha.passwd"
    set_password(passwd)
    port = free_port(host)
    argv = [sys.executable, "-m", "piranha.gui.cli", "-n", "-v", "--listen", host, "--port",
            str(port), "-c", str(config), "--passwd-file", str(passwd), "--pidfile",
            str(tmp / "gui.pid"), "--pulse-pidfile", str(tmp / "pulse.pid"),
            "--pulse-status", str(tmp / "pulse.status.json"), *extra]
    gui = Proc(argv, tmp / "gui.log")
    wait_for("piranha-gui to listen", lambda: gui.check_alive() and listening(host, port), 30)
    return gui, f"http://{host}:{port}"


def browser_or_skip() -> Any:
    """A headless Chromium driven by selenium (chromedriver from Debian)."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not shutil.which(p)]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("the selenium package")
    if missing:
        reason = f"browser tests need {', '.join(missing)} (apt-get install chromium " \
                 "chromium-driver; pip install -e '.[test]')"
        if os.environ.get("PIRANHA_REQUIRE_BROWSER") == "1":
            pytest.fail(reason + " - the bootstrap should have installed them", pytrace=False)
        pytest.skip(reason)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,900", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def screenshot_dir() -> Path:
    """Where screenshots go: $PIRANHA_SCREENSHOTS, else build/screenshots."""
    folder = Path(os.environ.get("PIRANHA_SCREENSHOTS") or ROOT / "build" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
