"""The login page, the style sheet, CONTROL/MONITORING and Apply."""

from __future__ import annotations

import logging
from importlib import resources

from werkzeug.wrappers import Response

from piranha.gui import auth, monitor, passwd, reload, store
from piranha.gui.web import LOGIN_COOKIE, SESSION_COOKIE, Ctx

#: the auto-refresh periods offered (seconds; 0 = off); Piranha forced at least 10
REFRESH = (0, 5, 10, 30, 60)
_CSS = resources.files("piranha.gui").joinpath("static/piranha.css")
log = logging.getLogger("piranha.piranha-gui")


def css(ctx: Ctx) -> Response:
    """The one style sheet (no external resources anywhere)."""
    return Response(_CSS.read_bytes(), content_type="text/css; charset=utf-8",
                    headers={"Cache-Control": "no-cache"})


def index(ctx: Ctx) -> Response:
    """/ goes to CONTROL/MONITORING."""
    return ctx.redirect("/control")


def login(ctx: Ctx) -> Response:
    """The login form (GET) and the password check (POST), rate limited per address."""
    app, request = ctx.app, ctx.request
    if request.method != "POST":
        return _login_page(ctx, "You are logged out." if request.args.get("bye") else "")
    client = request.remote_addr or "?"
    wait = app.limiter.wait(client)
    if wait > 0:
        return _login_page(ctx, f"Too many failed logins from {client}: try again in "
                           f"{wait:.0f} s.", 429)
    if not app.login_csrf.valid(request.cookies.get(LOGIN_COOKIE), request.form.get("csrf")):
        return _login_page(ctx, "The login form had expired; please log in again.", 400,
                           fresh=True)
    stored = passwd.read(app.settings.passwd)
    if stored is None:
        return _login_page(ctx, "No password is set: run piranha-passwd on this host.", 503)
    if not passwd.verify(stored, request.form.get("password", "")):
        lockout = app.limiter.failed(client)
        log.warning(f"login failed from {client}" + (f"; locked out for {lockout:.0f} s"
                                                     if lockout else ""))
        message = "Wrong password."
        if lockout:
            message += f" Too many failures: logins from {client} are refused for " \
                       f"{lockout:.0f} s."
        return _login_page(ctx, message, 401)
    app.limiter.succeeded(client)
    log.info(f"login from {client}")
    session = app.sessions.create(auth.fingerprint(stored.line()))
    response = ctx.redirect("/control")
    response.set_cookie(SESSION_COOKIE, session.token, httponly=True, samesite="Strict",
                        secure=app.settings.secure_cookies, path="/")
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


def _login_page(ctx: Ctx, message: str, status: int = 200, fresh: bool = False) -> Response:
    cookie = None if fresh else ctx.request.cookies.get(LOGIN_COOKIE)
    new = cookie is None
    cookie = cookie or ctx.app.login_csrf.new_cookie()
    response = ctx.render("login.html", status, title="Log in", tab="",
                          login_token=ctx.app.login_csrf.token(cookie), message=message,
                          error=status >= 400)
    if new:
        response.set_cookie(LOGIN_COOKIE, cookie, httponly=True, samesite="Strict",
                            secure=ctx.app.settings.secure_cookies, path="/login")
    return response


def logout(ctx: Ctx) -> Response:
    """End the session."""
    if ctx.session is not None:
        ctx.app.sessions.drop(ctx.session.token)
    response = ctx.redirect("/login?bye=1")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def control(ctx: Ctx) -> Response:
    """CONTROL/MONITORING: daemons, the routing table with health and rates, Apply."""
    app, session = ctx.app, ctx.session
    assert session is not None
    asked = ctx.request.args.get("refresh", "")
    if asked.isdigit() and int(asked) in REFRESH:
        session.refresh = int(asked)
    s = app.settings
    inputs = monitor.gather(s.pulse_status, s.lvsd_status, app.world.table)
    view = monitor.build(inputs, app.world.system.alive, app.world.wall())
    current = store.read(s.config, app.world.resolver)
    return ctx.render("control.html", title="Control/Monitoring", tab="control", view=view,
                      current=current, refresh=session.refresh, periods=REFRESH,
                      settings=s)


def apply(ctx: Ctx) -> Response:
    """Apply: check lvs.cf, optionally copy it to the backup, SIGHUP pulse (else lvsd)."""
    app, s = ctx.app, ctx.app.settings
    current = store.read(s.config, app.world.resolver)
    if current.cluster is None or current.data is None:
        ctx.flash("error", f"Not applied: {s.config} cannot be used ("
                  + ("it does not exist" if current.data is None else
                     f"{len(current.errors)} errors; see GLOBAL SETTINGS") + ").")
        return ctx.redirect("/control")
    if s.copy_to_backup:
        copied = reload.copy_to_backup(s.config, current.cluster, s.backup_path or s.config,
                                       app.world.system)
        ctx.flash("ok" if copied.ok else "error", copied.message)
        log.info(f"apply: {copied.message}")
    result = reload.signal_daemons(s.pulse_pidfile, s.lvsd_pidfile, app.world.system)
    ctx.flash("ok" if result.ok else "error", result.message)
    log.info(f"apply (serial_no {current.cluster.serial_no}): {result.message}")
    if result.ok:
        app.pending = False
    return ctx.redirect("/control")
