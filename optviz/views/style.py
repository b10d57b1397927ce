"""One palette and three style presets, shared by every figure optviz draws.

Colours come from the optimizer registry (one fixed, colour-blind-safe colour per
optimizer name), so Adam is the same vermillion on Rosenbrock, on MNIST's loss
landscape and in the training curves. Presets:

- ``paper``: compact, for articles and notebooks;
- ``slides``: 16:9, large type and thick lines, legible from the back of a lecture hall;
- ``dark``: ``slides`` on a dark background, with the palette lightened to keep contrast.
"""
from __future__ import annotations

import contextlib
from typing import Dict, Iterator

from ..errors import UnknownName

__all__ = ["STYLES", "style_names", "style_context", "colour_for", "figure_size", "is_dark"]

#: Colours for methods that are not first-order optimizers of the registry.
EXTRA_COLOURS = {"newton": "#000000", "damped_newton": "#777777", "gd_flow": "#555555",
                 "newton_cg": "#000000", "lbfgs": "#777777"}   # the MNIST second-order methods (optviz.analysis)

#: Colours for optimizers brought from outside (``torch:Name``, ``scipy:Method``): chosen
#: as far (CIELAB) from the registry's palette and from each other as the hues allow, so
#: a torch or scipy path never wears the colour of a registry optimizer.
EXTERNAL_PALETTE = ("#A300D9", "#9362D9", "#15788C", "#213FD9", "#D900B5", "#734A11",
                    "#00A600", "#D90036", "#A63019", "#D98962", "#D9006C")
#: Fixed picks for the common ones (the issue's scipy six, torch's usual five): distinct
#: among themselves, so any mix of them in one figure has distinct colours.
EXTERNAL_COLOURS = {
    "scipy:BFGS": "#A300D9", "scipy:L-BFGS-B": "#9362D9", "scipy:CG": "#15788C", "scipy:Newton-CG": "#213FD9",
    "scipy:trust-ncg": "#D98962", "scipy:Nelder-Mead": "#734A11",
    "torch:SGD": "#00A600", "torch:Adam": "#D90036", "torch:AdamW": "#A63019", "torch:RMSprop": "#D900B5",
    "torch:LBFGS": "#D9006C",
}

_BASE = {
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "legend.frameon": True,
    "legend.framealpha": 0.85,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.15,
    "image.cmap": "viridis",
    "font.family": "DejaVu Sans",
    "mathtext.fontset": "dejavusans",
}

STYLES: Dict[str, dict] = {
    "paper": {**_BASE, "figure.figsize": (7.0, 4.8), "figure.dpi": 100, "savefig.dpi": 200,
              "font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "legend.fontsize": 8.5,
              "lines.linewidth": 1.6, "lines.markersize": 5},
    "slides": {**_BASE, "figure.figsize": (13.333, 7.5), "figure.dpi": 100, "savefig.dpi": 150,
               "font.size": 20, "axes.titlesize": 24, "axes.labelsize": 22, "legend.fontsize": 17,
               "xtick.labelsize": 18, "ytick.labelsize": 18, "lines.linewidth": 3.2, "lines.markersize": 10,
               "axes.linewidth": 1.5, "xtick.major.width": 1.5, "ytick.major.width": 1.5},
}
STYLES["dark"] = {**STYLES["slides"], "figure.facecolor": "#121417", "axes.facecolor": "#121417",
                  "savefig.facecolor": "#121417", "axes.edgecolor": "#d0d0d0", "axes.labelcolor": "#eeeeee",
                  "text.color": "#eeeeee", "xtick.color": "#d0d0d0", "ytick.color": "#d0d0d0",
                  "legend.facecolor": "#1f2226", "legend.edgecolor": "#555555", "image.cmap": "cividis"}


def style_names():
    return tuple(STYLES)


def _check(style: str) -> str:
    if style not in STYLES:
        raise UnknownName("style", style, STYLES)
    return style


@contextlib.contextmanager
def style_context(style: str = "paper") -> Iterator[dict]:
    """``with style_context("slides"): ...`` draws with that preset's rcParams."""
    import matplotlib as mpl

    with mpl.rc_context(STYLES[_check(style)]):
        yield STYLES[style]


def is_dark(style: str) -> bool:
    return _check(style) == "dark"


def figure_size(style: str):
    return STYLES[_check(style)]["figure.figsize"]


def _base_colour(name: str) -> str:
    """Registry names their registry colour; ``torch:<registry name>`` (torch.optim's
    version of it) the same; Newton's variants theirs; other ``torch:``/``scipy:`` names a
    fixed pick, or one of :data:`EXTERNAL_PALETTE` chosen by a stable hash of the name
    (the same name has the same colour in every figure and every session)."""
    import zlib

    from ..optim import registry

    plain = name.split(":", 1)[1] if name.startswith("torch:") else name
    if plain in registry.names():
        return registry.get(plain).colour
    if name in EXTRA_COLOURS:
        return EXTRA_COLOURS[name]
    if name in EXTERNAL_COLOURS:
        return EXTERNAL_COLOURS[name]
    if name.startswith(("torch:", "scipy:")):
        return EXTERNAL_PALETTE[zlib.crc32(name.encode()) % len(EXTERNAL_PALETTE)]
    return "#555555"


def colour_for(name: str, style: str = "paper") -> str:
    """The optimizer's fixed colour (lightened on the dark preset so it keeps contrast)."""
    colour = _base_colour(str(name))
    if is_dark(style):
        colour = _lighten(colour, 0.35)
    return colour


def _lighten(hex_colour: str, amount: float) -> str:
    rgb = [int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)]
    mixed = [round(c + (255 - c) * amount) for c in rgb]
    return "#" + "".join(f"{c:02x}" for c in mixed)
