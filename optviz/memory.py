"""Memory budgets: work that would not fit is refused before it starts, with an estimate.

Every batched job (a race's recorded paths, a learning-rate sweep, a loss grid over a
plane, an animation held in memory) estimates the bytes it needs from its sizes
alone and calls :func:`check_memory` before allocating anything. The default budget
is half the memory available now, so a refused job says how much it wanted and how
much there is, instead of swapping the machine to a halt or dying with a
traceback from numpy's allocator.
"""
from __future__ import annotations

import math
from typing import Optional

from .errors import InvalidValue

__all__ = ["WorkTooLarge", "default_memory_budget", "check_memory", "format_bytes", "parse_bytes"]


class WorkTooLarge(InvalidValue):
    """The job would not fit in the memory budget (raised before computing anything)."""


def format_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000.0
    return f"{n:.1f} TB"


def parse_bytes(text) -> int:
    """``"4GB"``, ``"512 MB"``, ``"1.5e9"`` -> bytes (decimal units; ``GiB`` etc. binary)."""
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        s = str(text).strip().replace(" ", "")
        units = {"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "K": 1e3, "M": 1e6, "G": 1e9,
                 "KIB": 2 ** 10, "MIB": 2 ** 20, "GIB": 2 ** 30, "TIB": 2 ** 40}
        num = s.rstrip("bBkKmMgGtTiI")
        unit = s[len(num):].upper()
        try:
            value = float(num) * units[unit]
        except (ValueError, KeyError):
            raise InvalidValue(f"a memory size is a number with an optional unit (e.g. 4GB, 512MB), got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise InvalidValue(f"a memory size must be > 0, got {text!r}")
    return int(value)


def default_memory_budget() -> int:
    """Half the memory available now (``MemAvailable``), or 4 GB where that cannot be read."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024 // 2
    except OSError:
        pass
    try:
        import psutil

        return int(psutil.virtual_memory().available) // 2
    except Exception:  # noqa: BLE001
        return 4 * 10 ** 9


def check_memory(need: float, what: str, hint: str, budget: Optional[int] = None) -> int:
    """Raise :class:`WorkTooLarge` when ``need`` bytes exceed ``budget`` (default
    :func:`default_memory_budget`); the message gives both and ``hint`` (what to lower).
    Returns ``need`` as an int."""
    budget = default_memory_budget() if budget is None else int(budget)
    if not math.isfinite(need) or need > budget:
        raise WorkTooLarge(f"{what} needs about {format_bytes(need)} of memory, more than the budget of "
                           f"{format_bytes(budget)} (half the memory available): {hint}")
    return int(need)
