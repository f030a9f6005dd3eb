"""lvsd's logging: syslog (ident ``lvsd``, facility daemon), or stdout with ``--nodaemon``."""

from __future__ import annotations

import logging
import sys
import syslog

_LEVELS = {logging.DEBUG: syslog.LOG_DEBUG, logging.INFO: syslog.LOG_INFO,
           logging.WARNING: syslog.LOG_WARNING, logging.ERROR: syslog.LOG_ERR,
           logging.CRITICAL: syslog.LOG_CRIT}


class SyslogHandler(logging.Handler):
    """Hands records to the C library's syslog(3) (works with or without /dev/log)."""

    def __init__(self, ident: str) -> None:
        super().__init__()
        syslog.openlog(ident, syslog.LOG_PID, syslog.LOG_DAEMON)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            syslog.syslog(_LEVELS.get(record.levelno, syslog.LOG_INFO), self.format(record))
        except (OSError, ValueError):  # logging must never take lvsd down
            self.handleError(record)


def setup(nodaemon: bool, verbose: bool, name: str = "lvsd") -> logging.Logger:
    """The lvsd logger, writing to stdout (``lvsd: msg``) or to syslog."""
    logger = logging.getLogger(f"piranha.{name}")
    logger.handlers.clear()
    logger.propagate = False
    handler: logging.Handler
    if nodaemon:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter(f"{name}: %(message)s"))
    else:
        handler = SyslogHandler(name)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    return logger
