"""The explorer's state: what a link holds, checked with the command line's own rules.

The page keeps everything it shows in its URL's query string, so a link reproduces a
scene, and it sends that same query to the server. Keys:

============  ====================================================  ======================
key           value                                                 command-line option
============  ====================================================  ======================
``f``         the test function                                     ``FUNCTION``
``opt``       an optimizer spec, repeatable (``adam:lr=0.1``)       ``--opt``
``off``       a spec kept in the page but switched off, repeatable  (left out)
``start``     ``X,Y``                                               ``--start``
``steps``     steps per optimizer                                   ``--steps``
``noise``     gradient noise (standard deviation)                   ``--noise``
``seed``      seed of the noise                                     ``--seed``
``style``     ``paper``, ``slides`` or ``dark``                     ``--style``
``arrows``    ``grad,momentum`` (shown in the page and the GIF)     ``--arrows``
``view``      ``X0,X1,Y0,Y1``: the part of the plane shown          (the page only)
``t``         the step the race is scrubbed to                      (the page only)
``hide``      a run's path, by number, switched off (``--run``)     (the page only)
============  ====================================================  ======================

Each value goes through the click parameter of ``optviz plot`` / ``optviz animate``
that reads it on the command line (its type and its callback) and then through the
same library checks the command runs, so a bad value gets the message the terminal
would print. On top come the explorer's own bounds (:data:`LIMITS`), so that one
visitor cannot make the server compute or hold more than a lecture needs.
"""
from __future__ import annotations

import math
import shlex
from dataclasses import dataclass, field
from typing import List, Mapping, Optional, Sequence, Tuple
from urllib.parse import urlencode

from ..errors import OptvizError, UnknownName

__all__ = ["LIMITS", "FieldError", "Scene", "RunView", "parse_function", "parse_scene", "parse_run_view",
           "parse_view", "STYLES", "ARROW_KINDS"]

#: The explorer's bounds (the command line has none of these).
LIMITS = {
    "steps": 5000,          # steps per optimizer
    "optimizers": 12,       # specs on the page, on or off
    "spec_chars": 200,      # one --opt spec
    "query_chars": 6000,    # the whole query string
    "image_px": 2400,       # a side of the contour image
    "frames": 600,          # frames of an exported animation
    "zoom": 1e-6,           # the smallest view, as a fraction of the function's domain
}
STYLES = ("paper", "slides", "dark")
ARROW_KINDS = ("grad", "momentum")
_PAGE_DEFAULT_STYLE = "slides"   # the explorer is made for the lecture hall


class FieldError(OptvizError):
    """A bad value in one place of the page: ``field`` names it (``steps``, ``opt:2``, ...),
    so the page can show the message beside that control."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)


@dataclass(frozen=True)
class Scene:
    """A 2-D race as the page shows it; every field checked."""

    function: str
    opts: Tuple[str, ...]
    off: Tuple[str, ...] = ()
    start: Tuple[float, float] = (0.0, 0.0)
    steps: int = 300
    noise: float = 0.0
    seed: int = 0
    style: str = _PAGE_DEFAULT_STYLE
    arrows: Tuple[str, ...] = ()
    view: Optional[Tuple[float, float, float, float]] = None
    t: Optional[int] = None

    def query(self, page: bool = True) -> str:
        """The canonical query string (``page=False``: only what changes the race)."""
        items: List[Tuple[str, str]] = [("f", self.function)]
        items += [("opt", s) for s in self.opts]
        if page:
            items += [("off", s) for s in self.off]
        items += [("start", _pair(self.start)), ("steps", str(self.steps)), ("noise", _num(self.noise)),
                  ("seed", str(self.seed))]
        if page:
            items.append(("style", self.style))
            if self.arrows:
                items.append(("arrows", ",".join(self.arrows)))
            if self.view is not None:
                items.append(("view", ",".join(_num(v) for v in self.view)))
            if self.t is not None:
                items.append(("t", str(self.t)))
        return urlencode(items, safe=":,=")

    # -- the equivalent commands --------------------------------------------------------------
    def _race_args(self) -> List[str]:
        from ..engine import presets
        from ..surfaces import get_surface

        surface = get_surface(self.function)
        args = [self.function]
        if list(self.opts) != presets.lecture_specs(surface.name):
            for spec in self.opts:
                args += ["--opt", spec]
        if tuple(self.start) != tuple(float(v) for v in surface.starts[0]):
            args.append(f"--start={_pair(self.start)}")
        if self.steps != presets.default_steps(surface.name):
            args += ["--steps", str(self.steps)]
        if self.noise:
            args += ["--noise", _num(self.noise), "--seed", str(self.seed)]
        return args

    def plot_command(self, output: str, kind: str = "dashboard") -> str:
        """``optviz plot ...``: the still this scene exports."""
        args = ["optviz", "plot"] + self._race_args()
        if kind != "contour":
            args += ["--kind", kind]
        if self.style != "paper":
            args += ["--style", self.style]
        return shlex.join(args + ["-o", output])

    def animate_command(self, output: str, frames: int = 300, fps: float = 30, schedule: str = "linear") -> str:
        """``optviz animate ...``: the animation this scene exports."""
        args = ["optviz", "animate"] + self._race_args()
        if self.style != "slides":
            args += ["--style", self.style]
        if self.arrows:
            args += ["--arrows", ",".join(self.arrows)]
        if frames != 300:
            args += ["--frames", str(frames)]
        if fps != 30:
            args += ["--fps", _num(fps)]
        if schedule != "linear":
            args += ["--schedule", schedule]
        return shlex.join(args + ["-o", output])


@dataclass(frozen=True)
class RunView:
    """A training run's landscape as the page shows it (``optviz explore --run``)."""

    style: str = _PAGE_DEFAULT_STYLE
    view: Optional[Tuple[float, float, float, float]] = None
    t: Optional[int] = None
    hide: Tuple[int, ...] = field(default_factory=tuple)

    def query(self) -> str:
        items = [("style", self.style)] + [("hide", str(i)) for i in self.hide]
        if self.view is not None:
            items.append(("view", ",".join(_num(v) for v in self.view)))
        if self.t is not None:
            items.append(("t", str(self.t)))
        return urlencode(items, safe=":,=")


# ==================================================================== parsing


def _num(v: float) -> str:
    return f"{v:.10g}"


def _pair(p) -> str:
    return f"{_num(float(p[0]))},{_num(float(p[1]))}"


def _command_params():
    """The click parameters of ``optviz plot`` and ``optviz animate``, by name."""
    from ..cli.twod import animate_command, plot_command

    params = {}
    for command in (plot_command, animate_command):
        for p in command.params:
            params.setdefault(p.name, (command, p))
    return params


def _through_cli(name: str, raw, field_name: str):
    """``raw`` converted and checked by the command line's own parameter ``name``
    (its type and its callback); the terminal's message on failure."""
    import click

    command, param = _command_params()[name]
    ctx = click.Context(command, info_name=command.name)
    try:
        return param.process_value(ctx, raw)
    except click.BadParameter as exc:
        raise FieldError(field_name, exc.format_message()) from None
    except click.UsageError as exc:
        raise FieldError(field_name, exc.format_message()) from None
    except OptvizError as exc:
        raise FieldError(field_name, str(exc)) from None


def _one(params: Mapping[str, Sequence[str]], key: str) -> Optional[str]:
    values = params.get(key) or []
    if len(values) > 1:
        raise FieldError(key, f"{key} is given {len(values)} times; give it once")
    return values[0] if values else None


def _style(params) -> str:
    style = _one(params, "style")
    if style is None:
        return _PAGE_DEFAULT_STYLE
    if style not in STYLES:
        raise FieldError("style", str(UnknownName("style", style, STYLES)))
    return style


def parse_view(text: Optional[str], domain) -> Optional[Tuple[float, float, float, float]]:
    """``"x0,x1,y0,y1"`` -> a finite window of sensible size around ``domain``, or None."""
    if text is None or text == "":
        return None
    try:
        x0, x1, y0, y1 = (float(v) for v in text.split(","))
    except ValueError:
        raise FieldError("view", f"a view is four numbers X0,X1,Y0,Y1, got {text!r}") from None
    (dx0, dx1), (dy0, dy1) = domain
    w, h = dx1 - dx0, dy1 - dy0
    ok = all(math.isfinite(v) for v in (x0, x1, y0, y1)) and x0 < x1 and y0 < y1
    # at most 5 domains wide (the escape box: beyond it every path has diverged), at least 1e-6 of one
    if not ok or x1 - x0 > 5 * w or y1 - y0 > 5 * h or x1 - x0 < LIMITS["zoom"] * w or y1 - y0 < LIMITS["zoom"] * h \
            or x1 < dx0 - 2 * w or x0 > dx1 + 2 * w or y1 < dy0 - 2 * h or y0 > dy1 + 2 * h:
        raise FieldError("view", f"view {text!r} is not a window near the domain x in [{dx0:g}, {dx1:g}], "
                                 f"y in [{dy0:g}, {dy1:g}] (at most 5 times its size, at least {LIMITS['zoom']:g} of it)")
    return x0, x1, y0, y1


def _step(params, key: str = "t") -> Optional[int]:
    text = _one(params, key)
    if text is None or text == "":
        return None
    try:
        t = int(text)
    except ValueError:
        raise FieldError(key, f"{key} is a step number, got {text!r}") from None
    if not 0 <= t <= LIMITS["steps"] * 100:
        raise FieldError(key, f"{key} must be a step number >= 0, got {t}")
    return t


def _check_query_size(params: Mapping[str, Sequence[str]]) -> None:
    size = sum(len(k) + len(v) + 2 for k, vs in params.items() for v in vs)
    if size > LIMITS["query_chars"]:
        raise FieldError("query", f"the scene's description is {size:,} characters long; the explorer takes at most "
                                  f"{LIMITS['query_chars']:,}")


def parse_function(params: Mapping[str, Sequence[str]], default_function: str = "rosenbrock"):
    """The surface named by ``f`` (``default_function`` when not given), checked as the command
    line checks a function name; a :class:`FieldError` for ``f`` otherwise."""
    from ..surfaces import get_surface

    function = _one(params, "f") or default_function
    try:
        return get_surface(_through_cli("function", function, "f"))
    except OptvizError as exc:
        raise FieldError("f", str(exc)) from None


def parse_scene(params: Mapping[str, Sequence[str]], *, default_function: str = "rosenbrock") -> Scene:
    """A checked :class:`Scene` from query parameters (``{key: [values]}``).

    Missing values take the command line's defaults for the function (its lecture
    optimizers, start and steps). Raises :class:`FieldError` naming the bad field.
    """
    from ..engine import presets
    from ..engine.race import _check_starts, parse_specs

    _check_query_size(params)
    surface = parse_function(params, default_function)

    given = "opt" in params or "off" in params
    opts = list(params.get("opt", [])) if given else presets.lecture_specs(surface.name)
    off = list(params.get("off", []))
    if len(opts) + len(off) > LIMITS["optimizers"]:
        raise FieldError("opt", f"{len(opts) + len(off)} optimizers on the page; the explorer takes at most "
                                f"{LIMITS['optimizers']}")
    for kind, specs in (("opt", opts), ("off", off)):
        for i, spec in enumerate(specs):
            where = f"{kind}:{i}"
            if len(spec) > LIMITS["spec_chars"]:
                raise FieldError(where, f"optimizer spec of {len(spec)} characters; at most {LIMITS['spec_chars']}")
            try:
                parse_specs([_through_cli("opts", (spec,), where)[0]])
            except OptvizError as exc:
                raise FieldError(where, str(exc)) from None

    start_text = _one(params, "start")
    if start_text is None or start_text == "":
        start = tuple(float(v) for v in surface.starts[0])
    else:
        from ..cli._common import parse_starts

        try:
            (start,) = parse_starts(_through_cli("starts", (start_text,), "start"))
            _check_starts(surface, [start])
        except OptvizError as exc:
            raise FieldError("start", str(exc)) from None
        start = (float(start[0]), float(start[1]))

    steps_text = _one(params, "steps")
    steps = presets.default_steps(surface.name) if steps_text in (None, "") else _through_cli("steps", steps_text, "steps")
    if steps > LIMITS["steps"]:
        raise FieldError("steps", f"--steps must be at most {LIMITS['steps']:,} in the explorer, got {steps:,}")

    noise_text, seed_text = _one(params, "noise"), _one(params, "seed")
    noise = 0.0 if noise_text in (None, "") else _through_cli("noise", noise_text, "noise")   # finite, >= 0 (--noise)
    seed = 0 if seed_text in (None, "") else _through_cli("seed", seed_text, "seed")
    if not 0 <= seed < 2 ** 32:
        raise FieldError("seed", f"--seed must be in [0, 2^32), got {seed}")

    arrows = _arrows(_one(params, "arrows"))
    return Scene(function=surface.name, opts=tuple(opts), off=tuple(off), start=start, steps=int(steps),
                 noise=float(noise), seed=int(seed), style=_style(params), arrows=arrows,
                 view=parse_view(_one(params, "view"), surface.domain), t=_step(params))


def _arrows(text: Optional[str]) -> Tuple[str, ...]:
    if not text:
        return ()
    kinds = tuple(dict.fromkeys(a.strip() for a in text.split(",") if a.strip()))
    bad = set(kinds) - set(ARROW_KINDS)
    if bad:
        raise FieldError("arrows", f"unknown arrow kind {', '.join(sorted(bad))}; choose from: {', '.join(ARROW_KINDS)}")
    return kinds


def parse_run_view(params: Mapping[str, Sequence[str]], domain, n_paths: int) -> RunView:
    """A checked :class:`RunView` (the page of ``optviz explore --run``)."""
    _check_query_size(params)
    hide = []
    for text in params.get("hide", []):
        try:
            i = int(text)
        except ValueError:
            raise FieldError("hide", f"hide takes a path number, got {text!r}") from None
        if not 0 <= i < n_paths:
            raise FieldError("hide", f"hide takes a path number in [0, {n_paths}), got {i}")
        hide.append(i)
    return RunView(style=_style(params), view=parse_view(_one(params, "view"), domain), t=_step(params),
                   hide=tuple(sorted(set(hide))))
