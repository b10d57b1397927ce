"""Sharpness along a real training run: the top Hessian eigenvalue at each weight snapshot.

For every run of an ``optviz mnist`` run folder and every (thinned) weight snapshot,
:func:`run_sharpness` computes on a fixed evaluation batch (the first ``images``
training images, the same for every run and snapshot):

- the sharpness ``lambda_max(H)`` by Lanczos (or power iteration) on Hessian-vector
  products (:class:`~optviz.analysis.hessian.LossCurvature`, ``torch.func``);
- for adaptive methods (Adam, AdaGrad, RMSProp) the preconditioned sharpness
  ``lambda_max(P^-1 H)``, with ``P`` recovered by replaying the run's training
  (:mod:`optviz.analysis.replay`);
- the loss on the batch;

and the optimizer's stability limit ``c / eta`` (:mod:`optviz.analysis.thresholds`):
``2 / eta`` for SGD, ``2 (1 + gamma) / eta`` for heavy-ball momentum,
``2 (1 + beta1) / ((1 - beta1) eta)`` on ``P^-1 H`` for Adam. Full-batch gradient
descent drives the sharpness up until it hovers at ``2 / eta`` (Cohen et al., ICLR
2021); small-batch SGD stays below it.

Results are cached in ``RUN_DIR/analysis/`` keyed by the snapshots and every option,
so a figure is redrawn without recomputing.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from ..errors import InvalidValue, OptvizError, UnknownName
from ..io import write_json
from ._threads import torch_threads
from .thresholds import PRECONDITIONED, Limit, stability_limit

__all__ = ["SharpnessCurve", "SharpnessResult", "run_sharpness", "METHODS"]

METHODS = ("lanczos", "power")
FORMAT = 1


@dataclass
class SharpnessCurve:
    """One run's curvature at its snapshots; arrays have one entry per snapshot used."""

    run: str                              # "adam-s0"
    optimizer: str                        # registry name: the key of its colour
    label: str                            # "Adam (η=0.001)"
    hyper: dict
    steps: np.ndarray                     # (K,) training steps of the snapshots
    sharpness: np.ndarray                 # (K,) lambda_max(H)
    loss: np.ndarray                      # (K,) loss on the evaluation batch
    matvecs: np.ndarray                   # (K,) products per eigenvalue
    seconds: np.ndarray                   # (K,) wall time per eigenvalue (products and Lanczos)
    limit: Optional[Limit] = None         # the optimizer's stability limit
    preconditioned: Optional[np.ndarray] = None   # (K,) lambda_max(P^-1 H), NaN at step 0
    steps_per_epoch: int = 0
    note: str = ""                        # why the preconditioned sharpness is missing, if it is

    @property
    def relevant(self) -> np.ndarray:
        """The eigenvalue the limit is about (``P^-1 H`` for adaptive methods)."""
        if self.limit is not None and self.limit.preconditioned and self.preconditioned is not None:
            return self.preconditioned
        return self.sharpness

    @property
    def ratio(self) -> np.ndarray:
        """(K,) the relevant sharpness as a fraction of the limit (1: the edge of stability)."""
        if self.limit is None:
            return np.full(len(self.steps), np.nan)
        return self.relevant / self.limit.value

    def to_dict(self) -> dict:
        d = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in self.__dict__.items()}
        d["limit"] = asdict(self.limit) if self.limit is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SharpnessCurve":
        d = dict(d)
        for k in ("steps", "sharpness", "loss", "matvecs", "seconds", "preconditioned"):
            if d.get(k) is not None:
                d[k] = np.array([np.nan if v is None else v for v in d[k]], dtype=float)
        d["limit"] = Limit(**d["limit"]) if d.get("limit") else None
        return cls(**d)


@dataclass
class SharpnessResult:
    run_dir: str
    model: str
    num_params: int
    images: int                     # evaluation batch: the first ``images`` training images
    method: str                     # "lanczos" or "power"
    tol: float
    curves: List[SharpnessCurve]
    replay_seconds: float = 0.0     # time spent replaying training for the preconditioners
    notes: List[str] = field(default_factory=list)
    key: str = ""
    from_cache: bool = False

    @property
    def seconds_per_eigenvalue(self) -> float:
        """The median wall time of one top eigenvalue (products included)."""
        s = np.concatenate([c.seconds for c in self.curves]) if self.curves else np.zeros(0)
        return float(np.median(s)) if len(s) else math.nan

    @property
    def products_per_eigenvalue(self) -> float:
        m = np.concatenate([c.matvecs for c in self.curves]) if self.curves else np.zeros(0)
        return float(np.median(m)) if len(m) else math.nan

    @property
    def eigenvalues(self) -> int:
        return int(sum(len(c.steps) for c in self.curves))

    def to_dict(self) -> dict:
        from .hessian import hessian_memory

        return {"format": FORMAT, "run_dir": self.run_dir, "model": self.model, "num_params": self.num_params,
                "images": self.images, "method": self.method, "tol": self.tol,
                "seconds_per_eigenvalue": self.seconds_per_eigenvalue,
                "products_per_eigenvalue": self.products_per_eigenvalue, "eigenvalues": self.eigenvalues,
                "replay_seconds": self.replay_seconds, "notes": self.notes, "key": self.key,
                "hessian_memory": hessian_memory(self.num_params),
                "curves": [c.to_dict() for c in self.curves]}

    @classmethod
    def from_dict(cls, d: dict) -> "SharpnessResult":
        return cls(run_dir=d["run_dir"], model=d["model"], num_params=d["num_params"], images=d["images"],
                   method=d["method"], tol=d["tol"], curves=[SharpnessCurve.from_dict(c) for c in d["curves"]],
                   replay_seconds=d.get("replay_seconds", 0.0), notes=list(d.get("notes", [])), key=d.get("key", ""))

    def save(self, path) -> Path:
        return write_json(path, self.to_dict(), indent=1)

    @classmethod
    def load(cls, path) -> Optional["SharpnessResult"]:
        try:
            d = json.loads(Path(path).read_text())
        except (OSError, ValueError):
            return None
        if d.get("format") != FORMAT:
            return None
        out = cls.from_dict(d)
        out.from_cache = True
        return out


def _pick(n: int, every: int, max_points: Optional[int]) -> np.ndarray:
    """Snapshot indices: every ``every``-th, then evenly thinned to ``max_points`` (first and last kept)."""
    idx = np.arange(0, n, every)
    if n and idx[-1] != n - 1:
        idx = np.append(idx, n - 1)
    if max_points is not None and len(idx) > max_points:
        idx = idx[np.unique(np.round(np.linspace(0, len(idx) - 1, max_points)).astype(int))]
    return idx


def _check(images, every, max_points, method, max_iter, tol):
    if int(images) != images or images < 1:
        raise InvalidValue(f"images must be a positive integer, got {images!r}")
    if int(every) != every or every < 1:
        raise InvalidValue(f"every must be a positive integer, got {every!r}")
    if max_points is not None and (int(max_points) != max_points or max_points < 2):
        raise InvalidValue(f"max_points must be an integer >= 2, got {max_points!r}")
    if method not in METHODS:
        raise UnknownName("eigenvalue method", method, METHODS)
    if int(max_iter) != max_iter or max_iter < 2:
        raise InvalidValue(f"max_iter must be an integer >= 2, got {max_iter!r}")
    if not (0 < tol < 1):
        raise InvalidValue(f"tol must be between 0 and 1, got {tol!r}")


def run_sharpness(run_dir, *, images: int = 2000, runs: Optional[Sequence[str]] = None, every: int = 1,
                  max_points: Optional[int] = 40, method: str = "lanczos", max_iter: int = 80, tol: float = 1e-3,
                  precondition: bool = True, data=None, cache: bool = True, threads: Optional[int] = None,
                  log: Optional[Callable[[str], None]] = None) -> SharpnessResult:
    """The sharpness at the snapshots of the runs in ``run_dir`` (see the module docstring).

    ``runs``: run labels (default: all with snapshots); ``every``/``max_points``: which
    snapshots (every k-th, then at most ``max_points`` evenly spread, the first and last
    kept); ``method``: ``"lanczos"`` or ``"power"``; ``tol``: relative residual at which an
    eigenvalue is accepted; ``data``: a loaded ``MNISTData`` (default: as the run's config says);
    ``threads``: torch threads while computing (default: torch's setting).
    """
    if threads is not None and (int(threads) != threads or threads < 1):
        raise InvalidValue(f"threads must be a positive integer, got {threads!r}")
    import torch

    from ..landscape.grid import cache_key, save_to_cache
    from ..mnist.dataset import MNISTData
    from ..mnist.models import build_model
    from ..mnist.results import RunDir, load_snapshots
    from .hessian import LossCurvature, lanczos, power_iteration
    from .replay import ReplayMismatch, replay_preconditioners, run_entry

    _check(images, every, max_points, method, max_iter, tol)
    say = log or (lambda msg: None)
    run = RunDir.open(run_dir)
    config = run.config()
    snaps = load_snapshots(run.path, runs)
    if not snaps:
        raise OptvizError(f"{str(run.path)!r} has no weight snapshots; train with --snapshot-every K (e.g. 50)")
    options = dict(images=int(images), runs=sorted(snaps), every=int(every), max_points=max_points, method=method,
                   max_iter=int(max_iter), tol=float(tol), precondition=bool(precondition))
    key = cache_key(format=FORMAT, kind="sharpness", run=run.fingerprint(), **options)
    cache_file = run.path / "analysis" / f"sharpness-{key}.json"
    if cache:
        hit = SharpnessResult.load(cache_file)
        if hit is not None:
            say(f"sharpness from the cache {cache_file}")
            return hit

    with torch_threads(threads):
        if data is None:
            data = MNISTData.load(config.get("dataset", "mnist"), config.get("data_dir"),
                                  val_size=config.get("val_size", 10000), split_seed=config.get("split_seed", 0),
                                  log=say)
        x, y = data.train[0][:int(images)].to(torch.float32), data.train[1][:int(images)]
        if len(x) < images:
            say(f"the training split has only {len(x):,} images; using all of them")
        first = next(iter(snaps.values()))
        model = build_model(first.model)
        curv = LossCurvature(model, x, y)
        solve = lanczos if method == "lanczos" else power_iteration
        result = SharpnessResult(run_dir=str(run.path), model=first.model, num_params=curv.dim, images=len(x),
                                 method=method, tol=float(tol), curves=[], key=key)
        for label, s in snaps.items():
            entry = run_entry(config, s.entry)
            hyper = dict(entry["hyper"])
            if entry.get("clip_norm") is not None:
                hyper["clip_norm"] = entry["clip_norm"]
            limit = stability_limit(s.optimizer, hyper)
            finite = torch.isfinite(s.weights).all(dim=1)
            n = int(finite.numel()) if bool(finite.all()) else int(torch.argmin(finite.to(torch.int8)))
            idx = _pick(n, int(every), max_points)
            steps = s.steps[idx].numpy().astype(int)
            pre_by_step: Dict[int, object] = {}
            note = ""
            if precondition and s.optimizer in PRECONDITIONED:
                try:
                    rep = replay_preconditioners(run.path, s, steps.tolist(), data=data, log=say, config=config)
                    pre_by_step = rep.preconditioners
                    result.replay_seconds += rep.seconds
                except ReplayMismatch as exc:
                    note = str(exc)
                    result.notes.append(note)
                    say(f"warning: {note}")
            K = len(idx)
            sharp, loss, mv, secs = (np.full(K, np.nan) for _ in range(4))
            pre = np.full(K, np.nan) if (precondition and s.optimizer in PRECONDITIONED and not note) else None
            for j, (k, step) in enumerate(zip(idx.tolist(), steps.tolist())):
                t0 = time.perf_counter()
                curv.at(s.weights[k])
                loss[j] = curv.value_and_grad()[0]
                e = solve(curv.hvp, curv.dim, max_iter=max_iter, tol=tol, like=curv.w)
                sharp[j], mv[j] = e.value, e.matvecs
                secs[j] = time.perf_counter() - t0
                if pre is not None and pre_by_step.get(step) is not None:
                    pe = solve(curv.preconditioned(curv.hvp, pre_by_step[step]), curv.dim, max_iter=max_iter, tol=tol,
                               like=curv.w)
                    pre[j] = pe.value
            curve = SharpnessCurve(run=label, optimizer=s.optimizer, label=s.label, hyper=hyper, steps=steps,
                                   sharpness=sharp, loss=loss, matvecs=mv, seconds=secs, limit=limit,
                                   preconditioned=pre, steps_per_epoch=int(s.steps_per_epoch), note=note)
            result.curves.append(curve)
            say(f"{label:<16} {K} snapshots: sharpness {_span(sharp)}"
                + (f", preconditioned {_span(pre)}" if pre is not None else "")
                + (f"; limit {limit.rule} = {limit.value:,.4g}" if limit is not None else "; no stability limit")
                + f"  ({np.median(secs):.2f} s per eigenvalue)")
    if cache:
        save_to_cache(result, cache_file, say)
    return result


def _span(values) -> str:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if not len(v):
        return "-"
    return f"{v[0]:.4g} -> {v[-1]:.4g} (max {v.max():.4g})"
