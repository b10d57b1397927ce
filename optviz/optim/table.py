"""The table behind the registry: each optimizer enters itself here where it is defined.

:mod:`optviz.optim.optimizers` fills it (``@register``); :mod:`optviz.optim.registry`
reads it. Keeping the table below both means imports run one way:
``registry -> optimizers -> table``.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Dict

from .base import GradientTransformation

__all__ = ["OptimizerInfo", "register", "TABLE"]


@dataclass(frozen=True)
class OptimizerInfo:
    name: str                  # registry key, e.g. "adam"
    display: str               # name in legends, e.g. "Adam"
    factory: Callable[..., GradientTransformation]
    colour: str                # fixed colour in every figure (colour-blind safe palette)
    description: str           # one line
    rule: str                  # the update rule in the lecture's notation
    reference: str = ""        # paper
    defaults: Dict[str, Any] = field(default_factory=dict)

    def __call__(self, **hyperparams) -> GradientTransformation:
        """The optimizer itself (``registry.create`` also knows the clipping options)."""
        return self.factory(**hyperparams)


#: name -> OptimizerInfo, in the order the optimizers were defined.
TABLE: Dict[str, OptimizerInfo] = {}


def register(name: str, *, display: str, colour: str, description: str, reference: str = ""):
    """Decorator: enter an optimizer factory in the table; its docstring's rule and
    its signature's defaults become the table's entries."""

    def decorate(factory):
        sig = inspect.signature(factory)
        defaults = {k: p.default for k, p in sig.parameters.items() if p.default is not inspect.Parameter.empty}
        rule = _rule_from_doc(factory.__doc__ or "")
        TABLE[name] = OptimizerInfo(name, display, factory, colour, description, rule, reference, defaults)
        return factory

    return decorate


def _rule_from_doc(doc: str) -> str:
    """The indented block after 'Update rule:' in a docstring."""
    lines = inspect.cleandoc(doc).splitlines()
    try:
        start = next(i for i, l in enumerate(lines) if l.strip().lower().startswith("update rule"))
    except StopIteration:
        return ""
    block = []
    for line in lines[start + 1:]:
        if line.strip() and not line.startswith("    "):
            break
        block.append(line.strip())
    return "\n".join(l for l in block if l)
