"""piranha-gui's WSGI app through werkzeug's test client: the auth gate on every route and
method, CSRF, headers, login rate limiting, the edit/save/Apply cycle (no sockets)."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest
from werkzeug.test import Client, TestResponse

from piranha.gui import auth, cli, passwd
from piranha.gui.app import make_app
from piranha.gui.web import HEADERS, App, Settings, World
from testkit.clock import Clock
from testkit.resolver import no_dns
from testkit.system import FakeOs

SAMPLE = Path(__file__).resolve().parents[2] / "conf" / "lvs.cf"
PASSWORD = "a fine password"
ORIGIN = "http://localhost"
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")


@pytest.fixture
def env(tmp_path):
    cf = tmp_path / "lvs.cf"
    cf.write_bytes(SAMPLE.read_bytes())
    pw = tmp_path / "piranha.passwd"
    passwd.write(str(pw), passwd.make_hash(PASSWORD))
    fake, clock = FakeOs(), Clock()
    settings = Settings(config=str(cf), passwd=str(pw), pulse_pidfile=str(tmp_path / "pulse.pid"),
                        lvsd_pidfile=str(tmp_path / "lvs.pid"),
                        pulse_status=str(tmp_path / "pulse.json"),
                        lvsd_status=str(tmp_path / "lvsd.json"))
    app = make_app(settings, World(clock=clock, wall=lambda: 1.8e9, system=fake.os(),
                                   resolver=no_dns()))
    return {"app": app, "cf": cf, "pw": pw, "os": fake, "clock": clock, "tmp": tmp_path}


def hidden(response: TestResponse, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', response.get_data(as_text=True))
    assert match, response.get_data(as_text=True)
    return match.group(1)


def log_in(app: App) -> tuple[Client, str]:
    client = Client(app)
    token = hidden(client.get("/login"), "csrf")
    r = client.post("/login", data={"csrf": token, "password": PASSWORD})
    assert (r.status_code, r.headers["Location"]) == (303, "/control")
    return client, hidden(client.get("/control"), "csrf")


def urls(app: App) -> list[tuple[str, str]]:
    """(endpoint, URL) of every rule of the URL map, numbers filled in."""
    return [(rule.endpoint, re.sub(r"<int:\w+>", "0", rule.rule))
            for rule in app.url_map.iter_rules()]


def test_every_route_and_method_needs_a_session(env):
    app, client = env["app"], Client(env["app"])
    checked = 0
    for endpoint, url in urls(app) + [("?", "/no/such/page")]:
        if endpoint in ("login", "css"):
            continue
        for method in METHODS:
            r = client.open(url, method=method, data={"csrf": "x", "tag": "y"})
            if method in ("GET", "HEAD"):
                assert (r.status_code, r.headers.get("Location")) == (302, "/login"), \
                    (method, url)
            else:
                assert r.status_code == 403, (method, url, r.status_code)
            checked += 1
    assert checked >= 17 * len(METHODS)
    assert env["cf"].read_bytes() == SAMPLE.read_bytes()
    assert env["os"].signals == []


def test_public_paths_and_headers(env):
    client = Client(env["app"])
    for path, status in (("/login", 200), ("/static/piranha.css", 200), ("/control", 302)):
        r = client.get(path)
        assert r.status_code == status
        for name, value in HEADERS.items():
            assert r.headers[name] == value
    assert client.get("/login").headers["Cache-Control"] == "no-store"
    assert client.post("/login", data={"password": PASSWORD}).status_code == 400  # no token


def test_login_cookie_flags(env):
    client = Client(env["app"])
    token = hidden(client.get("/login"), "csrf")
    r = client.post("/login", data={"csrf": token, "password": PASSWORD})
    cookie = [h for h in r.headers.getlist("Set-Cookie") if h.startswith("piranha_session=")][0]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
    assert "Path=/" in cookie


def test_wrong_passwords_lock_the_address_out(env):
    client, clock = Client(env["app"]), env["clock"]
    token = hidden(client.get("/login"), "csrf")
    for _ in range(auth.MAX_FAILURES):
        r = client.post("/login", data={"csrf": token, "password": "nope"})
        assert r.status_code == 401
    assert "refused for 60 s" in r.get_data(as_text=True)
    r = client.post("/login", data={"csrf": token, "password": PASSWORD})
    assert r.status_code == 429 and "try again in 60 s" in r.get_data(as_text=True)
    clock.now += auth.LOCKOUT
    r = client.post("/login", data={"csrf": token, "password": PASSWORD})
    assert r.status_code == 303


def test_posts_need_the_csrf_token_and_our_origin(env):
    client, csrf = log_in(env["app"])
    assert client.post("/apply", data={}).status_code == 403
    assert client.post("/apply", data={"csrf": "forged"}).status_code == 403
    r = client.post("/apply", data={"csrf": csrf}, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403
    r = client.post("/apply", data={"csrf": csrf}, headers={"Origin": ORIGIN})
    assert r.status_code == 303
    assert client.put("/control").status_code == 405  # with a session: plain routing
    huge = {"csrf": csrf, "name": "x" * 300_000}
    assert client.post("/global", data=huge).status_code == 413


def test_a_new_password_ends_the_sessions(env):
    client, _ = log_in(env["app"])
    assert client.get("/control").status_code == 200
    passwd.write(str(env["pw"]), passwd.make_hash("another password"))
    assert client.get("/control").headers["Location"] == "/login"


def test_logout(env):
    client, csrf = log_in(env["app"])
    r = client.post("/logout", data={"csrf": csrf})
    assert r.headers["Location"] == "/login?bye=1"
    assert client.get("/control").status_code == 302


def test_edit_save_and_apply(env):
    client, csrf = log_in(env["app"])
    page = client.get("/virtual/0/servers/0")
    tag = hidden(page, "tag")
    data = {"csrf": csrf, "tag": tag, "name": "web1", "active": "on",
            "address": "192.168.10.300", "port": "80", "weight": "1"}
    r = client.post("/virtual/0/servers/0", data=data)
    assert r.status_code == 422
    assert re.search(r'<p class="error" id="err-address" data-field="address">address: '
                     r"expected an IP address or host name, found &#39;192.168.10.300&#39;",
                     r.get_data(as_text=True))
    assert env["cf"].read_bytes() == SAMPLE.read_bytes()
    r = client.post("/virtual/0/servers/0", data=data | {"address": "192.168.10.21",
                                                         "weight": "3"})
    assert (r.status_code, r.headers["Location"]) == (303, "/virtual/0/servers/0")
    text = env["cf"].read_text()
    assert "address = 192.168.10.21" in text and "serial_no = 2" in text
    assert (env["tmp"] / "lvs.cf.bak").read_bytes() == SAMPLE.read_bytes()
    page = client.get("/virtual/0/servers/0").get_data(as_text=True)
    assert "Saved " in page and 'id="apply-pending"' in page
    # the old form's tag is stale now: refused, nothing written
    r = client.post("/virtual/0/servers/0", data=data | {"address": "192.168.10.22"})
    assert r.status_code == 409 and "NOT saved" in r.get_data(as_text=True)
    assert "192.168.10.22" not in env["cf"].read_text()
    # Apply: nothing runs -> said so, still pending; lvsd runs -> SIGHUP to lvsd
    client.post("/apply", data={"csrf": csrf})
    page = client.get("/control").get_data(as_text=True)
    assert "Not applied: neither pulse" in page and 'id="apply-pending"' in page
    (env["tmp"] / "lvs.pid").write_text("4242\n")
    env["os"].alive.add(4242)
    client.post("/apply", data={"csrf": csrf})
    page = client.get("/control").get_data(as_text=True)
    assert env["os"].signals == [(4242, signal.SIGHUP)]
    assert "sent SIGHUP to lvsd (pid 4242" in page and 'id="apply-pending"' not in page


def test_list_actions_and_escaping(env):
    client, csrf = log_in(env["app"])
    tag = hidden(client.get("/virtual/new"), "tag")
    data = {"csrf": csrf, "tag": tag, "name": "<script>alert(1)</script>",
            "vip": "203.0.113.99", "device": "eth0:7", "port": "8443"}
    r = client.post("/virtual/new", data=data)
    assert (r.status_code, r.headers["Location"]) == (303, "/virtual/2")
    page = client.get("/virtual").get_data(as_text=True)
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    tag = hidden(client.get("/virtual"), "tag")
    assert client.post("/virtual/2/toggle", data={"csrf": csrf, "tag": tag}).status_code == 303
    assert "virtual <script>alert(1)</script> {\n     active = 1" in env["cf"].read_text()
    tag = hidden(client.get("/virtual"), "tag")
    client.post("/virtual/2/delete", data={"csrf": csrf, "tag": tag})
    assert "script" not in env["cf"].read_text()
    assert client.get("/virtual/7").status_code == 404


def test_a_broken_file_is_not_edited(env):
    client, csrf = log_in(env["app"])
    env["cf"].write_text("primary = 10.0.0.1\nwhat = ever\n")
    r = client.get("/global")
    assert r.status_code == 503 and "unknown keyword &#39;what&#39;" in r.get_data(as_text=True)
    assert client.get("/control").status_code == 200
    client.post("/apply", data={"csrf": csrf})
    assert "Not applied" in client.get("/control").get_data(as_text=True)
    assert env["os"].signals == []


def test_piranha_gui_refuses_to_start_without_a_password(tmp_path, capsys):
    assert cli.main(["--passwd-file", str(tmp_path / "none"), "-n"]) == 1
    assert "run piranha-passwd first" in capsys.readouterr().err
    pw = tmp_path / "pw"
    passwd.write(str(pw), passwd.make_hash(PASSWORD))
    assert cli.main(["--passwd-file", str(pw), "--certfile", "x.pem"]) == 2


def test_allow_list_refuses_other_networks_before_authentication(env):
    from ipaddress import ip_network

    from piranha.gui.web import allowed
    settings = env["app"].settings
    nets = (ip_network("10.1.0.0/16"), ip_network("2001:db8::/32"))
    app = make_app(Settings(**{**settings.__dict__, "allow": nets}),
                   World(clock=env["clock"], wall=lambda: 1.8e9, system=env["os"].os(),
                         resolver=no_dns()))
    for addr, ok in (("10.1.2.3", True), ("::ffff:10.1.2.3", True), ("2001:db8::5", True),
                     ("127.0.0.1", False), ("10.2.0.1", False), ("garbage", False)):
        assert allowed(addr, nets) is ok, addr
        r = Client(app).open("/login", environ_base={"REMOTE_ADDR": addr})
        assert r.status_code == (200 if ok else 403), addr
        if not ok:
            assert "not allowed" in r.get_data(as_text=True)
            assert r.headers["X-Frame-Options"] == HEADERS["X-Frame-Options"]
    # refused before the password is even looked at: a right password does not help
    client = Client(app)
    r = client.post("/login", data={"password": PASSWORD}, environ_base={
        "REMOTE_ADDR": "192.0.2.1"})
    assert r.status_code == 403 and "Set-Cookie" not in r.headers
    assert allowed("192.0.2.1", ())  # no --allow: any client


def test_allow_option_names_a_bad_network(capsys):
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["--allow", "10.0.0.0/33"])
    assert ("--allow: expected a network such as 10.0.0.0/24 or an address, found "
            "'10.0.0.0/33'") in capsys.readouterr().err
    args = cli.parser().parse_args(["--allow", "10.0.0.7", "--allow", "::1"])
    assert [str(n) for n in args.allow] == ["10.0.0.7/32", "::1/128"]
