"""Second-order methods beside first-order ones on MNIST: accuracy against time and work.

One loop trains every method from the same initial weights (``build_model(model,
seed)``) on the same training images, under one clock and one evaluation protocol,
so the curves are comparable:

- first-order methods of the registry (``sgd:lr=0.01``, ``momentum``, ``adam``, ...)
  through the shared core's :class:`~optviz.optim.TorchOptimizer`, on minibatches
  (``batch=32`` by default: the lecture's protocol, in its batch order);
- ``lbfgs``: ``torch.optim.LBFGS`` with a strong-Wolfe line search, full batch by
  default (its curvature pairs need the same function at every step), ``iters``
  iterations per ``step(closure)`` call;
- ``newton_cg``: the Hessian-free step of :mod:`optviz.analysis.newton_cg` on large
  random batches, with Gauss-Newton products on a part of each batch.

The clock runs only while a method trains: evaluations (validation loss and
accuracy, at about ``evals`` points over the budget) are not counted. Work is counted
in examples: every forward-and-backward pass over an example is one gradient
evaluation, every example in a curvature product is one product, every example of a
line-search forward pass one function evaluation; the figure's "data passes" are
their sum over the number of training images. All methods use the same number of
torch threads.

Specs: ``NAME[:KEY=VALUE,...]``; every method takes ``batch=N`` (``batch=0``: the
full training set); ``lbfgs`` takes ``history``, ``iters``, ``lr``; ``newton_cg`` takes
``damping``, ``cg_iters``, ``curvature_batch``, ``curvature`` (``gauss_newton`` or
``hessian``) and ``warm_start``.
"""
from __future__ import annotations

import itertools
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import InvalidValue, OptvizError
from ..io import write_json
from ._threads import torch_threads
from .hessian import hessian_memory

__all__ = ["MethodTrace", "ComparisonResult", "compare_second_order", "parse_method", "DEFAULT_METHODS",
           "state_floats"]

DEFAULT_METHODS = ("sgd:lr=0.01", "momentum:lr=0.01,momentum=0.9", "adam:lr=0.001", "lbfgs", "newton_cg")
_SECOND = {
    "lbfgs": {"batch": 0, "history": 20, "iters": 5, "lr": 1.0},
    "newton_cg": {"batch": 10000, "curvature_batch": 2000, "damping": 1.0, "cg_iters": 20, "curvature": "gauss_newton",
                  "warm_start": 0.95, "lr": 1.0},
}
_DISPLAY = {"lbfgs": "L-BFGS", "newton_cg": "Newton-CG"}


def parse_method(spec: str) -> Tuple[str, Dict[str, object], str]:
    """``"lbfgs:history=10"`` -> ``("lbfgs", {...all options...}, "L-BFGS (m=10, full batch)")``;
    first-order specs go to the registry, with ``batch`` (default 32) taken out."""
    from ..engine.specs import split_options
    from ..optim import registry

    name, _, rest = spec.strip().partition(":")
    name = name.strip()
    opts: Dict[str, object] = dict(split_options(rest, spec))  # a key given twice is refused
    batch = opts.pop("batch", None)
    if name in _SECOND:
        out = dict(_SECOND[name])
        for key, value in opts.items():
            if key not in out:
                raise InvalidValue(f"{name} has no option {key!r}; valid: {', '.join(out)}")
            out[key] = value if key == "curvature" else _number(key, value, spec)
        if batch is not None:
            out["batch"] = _number("batch", batch, spec)
        for key in ("batch", "history", "iters", "cg_iters", "curvature_batch"):
            if key in out and (int(out[key]) != out[key] or out[key] < 0 or (key != "batch" and out[key] < 1)):
                raise InvalidValue(f"{key} of {name} must be a {'non-negative' if key == 'batch' else 'positive'} "
                                   f"integer, got {out[key]!r}")
            if key in out:
                out[key] = int(out[key])
        if name == "newton_cg":
            from .newton_cg import NewtonCG

            NewtonCG(lr=out["lr"], damping=out["damping"], cg_iters=out["cg_iters"], curvature=out["curvature"],
                     warm_start=out["warm_start"])
        elif not out["lr"] > 0:
            raise InvalidValue(f"lr of lbfgs must be > 0, got {out['lr']!r}")
        return name, out, _label(name, out)
    text = name + (":" + ",".join(f"{k}={v}" for k, v in opts.items()) if opts else "")
    rname, hyper = registry.parse_spec(text)
    b = 32 if batch is None else _number("batch", batch, spec)
    if int(b) != b or b < 0:
        raise InvalidValue(f"batch must be a non-negative integer, got {b!r}")
    b = int(b)
    label = registry.format_spec(rname, hyper)
    if b != 32:
        label += ", full batch" if b == 0 else f", batch {b:,}"
    return rname, {"hyper": hyper, "batch": b}, label


def _number(key, value, spec):
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise OptvizError(f"cannot read {value!r} as a number (option {key!r} of {spec!r})") from None
    return int(v) if v.is_integer() and key in ("batch", "history", "iters", "cg_iters", "curvature_batch") else v


def _label(name, o) -> str:
    batch = "full batch" if not o["batch"] else f"batch {o['batch']:,}"
    if name == "lbfgs":
        return f"{_DISPLAY[name]} (m={o['history']}, {batch})"
    curv = "Gauss-Newton" if o["curvature"] == "gauss_newton" else "Hessian"
    return f"{_DISPLAY[name]} ({curv}, ≤{o['cg_iters']} CG steps, {batch})"


def state_floats(name: str, options: dict, num_params: int) -> int:
    """Floats a method keeps besides the weights (its memory, in units of P)."""
    if name == "lbfgs":
        return (2 * options["history"] + 3) * num_params      # s and y pairs, direction, old gradient, ...
    if name == "newton_cg":
        return 6 * num_params                                   # gradient, x, r, p, A p, previous solution
    return _state_buffers(name, options.get("hyper", {})) * num_params


def _state_buffers(name: str, hyper: dict) -> int:
    """Parameter-sized buffers that the registry's optimizer ``name`` keeps with ``hyper``:
    counted in its own state (which settings switch a buffer on is its business)."""
    # the same count as mnist.stacked.state_buffers, whose signature is moving to (name, hyper)
    import torch

    from ..optim import registry
    from ..optim.state import map_leaves

    count = []
    map_leaves(registry.create(name, **hyper).init([torch.zeros(1)]),
               lambda path, leaf, per_param: count.append(1) if per_param else None)
    return len(count)


@dataclass
class MethodTrace:
    """One method's curve: one entry per evaluation point."""

    name: str                  # registry name or "lbfgs" / "newton_cg": the key of its colour
    spec: str
    label: str
    options: dict
    seconds: List[float] = field(default_factory=list)      # training time so far (evaluations excluded)
    gradients: List[float] = field(default_factory=list)    # examples through forward + backward, / N
    products: List[float] = field(default_factory=list)     # examples through curvature products, / N
    forwards: List[float] = field(default_factory=list)     # examples through forward-only passes, / N
    steps: List[int] = field(default_factory=list)
    val_loss: List[float] = field(default_factory=list)
    val_acc: List[float] = field(default_factory=list)
    status: str = "running"    # "done" (budget reached) or "diverged"
    state_floats: int = 0      # memory besides the weights, in floats

    @property
    def passes(self) -> np.ndarray:
        """Data passes at each point: gradients + products + forward-only passes."""
        return np.asarray(self.gradients) + np.asarray(self.products) + np.asarray(self.forwards)

    def best_acc(self) -> float:
        return max((a for a in self.val_acc if math.isfinite(a)), default=math.nan)

    def time_to(self, acc: float) -> float:
        """Training seconds until validation accuracy first reached ``acc`` (NaN if never)."""
        for s, a in zip(self.seconds, self.val_acc):
            if a >= acc:
                return s
        return math.nan

    def passes_to(self, acc: float) -> float:
        for p, a in zip(self.passes, self.val_acc):
            if a >= acc:
                return float(p)
        return math.nan


@dataclass
class ComparisonResult:
    traces: List[MethodTrace]
    budget_seconds: float
    threads: int
    train_images: int
    val_images: int
    model: str
    num_params: int
    seed: int
    notes: List[str] = field(default_factory=list)

    @property
    def memory(self) -> dict:
        return hessian_memory(self.num_params)

    def to_dict(self) -> dict:
        return {"format": 1, "budget_seconds": self.budget_seconds, "threads": self.threads,
                "train_images": self.train_images, "val_images": self.val_images, "model": self.model,
                "num_params": self.num_params, "seed": self.seed, "notes": self.notes,
                "hessian_memory": self.memory, "traces": [dict(t.__dict__) for t in self.traces]}

    @classmethod
    def from_dict(cls, d: dict) -> "ComparisonResult":
        traces = [MethodTrace(**{k: (math.nan if v is None else v) if not isinstance(v, list) else
                                 [math.nan if x is None else x for x in v] for k, v in t.items()})
                  for t in d["traces"]]
        return cls(traces=traces, budget_seconds=d["budget_seconds"], threads=d["threads"],
                   train_images=d["train_images"], val_images=d["val_images"], model=d["model"],
                   num_params=d["num_params"], seed=d["seed"], notes=list(d.get("notes", [])))

    def save(self, path) -> Path:
        return write_json(path, self.to_dict(), indent=1)

    @classmethod
    def load(cls, path) -> "ComparisonResult":
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise OptvizError(f"cannot read a second-order comparison from {str(path)!r}: {exc}") from None


class _Clock:
    """Training time only: paused around evaluations (and until training starts)."""

    def __init__(self):
        self.total, self._t = 0.0, None

    def now(self) -> float:
        return self.total + (time.perf_counter() - self._t if self._t is not None else 0.0)

    def pause(self):
        if self._t is not None:
            self.total += time.perf_counter() - self._t
            self._t = None

    def resume(self):
        self._t = time.perf_counter()


def compare_second_order(methods: Sequence[str] = DEFAULT_METHODS, *, budget: float = 60.0, model: str = "mlp",
                         seed: int = 0, data=None, subset: Optional[int] = None, val_images: int = 10000,
                         threads: int = 1, evals: int = 30, log: Optional[Callable[[str], None]] = None,
                         ) -> ComparisonResult:
    """Train each method for ``budget`` seconds of training time; see the module docstring.

    ``subset``: train on the first N training images (default all 50,000); ``val_images``:
    evaluate on the first N validation images; ``evals``: evaluation points per method
    (evenly spaced in time, plus the start).
    """
    from ..mnist.dataset import MNISTData
    from ..mnist.models import MODELS, build_model

    if model not in MODELS:
        from ..errors import UnknownName

        raise UnknownName("model", model, MODELS)
    if not (budget > 0 and math.isfinite(budget)):
        raise InvalidValue(f"budget must be a positive number of seconds, got {budget!r}")
    for key, value in (("evals", evals), ("threads", threads), ("val_images", val_images)):
        if int(value) != value or value < 1:
            raise InvalidValue(f"{key} must be a positive integer, got {value!r}")
    if subset is not None and (int(subset) != subset or subset < 1):
        raise InvalidValue(f"subset must be a positive integer, got {subset!r}")
    parsed = [(spec, *parse_method(spec)) for spec in methods]
    if not parsed:
        raise InvalidValue("no methods to compare")
    say = log or (lambda msg: None)
    if data is None:
        data = MNISTData.load(log=say)
    x, y = data.train
    if subset is not None:
        x, y = x[:subset], y[:subset]
    xv, yv = data.val[0][:val_images], data.val[1][:val_images]
    num_params = sum(p.numel() for p in build_model(model).parameters())
    result = ComparisonResult([], float(budget), int(threads), len(x), len(xv), model, num_params, int(seed))
    with torch_threads(threads):
        for spec, name, options, label in parsed:
            trace = MethodTrace(name=name, spec=spec, label=label, options=options,
                                state_floats=state_floats(name, options, num_params))
            net = build_model(model, seed=seed)
            runner = {"lbfgs": _run_lbfgs, "newton_cg": _run_newton_cg}.get(name, _run_first_order)
            runner(net, name, options, x, y, xv, yv, trace, float(budget), int(evals), seed)
            result.traces.append(trace)
            say(f"{label:<44} {trace.steps[-1]:>7,} steps  {trace.seconds[-1]:6.1f} s  "
                f"{trace.passes[-1]:7.1f} data passes  val acc {100 * trace.val_acc[-1]:6.2f}%  ({trace.status})")
    return result


class _Recorder:
    """Evaluates at the start and whenever the clock passes the next of ``evals`` points,
    spaced evenly in log time from ``budget / 300`` to ``budget`` (the figures' time axes are
    logarithmic)."""

    def __init__(self, net, xv, yv, trace: MethodTrace, n: int, budget: float, evals: int):
        self.net, self.xv, self.yv, self.trace, self.n = net, xv, yv, trace, n
        self.budget = budget
        self.points = list(np.geomspace(budget / 300, budget, evals)) if evals > 1 else [budget]
        self.grad = self.prod = self.fwd = 0
        self.steps = 0
        self.clock = _Clock()

    def due(self) -> bool:
        return not self.points or self.clock.now() >= self.points[0]

    def record(self) -> bool:
        """Evaluate (clock paused); returns False when the run should stop (budget or NaN).
        The first call is the start (time 0); the clock runs from its return."""
        from ..mnist.train import evaluate

        self.clock.pause()
        t = self.trace
        loss, acc = evaluate(self.net, self.xv, self.yv)
        t.seconds.append(self.clock.total)
        t.gradients.append(self.grad / self.n)
        t.products.append(self.prod / self.n)
        t.forwards.append(self.fwd / self.n)
        t.steps.append(self.steps)
        t.val_loss.append(loss)
        t.val_acc.append(acc)
        while self.points and self.points[0] <= self.clock.total:
            self.points.pop(0)
        going = True
        if not math.isfinite(loss):
            t.status, going = "diverged", False
        elif self.clock.total >= self.budget:
            t.status, going = "done", False
        self.clock.resume()
        return going


def _batches(x, y, batch: int, seed: int):
    """Endless minibatches: the trainer's (``epoch_batches``: the lecture's seeded order),
    epoch after epoch; batch 0 (or one as large as the set): the whole set, as it is."""
    from ..mnist.train import epoch_batches

    if batch == 0 or batch >= len(x):
        while True:
            yield x, y
    for epoch in itertools.count():
        yield from epoch_batches(x, y, batch, seed, epoch)


def _run_first_order(net, name, options, x, y, xv, yv, trace, budget, evals, seed):
    import torch.nn.functional as F

    from ..optim import TorchOptimizer

    opt = TorchOptimizer(net.parameters(), name, **options["hyper"])
    rec = _Recorder(net, xv, yv, trace, len(x), budget, evals)
    rec.record()
    for xb, yb in _batches(x, y, options["batch"], seed):
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(xb), yb)
        loss.backward()
        opt.step()
        rec.grad += len(xb)
        rec.steps += 1
        if rec.due() and not rec.record():
            break


def _run_lbfgs(net, name, options, x, y, xv, yv, trace, budget, evals, seed):
    import torch
    import torch.nn.functional as F

    # one step() runs ``iters`` iterations (torch's max_iter); with max_iter=1 per call torch's L-BFGS
    # was seen to stall for good after a failed line search (the same direction and t=0 ever after)
    opt = torch.optim.LBFGS(net.parameters(), lr=options["lr"], max_iter=options["iters"],
                            history_size=options["history"], line_search_fn="strong_wolfe")
    rec = _Recorder(net, xv, yv, trace, len(x), budget, evals)
    rec.record()
    for xb, yb in _batches(x, y, options["batch"], seed):

        def closure():
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(net(xb), yb)
            loss.backward()
            rec.grad += len(xb)
            return loss

        opt.step(closure)
        rec.steps += 1
        if rec.due() and not rec.record():
            break


def _run_newton_cg(net, name, options, x, y, xv, yv, trace, budget, evals, seed):
    import torch

    from .hessian import LossCurvature, flat_parameters
    from .newton_cg import NewtonCG

    hf = NewtonCG(lr=options["lr"], damping=options["damping"], cg_iters=options["cg_iters"],
                  curvature=options["curvature"], warm_start=options["warm_start"])
    w = flat_parameters(net)
    state = hf.init(w)
    rec = _Recorder(net, xv, yv, trace, len(x), budget, evals)
    rec.record()
    for xb, yb in _batches(x, y, options["batch"], seed):
        problem = LossCurvature(net, xb, yb, w)
        m = min(options["curvature_batch"], len(xb))
        curv = problem if m >= len(xb) else LossCurvature(net, xb[:m], yb[:m], w)
        delta, state, info = hf.update(problem, state, curv)
        w = w + delta
        torch.nn.utils.vector_to_parameters(w, net.parameters())
        rec.grad += problem.evaluations
        rec.prod += curv.products + (problem.products if curv is not problem else 0)
        rec.fwd += info.loss_evaluations * len(xb)
        rec.steps += 1
        if rec.due() and not rec.record():
            break
