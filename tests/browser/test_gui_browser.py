"""piranha-gui in headless Chromium: the admin's whole round trip, with a screenshot of each
main screen (under build/screenshots/, or $PIRANHA_SCREENSHOTS).

One lvsd (fake IPVS backend, so no kernel is needed) runs from the same lvs.cf the GUI edits;
two echo servers on 127.0.0.11/12 are its real servers. The browser logs in, adds a virtual
server, is shown the loader's error next to a bad VIP, fixes it, adds two real servers,
presses Apply (lvsd gets the SIGHUP) and finds the new service with both servers UP on
CONTROL/MONITORING. The second test asks the running server, without a session, for every
route with GET and POST.
"""

from __future__ import annotations

import base64
import json
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.gui import (
    PASSWORD,
    EchoServer,
    Proc,
    browser_or_skip,
    free_port,
    screenshot_dir,
    start_gui,
)
from lab.patience import wait_for

CONFIG = """serial_no = 7
primary = 127.0.0.1
service = lvs
backup_active = 1
backup = 127.0.0.2
keepalive = 2
deadtime = 6
network = nat
nat_router = 192.0.2.254 eth1:1
nat_nmask = 255.255.255.0
"""
VIP = "192.0.2.80"


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """lvsd (fake backend) + piranha-gui on one lvs.cf, two real servers listening."""
    cf = tmp_path / "lvs.cf"
    cf.write_text(CONFIG)
    port = free_port()
    servers = [EchoServer(f"127.0.0.{n}", port) for n in (11, 12)]
    status, pidfile = tmp_path / "lvsd.status.json", tmp_path / "lvs.pid"
    lvsd = Proc([sys.executable, "-m", "piranha.lvs", "-n", "--backend", "fake", "-c", str(cf),
                 "--status-file", str(status), "--control-socket", str(tmp_path / "lvsd.sock"),
                 "--state-file", str(tmp_path / "lvsd.state.json"), "--pidfile", str(pidfile),
                 "--reconcile-interval", "1"], tmp_path / "lvsd.log")
    gui = None
    try:
        wait_for("lvsd's first snapshot", lambda: lvsd.check_alive() and status.exists(), 30)
        gui, url = start_gui(tmp_path, cf, ["--lvsd-pidfile", str(pidfile), "--lvsd-status",
                                            str(status), "--table", "none"])
        yield {"url": url, "cf": cf, "port": port, "status": status, "lvsd": lvsd,
               "gui": gui}
    finally:
        if gui is not None:
            assert gui.stop() == 0, gui.log.read_text()
        lvsd.stop()
        for s in servers:
            s.close()


class Page:
    """The browser, with the few moves the test makes."""

    def __init__(self, driver: Any, url: str, shots: Path) -> None:
        self.driver, self.url, self.shots = driver, url, shots

    def go(self, path: str) -> None:
        self.driver.get(self.url + path)

    def el(self, css: str) -> Any:
        return self.driver.find_element("css selector", css)

    def els(self, css: str) -> list[Any]:
        return list(self.driver.find_elements("css selector", css))

    def click(self, css: str) -> None:
        """Click a link or button that loads a new page; return once the new page is loaded.

        The old document is marked first; the new one is recognised by the missing mark and a
        complete load. (selenium's ``staleness_of`` races the navigation: chromedriver can
        answer "unhandled inspector error" while the page is being replaced, so each probe here
        tolerates an error and asks again.)"""
        self.driver.execute_script("document.documentElement.dataset.piranhaOld = '1'")
        self.el(css).click()
        wait_for(f"the page after clicking {css}", self._new_page_loaded, 30,
                 show=lambda: self.driver.current_url)

    def _new_page_loaded(self) -> bool:
        from selenium.common.exceptions import WebDriverException
        try:
            return bool(self.driver.execute_script(
                "return document.readyState === 'complete' && "
                "!document.documentElement.dataset.piranhaOld"))
        except WebDriverException:  # the page is being replaced
            return False

    def fill(self, values: dict[str, str]) -> None:
        for name, value in values.items():
            box = self.el(f"#f-{name}")
            box.clear()
            box.send_keys(value)

    def check(self, name: str, on: bool = True) -> None:
        box = self.el(f"#f-{name}")
        if box.is_selected() != on:
            box.click()

    def path(self) -> str:
        return str(self.driver.current_url).removeprefix(self.url)

    def flashes(self) -> str:
        """Messages and field errors on the page (for assertion messages)."""
        return " | ".join(e.text for e in self.els(".flash, .error"))

    def shot(self, name: str, width: int = 1280, mobile: bool = False) -> None:
        """A full-page screenshot ``name``.png, ``width`` CSS pixels wide."""
        metrics = {"width": width, "height": 800, "deviceScaleFactor": 1, "mobile": mobile}
        cdp = self.driver.execute_cdp_cmd
        cdp("Emulation.setDeviceMetricsOverride", metrics)
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        cdp("Emulation.setDeviceMetricsOverride", {**metrics, "height": int(height)})
        png = cdp("Page.captureScreenshot", {"format": "png"})["data"]
        cdp("Emulation.clearDeviceMetricsOverride", {})
        (self.shots / f"{name}.png").write_bytes(base64.b64decode(png))


@pytest.fixture
def page(lab: dict[str, Any]) -> Iterator[Page]:
    driver = browser_or_skip()
    try:
        yield Page(driver, lab["url"], screenshot_dir())
    finally:
        driver.quit()


def test_add_virtual_apply_and_monitor(lab: dict[str, Any], page: Page) -> None:
    page.go("/control")
    assert page.path() == "/login"
    page.el("#password").send_keys("wrong password")
    page.click("#login")
    assert "Wrong password" in page.el("#login-message").text, page.driver.page_source
    page.shot("login")
    page.el("#password").send_keys(PASSWORD)
    page.click("#login")
    assert page.path() == "/control"

    page.click("#tab-global")
    assert page.el("#f-primary").get_attribute("value") == "127.0.0.1"
    assert page.el("#f-network-nat").is_selected()
    page.shot("global-settings")
    page.click("#tab-redundancy")
    assert page.el("#f-backup").get_attribute("value") == "127.0.0.2"
    page.shot("redundancy")

    # a new virtual server: first with a bad VIP, which the loader reports at that field
    page.click("#tab-virtual")
    page.click("#add-virtual")
    page.fill({"name": "web", "vip": "192.0.2.300", "port": "8080", "timeout": "1",
               "reentry": "1"})
    page.check("active")
    page.click("#accept")
    error = page.el("#field-vip .error").text
    assert "expected an IP address" in error and "192.0.2.300" in error
    assert not page.els("#field-port .error")
    page.shot("virtual-server-error")
    page.fill({"vip": VIP})
    page.click("#accept")
    assert page.path() == "/virtual/0", page.flashes()
    assert "Saved" in page.flashes() and "Not applied yet" in page.flashes()
    page.shot("virtual-server-edit")

    # two real servers
    page.click("#sub-servers")
    for n in (1, 2):
        page.click("#add-server")
        page.fill({"name": f"web{n}", "address": f"127.0.0.{10 + n}", "port": str(lab["port"])})
        page.click("#accept")
        assert page.path() == "/virtual/0/servers", page.flashes()
    assert [r.get_attribute("data-name") for r in page.els("#servers tbody tr")] == \
        ["web1", "web2"]
    page.shot("real-servers")
    page.click("#edit-server-0")
    assert page.el("#f-address").get_attribute("value") == "127.0.0.11"
    page.shot("real-server-edit")
    page.click("#sub-scripts")
    page.shot("monitoring-scripts")
    page.click("#tab-virtual")
    page.shot("virtual-servers")

    text = lab["cf"].read_text()
    assert "virtual web {" in text and "serial_no = 10" in text  # 3 saves after serial 7
    assert (lab["cf"].parent / "lvs.cf.bak").exists()

    # Apply: lvsd (pulse is not running) gets the SIGHUP and installs the new service
    page.click("#apply-pending")
    assert "sent SIGHUP to lvsd" in page.flashes(), page.flashes()
    assert not page.els("#apply-pending")

    def both_up() -> bool:
        page.go("/control?refresh=0")
        rows = page.els(f'table[data-service="TCP {VIP}:8080"] tr.rs')
        return [(r.get_attribute("data-name"), r.get_attribute("data-state")) for r in rows] \
            == [("web1", "UP"), ("web2", "UP")]

    wait_for("web1 and web2 UP on CONTROL/MONITORING", both_up, 30, step=0.5)
    weights = [r.get_attribute("data-weight") for r in page.els("tr.rs")]
    assert weights == ["1", "1"]
    assert "running" in page.el("#daemon-lvsd").text
    assert "pulse not running" in page.el("#daemon-pulse").text
    snapshot = json.loads(lab["status"].read_text())
    assert [v["name"] for v in snapshot["virtuals"]] == ["web"]
    page.shot("control-monitoring")
    page.shot("control-monitoring-phone", width=390, mobile=True)

    page.click(".logout button")
    assert page.path().startswith("/login")
    page.go("/virtual")
    assert page.path() == "/login"


ROUTE_ARG = re.compile(r"<int:\w+>")


def test_every_route_refuses_a_client_without_session(lab: dict[str, Any]) -> None:
    from piranha.gui.app import ROUTES

    opener = urllib.request.build_opener(_NoRedirect())
    for route in ROUTES:
        if route.endpoint in ("login", "css"):
            continue
        url = lab["url"] + ROUTE_ARG.sub("0", route.path)
        for method in ("GET", "POST", "PUT", "DELETE"):
            data = b"csrf=x&tag=y" if method == "POST" else None
            request = urllib.request.Request(url, data=data, method=method)
            try:
                with opener.open(request, timeout=10) as reply:
                    code, location = reply.status, reply.headers.get("Location")
            except urllib.error.HTTPError as exc:
                code, location = exc.code, exc.headers.get("Location")
            if method == "GET":
                assert (code, location) == (302, "/login"), (method, url)
            else:
                assert code == 403, (method, url, code)
    assert "virtual web" not in lab["cf"].read_text()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None
