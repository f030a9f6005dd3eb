"""The web tool's view of the operating system (``piranha.gui.reload.Os``), faked."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from piranha.gui import reload


class FakeOs:
    """Pids in ``alive`` exist; signals and commands are recorded. ``fail`` makes every kill
    fail with EPERM; ``scp`` is what each command returns (exit status, output)."""

    def __init__(self, alive: Iterable[int] = (), fail: bool = False,
                 scp: tuple[int, str] = (0, "")) -> None:
        self.alive, self.fail, self.scp = set(alive), fail, scp
        self.signals: list[tuple[int, int]] = []
        self.runs: list[list[str]] = []

    def os(self) -> reload.Os:
        return reload.Os(lambda pid: pid in self.alive, self.kill, self.run)

    def kill(self, pid: int, sig: int) -> None:
        if self.fail:
            raise PermissionError(1, "Operation not permitted")
        self.signals.append((pid, sig))

    def run(self, argv: Sequence[str]) -> tuple[int, str]:
        self.runs.append(list(argv))
        return self.scp
