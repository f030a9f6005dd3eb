"""The WSGI core: the auth gate in front of every route, CSRF, security headers, rendering.

Order of checks for every request (so an unauthenticated client learns nothing about routes
or methods): public paths (the login page and the style sheet) pass; anything else without a
live session is answered 302 to /login (GET, HEAD) or 403 (every other method), whatever the
path; then a cross-origin POST is refused; then routing (404/405); then every POST must carry
the session's CSRF token. Handlers get a :class:`Ctx`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import Any
from urllib.parse import urlsplit

import jinja2
from werkzeug.exceptions import Forbidden, HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from piranha.config import DEFAULT_PATH, Resolver
from piranha.gui import auth, monitor, passwd, reload
from piranha.ipvs.types import Table
from piranha.lvsd import status as lvsd_status
from piranha.text import ago

SESSION_COOKIE = "piranha_session"
LOGIN_COOKIE = "piranha_login"
CSS_PATH = "/static/piranha.css"
PUBLIC = {"/login", CSS_PATH}
log = logging.getLogger("piranha.piranha-gui")
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; form-action 'self'; frame-ancestors "
                               "'none'; base-uri 'none'; object-src 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}


@dataclass(frozen=True)
class Settings:
    """Where things are, and the optional behaviours (from piranha-gui's options)."""

    config: str = DEFAULT_PATH
    passwd: str = passwd.DEFAULT_PATH
    pulse_pidfile: str = "/var/run/pulse.pid"
    lvsd_pidfile: str = "/var/run/lvs.pid"
    pulse_status: str = "/var/run/piranha/pulse.status.json"
    lvsd_status: str = lvsd_status.DEFAULT_PATH
    secure_cookies: bool = False  # True when served over TLS
    copy_to_backup: bool = False
    backup_path: str | None = None  # where on the backup; default: the same path as config
    #: client networks allowed to reach the tool at all (``--allow``); empty: any client
    allow: tuple[IPv4Network | IPv6Network, ...] = ()


@dataclass(frozen=True)
class World:
    """The outside world the app touches, injected (tests pass fakes)."""

    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    table: Callable[[], Table] | None = None
    system: reload.Os = reload.SYSTEM
    resolver: Resolver | None = None


Handler = Callable[..., Response]


class GuiRequest(Request):
    """A request with a small body limit: the largest form is a few kilobytes."""

    max_content_length = 256 * 1024


@dataclass(frozen=True)
class Route:
    """One URL rule and the function that answers it."""

    path: str
    endpoint: str
    methods: tuple[str, ...]
    handler: Handler


@dataclass
class Ctx:
    """One request as a handler sees it."""

    app: App
    request: Request
    session: auth.Session | None

    def form(self) -> dict[str, str]:
        """The submitted form fields (first value of each)."""
        return {k: v for k, v in self.request.form.items()}

    def flash(self, kind: str, text: str) -> None:
        """A message for the next page this session sees (info, ok, error)."""
        if self.session is not None:
            self.session.flashes.append((kind, text))

    def redirect(self, location: str) -> Response:
        """303 to ``location`` (a local path): post/redirect/get."""
        return Response("", 303, {"Location": location})

    def render(self, template: str, status: int = 200, **values: Any) -> Response:
        """A page from ``template`` with the common values added."""
        flashes: list[tuple[str, str]] = []
        if self.session is not None:
            flashes, self.session.flashes = self.session.flashes, []
        page = self.app.templates.get_template(template).render(
            session=self.session, csrf=self.session.csrf if self.session else "",
            flashes=flashes, pending=self.app.pending and self.session is not None,
            **values)
        return Response(page, status, content_type="text/html; charset=utf-8")


class App:
    """The piranha-gui WSGI application."""

    def __init__(self, settings: Settings, routes: Sequence[Route], world: World) -> None:
        self.settings, self.world = settings, world
        self.url_map = Map([Rule(r.path, endpoint=r.endpoint, methods=list(r.methods))
                            for r in routes])
        self.handlers = {r.endpoint: r.handler for r in routes}
        self.sessions = auth.SessionStore(world.clock)
        self.limiter = auth.LoginLimiter(world.clock)
        self.login_csrf = auth.LoginCsrf()
        self.refusals = _Refusals(world.clock)
        #: one edit at a time: read lvs.cf, check its tag, write
        self.write_lock = threading.Lock()
        #: lvs.cf was saved and not applied since
        self.pending = False
        self.templates = jinja2.Environment(
            loader=jinja2.PackageLoader("piranha.gui", "templates"),
            autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
            lstrip_blocks=True)
        self.templates.filters["human"] = monitor.human
        self.templates.filters["ago"] = lambda at: ago(world.wall() - at)
        self.templates.filters["clock"] = lambda at: monitor.clock(at, world.wall())

    def __call__(self, environ: dict[str, Any],
                 start_response: Callable[..., Any]) -> Iterable[bytes]:
        response = self.handle(GuiRequest(environ))
        return response(environ, start_response)

    def handle(self, request: Request) -> Response:
        """The response to ``request``, security headers included."""
        try:
            if not allowed(request.remote_addr, self.settings.allow):
                # before authentication: a refused network cannot even try passwords
                self.refusals.note(request.remote_addr or "?")
                raise Forbidden("your address is not allowed to use this tool")
            response = self._dispatch(request)
        except HTTPException as exc:
            response = Response(f"{exc.code} {exc.name}: {exc.description}\n", exc.code or 500,
                                content_type="text/plain; charset=utf-8")
        except Exception:  # noqa: BLE001 - logged; the client gets a plain 500, headers set
            log.exception(f"{request.method} {request.path} failed")
            response = Response("500 Internal Server Error: see the piranha-gui log\n", 500,
                                content_type="text/plain; charset=utf-8")
        response.headers.update(HEADERS)
        if request.path != CSS_PATH:
            response.headers["Cache-Control"] = "no-store"
        return response

    def password_fingerprint(self) -> str | None:
        """Fingerprint of the stored password hash; None when no password is set."""
        stored = passwd.read(self.settings.passwd)
        return None if stored is None else auth.fingerprint(stored.line())

    def _dispatch(self, request: Request) -> Response:
        session = None
        if request.path not in PUBLIC:
            session = self.sessions.get(request.cookies.get(SESSION_COOKIE),
                                        self.password_fingerprint())
            if session is None:
                if request.method in ("GET", "HEAD"):
                    return Response("", 302, {"Location": "/login"})
                raise Forbidden("log in first")
        if request.method == "POST" and not _same_origin(request):
            raise Forbidden("cross-origin request refused")
        endpoint, args = self.url_map.bind_to_environ(request.environ).match()
        if request.method == "POST" and session is not None \
                and not auth.same(request.form.get("csrf"), session.csrf):
            raise Forbidden("the form's security token is missing or stale; reload the page")
        return self.handlers[endpoint](Ctx(self, request, session), **args)


def allowed(remote: str | None, networks: Sequence[IPv4Network | IPv6Network]) -> bool:
    """True when ``networks`` is empty or holds the client address ``remote`` (an IPv4 client
    of a dual-stack socket, ``::ffff:a.b.c.d``, counts as a.b.c.d)."""
    if not networks:
        return True
    try:
        address = ip_address(remote or "")
    except ValueError:
        return False
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in net for net in networks)


class _Refusals:
    """One log line per refused address per minute (a scan must not flood the log)."""

    def __init__(self, clock: Callable[[], float], every: float = 60.0,
                 size: int = 1024) -> None:
        self.clock, self.every, self.size = clock, every, size
        self.last: dict[str, float] = {}

    def note(self, address: str) -> None:
        now = self.clock()
        if now - self.last.get(address, -self.every) < self.every:
            return
        if len(self.last) >= self.size:
            self.last.clear()
        self.last[address] = now
        log.warning(f"refused a request from {address[:64]}: not in --allow")


def _same_origin(request: Request) -> bool:
    """False when the browser says the request comes from another site.

    With ``Referrer-Policy: no-referrer`` browsers send ``Origin: null`` even for our own
    forms, so "null" proves nothing either way: the CSRF token decides.
    """
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return True
    return urlsplit(origin).netloc == request.host
