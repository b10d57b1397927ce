"""Shared pieces of the CLI: option parsing callbacks and plain-text tables."""
from __future__ import annotations

from pathlib import Path
from typing import List, Sequence


from ..errors import InvalidValue, OptvizError


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    """A plain aligned text table (no dependency; pipes and terminals alike)."""
    cells = [list(map(str, header))] + [list(map(str, r)) for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(cells[0]), line(["-" * w for w in widths])] + [line(r) for r in cells[1:]])


def parse_starts(values: Sequence[str]) -> List[tuple]:
    """``("-1.5,2", "0,0")`` -> ``[(-1.5, 2.0), (0.0, 0.0)]``."""
    starts = []
    for text in values:
        parts = text.replace(" ", "").split(",")
        try:
            x, y = (float(p) for p in parts)
        except ValueError:
            raise OptvizError(f"a start is two numbers X,Y (e.g. --start=-1.5,2), got {text!r}") from None
        starts.append((x, y))
    return starts


def positive_int(ctx, param, value):
    if value is not None and value <= 0:
        raise InvalidValue(f"--{param.name.replace('_', '-')} must be > 0, got {value}")
    return value


def check_extension(path: str, valid: Sequence[str]) -> Path:
    path = Path(path)
    if path.suffix.lower().lstrip(".") not in valid:
        raise OptvizError(f"cannot write {str(path)!r}: unsupported extension {path.suffix or '(none)'!r}; "
                          f"use one of: {', '.join('.' + v for v in valid)}")
    return path
