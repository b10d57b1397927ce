"""The errors optviz raises for bad input and for runtime failures.

The CLI turns every :class:`OptvizError` into a one-line message and its
``exit_code``: 2 for bad input (click's convention for usage errors), 1 for a
:class:`RuntimeFailure` (a missing tool, unreachable data, a full disk, a failed
worker). Anything else is a bug and keeps its traceback.

An error may carry ``details`` (what each source said, a long tool message): the
CLI prints them with ``-v`` only, so the line a user sees stays one line.
"""
from __future__ import annotations

import difflib
from typing import Iterable, Optional

__all__ = ["OptvizError", "InvalidValue", "UnknownName", "RuntimeFailure", "closest"]


class OptvizError(Exception):
    """Bad input from a user: a message that says what is wrong and what is valid."""

    exit_code = 2

    def __init__(self, message: str = "", *args, details: str = ""):
        super().__init__(message, *args)
        self.details = details


class InvalidValue(OptvizError, ValueError):
    """A value outside its valid range (a negative learning rate, steps <= 0, ...)."""


def closest(name: str, valid: Iterable[str]) -> Optional[str]:
    """The valid name a typo most likely meant (``"rosenbrok"`` -> ``"rosenbrock"``), or None.

    Case is ignored for the match (``"sgd"`` suggests ``"SGD"`` where only that exists).
    """
    valid = [str(v) for v in valid]
    by_lower = {}
    for v in valid:
        by_lower.setdefault(v.lower(), v)
    text = str(name).strip().lower()
    if text in by_lower and by_lower[text] != name:
        return by_lower[text]
    match = difflib.get_close_matches(text, list(by_lower), n=1, cutoff=0.6)
    return by_lower[match[0]] if match else None


class UnknownName(OptvizError, ValueError):
    """A name (optimizer, surface, style, model, ...) that is not in its table; the
    message suggests the closest valid name, as click does for commands."""

    def __init__(self, kind: str, name: str, valid: Iterable[str]):
        self.kind, self.name, self.valid = kind, name, sorted(str(v) for v in valid)
        self.suggestion = closest(name, self.valid)
        listed = ", ".join(self.valid)
        if self.suggestion:
            super().__init__(f"unknown {kind} {name!r}; did you mean {self.suggestion!r}? Choose one of: {listed}")
        else:
            super().__init__(f"unknown {kind} {name!r}; choose one of: {listed}")


class RuntimeFailure(OptvizError):
    """The input was fine but the work could not be done (exit code 1): ffmpeg missing,
    data unreachable, a full disk, a worker that failed for a real reason."""

    exit_code = 1
