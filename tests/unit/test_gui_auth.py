"""piranha-gui: password hashing and file, piranha-passwd, sessions, CSRF, rate limiting."""

from __future__ import annotations

import io
import stat

import pytest

from piranha.gui import auth, passwd
from testkit.clock import Clock


def test_hash_verify_and_file_format(tmp_path):
    stored = passwd.make_hash("s3cret-password", salt=bytes(16))
    assert stored.line().startswith(f"scrypt${passwd.N}${passwd.R}${passwd.P}${'00' * 16}$")
    assert passwd.verify(stored, "s3cret-password")
    assert not passwd.verify(stored, "s3cret-passwore")
    again = passwd.make_hash("s3cret-password")
    assert again.salt != stored.salt and again.digest != stored.digest  # salted
    path = tmp_path / "conf" / "piranha.passwd"
    passwd.write(str(path), again)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert passwd.read(str(path)) == again


@pytest.mark.parametrize("line", ["", "piranha:$apr1$xyz", "scrypt$3$8$1$00$00",
                                  "scrypt$16384$8$1$zz$00", "scrypt$1048576$64$1$00$00"])
def test_unusable_password_files_mean_no_password(tmp_path, line):
    path = tmp_path / "pw"
    path.write_text(line)
    assert passwd.read(str(path)) is None
    assert passwd.read(str(tmp_path / "missing")) is None


def test_piranha_passwd_from_stdin(tmp_path, monkeypatch, capsys):
    path = tmp_path / "pw"
    monkeypatch.setattr("sys.stdin", io.StringIO("long enough secret\n"))
    assert passwd.main(["--stdin", "-f", str(path)]) == 0
    stored = passwd.read(str(path))
    assert stored is not None and passwd.verify(stored, "long enough secret")
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert passwd.main(["--stdin", "-f", str(path)]) == 1
    assert "at least 8 characters" in capsys.readouterr().err
    assert passwd.verify(passwd.read(str(path)), "long enough secret")  # type: ignore[arg-type]


def test_piranha_passwd_prompts_twice(tmp_path, monkeypatch):
    answers = iter(["first password", "other password"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))
    with pytest.raises(SystemExit, match="do not match"):
        passwd.main(["-f", str(tmp_path / "pw")])
    assert not (tmp_path / "pw").exists()


def test_piranha_passwd_refuses_a_password_argument(tmp_path, capsys):
    assert passwd.main(["-f", str(tmp_path / "pw"), "secret123"]) == 2
    assert "command line" in capsys.readouterr().err
    assert not (tmp_path / "pw").exists()


def test_sessions_expire_and_die_with_the_password():
    clock = Clock()
    store = auth.SessionStore(clock)
    s = store.create("fp1")
    assert store.get(s.token, "fp1") is s
    assert store.get("forged", "fp1") is None and store.get(None, "fp1") is None
    clock.now += auth.IDLE - 1
    assert store.get(s.token, "fp1") is s  # touched: idle time starts again
    clock.now += auth.IDLE + 1
    assert store.get(s.token, "fp1") is None
    s2 = store.create("fp1")
    assert s2.token != s.token and s2.csrf != s.csrf
    assert store.get(s2.token, "fp2") is None  # password changed
    assert store.get(s2.token, "fp1") is None  # and it stays gone
    s3 = store.create("fp1")
    for _ in range(int(auth.LIFETIME // (auth.IDLE / 2)) + 1):
        clock.now += auth.IDLE / 2
        store.get(s3.token, "fp1")
    assert store.get(s3.token, "fp1") is None  # absolute lifetime
    s4 = store.create("fp1")
    store.drop(s4.token)
    assert store.get(s4.token, "fp1") is None
    assert store.get(store.create("fp1").token, None) is None  # no password file: nobody


def test_session_count_is_bounded():
    clock = Clock()
    store = auth.SessionStore(clock)
    first = store.create("fp")
    for _ in range(auth.MAX_SESSIONS):
        clock.now += 1
        store.create("fp")
    assert store.get(first.token, "fp") is None


def test_login_csrf_is_bound_to_the_cookie():
    csrf = auth.LoginCsrf(b"k" * 32)
    cookie = csrf.new_cookie()
    token = csrf.token(cookie)
    assert csrf.valid(cookie, token)
    assert not csrf.valid(csrf.new_cookie(), token)
    assert not csrf.valid(None, token) and not csrf.valid(cookie, None)
    assert not auth.LoginCsrf(b"x" * 32).valid(cookie, token)  # another process's key


def test_rate_limit_locks_out_after_five_failures():
    clock = Clock()
    limiter = auth.LoginLimiter(clock)
    for _ in range(auth.MAX_FAILURES - 1):
        assert limiter.failed("10.0.0.9") == 0.0
        clock.now += 1
    assert limiter.wait("10.0.0.9") == 0.0
    assert limiter.failed("10.0.0.9") == auth.LOCKOUT
    assert limiter.wait("10.0.0.9") == auth.LOCKOUT
    assert limiter.wait("10.0.0.10") == 0.0  # per address
    clock.now += auth.LOCKOUT - 5
    assert limiter.wait("10.0.0.9") == 5.0
    clock.now += 5
    assert limiter.wait("10.0.0.9") == 0.0
    assert limiter.failed("10.0.0.9") == 0.0  # counting starts again


def test_failures_outside_the_window_and_success_are_forgotten():
    clock = Clock()
    limiter = auth.LoginLimiter(clock)
    for _ in range(auth.MAX_FAILURES - 1):
        limiter.failed("a")
    clock.now += auth.WINDOW
    assert limiter.failed("a") == 0.0
    for _ in range(auth.MAX_FAILURES - 2):
        limiter.failed("a")
    limiter.succeeded("a")
    assert limiter.failed("a") == 0.0


def test_failures_from_many_other_addresses_never_lift_a_lockout(monkeypatch) -> None:
    monkeypatch.setattr(auth, "MAX_TRACKED", 64)
    clock = Clock()
    limiter = auth.LoginLimiter(clock)
    for _ in range(auth.MAX_FAILURES):
        limiter.failed("198.51.100.1")
    assert limiter.wait("198.51.100.1") > 0
    for n in range(1000):  # each of 1,000 other addresses fails once, then more lock out
        limiter.failed(f"10.0.{n // 250}.{n % 250}")
    assert limiter.wait("198.51.100.1") > 0
    for n in range(200):
        for _ in range(auth.MAX_FAILURES):
            limiter.failed(f"203.0.113.{n}")
    assert limiter.wait("198.51.100.1") > 0 and len(limiter._records) <= 64 + 1
    assert limiter.wait("192.0.2.99") > 0  # an unseen address shares the overflow lockout
