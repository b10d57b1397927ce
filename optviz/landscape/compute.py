"""From a run folder to a landscape: snapshots -> shared plane -> loss grid -> paths.

The figures are drawn from the result by :mod:`optviz.landscape.pipeline`.

Steps (:func:`compute_landscape`):

1. read the weight snapshots of every run of the comparison
   (:func:`optviz.mnist.results.load_snapshots`), check that they come from one model,
   and cut a path at its first non-finite snapshot (it is then drawn as diverged);
2. estimate the memory of the grid and refuse, with the estimate, before any work;
3. build one plane for all paths (:mod:`optviz.landscape.plane`): PCA (default),
   filter-normalised random directions, or three points;
4. project every snapshot onto it: plane coordinates and off-plane residuals;
5. evaluate loss and accuracy on a ``grid x grid`` lattice covering the paths
   (with a margin) on ``subset`` validation images drawn with a fixed seed
   (:mod:`optviz.landscape.grid`), and, at the drawn snapshots (at most
   ``max_points`` per path), the true loss (the snapshot's own weights) and the
   loss at its projection onto the plane, on the same images;
6. cache all of it in the run folder (``RUN/landscape/cache-KEY.npz``), keyed by the
   snapshot files and every option, so drawing again costs nothing.

The result, a :class:`Landscape`, gives a :class:`~optviz.surfaces.GridField` and one
:class:`~optviz.engine.Trajectory` per run, which the ordinary views draw exactly as
they draw Rosenbrock (:func:`optviz.landscape.pipeline.landscape_figures`). Where the true loss along a path and
the grid loss at its projection part, the plane misleads; the off-plane residual
says how much of each path the plane does not show.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from ..errors import InvalidValue, OptvizError, UnknownName
from .grid import (PlaneEvaluator, cache_key, estimate_memory, evaluate_weights, grid_axes, load_arrays, loss_grid, save_arrays,
                   save_to_cache)

__all__ = ["PLANES", "LandscapePath", "Landscape", "compute_landscape"]

PLANES = ("pca", "random", "points")
FORMAT = 6  # 5: time-weighted planes (snapshots weighted by the steps they stand for); 6: residual_max


# ==================================================================== records


@dataclasses.dataclass
class LandscapePath:
    """One run's path on the plane. Arrays have one row per drawn snapshot."""

    run: str                 # run label, "adam-s0"
    optimizer: str           # registry name: the key of its colour
    label: str               # legend text, "Adam (η=0.001)"
    seed: int
    hyperparams: dict
    steps: np.ndarray        # (K,) training steps behind each drawn snapshot
    xy: np.ndarray           # (K, 2) plane coordinates
    loss: np.ndarray         # (K,) true loss at the snapshot (its own weights), on the subset
    acc: np.ndarray          # (K,) true accuracy
    plane_loss: np.ndarray   # (K,) loss at the projection onto the plane, on the subset
    residual: np.ndarray     # (K,) off-plane part of (w - origin), relative to |w - origin|
    residual_max: float      # max relative residual over the snapshots of the path (drawn or not) that are
                             # at least 10 % of its furthest offset from the start (_residual_max)
    residual_final: float    # relative residual of the last snapshot
    n_snapshots: int         # snapshots of the path (before thinning, after a cut)
    diverged_step: Optional[int] = None   # training step where the run diverged (NaN weights or the trainer's record)

    @property
    def diverged(self) -> bool:
        return self.diverged_step is not None

    def legend(self, two_lines: bool = False) -> str:
        """``"Adam (η=0.001), off-plane: end 22 %, max 90 %"``: the label with the path's
        off-plane residual at its end and its maximum (on a second line if ``two_lines``)."""
        text = f"{self.label},{chr(10) if two_lines else ' '}off-plane: end {_pct(self.residual_final)}, " \
               f"max {_pct(self.residual_max)}"
        if self.diverged:
            text += f", diverged at step {self.diverged_step:,}"
        return text

    def trajectory(self, label: Optional[str] = None, two_lines: bool = False):
        """The path as a :class:`~optviz.engine.Trajectory` (row ``i`` = drawn snapshot ``i``;
        ``diverged_at`` is the last row for a diverged run); ``label`` defaults to :meth:`legend`."""
        from ..engine.trajectory import Trajectory

        return Trajectory(optimizer=self.optimizer, hyperparams=dict(self.hyperparams),
                          label=self.legend(two_lines) if label is None else label, xy=self.xy.copy(),
                          loss=self.loss.copy(), diverged_at=(len(self.xy) - 1) if self.diverged else None)


def _pct(v: float) -> str:
    if not np.isfinite(v):
        return "?"
    p = 100 * v
    if p < 0.05:
        return "0 %"
    return f"{p:.0f} %" if p >= 9.5 else f"{p:.1f} %"


@dataclasses.dataclass
class Landscape:
    """A loss landscape slice with the paths of a comparison on it."""

    run_dir: str
    model: str
    dataset: str
    plane: dict              # kind, axis_names, axis_labels, explained, description, orthonormal
    x: np.ndarray            # (nx,) grid coordinates
    y: np.ndarray            # (ny,)
    loss: np.ndarray         # (ny, nx) mean cross-entropy on the subset
    acc: np.ndarray          # (ny, nx) accuracy on the subset
    subset: int
    subset_seed: int
    paths: List[LandscapePath]
    timings: dict
    method: str              # "linear" or "vmap"
    epochs: Optional[float] = None   # training epochs the longest path covers
    key: str = ""
    from_cache: bool = False
    notes: List[str] = dataclasses.field(default_factory=list)   # what was cut or clipped, in words

    # -- what the views draw -------------------------------------------------------------------
    @property
    def plane_name(self) -> str:
        return {"pca": "PCA plane", "random": "random plane", "points": "plane through three points"}[self.plane["kind"]]

    @property
    def model_name(self) -> str:
        return self.model.upper() if len(self.model) <= 4 else self.model

    @property
    def epochs_text(self) -> str:
        if not self.epochs:
            return ""
        e = self.epochs
        return f"{e:g} epoch{'s' if e != 1 else ''}" if abs(e - round(e)) < 0.05 else f"{e:.1f} epochs"

    @property
    def title(self) -> str:
        return f"MNIST loss landscape: {self.model_name}, {self.plane_name} ({self.subset:,} validation images)"

    def field(self):
        """The loss on the grid as a :class:`~optviz.surfaces.GridField` (log-spaced levels)."""
        from ..surfaces.field import GridField

        xl, yl = self.plane["axis_labels"]
        return GridField(self.x, self.y, self.loss, name=f"mnist_{self.model}_{self.plane['kind']}", title=self.title,
                         xlabel=xl, ylabel=yl, log_levels=True)

    def error_field(self):
        """The error rate (1 - accuracy) on the grid, as a GridField."""
        from ..surfaces.field import GridField

        xl, yl = self.plane["axis_labels"]
        title = self.title.replace("loss landscape", "error rate")
        return GridField(self.x, self.y, 1.0 - self.acc, name=f"mnist_{self.model}_error", title=title,
                         xlabel=xl, ylabel=yl, log_levels=True)

    def trajectories(self, order: str = "draw", two_lines: bool = False):
        """One Trajectory per path. ``order="draw"``: the longest path (in the plane) first,
        so that short paths are drawn last, on top (on a PCA plane a slow optimizer's short
        path often runs under a fast one's); ``"run"``: the comparison's order.
        ``two_lines``: legend labels on two lines (for legends beside a map)."""
        trajs = [p.trajectory(two_lines=two_lines) for p in self.paths]
        if order == "run":
            return trajs
        if order != "draw":
            raise InvalidValue(f"order must be 'draw' or 'run', got {order!r}")
        length = [float(np.nansum(np.linalg.norm(np.diff(t.xy, axis=0), axis=1))) for t in trajs]
        return [trajs[i] for i in np.argsort(length, kind="stable")[::-1]]

    # -- report ----------------------------------------------------------------------------------
    def report(self) -> dict:
        """Everything but the grid, as JSON-ready data (written to landscape.json)."""
        return {
            "run_dir": self.run_dir, "model": self.model, "dataset": self.dataset, "epochs": self.epochs,
            "plane": self.plane,
            "grid": {"nx": len(self.x), "ny": len(self.y), "x": [float(self.x[0]), float(self.x[-1])],
                     "y": [float(self.y[0]), float(self.y[-1])], "loss_min": float(np.nanmin(self.loss)),
                     "loss_max": float(np.nanmax(self.loss)), "method": self.method},
            "subset": {"images": self.subset, "seed": self.subset_seed, "split": "validation"},
            "paths": [{"run": p.run, "optimizer": p.optimizer, "label": p.label, "seed": p.seed,
                       "snapshots": p.n_snapshots, "drawn": len(p.steps),
                       "residual_max": p.residual_max, "residual_final": p.residual_final,
                       "final_loss": float(p.loss[-1]), "final_plane_loss": float(p.plane_loss[-1]),
                       "final_acc": float(p.acc[-1]), "diverged_step": p.diverged_step,
                       "steps": p.steps.tolist(), "xy": np.round(p.xy, 6).tolist(),
                       "loss": _list(p.loss), "plane_loss": _list(p.plane_loss),
                       "residual": np.round(p.residual, 6).tolist()} for p in self.paths],
            "timings_s": {k: round(v, 3) for k, v in self.timings.items()}, "cache_key": self.key,
            "notes": list(self.notes),
        }

    def summary(self) -> str:
        """A few lines for the terminal."""
        how = "from the cache" if self.from_cache else f"{self.timings.get('grid', 0):.1f} s, method {self.method}"
        lines = [f"{self.plane['description']}; axes {', '.join(self.plane['axis_labels'])}",
                 (f"grid {len(self.x)} x {len(self.y)} on {self.subset:,} validation images: loss "
                  f"{np.nanmin(self.loss):.3g} .. {np.nanmax(self.loss):.3g} ({how})")]
        for p in self.paths:
            lines.append((f"  {p.label:<24} off-plane residual max {_pct(p.residual_max):>6}, final "
                          f"{_pct(p.residual_final):>6}; loss {p.loss[-1]:.3f} (at projection {p.plane_loss[-1]:.3f})")
                         + (f"; diverged at step {p.diverged_step:,}" if p.diverged else ""))
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    # -- cache -----------------------------------------------------------------------------------
    def save(self, path) -> Path:
        arrays = {"x": self.x, "y": self.y, "loss": self.loss, "acc": self.acc}
        fields = ("steps", "xy", "loss", "acc", "plane_loss", "residual")
        for i, p in enumerate(self.paths):
            for f in fields:
                arrays[f"p{i}_{f}"] = getattr(p, f)
        meta = {"format": FORMAT, "run_dir": self.run_dir, "model": self.model, "dataset": self.dataset,
                "plane": self.plane, "subset": self.subset, "subset_seed": self.subset_seed, "timings": self.timings,
                "method": self.method, "key": self.key, "notes": self.notes, "epochs": self.epochs,
                "paths": [{k: getattr(p, k) for k in ("run", "optimizer", "label", "seed", "hyperparams", "residual_max",
                                                      "residual_final", "n_snapshots", "diverged_step")}
                          for p in self.paths]}
        return save_arrays(path, arrays, meta)

    @classmethod
    def load(cls, path) -> Optional["Landscape"]:
        got = load_arrays(path)
        if got is None:
            return None
        arrays, meta = got
        if meta.get("format") != FORMAT:
            return None
        try:
            paths = [LandscapePath(**m, **{f: arrays[f"p{i}_{f}"] for f in
                                            ("steps", "xy", "loss", "acc", "plane_loss", "residual")})
                     for i, m in enumerate(meta["paths"])]
            return cls(run_dir=meta["run_dir"], model=meta["model"], dataset=meta["dataset"], plane=meta["plane"],
                       x=arrays["x"], y=arrays["y"], loss=arrays["loss"], acc=arrays["acc"], subset=meta["subset"],
                       subset_seed=meta["subset_seed"], paths=paths, timings=meta["timings"], method=meta["method"],
                       key=meta["key"], from_cache=True, notes=meta.get("notes", []), epochs=meta.get("epochs"))
        except (KeyError, TypeError):
            return None


def _list(a) -> list:
    return [None if not np.isfinite(v) else round(float(v), 6) for v in np.asarray(a, dtype=float)]


# ==================================================================== computing


def _check_options(plane: str, grid: int, subset: int, max_points: int, margin: float) -> None:
    if plane not in PLANES:
        raise UnknownName("plane", plane, PLANES)
    for name, value, low in (("grid", grid, 3), ("subset", subset, 1), ("max_points", max_points, 2)):
        if isinstance(value, bool) or int(value) != value or value < low:
            raise InvalidValue(f"{name} must be an integer >= {low}, got {value!r}")
    if not (np.isfinite(margin) and 0 <= margin <= 10):
        raise InvalidValue(f"margin must be between 0 and 10 (a fraction of the paths' span), got {margin!r}")


def _thin(n: int, max_points: int) -> np.ndarray:
    """At most ``max_points`` indices of ``range(n)``: every k-th (one stride, so drawn points
    stay evenly spaced in training steps), and the last."""
    if n <= max_points:
        return np.arange(n)
    stride = -(-(n - 1) // (max_points - 1))
    idx = np.arange(0, n, stride)
    return idx if idx[-1] == n - 1 else np.append(idx, n - 1)


def _resolve_point(token: str, snaps: dict, paths: dict):
    """``init`` | ``RUN`` (final weights) | ``RUN@STEP`` -> (weights (P,), name)."""
    token = token.strip()
    first = next(iter(paths))
    if token in ("init", "start"):
        return paths[first]["weights"][0], "init"
    run, _, step = token.partition("@")
    if run not in paths:
        matches = [r for r in paths if r.split("-s")[0] == run or snaps[r].entry == run]
        if len(matches) != 1:
            raise UnknownName("run for --points", run, list(paths) + ["init"])
        run = matches[0]
    W, steps = paths[run]["weights"], paths[run]["steps"]
    name = snaps[run].label.split(" (")[0]
    if not step:
        return W[-1], f"{name} final"
    try:
        s = int(step)
    except ValueError:
        raise InvalidValue(f"a step in --points is an integer (e.g. adam-s0@500), got {step!r}") from None
    hit = np.flatnonzero(steps == s)
    if hit.size == 0:
        raise InvalidValue(f"run {run} has no snapshot at step {s}; it has steps {int(steps[0])}..{int(steps[-1])} "
                           f"every {int(steps[1] - steps[0]) if len(steps) > 1 else 0}")
    return W[int(hit[0])], f"{name} @ {s}"


def _residual_max(projection) -> float:
    """The largest off-plane share of a path, over its snapshots that have gone at least 10 %
    of its furthest distance from the start: a few steps in, the displacement is tiny and
    almost all off any plane, which says nothing about the plane (and would make the number
    depend on how densely the start was sampled)."""
    offset = projection.offset
    far = offset >= 0.1 * float(offset.max()) if len(offset) else offset.astype(bool)
    return float(projection.relative[far].max()) if far.any() else float(projection.relative.max())


def _build_plane(kind: str, snaps: dict, paths: dict, centre, points, seed: int):
    from .plane import pca_plane, points_plane, random_plane

    from ..mnist.snapshots import step_weights

    weights = [p["weights"] for p in paths.values()]
    # each snapshot counts for the span of steps it stands for: sparse snapshots give the dense plane
    time_weights = [step_weights(p["steps"]) for p in paths.values()]
    first = next(iter(paths))
    if kind == "pca":
        c, name = centre or "start", None
        if c not in ("start", "mean"):
            c, name = _resolve_point(c, snaps, paths)
        return pca_plane(weights, centre=c, seed=seed, centre_name=name, weights=time_weights)
    if kind == "random":
        c, name = centre or first, None
        if c not in ("start", "mean"):
            c, name = _resolve_point(c, snaps, paths)
        s = snaps[first]
        return random_plane(s.param_shapes, c, seed=seed, paths=weights, centre_name=name, weights=time_weights)
    tokens = list(points) if points else ["init", first, list(paths)[-1]]
    if isinstance(points, str):
        tokens = [t for t in points.split(",") if t.strip()]
    if len(tokens) != 3:
        raise InvalidValue(f"--points takes three points A,B,C (init, RUN or RUN@STEP), got {len(tokens)}: {tokens}")
    resolved = [_resolve_point(t, snaps, paths) for t in tokens]
    if len({n for _, n in resolved}) < 3 and tokens[1] == tokens[2]:
        raise OptvizError(f"--points needs three different points, got {', '.join(tokens)}")
    return points_plane(*(w for w, _ in resolved), names=[n for _, n in resolved], paths=weights,
                        weights=time_weights)


def _eval_subset(config: dict, subset: int, seed: int, data=None):
    """``subset`` images of the run's validation split (the same split it held out), chosen by ``seed``."""
    import torch

    from ..mnist.dataset import MNISTData

    if data is None:
        data = MNISTData.load(config.get("dataset", "mnist"), config.get("data_dir"),
                              val_size=config.get("val_size", 10000), split_seed=config.get("split_seed", 0))
    x, y = data.val
    if len(x) == 0:
        raise OptvizError("the run has no validation images to evaluate the landscape on (val_size 0)")
    n = min(int(subset), len(x))
    g = torch.Generator().manual_seed(int(seed))
    idx = torch.randperm(len(x), generator=g)[:n].sort().values
    return x[idx].float(), y[idx], n


def compute_landscape(run_dir, plane: str = "pca", grid: int = 51, subset: int = 2000, *, points=None,
                      centre: Optional[str] = None, seed: int = 0, subset_seed: int = 0, margin: float = 0.25,
                      max_points: int = 200, runs: Optional[Sequence[str]] = None, method: str = "auto",
                      memory_budget: Optional[int] = None, cache: bool = True, cache_dir=None, data=None,
                      log: Optional[Callable[[str], None]] = None) -> Landscape:
    """The landscape of the comparison in ``run_dir`` (see the module docstring).

    Parameters
    ----------
    plane : "pca", "random" or "points"
    grid : int
        Grid points per axis.
    subset : int
        Validation images the loss is evaluated on (drawn with ``subset_seed``).
    points : "A,B,C" or three tokens
        For ``plane="points"``: ``init`` (the shared initial weights), ``RUN`` (its final
        weights, e.g. ``adam-s0``, or ``adam`` when one seed) or ``RUN@STEP``. Default:
        init, the final weights of the first and of the last run.
    centre : str, optional
        ``pca``: "start" (default) or "mean"; ``random``: a run (its final weights,
        default the first run), "start" or "mean".
    seed : int
        Seed of the random directions (and of the randomized SVD).
    margin : float
        Grid margin around the paths, as a fraction of their span on each side.
    max_points : int
        Snapshots drawn (and evaluated) per path, evenly thinned; residuals are over all.
    runs : run labels to include (default all with snapshots).
    method : "auto", "linear" or "vmap" (see :mod:`optviz.landscape.grid`).
    memory_budget : bytes, default half the available memory.
    cache, cache_dir : read/write the cache (default ``RUN_DIR/landscape``).
    data : an :class:`~optviz.mnist.MNISTData` to use instead of loading the run's dataset.
    log : receives progress lines.
    """
    import torch

    from ..mnist.models import build_model
    from ..mnist.results import RunDir, load_snapshots

    say = log or (lambda msg: None)
    _check_options(plane, grid, subset, max_points, margin)
    run = RunDir.open(run_dir)
    config = run.config()
    model_name = config.get("model", "mlp")
    labels = [r["run"] for r in config.get("runs", [])]
    with_snaps = [lb for lb in labels if run.snapshot_files(lb)]
    if not with_snaps:
        raise OptvizError(f"{str(run_dir)!r} has no weight snapshots (was it trained with snapshot_every=0, or has no "
                          f"epoch finished yet?); the landscape needs them")
    options = dict(plane=plane, grid=int(grid), subset=int(subset), points=points, centre=centre, seed=int(seed),
                   subset_seed=int(subset_seed), margin=float(margin), max_points=int(max_points),
                   runs=list(runs) if runs else None, method=method)
    if data is not None:      # images given directly: part of the key (else the run's dataset is)
        import hashlib

        h = hashlib.sha256()
        for t in data.val:
            h.update(t.contiguous().numpy().tobytes())
        options["data"] = h.hexdigest()
    key = cache_key(format=FORMAT, run=run.fingerprint(), **options)
    folder = Path(cache_dir) if cache_dir is not None else run.path / "landscape"
    cache_file = folder / f"cache-{key}.npz"
    if cache:
        hit = Landscape.load(cache_file)
        if hit is not None:
            say(f"landscape from the cache {cache_file}")
            return hit

    # memory, before anything is loaded or computed
    model = build_model(model_name, seed=0)
    n_points = int(grid) ** 2
    estimate_memory(model, (1, 28, 28), int(subset), n_points, method, memory_budget).check(
        f"a {grid} x {grid} grid of the {model_name} model on {subset:,} images")
    estimate_memory(model, (1, 28, 28), int(subset), 1, "vmap", memory_budget).check(
        f"evaluating the {model_name} model on {subset:,} images")

    t0 = time.perf_counter()
    timings: Dict[str, float] = {}
    notes: List[str] = []
    snaps = load_snapshots(run_dir, runs=runs)
    snaps = {k: v for k, v in snaps.items() if len(v)}
    if not snaps:
        raise OptvizError(f"{str(run_dir)!r} has no weight snapshots to draw")
    _check_same_model(snaps, model_name, model)
    state = run.read_state().get("runs", {})
    hyper = {e["key"]: e.get("hyper", {}) for e in config.get("entries", [])}
    timings["load"] = time.perf_counter() - t0

    # cut every path at its first non-finite snapshot
    paths: Dict[str, dict] = {}
    for label, s in snaps.items():
        W = s.weights.float()
        steps = s.steps.numpy().astype(np.int64)
        finite = torch.isfinite(W).all(dim=1).numpy()
        diverged_step = None
        if not finite.all():
            cut = int(np.argmin(finite))
            diverged_step = int(steps[cut])
            notes.append(f"{label}: non-finite weights from step {diverged_step:,} on; its path ends at the "
                         f"last finite snapshot" + (f" (step {int(steps[cut - 1]):,})" if cut else ""))
            W, steps = W[:cut], steps[:cut]
            if cut == 0:
                notes[-1] = f"{label}: no finite snapshot at all; left out"
                continue
        st = state.get(label, {})
        if diverged_step is None and st.get("status") == "diverged":
            diverged_step = st.get("diverged_at") or int(steps[-1])
        paths[label] = {"weights": W, "steps": steps, "diverged_step": diverged_step}
        say(f"{label}: {len(W)} snapshots, steps {steps[0]}..{steps[-1]}")
    if not paths:
        raise OptvizError("every path has non-finite weights from its first snapshot on: nothing to draw. "
                          + " ".join(notes))

    t1 = time.perf_counter()
    pl = _build_plane(plane, snaps, paths, centre, points, seed)
    timings["plane"] = time.perf_counter() - t1
    say(f"plane: {pl.description}; {', '.join(pl.axis_labels)} ({timings['plane']:.1f} s)")

    projected = {label: pl.project(p["weights"]) for label, p in paths.items()}
    all_xy = np.concatenate([pr.xy for pr in projected.values()])
    if pl.kind == "random":
        # filter-normalised units: +-1 moves every filter by its own norm (Li et al. plot [-1, 1]^2);
        # the paths' projections are usually tiny in these units, so the square is the minimum extent
        all_xy = np.concatenate([all_xy, [[-1.0 / (1 + 2 * margin)] * 2, [1.0 / (1 + 2 * margin)] * 2]])
    xs, ys = grid_axes(all_xy, int(grid), margin)

    t2 = time.perf_counter()
    x, y, n_images = _eval_subset(config, subset, subset_seed, data)
    if n_images < subset:
        notes.append(f"the validation split has {n_images:,} images; the landscape uses all of them "
                     f"(asked for {subset:,})")
    timings["data"] = time.perf_counter() - t2

    evaluator = PlaneEvaluator(model, pl, x, y, method=method, memory_budget=memory_budget)
    say(f"grid {grid} x {grid} on {n_images:,} images ({evaluator.estimate(n_points).describe()})")
    res = loss_grid(evaluator, xs, ys)
    timings["grid"] = res.seconds
    say(f"grid done in {res.seconds:.1f} s (method {res.method}, {res.chunk} points per pass)")

    t3 = time.perf_counter()
    out: List[LandscapePath] = []
    for label, p in paths.items():
        s, pr = snaps[label], projected[label]
        idx = _thin(len(p["weights"]), max_points)
        loss, acc = evaluate_weights(model, p["weights"][idx], x, y, memory_budget=memory_budget)
        ploss, _ = evaluator.evaluate(pr.xy[idx])
        out.append(LandscapePath(
            run=label, optimizer=s.optimizer, label=s.label, seed=int(s.seed), hyperparams=hyper.get(s.entry, {}),
            steps=p["steps"][idx], xy=pr.xy[idx], loss=loss, acc=acc, plane_loss=ploss, residual=pr.relative[idx],
            residual_max=_residual_max(pr), residual_final=float(pr.relative[-1]),
            n_snapshots=len(p["weights"]), diverged_step=p["diverged_step"]))
    timings["paths"] = time.perf_counter() - t3
    timings["total"] = time.perf_counter() - t0
    per_epoch = max(int(next(iter(snaps.values())).steps_per_epoch or 0), 1)
    epochs = round(max(int(p["steps"][-1]) for p in paths.values()) / per_epoch, 2)
    land = Landscape(run_dir=str(run_dir), model=model_name, dataset=config.get("dataset", "mnist"),
                     plane={"kind": pl.kind, "axis_names": list(pl.axis_names), "axis_labels": list(pl.axis_labels),
                            "explained": [float(e) for e in pl.explained], "description": pl.description,
                            "orthonormal": pl.orthonormal},
                     x=xs, y=ys, loss=res.loss, acc=res.acc, subset=n_images, subset_seed=int(subset_seed),
                     paths=out, timings=timings, method=res.method, key=key, notes=notes, epochs=epochs)
    if cache:
        save_to_cache(land, cache_file, say)
    return land


def _check_same_model(snaps: dict, model_name: str, model) -> None:
    """All snapshots from one architecture, and the one the registry builds today."""
    first_label, first = next(iter(snaps.items()))
    for label, s in snaps.items():
        if s.model != first.model or tuple(s.param_shapes) != tuple(first.param_shapes) \
                or s.num_params != first.num_params:
            raise OptvizError(f"snapshots of different models: {first_label} is {first.model!r} "
                              f"({first.num_params:,} weights), {label} is {s.model!r} ({s.num_params:,} weights); "
                              f"a shared plane needs one model")
    shapes = tuple(tuple(p.shape) for p in model.parameters())
    if first.model != model_name or tuple(first.param_shapes) != shapes:
        raise OptvizError(f"the snapshots are of model {first.model!r} with shapes {list(first.param_shapes)}, but "
                          f"the run's model {model_name!r} builds shapes {list(shapes)}")
