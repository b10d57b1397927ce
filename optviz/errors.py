"""The errors optviz raises for bad input and for runtime failures.

The CLI turns every :class:`OptvizError` into a one-line message and its
``exit_code``: 2 for bad input (click's convention for usage errors), 1 for a
:class:`RuntimeFailure` (a missing tool, unreachable data, a failed worker).
Anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

from typing import Iterable

__all__ = ["OptvizError", "InvalidValue", "UnknownName", "RuntimeFailure"]


class OptvizError(Exception):
    """Bad input from a user: a message that says what is wrong and what is valid."""

    exit_code = 2


class InvalidValue(OptvizError, ValueError):
    """A value outside its valid range (a negative learning rate, steps <= 0, ...)."""


class UnknownName(OptvizError, ValueError):
    """A name (optimizer, surface, style, model, ...) that is not in its table."""

    def __init__(self, kind: str, name: str, valid: Iterable[str]):
        self.kind, self.name, self.valid = kind, name, sorted(valid)
        super().__init__(f"unknown {kind} {name!r}; choose one of: {', '.join(self.valid)}")


class RuntimeFailure(OptvizError):
    """The input was fine but the work could not be done (exit code 1): ffmpeg missing,
    data unreachable, a worker that failed for a real reason."""

    exit_code = 1
