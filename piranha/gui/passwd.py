"""The GUI's password: a salted scrypt hash in a root-only file, and ``piranha-passwd``.

File format (one line, the scrypt parameters stored with the hash so they can be raised later):
``scrypt$N$r$p$SALT_HEX$HASH_HEX``. There is no default password: without this file the tool
refuses to start. The file is replaced atomically with mode 0600.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import hmac
import os
import secrets
import sys
from dataclasses import dataclass

DEFAULT_PATH = "/etc/sysconfig/ha/conf/piranha.passwd"
MIN_LENGTH = 8
#: scrypt cost: 16 MiB of memory and ~50 ms per check, which also slows guessing
N, R, P = 2**14, 8, 1
_MAXMEM = 64 * 2**20


@dataclass(frozen=True)
class PasswordHash:
    """One stored hash with its parameters."""

    n: int
    r: int
    p: int
    salt: bytes
    digest: bytes

    def line(self) -> str:
        """The file's line for this hash."""
        return f"scrypt${self.n}${self.r}${self.p}${self.salt.hex()}${self.digest.hex()}\n"


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM,
                          dklen=32)


def make_hash(password: str, salt: bytes | None = None) -> PasswordHash:
    """A fresh salted hash of ``password``."""
    salt = secrets.token_bytes(16) if salt is None else salt
    return PasswordHash(N, R, P, salt, _scrypt(password, salt, N, R, P))


def parse(line: str) -> PasswordHash:
    """The hash stored in ``line``; ValueError when it is not ours."""
    parts = line.strip().split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        raise ValueError("not a piranha password line (expected scrypt$N$r$p$salt$hash)")
    n, r, p = (int(x) for x in parts[1:4])
    if n < 2 or n & (n - 1) or not (1 <= r <= 64 and 1 <= p <= 16) or n * r > 2**22:
        raise ValueError("unusable scrypt parameters")
    return PasswordHash(n, r, p, bytes.fromhex(parts[4]), bytes.fromhex(parts[5]))


def verify(stored: PasswordHash, password: str) -> bool:
    """True when ``password`` matches ``stored`` (constant-time comparison)."""
    digest = _scrypt(password, stored.salt, stored.n, stored.r, stored.p)
    return hmac.compare_digest(digest, stored.digest)


def read(path: str) -> PasswordHash | None:
    """The hash in the file at ``path``; None when there is no usable password file."""
    try:
        with open(path, encoding="ascii") as f:
            return parse(f.readline())
    except (OSError, ValueError, UnicodeError):
        return None


def write(path: str, stored: PasswordHash) -> None:
    """Replace the password file atomically; mode 0600 (root-only)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, stored.line().encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def check_new(password: str) -> str | None:
    """Why ``password`` cannot be used, or None."""
    if len(password) < MIN_LENGTH:
        return f"the password must have at least {MIN_LENGTH} characters"
    if any(ord(c) < 32 for c in password):
        return "the password must not contain control characters"
    return None


def _ask() -> str:
    first = getpass.getpass("New piranha-gui password: ")
    second = getpass.getpass("Retype new password: ")
    if first != second:
        raise SystemExit("piranha-passwd: the passwords do not match; nothing changed")
    return first


def main(argv: list[str] | None = None) -> int:
    """``piranha-passwd``: set the GUI password (prompted twice, or one line from stdin)."""
    p = argparse.ArgumentParser(prog="piranha-passwd",
                                description="Set the password of piranha-gui.")
    p.add_argument("-f", "--passwd-file", default=DEFAULT_PATH,
                   help=f"password file (default {DEFAULT_PATH})")
    p.add_argument("--stdin", action="store_true",
                   help="read the password from the first line of stdin (for scripts)")
    p.add_argument("password", nargs="?", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.password is not None:
        print("piranha-passwd: refusing a password on the command line (other users can see "
              "it); type it when asked, or use --stdin", file=sys.stderr)
        return 2
    password = sys.stdin.readline().rstrip("\r\n") if args.stdin else _ask()
    problem = check_new(password)
    if problem is not None:
        print(f"piranha-passwd: {problem}; nothing changed", file=sys.stderr)
        return 1
    try:
        write(args.passwd_file, make_hash(password))
    except OSError as exc:
        print(f"piranha-passwd: cannot write {args.passwd_file}: {exc.strerror}", file=sys.stderr)
        return 1
    print(f"piranha-passwd: password set in {args.passwd_file}; sessions logged in with the "
          "old password are closed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
