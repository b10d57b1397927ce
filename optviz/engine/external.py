"""Optimizers from outside the core on the 2-D surfaces: torch.optim and scipy.optimize.

Paths from here are the same :class:`~optviz.engine.trajectory.Trajectory` records
as the core's, so the figures and animations draw them unchanged, beside the
first-order ones, each in its own fixed colour (:func:`optviz.views.style.colour_for`
of ``torch:Name`` / ``scipy:Method``).

- **torch**: any ``torch.optim.Optimizer`` steps the point as a float64 parameter of
  shape (2,); the surface's gradient (plus the race's seeded noise, the same for every
  optimizer) is handed over as ``p.grad`` through a closure, so optimizers that
  re-evaluate (LBFGS) work too. One optimizer per start: batching starts into one
  parameter would couple them in the optimizers that look across elements (LBFGS,
  Adafactor). The optimizer's per-parameter state (``momentum_buffer``, ``exp_avg``,
  ...) is recorded per step, so momentum arrows work.
- **scipy**: ``scipy.optimize.minimize`` with the surface's gradient (and Hessian
  where the method uses one), ``maxiter`` = the race's steps; the path is the start
  and then one point per iteration (the ``callback``), ending where the method stops.
  Gradient noise does not apply (line searches need exact values): it is refused.

Either way a path that leaves the box around the domain (or goes NaN) ends at its
last point inside, with the step it left at recorded, as in the core's engine.
"""
from __future__ import annotations

import inspect
import warnings
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from ..errors import InvalidValue, OptvizError, RuntimeFailure, UnknownName
from ..optim.registry import CLIP_OPTIONS
from .record import escape_box, gradient_noise, inside
from .trajectory import Trajectory

__all__ = ["torch_classes", "torch_names", "resolve_torch", "resolve_scipy", "run_torch", "run_scipy",
           "SCIPY_METHODS"]

#: scipy.optimize.minimize methods that report every iteration (lower-case name -> scipy's spelling).
SCIPY_METHODS = {m.lower(): m for m in (
    "BFGS", "L-BFGS-B", "CG", "Newton-CG", "trust-ncg", "Nelder-Mead", "Powell", "trust-exact",
    "trust-krylov", "dogleg", "SLSQP", "COBYLA", "COBYQA", "trust-constr")}
_SCIPY_GRADIENT_FREE = {"nelder-mead", "powell", "cobyla", "cobyqa"}
_SCIPY_HESSIAN = {"newton-cg", "trust-ncg", "trust-exact", "trust-krylov", "dogleg", "trust-constr"}
_SCIPY_NEEDS_HESSIAN = _SCIPY_HESSIAN - {"newton-cg", "trust-constr"}   # the others fall back to differences


# ---------------------------------------------------------------- torch: names and factories


def torch_classes() -> Dict[str, type]:
    """Every ``torch.optim`` attribute that is an Optimizer subclass, by name."""
    import torch

    return {n: c for n, c in vars(torch.optim).items()
            if isinstance(c, type) and issubclass(c, torch.optim.Optimizer) and c is not torch.optim.Optimizer}


def _registry_names_in_torch() -> List[str]:
    """Registry names with a torch.optim counterpart (``torch:adam`` is torch.optim.Adam)."""
    from ..optim import registry
    from ..optim.torch_reference import has_reference

    return [n for n in registry.names() if has_reference(n)]


def torch_names() -> List[str]:
    """Names ``torch:NAME`` takes: registry names with a torch.optim counterpart, then torch's classes."""
    return _registry_names_in_torch() + sorted(torch_classes())


def _clip_options(options: Dict[str, Any], text: str) -> Dict[str, float]:
    clip = {}
    for key in CLIP_OPTIONS:
        if key in options:
            value = options.pop(key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise InvalidValue(f"invalid {key}={value!r} in {text!r}: {key} must be > 0")
            clip[key] = float(value)
    return clip


#: Legend symbols for torch's option names, as the registry's labels write them (short legends).
_SYMBOLS = {"lr": "η", "momentum": "γ", "eps": "ε", "weight_decay": "λ", "alpha": "α", "rho": "ρ",
            "betas": "β", "clip_norm": "clip", "clip_value": "clip|g|"}


def _format_options(options: Dict[str, Any]) -> str:
    def show(v):
        if isinstance(v, tuple):
            return "(" + ", ".join(map(show, v)) + ")"
        return f"{v:g}" if isinstance(v, float) else str(v)

    return ", ".join(f"{_SYMBOLS.get(k, k)}={show(v)}" for k, v in options.items())


def _scratch_check(factory: Callable, text: str) -> None:
    """Build the optimizer on a scratch point and take two steps: torch checks most values
    only at construction or at the first step (SparseAdam, Muon, fused on CPU, ...)."""
    import torch

    p = torch.tensor([0.5, -0.5], dtype=torch.float64, requires_grad=True)
    try:
        opt = factory([p])
        if not isinstance(opt, torch.optim.Optimizer):
            raise InvalidValue(f"{text}: the factory returned {type(opt).__name__}, not a torch.optim.Optimizer")

        def closure():
            opt.zero_grad()
            p.grad = 2 * p.detach()
            return (p.detach() ** 2).sum()

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _ in range(2):
                opt.step(closure)
    except OptvizError:
        raise
    except Exception as exc:  # noqa: BLE001  (torch reports bad values as ValueError, TypeError, RuntimeError)
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidValue(f"{text}: torch refused it: {msg}") from None


def resolve_torch(target, options: Dict[str, Any], text: str):
    """``(name, key, label, factory, hyper)`` for ``torch:target`` with ``options``, checked.

    ``target``: a registry name with a torch counterpart (``"adam"``: torch.optim.Adam with
    the registry's defaults and option names, as ``optviz mnist`` reads ``torch:adam``), a
    torch.optim class name (``"SGD"``), an Optimizer subclass, or a factory
    ``params -> optimizer`` (options passed as keywords).
    """
    try:
        import torch
    except ImportError:  # pragma: no cover  (torch is a dependency)
        raise RuntimeFailure(f"{text} needs torch, which is not installed") from None
    from ..optim import registry
    from ..optim.torch_reference import has_reference, torch_optimizer

    hyper = dict(options)
    clip = _clip_options(options, text)

    if isinstance(target, str) and target in registry.names():
        if not has_reference(target):
            raise InvalidValue(f"{text}: {target} has no torch.optim counterpart; those with one: "
                               + ", ".join(_registry_names_in_torch()))
        info = registry.get(target)
        unknown = set(options) - set(info.defaults)
        if unknown:
            raise InvalidValue(f"{text}: {target} has no option {', '.join(sorted(unknown))}; "
                               f"valid: {', '.join(tuple(info.defaults) + CLIP_OPTIONS)}")
        registry.create(target, **options)             # the registry's own value checks

        def factory(params, _name=target, _opts=dict(options)):
            return torch_optimizer(params, _name, **_opts)

        name, key = target, f"torch:{target}"
        label = registry.format_spec(target, {**options, **clip}) + " [torch]"
    else:
        if isinstance(target, str):
            classes = torch_classes()
            cls = classes.get(target)
            if cls is None:
                folded = {n.lower(): c for n, c in classes.items()}
                cls = folded.get(target.lower())
            if cls is None:
                raise UnknownName("torch optimizer", target, torch_names())
        else:
            cls = target
        if isinstance(cls, type):
            if not issubclass(cls, torch.optim.Optimizer):
                raise InvalidValue(f"{cls.__name__} is not a torch.optim.Optimizer")
            params = inspect.signature(cls.__init__).parameters
            takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
            valid = [k for k in list(params)[2:] if params[k].kind not in (inspect.Parameter.VAR_POSITIONAL,
                                                                            inspect.Parameter.VAR_KEYWORD)]
            unknown = [k for k in options if k not in valid]
            if unknown and not takes_any:
                raise InvalidValue(f"{text}: torch.optim.{cls.__name__} has no option {', '.join(unknown)}; "
                                   f"valid: {', '.join(valid + list(CLIP_OPTIONS))}")
            name = cls.__name__

            def factory(params, _cls=cls, _opts=dict(options)):
                return _cls(params, **_opts)
        else:
            user = cls

            def factory(params, _f=user, _opts=dict(options)):
                return _f(params, **_opts)

            probe = torch.zeros(2, dtype=torch.float64, requires_grad=True)
            try:
                made = factory([probe])
            except Exception as exc:  # noqa: BLE001
                raise InvalidValue(f"{text}: the factory failed on a 2-D point: {exc}") from None
            if not isinstance(made, torch.optim.Optimizer):
                raise InvalidValue(f"{text}: the factory returned {type(made).__name__}, "
                                   "not a torch.optim.Optimizer")
            name = type(made).__name__
        key = f"torch:{name}"
        body = _format_options({**options, **clip})
        label = f"torch {name}" + (f" ({body})" if body else "")
    _scratch_check(factory, text)
    return name, key, label, factory, hyper


# ---------------------------------------------------------------- scipy: names and options


def _scipy():
    try:
        import scipy.optimize as so
    except ImportError:
        raise RuntimeFailure("scipy methods need scipy: pip install scipy (or pip install 'optviz[scipy]')") from None
    return so


def resolve_scipy(method, options: Dict[str, Any], text: str):
    """``(name, key, label, None, hyper)`` for ``scipy:method`` with solver ``options``, checked
    by asking scipy itself (an unknown option is refused, not warned about)."""
    so = _scipy()
    low = str(method).strip().lower().replace("_", "-")
    if low not in SCIPY_METHODS:
        raise UnknownName("scipy method", str(method), SCIPY_METHODS.values())
    name = SCIPY_METHODS[low]
    hyper = dict(options)
    clip = _clip_options(options, text)
    if clip:
        raise InvalidValue(f"{text}: scipy's methods take exact gradients; clip_norm/clip_value do not apply")
    if "maxiter" in options and (isinstance(options["maxiter"], bool) or not isinstance(options["maxiter"], int)
                                 or options["maxiter"] <= 0):
        raise InvalidValue(f"{text}: maxiter must be a positive integer, got {options['maxiter']!r}")
    # ask scipy: one iteration on a parabola, warnings as errors (unknown options are a warning there)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", so.OptimizeWarning)
        try:
            so.minimize(lambda x: float(x @ x), np.array([1.0, 1.0]), method=name,
                        **_scipy_derivatives(low, lambda x: 2 * x, lambda x: 2 * np.eye(2)),
                        options={**options, "maxiter": 1})
        except so.OptimizeWarning as exc:
            raise InvalidValue(f"{text}: {str(exc).strip().rstrip('.')} for {name}") from None
        except Exception as exc:  # noqa: BLE001  (scipy reports bad values as ValueError, TypeError)
            raise InvalidValue(f"{text}: scipy refused it: {str(exc).strip().splitlines()[0]}") from None
    body = _format_options(options)
    label = f"scipy {name}" + (f" ({body})" if body else "")
    return name, f"scipy:{name}", label, None, hyper


def _scipy_derivatives(low: str, grad, hess) -> Dict[str, Callable]:
    if low in _SCIPY_GRADIENT_FREE:
        return {}
    out = {"jac": grad}
    if low in _SCIPY_HESSIAN and hess is not None:
        out["hess"] = hess
    return out


# ---------------------------------------------------------------- running them


def _state_rows(state: dict) -> Dict[str, np.ndarray]:
    """The optimizer's (2,)-tensors for one parameter (momentum, moments, ...), as numpy."""
    import torch

    return {k: v.detach().cpu().numpy().astype(float) for k, v in state.items()
            if torch.is_tensor(v) and tuple(v.shape) == (2,)}


def _clip_(g, clip: Dict[str, float]):
    """The core's clipping, in its order (norm, then value) and with its formula
    (``torch.nn.utils.clip_grad_norm_``'s: ``min(1, c / (||g|| + 1e-6))``)."""
    if "clip_norm" in clip:
        g = g * min(1.0, clip["clip_norm"] / (float(np.sqrt((g * g).sum())) + 1e-6))
    if "clip_value" in clip:
        g = np.clip(g, -clip["clip_value"], clip["clip_value"])
    return g


def run_torch(surface, spec, starts: np.ndarray, steps: int, noise: float = 0.0, seed: Optional[int] = 0,
              box: Optional[np.ndarray] = None) -> List[Trajectory]:
    """Step ``spec`` (a torch :class:`~optviz.engine.specs.OptimizerSpec`) from each start."""
    import torch

    starts = np.asarray(starts, dtype=float).reshape(-1, 2)
    box = escape_box(surface.domain) if box is None else box
    noise_seq = gradient_noise(noise, seed, starts, steps)
    clip = spec.clip
    out = []
    for b, start in enumerate(starts):
        p = torch.tensor(start, dtype=torch.float64, requires_grad=True)
        opt = spec.make_torch([p])
        xs, losses, grads, buffers = [start.copy()], [], [], {}
        diverged_at = None
        t_now = [0]

        def closure():
            opt.zero_grad()
            x = p.detach().numpy()[None]
            loss, g = surface.value_and_grad(x)
            g = g[0]
            if noise_seq is not None:
                g = g + noise_seq[t_now[0], b]
            # recorded as the core records it: the (noisy) gradient, before clipping
            value = (float(np.asarray(loss).reshape(-1)[0]), np.array(g, dtype=float))
            p.grad = torch.as_tensor(np.array(_clip_(g, clip), dtype=float))
            if closure.first is None:     # LBFGS evaluates several points per step: keep the one at x_t
                closure.first = value
            return torch.tensor(value[0], dtype=torch.float64)

        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            for t in range(steps):
                t_now[0] = t
                closure.first = None
                try:
                    opt.step(closure)
                except (RuntimeError, ValueError) as exc:       # e.g. a NaN that torch refuses
                    if closure.first is None:
                        raise RuntimeFailure(f"{spec.label}: torch failed at step {t}: {exc}") from None
                    diverged_at = t + 1
                    losses.append(closure.first[0]); grads.append(closure.first[1])
                    break
                if closure.first is None:                       # a step that evaluated nothing
                    closure()
                losses.append(closure.first[0]); grads.append(closure.first[1])
                x_new = p.detach().numpy().copy()
                if not inside(x_new[None], box)[0]:
                    diverged_at = t + 1
                    break
                xs.append(x_new)
                _push_state(buffers, _state_rows(opt.state.get(p, {})), t + 1)
        n = len(xs)
        xy = np.array(xs)
        last_loss, last_grad = surface.value_and_grad(xy[-1:])
        losses = (losses + [float(last_loss[0])])[:n]
        grads = (grads + [np.asarray(last_grad[0], dtype=float)])[:n]
        step = np.diff(xy, axis=0)
        state = {k: _pad(v, n) for k, v in buffers.items()}
        out.append(Trajectory(optimizer=spec.key, hyperparams=dict(spec.hyper), label=spec.label, xy=xy,
                              loss=np.array(losses, dtype=float), grad=np.array(grads, dtype=float).reshape(-1, 2),
                              step=step, state=state, diverged_at=diverged_at))
    return out


def _push_state(buffers: Dict[str, dict], state: Dict[str, np.ndarray], t: int) -> None:
    # row t holds the buffers after t steps, as the core's engine records them (row 0: torch
    # creates its state at the first step, so there is none: NaN)
    for key, value in state.items():
        buffers.setdefault(key, {})[t] = value


def _pad(rows: Dict[int, np.ndarray], n: int) -> np.ndarray:
    arr = np.full((n, 2), np.nan)
    for t, v in rows.items():
        if t < n:
            arr[t] = v
    return arr


def run_scipy(surface, spec, starts: np.ndarray, steps: int, noise: float = 0.0,
              box: Optional[np.ndarray] = None) -> List[Trajectory]:
    """Minimize from each start with ``spec``'s scipy method; one point per iteration."""
    so = _scipy()
    if noise:
        raise InvalidValue(f"{spec.label}: scipy's methods take exact gradients; drop the gradient noise "
                           "or this optimizer")
    low = spec.name.lower()
    if low in _SCIPY_NEEDS_HESSIAN and not hasattr(surface, "hessian"):
        raise OptvizError(f"{spec.name} needs the Hessian, and {surface.name} has no formula to differentiate")
    starts = np.asarray(starts, dtype=float).reshape(-1, 2)
    box = escape_box(surface.domain) if box is None else box
    hess = (lambda x: np.asarray(surface.hessian(x[None])[0], dtype=float)) if hasattr(surface, "hessian") else None
    derivs = _scipy_derivatives(low, lambda x: np.asarray(surface.grad(x[None])[0], dtype=float), hess)
    options = {"maxiter": steps, **spec.hyper}
    out = []
    for start in starts:
        xs = [start.copy()]
        diverged_at: List[Optional[int]] = [None]

        def callback(intermediate_result):
            x = np.array(intermediate_result.x, dtype=float).reshape(2)
            if not inside(x[None], box)[0]:
                diverged_at[0] = len(xs)
                raise StopIteration
            xs.append(x)

        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            try:
                so.minimize(lambda x: float(surface.value(x[None])[0]), start.copy(), method=spec.name,
                            callback=callback, options=options, **derivs)
            except (ValueError, np.linalg.LinAlgError, FloatingPointError):
                pass   # a method that cannot go on (dogleg off a convex region, a NaN): the path ends here
        xy = np.array(xs[: steps + 1])
        loss, grad = surface.value_and_grad(xy)
        out.append(Trajectory(optimizer=spec.key, hyperparams=dict(spec.hyper), label=spec.label, xy=xy,
                              loss=np.asarray(loss, dtype=float), grad=np.asarray(grad, dtype=float),
                              step=np.diff(xy, axis=0), state={}, diverged_at=diverged_at[0]))
    return out
