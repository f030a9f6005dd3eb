"""Reading lvs.cf for the GUI, and writing it: atomic, with a backup, mode and owner kept.

``read`` returns the file's bytes, a short tag of them (forms carry it, so a save over a
file that changed since the page was shown is refused instead of silently undoing the other
edit; Piranha had no locking) and the loaded model or the loader's errors. A missing file is
an empty configuration (a new install starts on GLOBAL SETTINGS).

``write`` first saves the previous content as ``lvs.cf.bak``, then replaces ``lvs.cf``
through a temporary file in the same folder (fsync, rename): a reader sees the old file or
the new one, never a mix. The mode and owner of the old file are kept, except that a file
holding a ``heartbeat_key`` loses its group and other permissions.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from dataclasses import dataclass

from piranha.config import Resolver, loads
from piranha.errors import ConfigError, ConfigErrors
from piranha.model import Cluster

NEW_MODE = 0o644
SECRET_MODE = 0o600


@dataclass(frozen=True)
class Current:
    """lvs.cf as it is now on disk."""

    path: str
    data: bytes | None  # None: no file
    tag: str
    cluster: Cluster | None  # None: the file has errors
    errors: tuple[ConfigError, ...] = ()
    warnings: tuple[ConfigError, ...] = ()


def tag_of(data: bytes | None) -> str:
    """A short fingerprint of the file's content ("none" for no file)."""
    return "none" if data is None else hashlib.sha256(data).hexdigest()[:20]


def read(path: str, resolver: Resolver | None = None) -> Current:
    """The current lvs.cf at ``path``, loaded (or with its errors)."""
    try:
        with open(path, "rb") as f:
            data: bytes | None = f.read()
    except FileNotFoundError:
        return Current(path, None, tag_of(None), Cluster())
    except OSError as exc:
        error = ConfigError(path, 0, 0, f"cannot read file: {exc.strerror}")
        return Current(path, b"", "unreadable", None, (error,))
    try:
        result = loads(data or b"", path, resolver)
    except ConfigErrors as exc:
        return Current(path, data, tag_of(data), None, tuple(exc.errors), tuple(exc.warnings))
    return Current(path, data, tag_of(data), result.cluster, (), result.warnings)


def backup_path(path: str) -> str:
    """Where the previous content goes."""
    return path + ".bak"


def write(path: str, text: str, old: bytes | None) -> None:
    """Keep ``old`` as the backup, then replace ``path`` with ``text`` atomically."""
    try:
        st: os.stat_result | None = os.stat(path)
    except FileNotFoundError:
        st = None
    mode = stat.S_IMODE(st.st_mode) if st is not None else NEW_MODE
    owner = (st.st_uid, st.st_gid) if st is not None else None
    if old is not None:
        _replace(backup_path(path), old, mode, owner)
    if "\nheartbeat_key" in "\n" + text:
        mode &= SECRET_MODE  # the key is a secret: root-only, whatever the old mode was
    _replace(path, text.encode("utf-8", "surrogateescape"), mode, owner)


def _replace(path: str, data: bytes, mode: int, owner: tuple[int, int] | None) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".lvs.cf.", dir=folder)
    try:
        os.fchmod(fd, mode)
        if owner is not None and os.geteuid() == 0:
            os.fchown(fd, *owner)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _sync_folder(folder)


def _sync_folder(folder: str) -> None:
    """Make the rename itself durable."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
