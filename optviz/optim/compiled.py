"""Compiled updates: the core's pure update functions through ``torch.compile``.

An update of the core is a pure function of ``(grads, state, params)``, which is
what ``torch.compile`` handles best: inductor fuses an optimizer's whole chain,
for every parameter of a model, into one loop over memory. On the lecture's MLP a
compiled Adam step costs about half an eager one, close to
``torch.optim.Adam(fused=True)`` (``benchmarks/optimizer_step.py``).

Two forms, both built from any :class:`~optviz.optim.base.GradientTransformation`::

    from optviz.optim import adam, per_leaf
    from optviz.optim.compiled import compile_step, compile_transform

    # a stack of M runs: each leaf (M, ...); per-run hyperparameters as tensors
    # shaped (M, 1, ..., 1) to each leaf's rank, hence one transform per leaf
    shaped = lambda v, p: v.view(-1, *[1] * (p.ndim - 1))
    tx = per_leaf([adam(lr=shaped(lrs, p), beta1=shaped(b1s, p)) for p in params])

    ctx = compile_transform(tx)                   # same contract as tx
    state = ctx.init(params)
    updates, state = ctx.update(grads, state, params)

    step = compile_step(tx)                       # in place: the fast form
    state = step.init(params)
    state = step(params, grads, state)            # params += updates, one fused loop
    state = step(params, grads, state, scale=-lr) # params += -lr * updates (tx without its lr)

Rules:

- **Counters are 0-d tensors.** The state of a compiled transform holds its step
  counts (and NAdam's ``mu_product``) as 0-d float64 CPU tensors, not Python
  numbers: a Python int that changes every step would make ``torch.compile``
  specialise on it and recompile every step (8 times, then give up). ``init``
  returns them so; ``update`` also takes a state with Python numbers (from an
  eager run or a checkpoint) and converts it; :func:`scalars_to_numbers` turns a
  state back. The scalars made from them (bias corrections) go through
  :func:`~optviz.optim.ops.hoist`, so they are computed once per step, not once
  per element.
- **One compile per structure.** Hyperparameters that are tensors (a stack's
  per-run rates, or 0-d tensors that a caller updates in place, as the torch
  adapter does for a scheduler's ``betas``) are inputs of the graph: new values
  never recompile. Python floats are baked into it (one compile per distinct
  value). Transforms compiled with the same ``share`` key share one code cache,
  so another optimizer of the same structure costs no compile at all. New
  parameter shapes compile again (dynamo allows 8 entries per cache).
- **Donation.** ``compile_step``, and ``compile_transform(donate=True)``, write the
  new state into the old state's tensors (the caller must drop the old state, as
  an optimizer does): no allocation per buffer per step.
- **Clean fallback.** Without a usable compiler (:func:`available`), or if
  compilation fails, the update runs eagerly, with one warning per process at
  most; the results are the same up to rounding.
- **One compile per machine.** The ~30 s that inductor takes the first time is
  kept in its on-disk caches (FX graph and AOT autograd caches, compiled
  kernels) under ``platformdirs.user_cache_dir("optviz")/torchinductor`` unless
  ``TORCHINDUCTOR_CACHE_DIR`` is set; a second process loads them and spends a few
  seconds (imports and dynamo's tracing) instead: ``benchmarks/optimizer_step.py
  --compile-cache-check`` measured 29.7 s cold, 5.1 s warm on a busy 2-core machine.

Numerics: float32 updates agree with the eager ones to rounding (about 1e-6
relative; float64 runs agree with torch.optim to 1e-12); step counts and the
scalars made from them are float64, as eagerly. Checked on CPU; on CUDA the
counters stay on the host (a CPU scalar per step, no device sync), which is
untested here.
"""
from __future__ import annotations

import os
import shutil
import types
import warnings
from typing import Any, Callable, Dict, Hashable, Optional, Tuple

import torch

from . import ops
from .base import GradientTransformation
from .ops import donate_state, end_donation
from .state import map_leaves
from .tree import tree_leaves

__all__ = ["compile_transform", "compile_step", "CompiledStep", "available", "compile_setting",
           "scalars_to_tensors", "scalars_to_numbers", "cache_dir"]


# --- availability, caches, warnings --------------------------------------------------

def available(device: str = "cpu") -> Tuple[bool, str]:
    """``(True, "")`` when updates on ``device`` can be compiled, else ``(False, why)``.

    CPU needs a C++ compiler (inductor writes C++); CUDA needs triton, and the C++
    compiler too (step counts and the scalars made from them stay on the host).
    Checked without compiling anything.
    """
    kind = torch.device(device).type
    if kind not in ("cpu", "cuda"):
        return False, f"no compiled updates on {kind} devices"
    if kind == "cuda":
        try:
            import triton  # noqa: F401
        except ImportError:
            return False, "triton is not installed (inductor needs it for CUDA)"
    cxx = os.environ.get("CXX")
    for name in ([cxx] if cxx else []) + ["g++", "c++", "clang++"]:
        if shutil.which(name):
            return True, ""
    return False, "no C++ compiler found (inductor needs g++ or clang++; set CXX to use another)"


def cache_dir() -> str:
    """Where inductor keeps compiled code across processes: ``$TORCHINDUCTOR_CACHE_DIR``,
    else optviz's per-user cache folder (set as the default on first use)."""
    path = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if not path:
        import platformdirs

        path = os.path.join(platformdirs.user_cache_dir("optviz"), "torchinductor")
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = path
    return path


_WARNED = False


def _warn_once(message: str) -> None:
    global _WARNED
    if not _WARNED:
        _WARNED = True
        warnings.warn(message, RuntimeWarning, stacklevel=4)


def compile_setting(value) -> Any:
    """``True``, ``False`` or ``"auto"`` from a ``compile=`` argument; ``None`` reads
    ``$OPTVIZ_COMPILE`` (``0``, ``1`` or ``auto``; default ``0``)."""
    from ..errors import InvalidValue

    if value is None:
        value = os.environ.get("OPTVIZ_COMPILE", "0").strip().lower()
        value = {"0": False, "": False, "false": False, "off": False, "1": True, "true": True,
                 "on": True, "auto": "auto"}.get(value, value)
    if value not in (True, False, "auto"):
        raise InvalidValue(f"invalid compile={value!r}: use True, False or 'auto' ($OPTVIZ_COMPILE: 0, 1 or auto)")
    return value


# --- counters as tensors -----------------------------------------------------------

def _map_scalars(state: Any, fn: Callable[[Any], Any]) -> Any:
    """``state`` with ``fn`` applied to each leaf that is not a list of per-parameter buffers."""
    return map_leaves(state, lambda path, leaf, per_param: leaf if per_param else fn(leaf))


def _to_tensor(x):
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return torch.tensor(float(x), dtype=torch.float64)
    return x


def _to_number(x):
    if isinstance(x, torch.Tensor) and x.ndim == 0 and x.dtype == torch.float64 and x.device.type == "cpu":
        value = x.item()
        return int(value) if value.is_integer() and value >= 0 else value
    return x


def scalars_to_tensors(state: Any) -> Any:
    """``state`` with its Python numbers (step counts, NAdam's mu product) as 0-d
    float64 CPU tensors: the form compiled updates take."""
    return _map_scalars(state, _to_tensor)


def scalars_to_numbers(state: Any) -> Any:
    """The inverse of :func:`scalars_to_tensors`: whole numbers come back as ints."""
    return _map_scalars(state, _to_number)


def _has_numbers(state: Any) -> bool:
    found = []
    _map_scalars(state, lambda x: found.append(isinstance(x, (int, float)) and not isinstance(x, bool)) or x)
    return any(found)


# --- the traced functions -------------------------------------------------------------

def _donate(old: Any, new: Any) -> Any:
    """``new``, written into ``old``'s tensors wherever they are distinct tensors of one shape."""
    if isinstance(old, tuple) and isinstance(new, tuple) and len(old) == len(new):
        items = [_donate(o, n) for o, n in zip(old, new)]
        return type(new)(*items) if hasattr(new, "_fields") else tuple(items)
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [_donate(o, n) for o, n in zip(old, new)]
    if isinstance(old, torch.Tensor) and isinstance(new, torch.Tensor) and old is not new \
            and old.shape == new.shape and old.dtype == new.dtype:
        old.copy_(new)
        return old
    return new


# Both return the scalars that ops.hoist collected as extra outputs, which makes
# inductor compute each once (see ops.hoist); the callers drop them.

def _hoisted_update(tx, grads, state, params):
    hoisted = ops.begin_hoisting()
    try:
        updates, new_state = tx.update(grads, state, params)
    finally:
        ops.end_hoisting()
    return updates, new_state, tuple(hoisted)


def _update_fn(tx, grads, state, params, donate):
    updates, new_state, hoisted = _hoisted_update(tx, grads, state, params)
    return (updates, (_donate(state, new_state) if donate else new_state)), hoisted


def _step_fn(tx, params, grads, state, scale):
    updates, new_state, hoisted = _hoisted_update(tx, grads, state, params)
    for p, u in zip(tree_leaves(params), tree_leaves(updates)):
        p.add_(u if scale is None else u * scale)
    return _donate(state, new_state), hoisted


_SHARED: Dict[Tuple[str, Hashable], Callable] = {}


def _compiled(fn: Callable, share: Optional[Hashable], options: dict) -> Callable:
    """``torch.compile(fn)`` on a code object of its own (dynamo keeps one cache per
    code object): one per ``share`` key, or a private one."""
    key = (fn.__name__, share, tuple(sorted(options.items(), key=str)))
    if share is not None and key in _SHARED:
        return _SHARED[key]
    code = fn.__code__.replace(co_name=f"optviz_{fn.__name__.strip('_')}")
    fresh = types.FunctionType(code, fn.__globals__, code.co_name, fn.__defaults__, fn.__closure__)
    compiled = torch.compile(fresh, **options)
    if share is not None:
        _SHARED[key] = compiled
    return compiled


class _Runner:
    """The compiled function with its eager twin, switching to eager for good on failure."""

    def __init__(self, fn: Callable, eager: Callable, share, compile_options: dict, device: str):
        ok, why = available(device)
        self.eager = eager
        self.compiled = None
        self.reason = why
        if ok:
            cache_dir()
            options = {"backend": "inductor", "dynamic": None, **compile_options}
            self.compiled = _compiled(fn, share, options)
        elif compile_options.get("backend", "inductor") != "inductor":  # eager/aot_eager need no compiler
            self.compiled = _compiled(fn, share, compile_options)
        else:
            _warn_once(f"optviz: eager optimizer updates ({why})")

    @property
    def is_compiled(self) -> bool:
        return self.compiled is not None

    def __call__(self, *args):
        if self.compiled is not None:
            try:
                if not torch.is_grad_enabled():
                    return self.compiled(*args)[0]
                with torch.no_grad():
                    return self.compiled(*args)[0]
            except Exception as exc:  # a failed compile: the eager path gives the same numbers
                self.compiled, self.reason = None, f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
                _warn_once(f"optviz: torch.compile failed, optimizer updates run eagerly ({self.reason})")
        return self.eager(*args)


def _eager_update(tx, grads, state, params, donate):
    numbers = scalars_to_numbers(state)
    token = donate_state() if donate else None
    try:
        updates, new_state = tx.update(grads, numbers, params)
    finally:
        if token is not None:
            end_donation(token)
    return updates, scalars_to_tensors(new_state)


def _eager_step(tx, params, grads, state, scale):
    updates, new_state = _eager_update(tx, grads, state, params, donate=True)
    s = None if scale is None else float(scale)
    with torch.no_grad():
        for p, u in zip(tree_leaves(params), tree_leaves(updates)):
            p.add_(u) if s is None else p.add_(u, alpha=s)
    return new_state


def compile_transform(tx: GradientTransformation, *, donate: bool = False, share: Optional[Hashable] = None,
                      device: str = "cpu", **compile_options) -> GradientTransformation:
    """``tx`` with its update run through ``torch.compile`` (see the module's rules).

    ``init(params)`` returns ``tx``'s state with its counters as 0-d tensors;
    ``update(grads, state, params)`` returns ``(updates, state)`` as ``tx`` does.
    ``donate=True``: the new state is written into ``state``'s tensors (drop the
    old one). ``share``: a key; transforms with one key share compiled code (use it
    for transforms of one structure whose hyperparameters are tensors).
    ``device``: where the parameters live (it decides which compiler is needed).
    ``compile_options`` go to ``torch.compile`` (``backend``, ``mode``, ``dynamic``...).
    """
    runner = _Runner(_update_fn, _eager_update, share, compile_options, device)

    def update(grads, state, params=None):
        if _has_numbers(state):
            state = scalars_to_tensors(state)
        return runner(tx, grads, state, params, donate)

    update.runner = runner
    return GradientTransformation(lambda params: scalars_to_tensors(tx.init(params)), update, tx.eval_point)


class CompiledStep:
    """``step(params, grads, state, scale=None) -> state``: ``params += scale * updates``
    (``+= updates`` without a scale) in place, the new state written into ``state``'s
    tensors, all in one compiled function. Build it with :func:`compile_step`."""

    def __init__(self, tx: GradientTransformation, share, device: str, compile_options: dict):
        self.tx = tx
        self._runner = _Runner(_step_fn, _eager_step, share, compile_options, device)
        self._scale = torch.zeros((), dtype=torch.float64)  # one input tensor: a new lr never recompiles
        self._last = None  # the state it returned last (known to hold tensors only)

    @property
    def is_compiled(self) -> bool:
        """False once it has fallen back to eager updates (``reason`` says why)."""
        return self._runner.is_compiled

    @property
    def reason(self) -> str:
        return self._runner.reason

    def init(self, params) -> Any:
        return scalars_to_tensors(self.tx.init(params))

    def __call__(self, params, grads, state, scale: Optional[float] = None):
        if state is not self._last and _has_numbers(state):
            state = scalars_to_tensors(state)
        if scale is not None:
            self._scale.fill_(scale)
        self._last = self._runner(self.tx, params, grads, state, None if scale is None else self._scale)
        return self._last


def compile_step(tx: GradientTransformation, *, share: Optional[Hashable] = None, device: str = "cpu",
                 **compile_options) -> CompiledStep:
    """The in-place form: one compiled function computes ``tx``'s update, adds it to
    the parameters and writes the new state over the old (see :class:`CompiledStep`).

    The torch adapter uses it with ``tx`` less its learning rate and ``scale=-lr``,
    so a scheduler's new rate is a new input value, not a new graph.
    """
    return CompiledStep(tx, share, device, compile_options)
