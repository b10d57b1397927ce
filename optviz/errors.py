"""The errors optviz raises for bad input.

The CLI turns every :class:`OptvizError` into a one-line message and exit code 2;
anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

from typing import Iterable

__all__ = ["OptvizError", "InvalidValue", "UnknownName"]


class OptvizError(Exception):
    """Bad input from a user: a message that says what is wrong and what is valid."""


class InvalidValue(OptvizError, ValueError):
    """A value outside its valid range (a negative learning rate, steps <= 0, ...)."""


class UnknownName(OptvizError, ValueError):
    """A name (optimizer, surface, style, model, ...) that is not in its table."""

    def __init__(self, kind: str, name: str, valid: Iterable[str]):
        self.kind, self.name, self.valid = kind, name, sorted(valid)
        super().__init__(f"unknown {kind} {name!r}; choose one of: {', '.join(self.valid)}")
