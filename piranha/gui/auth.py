"""Sessions, CSRF tokens and login rate limiting. Pure: the clock is passed in.

* A session is a random token in an HttpOnly, SameSite=Strict cookie; the server keeps the
  session (in memory: a restart logs everybody out). It ends after ``IDLE`` seconds without a
  request, ``LIFETIME`` seconds after login, at logout, or when the password changes (it
  remembers a fingerprint of the password file's hash).
* Every form carries the session's CSRF token; the login form, before there is a session,
  carries an HMAC of a random pre-login cookie (double submit, bound to this process's key).
* After ``MAX_FAILURES`` failed logins from one client address within ``WINDOW`` seconds that
  address is locked out for ``LOCKOUT`` seconds. At most ``MAX_TRACKED`` addresses are
  tracked; a locked one is never forgotten to make room: once every tracked address is locked,
  new addresses share one record (and so one lockout).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

IDLE = 30 * 60.0
LIFETIME = 12 * 3600.0
MAX_SESSIONS = 64
MAX_FAILURES = 5
WINDOW = 300.0
LOCKOUT = 60.0
MAX_TRACKED = 4096
#: the record new clients share while every tracked address is locked out
OVERFLOW = "*"

Clock = Callable[[], float]


def fingerprint(password_line: str) -> str:
    """A short digest of the stored password hash (changes when the password changes)."""
    return hashlib.sha256(password_line.encode()).hexdigest()[:16]


@dataclass
class Session:
    """A logged-in browser."""

    token: str
    csrf: str
    created: float
    seen: float
    password: str  # fingerprint of the password hash at login
    #: messages for the next page (kind, text)
    flashes: list[tuple[str, str]] = field(default_factory=list)
    #: auto-refresh period of the monitoring page (0 = off)
    refresh: int = 10


class SessionStore:
    """The live sessions, keyed by their cookie token."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, password: str) -> Session:
        """A new session (the oldest one goes when there are too many)."""
        now = self.clock()
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), now, now,
                          password)
        with self._lock:
            self._expire(now)
            if len(self._sessions) >= MAX_SESSIONS:
                oldest = min(self._sessions.values(), key=lambda s: s.seen)
                del self._sessions[oldest.token]
            self._sessions[session.token] = session
        return session

    def get(self, token: str | None, password: str | None) -> Session | None:
        """The live session of ``token`` (touched), or None; ``password``: current fingerprint."""
        if not token:
            return None
        now = self.clock()
        with self._lock:
            self._expire(now)
            session = self._sessions.get(token)
            if session is None:
                return None
            if password is None or not hmac.compare_digest(session.password, password):
                del self._sessions[token]
                return None
            session.seen = now
            return session

    def drop(self, token: str) -> None:
        """End the session of ``token`` (logout)."""
        with self._lock:
            self._sessions.pop(token, None)

    def _expire(self, now: float) -> None:
        dead = [t for t, s in self._sessions.items()
                if now - s.seen > IDLE or now - s.created > LIFETIME]
        for token in dead:
            del self._sessions[token]


def same(a: str | None, b: str | None) -> bool:
    """Constant-time equality of two tokens (None never matches)."""
    return a is not None and b is not None and hmac.compare_digest(a.encode(), b.encode())


class LoginCsrf:
    """The login form's token: HMAC of the browser's random pre-login cookie."""

    def __init__(self, key: bytes | None = None) -> None:
        self.key = key if key is not None else secrets.token_bytes(32)

    def new_cookie(self) -> str:
        """A fresh pre-login cookie value."""
        return secrets.token_urlsafe(24)

    def token(self, cookie: str) -> str:
        """The form token that goes with ``cookie``."""
        return hmac.new(self.key, cookie.encode(), hashlib.sha256).hexdigest()

    def valid(self, cookie: str | None, token: str | None) -> bool:
        """True when ``token`` was issued for ``cookie``."""
        return bool(cookie) and same(self.token(cookie or ""), token)


@dataclass
class _Record:
    failures: list[float] = field(default_factory=list)
    locked_until: float = 0.0


class LoginLimiter:
    """Counts failed logins per client address and locks an address out for a while."""

    def __init__(self, clock: Clock, max_failures: int = MAX_FAILURES,
                 window: float = WINDOW, lockout: float = LOCKOUT) -> None:
        self.clock, self.max_failures = clock, max_failures
        self.window, self.lockout = window, lockout
        self._records: dict[str, _Record] = {}
        self._lock = threading.Lock()

    def wait(self, client: str) -> float:
        """Seconds ``client`` must still wait before trying again (0 = may try now)."""
        with self._lock:
            record = self._records.get(client) or self._records.get(OVERFLOW)
            return max(0.0, record.locked_until - self.clock()) if record else 0.0

    def failed(self, client: str) -> float:
        """Record a failure; the lockout it starts (0 when not locked out yet)."""
        now = self.clock()
        with self._lock:
            if len(self._records) >= MAX_TRACKED and client not in self._records:
                self._prune(now)
                if len(self._records) >= MAX_TRACKED:  # every record is locked: new clients
                    client = OVERFLOW                  # share one, nothing locked is forgotten
            record = self._records.setdefault(client, _Record())
            record.failures = [t for t in record.failures if now - t < self.window] + [now]
            if len(record.failures) >= self.max_failures:
                record.failures.clear()
                record.locked_until = now + self.lockout
                return self.lockout
            return 0.0

    def succeeded(self, client: str) -> None:
        """Forget the failures of ``client``."""
        with self._lock:
            self._records.pop(client, None)

    def _prune(self, now: float) -> None:
        stale = [c for c, r in self._records.items()
                 if r.locked_until <= now and all(now - t >= self.window for t in r.failures)]
        for client in stale:
            del self._records[client]
        if len(self._records) >= MAX_TRACKED:  # still full: drop the oldest unlocked records
            unlocked = [c for c, r in self._records.items()
                        if r.locked_until <= now and c != OVERFLOW]
            for client in unlocked[: MAX_TRACKED // 4]:
                del self._records[client]
