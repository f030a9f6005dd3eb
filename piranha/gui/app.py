"""The routes of piranha-gui and the factory of its WSGI application.

Every route but ``/login`` and the style sheet needs a session (see :mod:`piranha.gui.web`);
every state change is a POST with the session's CSRF token.
"""

from __future__ import annotations

from piranha.gui import pages, views
from piranha.gui.web import CSS_PATH, App, Route, Settings, World

GET, POST, BOTH = ("GET",), ("POST",), ("GET", "POST")

ROUTES = (
    Route("/login", "login", BOTH, views.login),
    Route(CSS_PATH, "css", GET, views.css),
    Route("/logout", "logout", POST, views.logout),
    Route("/", "index", GET, views.index),
    Route("/control", "control", GET, views.control),
    Route("/apply", "apply", POST, views.apply),
    Route("/global", "global", BOTH, pages.global_settings),
    Route("/redundancy", "redundancy", BOTH, pages.redundancy),
    Route("/virtual", "virtuals", GET, pages.virtuals),
    Route("/virtual/new", "virtual_new", BOTH, pages.new_virtual),
    Route("/virtual/<int:v>", "virtual", BOTH, pages.virtual),
    Route("/virtual/<int:v>/toggle", "virtual_toggle", POST, pages.virtual_toggle),
    Route("/virtual/<int:v>/delete", "virtual_delete", POST, pages.virtual_delete),
    Route("/virtual/<int:v>/scripts", "scripts", BOTH, pages.scripts),
    Route("/virtual/<int:v>/servers", "servers", GET, pages.servers),
    Route("/virtual/<int:v>/servers/new", "server_new", BOTH, pages.new_server),
    Route("/virtual/<int:v>/servers/<int:r>", "server", BOTH, pages.server),
    Route("/virtual/<int:v>/servers/<int:r>/toggle", "server_toggle", POST,
          pages.server_toggle),
    Route("/virtual/<int:v>/servers/<int:r>/delete", "server_delete", POST,
          pages.server_delete),
)


def make_app(settings: Settings, world: World | None = None) -> App:
    """The WSGI application for ``settings``."""
    return App(settings, ROUTES, world or World())
