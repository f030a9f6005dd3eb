"""The configuration screens: GLOBAL SETTINGS, REDUNDANCY, VIRTUAL SERVERS and their pages.

Each POST re-reads lvs.cf under the app's write lock, refuses to save over a file that
changed since the form was shown (the form carries the file's tag), runs the edit through
:mod:`piranha.gui.editor` and either shows the errors next to the fields or writes the new
canonical file and says so. Nothing is applied here: that is the Apply button's job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response

from piranha.gui import editor, forms, store
from piranha.gui.document import Section
from piranha.gui.editor import Outcome
from piranha.gui.web import Ctx

STALE = ("lvs.cf changed since this page was loaded (another edit, or by hand); your change "
         "was NOT saved. Reload the page to see the current file.")
#: what a new virtual or real server form starts with (Piranha's GUI defaults)
NEW_VIRTUAL = {"device": "eth0:1", "port": "80", "protocol": "tcp", "scheduler": "wlc",
               "timeout": "6", "reentry": "15"}
NEW_SERVER = {"active": "on", "weight": "1"}

Locate = Callable[[Section], Section | None]
log = logging.getLogger("piranha.piranha-gui")


def global_settings(ctx: Ctx) -> Response:
    """GLOBAL SETTINGS: addresses of the primary, network type, NAT router, timeouts."""
    return _section_page(ctx, forms.GLOBAL, "Global settings", "global", lambda root: root)


def redundancy(ctx: Ctx) -> Response:
    """REDUNDANCY: the backup director and the heartbeat."""
    return _section_page(ctx, forms.REDUNDANCY, "Redundancy", "redundancy", lambda root: root)


def virtual(ctx: Ctx, v: int) -> Response:
    """VIRTUAL SERVER: the fields of one virtual."""
    return _section_page(ctx, forms.VIRTUAL, "Virtual server", "virtual",
                         lambda root: editor.virtual(root, v), v=v, sub="virtual")


def scripts(ctx: Ctx, v: int) -> Response:
    """MONITORING SCRIPTS: send/expect/program of one virtual."""
    return _section_page(ctx, forms.SCRIPTS, "Monitoring scripts", "virtual",
                         lambda root: editor.virtual(root, v), v=v, sub="scripts")


def server(ctx: Ctx, v: int, r: int) -> Response:
    """REAL SERVER edit: one real server of a virtual."""
    return _section_page(ctx, forms.SERVER, "Real server", "virtual",
                         lambda root: editor.server(root, v, r), v=v, sub="servers")


def _section_page(ctx: Ctx, form: forms.Form, title: str, tab: str, locate: Locate,
                  **extra: Any) -> Response:
    current = store.read(ctx.app.settings.config, ctx.app.world.resolver)
    if current.cluster is None:
        return _broken(ctx, current)
    section = locate(editor.sections(current.cluster))
    if section is None:
        raise NotFound("no such block in lvs.cf")
    page = dict(title=title, tab=tab, form=form, masks=forms.MASKS, cancel=ctx.request.path,
                **_heading(current, extra))
    if ctx.request.method != "POST":
        return ctx.render("edit.html", values=forms.values(form, section), tag=current.tag,
                          fields={}, errors=[], **page)
    data = ctx.form()
    with ctx.app.write_lock:
        current = store.read(ctx.app.settings.config, ctx.app.world.resolver)
        if current.cluster is None or data.get("tag") != current.tag:
            return ctx.render("edit.html", 409, values=data, tag=data.get("tag", ""),
                              fields={}, errors=[STALE], **page)
        root = editor.sections(current.cluster)
        section = locate(root)
        if section is None:
            raise NotFound("no such block in lvs.cf")
        outcome = editor.edit_section(current.cluster, root, section, form, data,
                                      ctx.app.world.resolver)
        if outcome.ok and _save(ctx, current, outcome):
            return ctx.redirect(ctx.request.path)
    return ctx.render("edit.html", 422, values=data, tag=data.get("tag", ""),
                      fields=outcome.fields, errors=outcome.errors, **page)


def new_virtual(ctx: Ctx) -> Response:
    """ADD on VIRTUAL SERVERS: a new virtual from the VIRTUAL SERVER form."""
    return _new_block(ctx, forms.VIRTUAL, "New virtual server", NEW_VIRTUAL,
                      lambda root: root, "virtual", {})


def new_server(ctx: Ctx, v: int) -> Response:
    """ADD on REAL SERVER: a new real server of virtual ``v``."""
    return _new_block(ctx, forms.SERVER, "New real server", NEW_SERVER,
                      lambda root: editor.virtual(root, v), "server", {"v": v, "sub": "servers"})


def _new_block(ctx: Ctx, form: forms.Form, title: str, defaults: Mapping[str, str],
               locate: Locate, kind: str, extra: dict[str, Any]) -> Response:
    current = store.read(ctx.app.settings.config, ctx.app.world.resolver)
    if current.cluster is None:
        return _broken(ctx, current)
    if locate(editor.sections(current.cluster)) is None:
        raise NotFound("no such virtual server")
    cancel = f"/virtual/{extra['v']}/servers" if kind == "server" else "/virtual"
    page = dict(title=title, tab="virtual", form=form, masks=forms.MASKS, cancel=cancel,
                **_heading(current, extra))
    if ctx.request.method != "POST":
        return ctx.render("edit.html", values=dict(defaults), tag=current.tag, fields={},
                          errors=[], **page)
    data = ctx.form()
    with ctx.app.write_lock:
        current = store.read(ctx.app.settings.config, ctx.app.world.resolver)
        root = editor.sections(current.cluster) if current.cluster is not None else None
        parent = locate(root) if root is not None else None
        if current.cluster is None or root is None or parent is None \
                or data.get("tag") != current.tag:
            return ctx.render("edit.html", 409, values=data, tag=data.get("tag", ""),
                              fields={}, errors=[STALE], **page)
        outcome = editor.add_block(current.cluster, root, parent, kind, form, data,
                                   ctx.app.world.resolver)
        if outcome.ok and _save(ctx, current, outcome):
            count = len(parent.kids(kind)) - 1
            where = f"/virtual/{count}" if kind == "virtual" else \
                f"/virtual/{extra['v']}/servers"
            return ctx.redirect(where)
    return ctx.render("edit.html", 422, values=data, tag=data.get("tag", ""),
                      fields=outcome.fields, errors=outcome.errors, **page)


def virtuals(ctx: Ctx) -> Response:
    """VIRTUAL SERVERS: the list, with ADD, EDIT, (DE)ACTIVATE and DELETE."""
    current = store.read(ctx.app.settings.config, ctx.app.world.resolver)
    if current.cluster is None:
        return _broken(ctx, current)
    return ctx.render("virtuals.html", title="Virtual servers", tab="virtual",
                      cluster=current.cluster, tag=current.tag)


def servers(ctx: Ctx, v: int) -> Response:
    """REAL SERVER: the list of one virtual's real servers."""
    current = store.read(ctx.app.settings.config, ctx.app.world.resolver)
    if current.cluster is None:
        return _broken(ctx, current)
    if not 0 <= v < len(current.cluster.virtuals):
        raise NotFound("no such virtual server")
    return ctx.render("servers.html", title="Real servers", tab="virtual",
                      vs=current.cluster.virtuals[v], tag=current.tag,
                      **_heading(current, {"v": v, "sub": "servers"}))


def virtual_toggle(ctx: Ctx, v: int) -> Response:
    """(DE)ACTIVATE a virtual."""
    return _list_action(ctx, "/virtual", lambda root: editor.virtual(root, v), None)


def virtual_delete(ctx: Ctx, v: int) -> Response:
    """DELETE a virtual."""
    return _list_action(ctx, "/virtual", lambda root: editor.virtual(root, v),
                        lambda root: root)


def server_toggle(ctx: Ctx, v: int, r: int) -> Response:
    """(DE)ACTIVATE a real server."""
    return _list_action(ctx, f"/virtual/{v}/servers", lambda root: editor.server(root, v, r),
                        None)


def server_delete(ctx: Ctx, v: int, r: int) -> Response:
    """DELETE a real server."""
    return _list_action(ctx, f"/virtual/{v}/servers", lambda root: editor.server(root, v, r),
                        lambda root: editor.virtual(root, v))


def _list_action(ctx: Ctx, back: str, locate: Locate, parent_of: Locate | None) -> Response:
    """Toggle (``parent_of`` None) or delete the block ``locate`` finds; back to the list."""
    with ctx.app.write_lock:
        current = store.read(ctx.app.settings.config, ctx.app.world.resolver)
        if current.cluster is None or ctx.request.form.get("tag") != current.tag:
            ctx.flash("error", STALE)
            return ctx.redirect(back)
        root = editor.sections(current.cluster)
        block = locate(root)
        parent = parent_of(root) if parent_of is not None else root
        if block is None or parent is None:
            raise NotFound("no such block in lvs.cf")
        resolver = ctx.app.world.resolver
        outcome = editor.toggle(current.cluster, root, block, resolver) if parent_of is None \
            else editor.remove_block(current.cluster, root, parent, block, resolver)
        if not outcome.ok:
            for message in [m for ms in outcome.fields.values() for m in ms] + outcome.errors:
                ctx.flash("error", f"Not saved: {block.describe()}: {message}")
        else:
            _save(ctx, current, outcome)
    return ctx.redirect(back)


def _save(ctx: Ctx, current: store.Current, outcome: Outcome) -> bool:
    """Write the outcome's file (if it changed) and say what happened; False on failure."""
    if not outcome.changed:
        ctx.flash("info", "No change: lvs.cf was not written.")
        return True
    try:
        store.write(current.path, outcome.text, current.data)
    except OSError as exc:
        outcome.errors.append(f"cannot write {current.path}: {exc.strerror}")
        return False
    assert outcome.cluster is not None
    ctx.app.pending = True
    log.info(f"saved {current.path}: serial_no {outcome.cluster.serial_no} "
             f"(from {ctx.request.remote_addr}, {ctx.request.path})")
    ctx.flash("ok", f"Saved {current.path} (serial_no {outcome.cluster.serial_no}; the "
              f"previous file is {store.backup_path(current.path)}). Not applied yet: press "
              "Apply to reload it.")
    for warning in outcome.warnings:
        ctx.flash("info", f"Warning: {warning}")
    return True


def _heading(current: store.Current, extra: Mapping[str, Any]) -> dict[str, Any]:
    """The values of the page heading: which virtual, and which of its sub-pages."""
    out = dict(extra)
    v = extra.get("v")
    if v is not None and current.cluster is not None and 0 <= v < len(current.cluster.virtuals):
        out["vname"] = current.cluster.virtuals[v].name
    out.setdefault("v", None)
    out.setdefault("sub", "")
    out.setdefault("vname", "")
    return out


def _broken(ctx: Ctx, current: store.Current) -> Response:
    return ctx.render("broken.html", 503, title="lvs.cf has errors", tab="", current=current)
