"""Undo steps registered as an apply goes; on failure they run newest first.

The Incus pattern: each successful host change registers how to take it back, so a failure
part-way leaves nothing behind. ``success()`` forgets them once the whole apply is done.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType


class Reverter:
    def __init__(self) -> None:
        self._undo: list[tuple[str, Callable[[], object]]] = []
        self.failures: list[str] = []

    def add(self, what: str, undo: Callable[[], object]) -> None:
        self._undo.append((what, undo))

    def success(self) -> None:
        self._undo.clear()

    def revert(self) -> list[str]:
        """Run every undo step, newest first; returns what could not be undone (best effort)."""
        while self._undo:
            what, undo = self._undo.pop()
            try:
                undo()
            except Exception as exc:  # keep undoing the rest; report what stayed
                self.failures.append(f"undo {what}: {exc}")
        return self.failures

    def __enter__(self) -> Reverter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.revert()
