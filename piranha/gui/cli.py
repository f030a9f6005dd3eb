"""``piranha-gui``: options, the password check, then a threaded HTTP server (werkzeug's).

Refuses to start (exit 1) while no password is set. Binds to 127.0.0.1:3636 unless told
otherwise. Daemonises like pulse and lvsd (``-n`` stays in the foreground, for systemd). The
server is werkzeug's threaded WSGI server: one thread per request, fine for the few admins
of a director; ``--certfile``/``--keyfile`` serve HTTPS (cookies are then ``Secure``).
SIGTERM/SIGINT only set a flag; the main thread then stops the server.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import ssl
import sys
import threading
from collections.abc import Callable
from ipaddress import IPv4Network, IPv6Network, ip_network

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from piranha import __version__, daemon
from piranha.config import DEFAULT_PATH
from piranha.gui import passwd, reload
from piranha.gui.app import make_app
from piranha.gui.web import Settings, World
from piranha.ipvs.types import Table
from piranha.lvsd import logs
from piranha.text import hostport

PIDFILE = "/var/run/piranha-gui.pid"
PORT = 3636
LOG = "piranha-gui"


def parser() -> argparse.ArgumentParser:
    """piranha-gui's options."""
    d = Settings()
    p = argparse.ArgumentParser(prog="piranha-gui", description="Piranha's web configuration "
                                "and monitoring tool")
    p.add_argument("-c", "--configfile", default=DEFAULT_PATH, metavar="FILE",
                   help=f"lvs.cf to edit (default {DEFAULT_PATH})")
    p.add_argument("--listen", default="127.0.0.1", metavar="ADDR",
                   help="address to listen on (default 127.0.0.1: reach it through ssh)")
    p.add_argument("--port", type=int, default=PORT, help=f"TCP port (default {PORT})")
    p.add_argument("--passwd-file", default=passwd.DEFAULT_PATH, metavar="FILE",
                   help=f"password file written by piranha-passwd (default {passwd.DEFAULT_PATH})")
    p.add_argument("--pidfile", default=PIDFILE, help=f"pid file (default {PIDFILE})")
    p.add_argument("-n", "--nodaemon", action="store_true", help="stay in the foreground")
    p.add_argument("-v", "--verbose", action="store_true", help="log every request")
    p.add_argument("--allow", action="append", default=[], type=_network, metavar="NET",
                   help="serve only clients in this network (repeatable; e.g. 10.0.0.0/24, "
                        "192.0.2.7, ::1); others get 403 before they can log in. "
                        "Default: any client")
    p.add_argument("--certfile", help="serve HTTPS with this certificate (PEM)")
    p.add_argument("--keyfile", help="the certificate's private key (PEM)")
    p.add_argument("--pulse-pidfile", default=d.pulse_pidfile, metavar="FILE",
                   help=f"Apply signals this pulse (default {d.pulse_pidfile})")
    p.add_argument("--lvsd-pidfile", default=d.lvsd_pidfile, metavar="FILE",
                   help=f"...or this lvsd when pulse is not running (default {d.lvsd_pidfile})")
    p.add_argument("--pulse-status", default=d.pulse_status, metavar="FILE",
                   help=f"pulse's status file (default {d.pulse_status})")
    p.add_argument("--lvsd-status", default=d.lvsd_status, metavar="FILE",
                   help=f"lvsd's status snapshot (default {d.lvsd_status})")
    p.add_argument("--copy-to-backup", action="store_true",
                   help="on Apply, first scp lvs.cf to root@BACKUP (the backup address in "
                        "lvs.cf); needs key-based ssh login. Off by default")
    p.add_argument("--backup-path", metavar="PATH",
                   help="where the copy goes on the backup (default: the same path as -c)")
    # tests on a host without IPVS: no live table (the snapshot alone)
    p.add_argument("--table", choices=("netlink", "none"), default="netlink",
                   help=argparse.SUPPRESS)
    p.add_argument("--version", action="version", version=f"piranha-gui {__version__}")
    return p


def _network(text: str) -> IPv4Network | IPv6Network:
    """``--allow``'s value: a network or one address."""
    try:
        return ip_network(text, strict=False)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a network such as 10.0.0.0/24 or an address, found {text!r}") from None


def netlink_table() -> Table:
    """The live IPVS table (a fresh netlink socket per call: requests run in threads)."""
    from piranha.ipvs.netlink import NetlinkIpvs
    with NetlinkIpvs(timeout=5.0) as ipvs:
        return ipvs.dump()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``piranha-gui``."""
    args = parser().parse_args(argv)
    if passwd.read(args.passwd_file) is None:
        print(f"piranha-gui: no password is set ({args.passwd_file} is missing or unusable); "
              "run piranha-passwd first", file=sys.stderr)
        return 1
    if bool(args.certfile) != bool(args.keyfile):
        print("piranha-gui: --certfile and --keyfile go together", file=sys.stderr)
        return 2
    settings = Settings(config=args.configfile, passwd=args.passwd_file,
                        pulse_pidfile=args.pulse_pidfile, lvsd_pidfile=args.lvsd_pidfile,
                        pulse_status=args.pulse_status, lvsd_status=args.lvsd_status,
                        secure_cookies=bool(args.certfile), copy_to_backup=args.copy_to_backup,
                        backup_path=args.backup_path, allow=tuple(args.allow))
    table: Callable[[], Table] | None = netlink_table if args.table == "netlink" else None
    app = make_app(settings, World(table=table, system=reload.SYSTEM))
    try:
        tls = _tls(args.certfile, args.keyfile) if args.certfile else None
        server = make_server(args.listen, args.port, app, threaded=True, ssl_context=tls,
                             request_handler=_PlainLog)
    except (OSError, ssl.SSLError) as exc:
        print(f"piranha-gui: cannot listen on {args.listen}:{args.port}: {exc}",
              file=sys.stderr)
        return 1
    if not args.nodaemon:
        daemon.daemonize(nofork=False)
    log = logs.setup(args.nodaemon, args.verbose, LOG)
    _route_werkzeug_log(log, args.verbose)
    daemon.write_pidfile(args.pidfile, LOG)
    scheme = "https" if tls else "http"
    log.info(f"serving {args.configfile} on {scheme}://{hostport(args.listen, args.port)}/")
    try:
        _serve(server)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(args.pidfile)
    log.info("stopped")
    return 0


def _tls(certfile: str, keyfile: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile, keyfile)
    return context


def _serve(server: BaseWSGIServer) -> None:
    """Serve until SIGTERM or SIGINT (the handlers only set a flag)."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    while not stop.wait(1.0):
        pass
    server.shutdown()
    server.server_close()


class _PlainLog(WSGIRequestHandler):
    """werkzeug's request handler, logging request lines without terminal colours."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self.log("info", '"%s" %s %s', self.requestline, code, size)


def _route_werkzeug_log(log: logging.Logger, verbose: bool) -> None:
    """Request lines (werkzeug's logger) go where our log goes; errors always, hits if -v."""
    wz = logging.getLogger("werkzeug")
    wz.handlers = list(log.handlers)
    wz.propagate = False
    wz.setLevel(logging.INFO if verbose else logging.WARNING)


if __name__ == "__main__":
    sys.exit(main())
