"""Shared pieces of the CLI: option parsing callbacks, shell completion and plain-text tables.

Completion functions follow click's ``shell_complete(ctx, param, incomplete)`` and
import only what they list (no torch unless ``torch:`` is being completed), so a Tab
press stays quick.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Iterable, List, Sequence

import click
from click.shell_completion import CompletionItem

from ..errors import InvalidValue, OptvizError, UnknownName

#: Exit codes, as click users expect them (1, a runtime failure, is RuntimeFailure.exit_code).
EXIT_BAD_INPUT, EXIT_INTERRUPTED = 2, 130

STYLE_HELP = "Style preset: paper, slides (16:9, large type) or dark."
STILL_FORMATS = ("png", "svg", "pdf")


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


def _flag(param) -> str:
    return "--" + param.name.replace("_", "-")


def positive_int(ctx, param, value):
    if value is not None and value <= 0:
        raise InvalidValue(f"{_flag(param)} must be > 0, got {value}")
    return value


def nonneg_int(ctx, param, value):
    """A seed or a count that may be 0 but not negative (numpy's seeds are unsigned)."""
    if value is not None and value < 0:
        raise InvalidValue(f"{_flag(param)} must be an integer >= 0, got {value}")
    return value


def finite_nonneg(ctx, param, value):
    """A finite number >= 0 (a noise level: nan and inf parse as floats, and make no sense)."""
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise InvalidValue(f"{_flag(param)} must be a finite number >= 0, got {value:g}")
    return value


def finite_positive(ctx, param, value):
    if value is not None and not (math.isfinite(value) and value > 0):
        raise InvalidValue(f"{_flag(param)} must be a finite number > 0, got {value:g}")
    return value


def verbose(ctx: click.Context | None = None) -> bool:
    """Whether ``-v`` was given (to ``optviz`` or to the command)."""
    ctx = ctx or click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.find_root().meta.get("optviz.verbose"))


def set_verbose(ctx, param, value):
    """Option callback: a command's own ``-v`` counts as ``optviz -v``."""
    if value:
        ctx.find_root().meta["optviz.verbose"] = True
    return value


# ---------------------------------------------------------------- shell completion


def _items(values: Iterable[str], incomplete: str) -> List[CompletionItem]:
    return [CompletionItem(v) for v in values if v.startswith(incomplete)]


def complete_from(values: Callable[[], Iterable[str]]):
    """A ``shell_complete`` callback offering ``values()`` (called lazily)."""
    def complete(ctx, param, incomplete):
        try:
            return _items(values(), incomplete)
        except Exception:  # noqa: BLE001  (a completion must never print a traceback into the shell)
            return []
    return complete


# The valid names of each option that takes one; each table imports its module only
# when called (when a value is checked, or at a Tab press), so `optviz --help` stays light.


def functions():
    from ..surfaces import surface_names

    return surface_names()


def styles():
    from ..views.style import STYLES

    return STYLES


def models():
    from ..mnist.models import MODELS

    return MODELS


def presets():
    from ..mnist.presets import PRESETS

    return PRESETS


def study_presets():
    from ..study.spec import STUDY_PRESETS

    return STUDY_PRESETS


def datasets():
    from ..mnist.sources import DATASETS

    return DATASETS


def lr_schedules():
    from ..mnist.config import SCHEDULE_KINDS

    return SCHEDULE_KINDS


def snapshot_kinds():
    from ..mnist.snapshots import SNAPSHOT_KINDS

    return SNAPSHOT_KINDS


def trainers():
    from ..mnist.config import TRAINERS

    return TRAINERS


def dtypes():
    from ..mnist.config import DTYPES

    return DTYPES


def planes():
    from ..landscape.compute import PLANES

    return PLANES


def plot_kinds():
    from ..api import PLOT_KINDS

    return PLOT_KINDS


def frame_schedules():
    from ..views.frames import SCHEDULES

    return SCHEDULES


def arrow_kinds():
    from ..views.animate import ARROWS

    return ARROWS


def check_name(kind: str, value: str, valid: Iterable[str]) -> str:
    """``value`` if it is one of ``valid``; else :class:`UnknownName` (which suggests the closest)."""
    if value not in valid:
        raise UnknownName(kind, value, valid)
    return value


def choice(kind: str, names: Callable[[], Iterable[str]]) -> dict:
    """The keywords of an option that takes one of ``names()``: a callback that refuses any
    other value (``unknown KIND 'x'; did you mean ...``) and the same names for shell
    completion. ``names`` is called only when a value is given or completed.

    ``click.option("--model", default=None, **choice("model", models), help=...)``
    """
    def check(ctx, param, value):
        return value if value is None else check_name(kind, value, names())

    return {"callback": check, "shell_complete": complete_from(names)}


complete_functions = complete_from(functions)
complete_styles = complete_from(styles)


def complete_specs(ctx, param, incomplete: str) -> List[CompletionItem]:
    """``--opt``: optimizer names (registry, Newton, ``torch:``, ``scipy:``); after
    ``torch:``/``scipy:`` their names; after ``NAME:`` the option keys (``adam:lr=``)."""
    try:
        from ..engine import external, newton
        from ..optim import registry

        head, colon, rest = incomplete.partition(":")
        if not colon:
            return _items(list(registry.names()) + list(newton.METHODS) + ["torch:", "scipy:"], incomplete)
        prefix = head.lower()
        if prefix in ("torch", "scipy") and ":" not in rest:
            names = external.torch_names() if prefix == "torch" else list(external.SCIPY_METHODS.values())
            return _items([f"{head}:{n}" for n in names], incomplete)
        if prefix in ("torch", "scipy"):
            return []
        keys = newton.METHODS[head] if head in newton.METHODS else (
            tuple(registry.get(head).defaults) + registry.CLIP_OPTIONS if head in registry.names() else ())
        done, _, last = rest.rpartition(",")
        if "=" in last:
            return []
        base = f"{head}:{done + ',' if done else ''}"
        given = {item.partition("=")[0] for item in done.split(",") if item}
        return _items([f"{base}{k}=" for k in keys if k not in given], incomplete)
    except Exception:  # noqa: BLE001
        return []


def check_extension(path: str, valid: Sequence[str]) -> Path:
    path = Path(path)
    if not str(path).strip() or str(path) == ".":
        raise InvalidValue("the output path is empty")
    if path.suffix.lower().lstrip(".") not in valid:
        raise OptvizError(f"cannot write {str(path)!r}: unsupported extension {path.suffix or '(none)'!r}; "
                          f"use one of: {', '.join('.' + v for v in valid)}")
    return path


def figure_path(output: str) -> Path:
    """The path of a still figure (.png, .svg or .pdf), checked writable before any work."""
    from ..io import check_writable

    return check_writable(check_extension(output, STILL_FORMATS))
