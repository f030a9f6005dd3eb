"""Exception hierarchy shared by every piranha component."""

from __future__ import annotations

from dataclasses import dataclass


class PiranhaError(Exception):
    """Base of every error piranha raises on purpose."""


@dataclass(frozen=True)
class ConfigError:
    """One located problem in a configuration file (an error or a warning)."""

    filename: str
    line: int
    column: int
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        return f"{self.filename}:{self.line}:{self.column}: {self.severity}: {self.message}"


class ConfigErrors(PiranhaError):
    """Raised when a configuration has errors; carries every error of the file."""

    def __init__(self, errors: list[ConfigError], warnings: list[ConfigError] | None = None):
        self.errors = list(errors)
        self.warnings = list(warnings or [])
        super().__init__(self.report())

    def report(self) -> str:
        """Every error and warning, one per line, plus a summary line."""
        lines = [str(e) for e in sorted(self.errors + self.warnings, key=_position)]
        count = len(self.errors)
        lines.append(f"{count} error{'s' if count != 1 else ''}; configuration not loaded")
        return "\n".join(lines)


def _position(e: ConfigError) -> tuple[int, int]:
    return (e.line, e.column)


class KernelError(PiranhaError):
    """A kernel operation failed: ``op`` is the operation, ``errno`` the kernel's error."""

    def __init__(self, op: object, errno: int, message: str):
        self.op = op
        self.errno = errno
        self.message = message
        super().__init__(f"{type(op).__name__}: {message}")


class IpvsUnavailable(PiranhaError):
    """The kernel has no IPVS (module not loaded or not built)."""
