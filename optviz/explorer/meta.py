"""What the page needs to build its controls, read from the registries.

Functions come from :mod:`optviz.surfaces`, optimizers from the optimizer registry
(display name, defaults, the fixed colour in each style and the fixed marker), so an
optimizer added to the registry appears in the explorer with its sliders.

Sliders: the learning rate on a log scale; momentum (γ), β₁ and ρ linear in [0, 0.99];
β₂ and RMSProp's α on the scale of ``-log10(1 - β)``, where 0.9, 0.99 and 0.999 are
equally far apart; clipping by the gradient's norm on a log scale.
"""
from __future__ import annotations

__all__ = ["meta", "SLIDERS"]

#: key -> (label, scale, low, high); "log": log10 of the value, "one_minus": -log10(1 - value).
SLIDERS = {
    "lr": ("η  learning rate", "log", 1e-6, 10.0),
    "momentum": ("γ  momentum", "linear", 0.0, 0.99),
    "beta1": ("β₁", "linear", 0.0, 0.99),
    "beta2": ("β₂", "one_minus", 0.9, 0.99999),
    "alpha": ("α  (RMS decay)", "one_minus", 0.9, 0.99999),
    "rho": ("ρ", "linear", 0.0, 0.99),
}
CLIP = ("clip_norm", "clip ‖g‖ ≤", "log", 1e-2, 1e2)


def _sliders_for(name: str, defaults: dict) -> list:
    keys = [k for k in SLIDERS if k in defaults]
    if name == "sgd":             # plain SGD: its momentum is what the momentum optimizer is for
        keys = [k for k in keys if k != "momentum"]
    return [{"key": k, "label": SLIDERS[k][0], "scale": SLIDERS[k][1], "min": SLIDERS[k][2], "max": SLIDERS[k][3],
             "default": defaults[k]} for k in keys]


def meta(explorer) -> dict:
    from ..engine import presets
    from ..optim import registry
    from ..surfaces import get_surface, surface_names
    from ..views.field import marker_for
    from ..views.style import colour_for
    from .export import FORMATS
    from .state import ARROW_KINDS, LIMITS, STYLES

    optimizers = []
    for name in registry.names():
        info = registry.get(name)
        defaults = {k: v for k, v in info.defaults.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        optimizers.append({"name": name, "display": info.display, "description": info.description,
                           "colour": {s: colour_for(name, s) for s in STYLES}, "marker": marker_for(name),
                           "defaults": defaults, "sliders": _sliders_for(name, defaults)})
    functions = []
    if explorer.run is None:
        for fname in surface_names():
            s = get_surface(fname)
            (x0, x1), (y0, y1) = s.domain
            functions.append({"name": s.name, "description": s.description, "domain": [x0, x1, y0, y1],
                              "start": [float(v) for v in s.starts[0]], "steps": presets.default_steps(s.name),
                              "opts": presets.lecture_specs(s.name)})
    return {"mode": "run" if explorer.run is not None else "race", "functions": functions, "optimizers": optimizers,
            "clip": {"key": CLIP[0], "label": CLIP[1], "scale": CLIP[2], "min": CLIP[3], "max": CLIP[4]},
            "styles": list(STYLES), "arrows": list(ARROW_KINDS), "limits": LIMITS, "formats": FORMATS,
            "default_function": explorer.default_function, "out_dir": str(explorer.out_dir.resolve()),
            "run_dir": str(explorer.run.run_dir) if explorer.run is not None else None}
