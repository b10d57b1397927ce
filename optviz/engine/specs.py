"""Optimizer specs: one parser for every kind of optimizer a path can come from.

Text (``--opt`` on the command line, strings in Python)::

    adam:lr=0.05,beta1=0.8            a registered optimizer (optviz's core)
    saddle_free_newton:damping=0.01   a second-order baseline (newton, damped_newton, ...)
    torch:adam:lr=0.05                torch.optim's version of a registered optimizer, with the
                                      registry's defaults and option names (as in ``optviz mnist``)
    torch:SGD:lr=0.01,momentum=0.9    any torch.optim.Optimizer class by name, with torch's defaults
    torch:Adam:betas=(0.8,0.99)       tuples in parentheses
    scipy:BFGS   scipy:L-BFGS-B:maxiter=50   a scipy.optimize.minimize method, recorded per iteration

Python objects: the strings; ``("adam", {"lr": 0.05})``; a ``torch.optim.Optimizer``
subclass or ``(subclass, {...})``; a factory ``params -> optimizer`` or
``(factory, {...})``; or an :class:`OptimizerSpec` from :func:`torch_spec` /
:func:`scipy_spec` (which also take a legend label).

The rules, the same for every kind: a key given twice is refused, numbers must be
finite, and every name, key and value is checked when the spec is parsed, before any
work (a torch class is built and stepped once on a scratch point; a scipy method is
asked about its options). Every kind also takes ``clip_norm=`` / ``clip_value=``.

:func:`parse_spec` is the parser that other front ends reuse (the MNIST harness can
build a ``torch:SGD:...`` optimizer for its model with ``spec.make_torch(params)``).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Dict, Iterable, List, Optional

from ..errors import InvalidValue, OptvizError, UnknownName
from ..optim import registry
from ..optim.registry import split_options, split_outside_brackets
from . import external, newton

__all__ = ["OptimizerSpec", "parse_spec", "parse_specs", "split_options", "parse_value", "torch_spec",
           "scipy_spec"]


@dataclasses.dataclass(frozen=True, eq=False)
class OptimizerSpec:
    """A parsed, checked optimizer: what to run and how to label and colour its path."""

    kind: str                          # where it comes from: "optviz" (the core), "newton", "torch", "scipy"
    name: str                          # registry name, Newton method, torch class / registry name, scipy method
    hyper: Dict[str, Any]              # options as given (defaults left out)
    key: str                           # Trajectory.optimizer: the colour key ("adam", "torch:SGD", "scipy:BFGS")
    label: str                         # legend text
    text: str = ""                     # the spec as the user wrote it (for messages)
    factory: Optional[Callable] = None  # torch: params -> torch.optim.Optimizer (clipping excluded)

    def make_torch(self, params):
        """A fresh ``torch.optim.Optimizer`` over ``params`` (torch kind only)."""
        if self.factory is None:
            raise OptvizError(f"{self.text or self.name} is not a torch optimizer")
        return self.factory(params)

    @property
    def clip(self) -> Dict[str, float]:
        """The gradient clipping options (``clip_norm``, ``clip_value``) it was given."""
        return {k: v for k, v in self.hyper.items() if k in registry.CLIP_OPTIONS}

    def buffers(self) -> int:
        """How many (2,)-buffers a path of it records per step (for memory estimates)."""
        if self.kind == "optviz":
            import numpy as np

            from .. import optim
            from .record import count_buffers

            x = np.zeros((1, 2))
            return count_buffers(optim.create(self.name, batch_dims=1, **self.hyper).init(x), x.shape)
        return {"newton": 0, "scipy": 0}.get(self.kind, 3)


# ---------------------------------------------------------------- an option's value


def parse_value(text: str) -> Any:
    """An option's value: a finite number, true/false, none, a tuple ``(a,b)`` of values,
    or (for torch's string options, e.g. ``line_search_fn=strong_wolfe``) a word."""
    s = text.strip()
    low = s.lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if low in ("none", "null"):
        return None
    if s[:1] in "([" and s[-1:] in ")]":
        return tuple(parse_value(p) for p in split_outside_brackets(s[1:-1]) if p.strip())
    try:
        value = float(s)
    except ValueError:
        if s.replace("_", "").replace("-", "").isalnum():
            return s
        raise OptvizError(f"cannot read {text!r} as a value") from None
    if not math.isfinite(value):
        raise InvalidValue(f"{text!r} is not a finite number")
    return int(value) if value.is_integer() and "." not in s and "e" not in low else value


def _check_finite(spec: str, hyper: Dict[str, Any]) -> None:
    for key, value in hyper.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidValue(f"invalid {key}={value!r} in {spec!r}: values must be finite numbers")


# ---------------------------------------------------------------- one spec


def _registry_spec(text: str) -> OptimizerSpec:
    name, hyper = registry.parse_spec(text)
    return OptimizerSpec("optviz", name, hyper, name, registry.format_spec(name, hyper), text)


def _newton_spec(text: str) -> OptimizerSpec:
    name, hyper = newton.parse_spec(text)
    return OptimizerSpec("newton", name, hyper, name, newton.label(name, hyper), text)


def _external_spec(kind: str, target, options: Dict[str, Any], text: str, label: Optional[str] = None):
    resolve = external.resolve_torch if kind == "torch" else external.resolve_scipy
    name, key, auto_label, factory, hyper = resolve(target, dict(options), text)
    return OptimizerSpec(kind, name, hyper, key, label or auto_label, text, factory)


def _from_text(text: str) -> OptimizerSpec:
    text = text.strip()
    head, _, rest = text.partition(":")
    prefix = head.strip().lower()
    if prefix in ("torch", "scipy"):
        target, _, opts = rest.partition(":")
        if not target.strip():
            kind = "torch.optim class or registry name" if prefix == "torch" else "scipy method"
            raise OptvizError(f"{text!r} names no {kind}; write e.g. "
                              + ("torch:SGD:lr=0.01,momentum=0.9" if prefix == "torch" else "scipy:BFGS"))
        options = {}
        for key, value in split_options(opts, text):
            try:
                options[key] = parse_value(value)
            except OptvizError as exc:
                raise type(exc)(f"{exc} (option {key!r} of {text!r})") from None
        return _external_spec(prefix, target.strip(), options, text)
    if head.strip() in newton.METHODS:
        return _newton_spec(text)
    try:
        return _registry_spec(text)
    except UnknownName as exc:
        valid = list(exc.valid) + list(newton.METHODS) + ["torch:NAME", "scipy:METHOD"]
        raise UnknownName("optimizer", exc.name, valid) from None


def _is_torch_object(obj) -> bool:
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and isinstance(obj, type) and issubclass(obj, torch.optim.Optimizer):
        return True
    return callable(obj) and not isinstance(obj, (str, type))


def parse_spec(spec) -> OptimizerSpec:
    """Any spec form (see the module docstring) -> a checked :class:`OptimizerSpec`."""
    if isinstance(spec, OptimizerSpec):
        return spec
    if isinstance(spec, str):
        return _from_text(spec)
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[1], dict):
        target, options = spec
        if isinstance(target, str):
            text = target + (":" + ",".join(f"{k}={_show(v)}" for k, v in options.items()) if options else "")
            if target.strip().lower().startswith(("torch:", "scipy:")):
                kind, _, name = target.partition(":")
                return _external_spec(kind.strip().lower(), name.strip(), options, text)
            if target in newton.METHODS:
                return _newton_spec(text)
            registry.create(target, **options)        # names and values checked
            _check_finite(text, options)
            return OptimizerSpec("optviz", registry.get(target).name, dict(options), target,
                                 registry.format_spec(target, options), text)
        if _is_torch_object(target):
            return torch_spec(target, **options)
    elif _is_torch_object(spec):
        return torch_spec(spec)
    raise OptvizError(f"cannot read {spec!r} as an optimizer: give a spec such as 'adam:lr=0.05', "
                      "a (name, options) pair, a torch.optim.Optimizer class or a factory params -> optimizer")


def _show(v) -> str:
    if isinstance(v, tuple):
        return "(" + ",".join(map(_show, v)) + ")"
    return f"{v:g}" if isinstance(v, float) else str(v)


def parse_specs(specs: Iterable) -> List[OptimizerSpec]:
    """:func:`parse_spec` for each; all are checked before any is run."""
    if isinstance(specs, (str, OptimizerSpec)) or (isinstance(specs, tuple) and len(specs) == 2
                                                   and isinstance(specs[1], dict)):
        specs = [specs]
    return [parse_spec(s) for s in specs]


def torch_spec(optimizer, label: Optional[str] = None, **options) -> OptimizerSpec:
    """A torch optimizer for the 2-D engine: a ``torch.optim.Optimizer`` subclass (or its
    name, e.g. ``"SGD"``, or a registry name, e.g. ``"adam"``) or a factory
    ``params -> optimizer``, with its keyword ``options`` (plus ``clip_norm`` /
    ``clip_value``) and an optional legend ``label``.

    >>> import torch
    >>> spec = torch_spec(torch.optim.SGD, lr=0.01, momentum=0.9)
    >>> spec.key
    'torch:SGD'
    """
    text = f"torch:{getattr(optimizer, '__name__', optimizer)}"
    return _external_spec("torch", optimizer, options, text, label)


def scipy_spec(method: str, label: Optional[str] = None, **options) -> OptimizerSpec:
    """A ``scipy.optimize.minimize`` method (``"BFGS"``, ``"L-BFGS-B"``, ``"CG"``,
    ``"Newton-CG"``, ``"trust-ncg"``, ``"Nelder-Mead"``, ...) with its solver ``options``."""
    return _external_spec("scipy", method, options, f"scipy:{method}", label)

