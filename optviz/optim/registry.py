"""The one table of named optimizers: name -> factory, defaults, rule, colour.

It is filled where each optimizer is defined (``@register`` in
:mod:`optviz.optim.optimizers`, into :mod:`optviz.optim.table`) and read through
this module by everything else: the CLI, the 2-D engine, the MNIST trainer, the
figures (one fixed colour per name) and the tests.
"""
from __future__ import annotations

import math
import re
from typing import Any, Dict, List, Mapping, Tuple

from ..errors import InvalidValue, OptvizError, UnknownName
from . import optimizers  # noqa: F401  (fills the table: each optimizer registers where it is defined)
from .base import GradientTransformation, chain
from .table import TABLE as _REGISTRY
from .table import OptimizerInfo, register
from .transforms import clip_by_global_norm, clip_by_value

__all__ = ["OptimizerInfo", "register", "get", "names", "create", "parse_spec", "split_options",
           "split_outside_brackets", "format_spec", "LECTURE_FIVE"]

#: The five optimizers the lecture compares, in its order.
LECTURE_FIVE = ("sgd", "momentum", "nesterov", "adagrad", "adam")


def names() -> Tuple[str, ...]:
    """All registered optimizer names, the lecture's five first."""
    return tuple(_REGISTRY)


def get(name: str) -> OptimizerInfo:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownName("optimizer", name, _REGISTRY) from None


#: Options every optimizer accepts: gradient clipping before its first transform.
CLIP_OPTIONS = ("clip_norm", "clip_value")


def create(name: str, batch_dims: int = 0, **hyperparams) -> GradientTransformation:
    """Build a registered optimizer; unknown hyperparameters name the valid ones.

    ``clip_norm`` / ``clip_value`` (any optimizer) clip the gradient first, by global
    norm or by value; ``batch_dims`` says how many leading axes index independent
    configurations (the 2-D engine's batch), so each gets its own norm.
    """
    info = get(name)
    clip_norm, clip_value = hyperparams.pop("clip_norm", None), hyperparams.pop("clip_value", None)
    unknown = set(hyperparams) - set(info.defaults)
    if unknown:
        raise InvalidValue(f"{name} has no hyperparameter {', '.join(sorted(unknown))}; "
                           f"valid: {', '.join(tuple(info.defaults) + CLIP_OPTIONS)}")
    opt = info.factory(**hyperparams)
    clips = []
    for key, value, make in (("clip_norm", clip_norm, lambda v: clip_by_global_norm(v, batch_dims=batch_dims)),
                             ("clip_value", clip_value, clip_by_value)):
        if value is not None:
            if not isinstance(value, (int, float)) or not value > 0:
                raise InvalidValue(f"invalid {key}={value!r}: {key} must be > 0")
            clips.append(make(float(value)))
    return chain(*clips, opt) if clips else opt


def split_outside_brackets(text: str, sep: str = ",") -> List[str]:
    """Split ``text`` at ``sep`` outside parentheses: ``"a=1,b=(2,3)"`` -> ``["a=1", "b=(2,3)"]``."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def split_options(text: str, spec: str) -> List[Tuple[str, str]]:
    """``"lr=0.1,betas=(0.9,0.99)"`` -> ``[("lr", "0.1"), ("betas", "(0.9,0.99)")]``; a key
    given twice, an item without ``=`` or unbalanced parentheses are refused (``spec``, the
    whole spec, names it in the message). Every parser of optimizer specs splits with it."""
    if text.count("(") != text.count(")") or text.count("[") != text.count("]"):
        raise OptvizError(f"unbalanced parentheses in {spec!r}")
    out: List[Tuple[str, str]] = []
    seen = set()
    for item in filter(None, (s.strip() for s in split_outside_brackets(text))):
        key, eq, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not key or not value:
            raise OptvizError(f"malformed optimizer option {item!r} in {spec!r}; "
                              f"write NAME:KEY=VALUE,KEY=VALUE, e.g. adam:lr=0.05,beta1=0.8")
        if key in seen:
            raise InvalidValue(f"option {key!r} is given twice in {spec!r}; give each option once")
        seen.add(key)
        out.append((key, value))
    return out


def _parse_value(text: str) -> Any:
    low = text.strip().lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    try:
        value = float(text)
    except ValueError:
        raise OptvizError(f"cannot read {text!r} as a number") from None
    return int(value) if value.is_integer() and "." not in text and "e" not in low else value


def parse_spec(spec: str) -> Tuple[str, Dict[str, Any]]:
    """``"adam:lr=0.05,beta1=0.8"`` -> ``("adam", {"lr": 0.05, "beta1": 0.8})``, checked."""
    name, _, rest = spec.strip().partition(":")
    head = re.split(r"[\s(\[{=,;]", name.strip(), maxsplit=1)
    if len(head) > 1:   # adam(lr=1), adam lr=1, adam,sgd: a familiar syntax that is not ours
        example = head[0].lower() if head[0].lower() in _REGISTRY else "adam"
        raise OptvizError(f"cannot read the optimizer spec {spec!r}; write one optimizer as "
                          f"NAME:KEY=VALUE,KEY=VALUE, e.g. {example}:lr=0.05")
    info = get(name.strip())
    hyper: Dict[str, Any] = {}
    for key, value in split_options(rest, spec):
        if key not in info.defaults and key not in CLIP_OPTIONS:
            raise InvalidValue(f"{info.name} has no hyperparameter {key!r}; "
                               f"valid: {', '.join(tuple(info.defaults) + CLIP_OPTIONS)}")
        try:
            hyper[key] = _parse_value(value)
        except OptvizError as exc:
            raise OptvizError(f"{exc} (option {key!r} of {spec!r})") from None
        if not math.isfinite(hyper[key]):
            raise InvalidValue(f"invalid {key}={value} in {spec!r}: {value!r} is not a finite number")
    create(info.name, **hyper)  # validates the values now, not at the first step
    return info.name, hyper


def format_spec(name: str, hyperparams: Mapping[str, Any], lr: bool = True) -> str:
    """A short legend label: ``"Adam (η=0.05, β₁=0.8)"``; defaults are left out
    except the learning rate, which is shown unless ``lr=False`` (e.g. when it is swept)."""
    info = get(name)
    shown = {"lr": info.defaults.get("lr")} if "lr" in info.defaults else {}
    shown.update({k: v for k, v in hyperparams.items() if info.defaults.get(k) != v})
    if "lr" in hyperparams:
        shown["lr"] = hyperparams["lr"]
    if not lr:
        shown.pop("lr", None)
    body = ", ".join(f"{_greek(k)}={_fmt(v)}" for k, v in shown.items())
    return f"{info.display} ({body})" if body else info.display


_GREEK = {"lr": "η", "momentum": "γ", "beta1": "β₁", "beta2": "β₂", "eps": "ε", "weight_decay": "λ",
          "alpha": "α", "rho": "ρ", "clip_norm": "clip", "clip_value": "clip|g|"}


def _greek(key: str) -> str:
    return _GREEK.get(key, key)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
