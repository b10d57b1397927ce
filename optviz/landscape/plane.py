"""Planes through weight space, and weight paths projected onto them.

A :class:`Plane` is ``w(a, b) = origin + a * d1 + b * d2``: two directions through
one point of the ``P``-dimensional weight space of a network. One plane is shared
by every optimizer of a comparison, so their paths can be drawn on one map. Three
ways to choose it:

- :func:`pca_plane`: the two principal directions of all the paths' weight
  snapshots together (the plane that shows most of the motion; Li et al. 2018, §6).
  ``centre="start"`` (default) puts the origin at the paths' common start (the
  shared initial weights of one seed; the mean of the starts for several seeds)
  and takes the principal directions of the displacements from it, so every path
  starts at (0, 0), as on the 2-D test functions. ``centre="mean"`` is classical
  PCA about the mean of all snapshots (the least-squares best-fitting plane).
- :func:`random_plane`: two filter-normalised Gaussian directions through one
  point (Li et al. 2018, §4): each filter (a row of a ``Linear`` weight, an output
  channel of a ``Conv2d`` kernel) of a random direction is rescaled to the norm of
  the same filter of the centre weights, so a step of 1 along an axis changes every
  filter by its own size; biases (1-D parameters) are zeroed in the directions.
- :func:`points_plane`: the plane through three weight vectors ``A, B, C`` (say the
  initial weights and the final weights of two optimizers), origin ``A``, axes
  ``B - A`` and ``C - A`` made orthonormal by Gram-Schmidt.

How much the plane shows. ``explained[i]`` is the share of ``sum_k |w_k - origin|^2``
over all snapshots along axis ``i`` (axes orthonormalised first); for PCA about the
mean this is the usual explained-variance ratio, and ``sum(explained) <= 1``.

Time weights. Snapshots need not be evenly spaced in training steps (the default
snapshot policy is dense at the start, sparse later). Every sum over snapshots (the
PCA's scatter matrix, the explained shares) then takes optional per-snapshot
``weights``, the span of steps each snapshot stands for
(:func:`optviz.mnist.snapshots.step_weights`): the sums approximate the time average
over the whole path, and the plane does not depend on where the snapshots fall.
Per snapshot, :meth:`Plane.project` gives the plane coordinates and the off-plane
residual: the part of ``w_k - origin`` orthogonal to the plane, as a norm and
relative to ``|w_k - origin|`` (with ``centre="start"``: the share of the path's
displacement from its start that the picture does not show).

All vectors are flat ``(P,)`` float32 tensors in ``model.parameters()`` order (the
snapshot format of :mod:`optviz.mnist.results`); reductions run in float64.

Example::

    plane = pca_plane([adam.weights, sgd.weights])          # (K_i, P) each
    proj = plane.project(adam.weights)
    proj.xy[:3], proj.relative.max()
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..errors import InvalidValue, OptvizError

__all__ = ["Plane", "Projection", "pca_plane", "random_plane", "points_plane", "filter_normalize",
           "explained_shares", "CENTRES"]

#: Where a PCA or random plane is centred (besides a weight vector given directly).
CENTRES = ("start", "mean")

_ROWS = 256          # snapshots per block in the float64 reductions


@dataclasses.dataclass(frozen=True)
class Projection:
    """Weights projected onto a plane; every array has one row per snapshot."""

    xy: np.ndarray          # (K, 2) plane coordinates (least squares if the axes are not orthonormal)
    offset: np.ndarray      # (K,) |w_k - origin|
    residual: np.ndarray    # (K,) |off-plane part of w_k - origin|
    relative: np.ndarray    # (K,) residual / offset (0 where the offset is 0)


@dataclasses.dataclass(frozen=True, repr=False)
class Plane:
    """``w(a, b) = origin + a * directions[0] + b * directions[1]``."""

    origin: "object"            # torch.float32 (P,)
    directions: "object"        # torch.float32 (2, P)
    kind: str                   # "pca", "random" or "points"
    axis_names: Tuple[str, str]  # ("PC1", "PC2"), ("random direction 1", ...), ("init → SGD", ...)
    explained: np.ndarray       # (2,) share of the snapshots' squared offsets along each axis; NaN if unknown
    description: str            # how it was made, for reports and captions
    orthonormal: bool           # directions orthonormal (coordinates are distances in weight space)

    @property
    def num_params(self) -> int:
        return int(self.origin.shape[0])

    @property
    def axis_labels(self) -> Tuple[str, str]:
        """``("PC1 (83.2 %)", "PC2 (9.1 %)")``: axis names with their share of the motion."""
        return tuple(_with_share(n, e) for n, e in zip(self.axis_names, self.explained))

    def points(self, ab):
        """Weights at plane coordinates ``ab`` (K, 2): a (K, P) float32 tensor."""
        import torch

        ab = torch.as_tensor(np.asarray(ab, dtype=np.float64).reshape(-1, 2), dtype=torch.float64)
        coef = torch.cat([torch.ones(len(ab), 1, dtype=torch.float64), ab], dim=1)      # (K, 3)
        basis = torch.cat([self.origin[None], self.directions]).double()              # (3, P)
        return (coef @ basis).float()

    def project(self, weights) -> Projection:
        """Coordinates and off-plane residuals of snapshots ``weights`` (K, P).

        Non-finite weights raise :class:`~optviz.errors.OptvizError` (cut a diverged
        path at its first non-finite snapshot before projecting).
        """
        import torch

        W = _as_matrix(weights, self.num_params, "weights")
        bad = ~torch.isfinite(W).all(dim=1)
        if bool(bad.any()):
            k = int(torch.nonzero(bad)[0])
            raise OptvizError(f"cannot project a path with non-finite weights (NaN or inf at snapshot {k} "
                              f"of {len(W)}); cut it before the first non-finite snapshot")
        D = self.directions.double()                                   # (2, P)
        gram = D @ D.T                                                 # (2, 2)
        xy, offset, residual = [], [], []
        for start in range(0, len(W), _ROWS):
            X = W[start:start + _ROWS].double() - self.origin.double()  # (k, P)
            c = torch.linalg.solve(gram, D @ X.T).T                      # (k, 2)
            R = X - c @ D
            xy.append(c)
            offset.append(X.norm(dim=1))
            residual.append(R.norm(dim=1))
        xy = torch.cat(xy).numpy() if xy else np.zeros((0, 2))
        offset = torch.cat(offset).numpy() if offset else np.zeros(0)
        residual = torch.cat(residual).numpy() if residual else np.zeros(0)
        scale = max(float(self.origin.double().norm()), 1.0)
        tiny = offset <= 1e-12 * scale
        relative = np.where(tiny, 0.0, residual / np.where(tiny, 1.0, offset))
        return Projection(xy=xy, offset=offset, residual=np.where(tiny, 0.0, residual), relative=relative)

    def fingerprint(self) -> str:
        """A hash of the plane's vectors (a cache key part)."""
        h = hashlib.sha256()
        for t in (self.origin, self.directions):
            h.update(np.ascontiguousarray(t.detach().cpu().numpy()).tobytes())
        return h.hexdigest()

    def __repr__(self) -> str:
        return f"<Plane {self.kind}: {', '.join(self.axis_labels)}; {self.description}>"


def _with_share(name: str, share: float) -> str:
    if share is None or not np.isfinite(share):
        return name
    pct = 100.0 * share
    text = f"{pct:.1f}" if pct >= 0.1 else f"{pct:.2g}"
    return f"{name} ({text} %)"


# --- input checks -----------------------------------------------------------------------------


def _as_matrix(weights, num_params: Optional[int], what: str):
    import torch

    W = torch.as_tensor(weights)
    if W.ndim == 1:
        W = W[None]
    if W.ndim != 2 or (num_params is not None and W.shape[1] != num_params):
        want = f"(K, {num_params})" if num_params is not None else "(K, P)"
        raise InvalidValue(f"{what} must have shape {want}, got {tuple(W.shape)}")
    if not W.is_floating_point():
        W = W.float()
    return W


def _checked(paths, weights) -> Tuple[List, List]:
    """The non-empty ``paths`` as (K_i, P) matrices, checked, and their (K_i,) float64 time
    ``weights``, checked (ones if none are given)."""
    matrices = [_as_matrix(p, None, "each path") for p in paths]
    ws = _aligned_weights(matrices, weights)
    return _check_paths(matrices), ws


def _check_paths(paths) -> List:
    import torch

    paths = [_as_matrix(p, None, "each path") for p in paths]
    if not paths or all(len(p) == 0 for p in paths):
        raise OptvizError("no weight snapshots to build a plane from")
    sizes = {int(p.shape[1]) for p in paths}
    if len(sizes) > 1:
        raise OptvizError(f"weight paths of different sizes ({', '.join(map(str, sorted(sizes)))} parameters): "
                          "a plane needs snapshots of one model")
    for i, p in enumerate(paths):
        bad = ~torch.isfinite(p).all(dim=1)
        if bool(bad.any()):
            raise OptvizError(f"path {i} has non-finite weights (NaN or inf) at snapshot {int(torch.nonzero(bad)[0])}; "
                              "cut it before the first non-finite snapshot")
    return [p for p in paths if len(p)]


def _centre_vector(paths, centre):
    """The origin: "start" (mean of the first snapshots), "mean" (of all), or a vector."""
    import torch

    if isinstance(centre, str):
        if centre == "start":
            return torch.stack([p[0].double() for p in paths]).mean(0).float()
        if centre == "mean":
            total = sum(p.double().sum(0) for p in paths)
            return (total / sum(len(p) for p in paths)).float()
        raise InvalidValue(f"unknown plane centre {centre!r}; choose one of: {', '.join(CENTRES)}, or a weight vector")
    c = torch.as_tensor(centre).reshape(-1).float()
    if c.shape[0] != paths[0].shape[1]:
        raise InvalidValue(f"centre has {c.shape[0]} weights, the paths have {paths[0].shape[1]}")
    if not bool(torch.isfinite(c).all()):
        raise OptvizError("the plane's centre has non-finite weights")
    return c


# --- how much of the motion a plane shows -------------------------------------------------------


def _orthonormal(directions):
    """Gram-Schmidt on the rows of ``directions`` (2, P), in float64."""
    d = directions.double()
    u1 = d[0] / d[0].norm()
    v = d[1] - (d[1] @ u1) * u1
    n = v.norm()
    if not float(n) > 1e-9 * float(d[1].norm()):
        raise OptvizError("the plane's two directions are parallel (or one is zero): they span no plane")
    import torch

    return torch.stack([u1, v / n])


def _aligned_weights(paths, weights):
    """Per non-empty path, its (K_i,) float64 snapshot weights (ones if none are given)."""
    import torch

    if weights is None:
        return [torch.ones(len(p), dtype=torch.float64) for p in paths if len(p)]
    if len(weights) != len(paths):
        raise InvalidValue(f"{len(weights)} weight vectors for {len(paths)} paths")
    out = []
    for p, w in zip(paths, weights):
        if len(p) == 0:
            continue
        w = torch.as_tensor(np.asarray(w, dtype=np.float64))
        if w.shape != (len(p),) or not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
            raise InvalidValue(f"snapshot weights must be {len(p)} finite numbers >= 0")
        out.append(w)
    return out


def explained_shares(paths, origin, directions, weights=None) -> np.ndarray:
    """(2,) share of ``sum_k w_k |x_k - origin|^2`` (all snapshots of all paths, ``w_k`` their
    time weights, default 1) along each axis of the plane, axes orthonormalised in order
    (Gram-Schmidt). Sums to <= 1."""
    return _explained([p for p in paths if len(p)], origin, directions, _aligned_weights(paths, weights))


def _explained(paths, origin, directions, ws) -> np.ndarray:
    """:func:`explained_shares` of non-empty ``paths`` with their aligned weights ``ws``."""
    U = _orthonormal(directions).float()
    o = origin.float()
    total, along = 0.0, np.zeros(2)
    for p, w in zip(paths, ws):
        for start in range(0, len(p), _ROWS):
            X = p[start:start + _ROWS].float() - o               # float32 blocks, float64 sums
            wb = w[start:start + _ROWS]
            total += float(((X.double() ** 2).sum(1) * wb).sum())
            along += (((X @ U.T).double() ** 2) * wb[:, None]).sum(0).numpy()
    if total <= 0:
        return np.full(2, np.nan)
    return np.clip(along / total, 0.0, 1.0)


# --- PCA ---------------------------------------------------------------------------------------


def _top_components(paths, origin, ws, k: int = 2, oversample: int = 8, iters: int = 4, seed: int = 0):
    """Top-``k`` right singular vectors and values of ``X = diag(sqrt(w)) ([paths] - origin)``
    (N, P), ``w`` the paths' aligned weights ``ws``, never building ``X``: a randomized range
    finder (Halko et al. 2011) with power iterations, exact when ``N <= k + oversample``.
    Returns ``(V (k, P) float64, s (k,))``."""
    import torch

    n = sum(len(p) for p in paths)
    q = min(n, k + oversample)
    o = origin.double()
    roots = [w.sqrt() for w in ws]

    def X_times(M):               # (P, q) -> (N, q)
        M32 = M.float()
        shift = o.float() @ M32                                   # (q,)
        return torch.cat([(p @ M32 - shift).double() * r[:, None] for p, r in zip(paths, roots)])

    def Xt_times(Y):              # (N, q) -> (P, q)
        out = torch.zeros(o.shape[0], Y.shape[1], dtype=torch.float64)
        row = 0
        for p, r in zip(paths, roots):
            Yb = Y[row:row + len(p)] * r[:, None]
            row += len(p)
            out += (p.T @ Yb.float()).double() - o[:, None] * Yb.sum(0)[None, :]
        return out

    if n <= q:
        Q = torch.eye(n, dtype=torch.float64)
    else:
        g = torch.Generator().manual_seed(seed)
        omega = torch.randn(o.shape[0], q, generator=g, dtype=torch.float64)
        Q, _ = torch.linalg.qr(X_times(omega))
        for _ in range(iters):
            Z, _ = torch.linalg.qr(Xt_times(Q))
            Q, _ = torch.linalg.qr(X_times(Z))
    B = Xt_times(Q).T                                             # (q, P) = Q^T X
    _, s, Vh = torch.linalg.svd(B, full_matrices=False)
    return Vh[:k], s[:k]


def _orient(directions, paths, origin):
    """Flip each axis so that the paths' final snapshots lie on its positive side on average:
    training then runs left to right and bottom to top, whatever the SVD's signs."""
    ends = np.stack([(p[-1].double() - origin.double()).numpy() for p in paths])
    D = directions.clone()
    for i in range(2):
        if float(np.mean(ends @ D[i].numpy())) < 0:
            D[i] = -D[i]
    return D


def pca_plane(paths: Sequence, centre="start", seed: int = 0, centre_name: Optional[str] = None,
              weights: Optional[Sequence] = None) -> Plane:
    """The plane of the two principal directions of all snapshots of ``paths`` together.

    Parameters
    ----------
    paths : sequence of (K_i, P) tensors
        The weight snapshots of each optimizer (and seed) of the comparison.
    centre : "start", "mean" or a (P,) tensor
        The origin: the mean of the paths' first snapshots (their shared start:
        principal directions of the displacements from it), the mean of all
        snapshots (classical PCA), or a given weight vector.
    seed : int
        Seed of the randomized SVD's test matrix (results agree to many digits for
        any seed when the spectrum decays, as it does for training paths).
    centre_name : str, optional
        What a given centre vector is (for the description), e.g. "Adam final".
    weights : sequence of (K_i,) arrays, optional
        Time weights of the snapshots (see the module docstring); default all 1.

    Axes are orthonormal (coordinates are Euclidean distances in weight space) and
    oriented so that the paths end on the positive side of both.
    """
    paths, ws = _checked(paths, weights)
    origin = _centre_vector(paths, centre)
    V, s = _top_components(paths, origin, ws, seed=seed)
    if V.shape[0] < 2 or not float(s[1]) > 1e-9 * max(float(s[0]), 1e-300):
        raise OptvizError("the snapshots span less than two dimensions around the centre (all snapshots on one "
                          "line?): PCA cannot pick a plane; use --plane random or --plane points")
    D = _orient(V, paths, origin)
    explained = _explained(paths, origin, D, ws)
    where = centre if isinstance(centre, str) else (centre_name or "a given weight vector")
    what = {"start": "the paths' start", "mean": "the mean of all snapshots"}.get(where, where)
    n = sum(len(p) for p in paths)
    return Plane(origin=origin, directions=D.float(), kind="pca", axis_names=("PC1", "PC2"), explained=explained,
                 description=f"PCA of {n} snapshots of {len(paths)} paths, centred at {what}", orthonormal=True)


# --- filter-normalised random directions --------------------------------------------------------


def filter_normalize(direction, weights, shapes: Sequence[Sequence[int]], bias: str = "zero"):
    """Li et al. (2018)'s filter normalisation of a flat ``direction`` against flat ``weights``.

    For every parameter with two or more axes, each filter (a slice along axis 0: a row of a
    ``Linear`` weight, an output channel of a ``Conv2d`` kernel) is rescaled to the norm of
    the same filter of ``weights`` (a zero filter stays zero). One-axis parameters (biases,
    norm-layer scales) are set to zero (``bias="zero"``, the paper's choice) or kept
    with their norm rescaled to that of the weights (``bias="keep"``).
    Returns a new (P,) float32 tensor.
    """
    import torch

    if bias not in ("zero", "keep"):
        raise InvalidValue(f"bias must be 'zero' or 'keep', got {bias!r}")
    d = torch.as_tensor(direction).reshape(-1).double().clone()
    w = torch.as_tensor(weights).reshape(-1).double()
    total = sum(math.prod(s) for s in shapes)
    if d.shape[0] != total or w.shape[0] != total:
        raise InvalidValue(f"direction ({d.shape[0]}) and weights ({w.shape[0]}) must both have the "
                           f"{total} entries the shapes describe")
    start = 0
    for shape in shapes:
        size = math.prod(shape)
        dv, wv = d[start:start + size], w[start:start + size]
        if len(shape) >= 2:
            D, Wt = dv.view(shape[0], -1), wv.view(shape[0], -1)
            D.mul_(Wt.norm(dim=1, keepdim=True) / D.norm(dim=1, keepdim=True).clamp_min(1e-30))
        elif bias == "zero":
            dv.zero_()
        else:
            dv.mul_(wv.norm() / dv.norm().clamp_min(1e-30))
        start += size
    return d.float()


def random_plane(shapes: Sequence[Sequence[int]], centre, seed: int = 0, paths: Optional[Sequence] = None,
                 bias: str = "zero", centre_name: Optional[str] = None, weights: Optional[Sequence] = None) -> Plane:
    """Two filter-normalised Gaussian directions through ``centre`` (Li et al. 2018).

    ``centre``: a (P,) weight vector (e.g. the final weights of one run: the paper's
    picture of the minimum it found), or "start"/"mean" of ``paths``. ``shapes``: the
    parameter shapes in flattening order (for the filters). Coordinates are in units of
    the directions: ``a = 1`` moves every filter by its own norm. ``paths`` (optional)
    fill in :attr:`Plane.explained`; ``centre_name`` says what the centre is (for the description).
    """
    import torch

    checked, ws = _checked(paths, weights) if paths is not None else (None, None)
    if isinstance(centre, str):
        if checked is None:
            raise InvalidValue(f"centre={centre!r} needs the paths")
        origin = _centre_vector(checked, centre)
        what = {"start": "the paths' start", "mean": "the mean of all snapshots"}[centre]
    else:
        origin = torch.as_tensor(centre).reshape(-1).float()
        if not bool(torch.isfinite(origin).all()):
            raise OptvizError("the plane's centre has non-finite weights")
        what = centre_name or "a given weight vector"
    g = torch.Generator().manual_seed(int(seed))
    raw = torch.randn(2, origin.shape[0], generator=g, dtype=torch.float64)
    D = torch.stack([filter_normalize(r, origin, shapes, bias=bias) for r in raw])
    if not float(D.norm(dim=1).min()) > 0:
        raise OptvizError("the filter-normalised directions are zero (are the centre's weights all zero?)")
    explained = _explained(checked, origin, D, ws) if checked else np.full(2, np.nan)
    return Plane(origin=origin, directions=D, kind="random",
                 axis_names=("random direction 1", "random direction 2"), explained=explained,
                 description=f"filter-normalised random directions (seed {seed}, biases {bias}), centred at {what}",
                 orthonormal=False)


# --- three points ------------------------------------------------------------------------------


def points_plane(a, b, c, names: Sequence[str] = ("A", "B", "C"), paths: Optional[Sequence] = None,
                 weights: Optional[Sequence] = None) -> Plane:
    """The plane through weight vectors ``a``, ``b``, ``c``: origin ``a``, first axis towards
    ``b``, second axis the part of ``c - a`` orthogonal to it (Gram-Schmidt). ``a`` lies at
    (0, 0), ``b`` at (|b - a|, 0), ``c`` at (., > 0). ``names`` label the axes
    (``"init → SGD"``); ``paths`` (optional) fill in :attr:`Plane.explained`."""
    import torch

    vecs = [torch.as_tensor(v).reshape(-1).float() for v in (a, b, c)]
    if len({int(v.shape[0]) for v in vecs}) > 1:
        raise InvalidValue("the three points must have the same number of weights")
    for v, name in zip(vecs, names):
        if not bool(torch.isfinite(v).all()):
            raise OptvizError(f"point {name} has non-finite weights")
    A, B, C = vecs
    if not float((B - A).double().norm()) > 0:
        raise OptvizError(f"points {names[0]} and {names[1]} are the same weights: they span no plane")
    try:
        U = _orthonormal(torch.stack([B - A, C - A]))
    except OptvizError:
        raise OptvizError(f"points {', '.join(names)} lie on one line: they span no plane") from None
    checked, ws = _checked(paths, weights) if paths is not None else (None, None)
    explained = _explained(checked, A, U, ws) if checked else np.full(2, np.nan)
    return Plane(origin=A, directions=U.float(), kind="points",
                 axis_names=(f"{names[0]} → {names[1]}", f"⊥ towards {names[2]}"), explained=explained,
                 description=f"the plane through {names[0]}, {names[1]} and {names[2]} (Gram-Schmidt)",
                 orthonormal=True)
