"""Weight snapshots for the loss landscape: when to take them, how to store them, how to read them.

When (:class:`SnapshotPolicy`, ``--snapshots``):

* ``landscape`` (the default): step 0; steps 1, 10, 100, 1000, ... (``per_decade``
  per decade: dense where the path bends, at the start); and ``per_epoch`` evenly
  spaced points in every epoch, its end among them. The lecture preset (15 epochs)
  takes 36 per run instead of 470. The landscape weights each snapshot by the span of
  steps it stands for (:func:`step_weights`), so its PCA plane, explained variance and
  off-plane residuals match those of dense snapshots: within 0.3 percentage points on
  the lecture's first two epochs (``benchmarks/run_size.py`` measures it).
* ``dense``: every ``every`` steps (``--snapshot-every K``), and the final weights.
* ``none``: no snapshots (studies, by default).

The steps a policy picks in the first ``E`` epochs do not depend on how many epochs
the run has in all, so a run resumed to more epochs equals a longer one.

How (format 2): per run, ``snapshots/RUN/origin.npz`` holds the initial weights
(float32, exact) and ``snapshots/RUN/epoch-EEEE.npz`` (zip-deflated) the snapshots of
epoch ``EEEE``: ``steps`` int64 ``(k,)``, ``offsets`` ``(k, P)`` = weights - origin in
float16 (``dtype="float16"``, the default: half the bytes, and offsets are small, so
the rounding error is at most 2^-11 of an offset: the loss at a reconstructed snapshot
is within 1e-4 relative of the exact one) or ``weights`` in float32 (``dtype="float32"``,
exact), ``batch_loss`` and ``val_loss`` float32 ``(k,)``. Format 1 (``epoch-EEEE.pt``,
float32 weights, written by optviz 0.1) is still read.

:func:`optviz.mnist.results.load_snapshots` reads a run folder's snapshots back::

    snaps = load_snapshots("runs/lecture")
    adam = snaps["adam-s0"]
    adam.weights.shape            # (K, 101770), float32
    adam.steps[:4]                # tensor([  0,   1,  10, 100])
"""
from __future__ import annotations

import dataclasses
import math
import zipfile
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from ..errors import InvalidValue, OptvizError, UnknownName
from ..io import atomic_path

__all__ = ["SNAPSHOT_KINDS", "SNAPSHOT_DTYPES", "SnapshotPolicy", "step_weights", "write_origin",
           "write_chunk", "read_chunk", "read_origin", "chunk_files", "chunk_epoch", "Snapshots"]

SNAPSHOT_KINDS = ("landscape", "dense", "none")
SNAPSHOT_DTYPES = ("float16", "float32")


@dataclasses.dataclass(frozen=True)
class SnapshotPolicy:
    """Which training steps get a weight snapshot (0 = the initial weights)."""

    kind: str = "landscape"   # "landscape", "dense" or "none"
    every: int = 50           # dense: every k steps
    per_epoch: int = 2        # landscape: evenly spaced snapshots per epoch (its end included)
    per_decade: int = 1       # landscape: log-spaced early snapshots per decade of steps

    def __post_init__(self):
        if self.kind not in SNAPSHOT_KINDS:
            raise UnknownName("snapshot policy", self.kind, SNAPSHOT_KINDS)
        for name in ("every", "per_epoch", "per_decade"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidValue(f"snapshot {name} must be an integer >= 1, got {value!r}")

    @property
    def active(self) -> bool:
        return self.kind != "none"

    def steps(self, steps_per_epoch: int, epochs: int) -> np.ndarray:
        """The sorted steps (0 .. ``epochs * steps_per_epoch``) that get a snapshot."""
        total = epochs * steps_per_epoch
        if self.kind == "none":
            return np.zeros(0, dtype=np.int64)
        if self.kind == "dense":
            picked = set(range(0, total + 1, self.every)) | {total}
        else:
            picked = {0, total}
            k = 0
            while (step := round(10 ** (k / self.per_decade))) <= total:
                picked.add(int(step))
                k += 1
            for e in range(epochs):
                for j in range(1, self.per_epoch + 1):
                    picked.add(e * steps_per_epoch + round(j * steps_per_epoch / self.per_epoch))
        return np.array(sorted(picked), dtype=np.int64)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def step_weights(steps) -> np.ndarray:
    """Quadrature weights for snapshots at ``steps``: each counts for the span of steps it
    stands for (half the gap to each neighbour; trapezoid rule). With them, sums over
    sparse snapshots (a PCA's scatter matrix) approximate the time average over the
    whole path, as dense, evenly spaced snapshots do by themselves."""
    t = np.asarray(steps, dtype=np.float64)
    if len(t) < 2:
        return np.ones(len(t))
    w = np.empty(len(t))
    w[1:-1] = (t[2:] - t[:-2]) / 2
    w[0], w[-1] = (t[1] - t[0]) / 2, (t[-1] - t[-2]) / 2
    w = np.maximum(w, 0.0)
    return w / w.mean() if w.sum() > 0 else np.ones(len(t))


# ====================================================================== storage


def _save_npz(path: Path, compress: bool = True, **arrays) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            (np.savez_compressed if compress else np.savez)(fh, **arrays)


def _load_npz(path: Path) -> Dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as exc:
        raise OptvizError(f"cannot read snapshot file {str(path)!r}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__} "
                          f"(truncated or damaged)") from None


def write_origin(folder: Path, weights) -> None:
    """The run's initial weights, exactly (float32)."""
    _save_npz(Path(folder) / "origin.npz", compress=False, weights=np.asarray(weights, dtype=np.float32))


def write_chunk(folder: Path, epoch: int, steps, weights, batch_loss, val_loss, dtype: str = "float16",
                origin=None) -> Path:
    """Write the snapshots of one epoch: ``weights (k, P)`` float32 at ``steps (k,)``."""
    weights = np.asarray(weights, dtype=np.float32)
    arrays = {"steps": np.asarray(steps, dtype=np.int64), "batch_loss": np.asarray(batch_loss, dtype=np.float32),
              "val_loss": np.asarray(val_loss, dtype=np.float32)}
    if dtype == "float16":
        # offsets are small: float16 keeps 11 significant bits of each, not of the weight
        with np.errstate(over="ignore", invalid="ignore"):
            arrays["offsets"] = (weights - np.asarray(origin, dtype=np.float32)[None]).astype(np.float16)
    elif dtype == "float32":
        arrays["weights"] = weights
    else:
        raise UnknownName("snapshot dtype", dtype, SNAPSHOT_DTYPES)
    path = Path(folder) / f"epoch-{epoch:04d}.npz"
    _save_npz(path, compress=dtype == "float16", **arrays)  # float32 weights hardly compress: not worth the time
    return path


def read_chunk(path: Path, origin: Optional[np.ndarray]) -> Dict[str, np.ndarray]:
    """One epoch's snapshots with float32 ``weights`` (reconstructed from offsets if stored so)."""
    path = Path(path)
    if path.suffix == ".pt":  # format 1
        import torch

        try:
            chunk = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001  (a damaged file: say which)
            raise OptvizError(f"cannot read snapshot file {str(path)!r}: {str(exc).splitlines()[0]}") from None
        return {k: v.numpy() for k, v in chunk.items()}
    z = _load_npz(path)
    if "offsets" in z:
        if origin is None:
            raise OptvizError(f"{str(path.parent / 'origin.npz')!r} is missing: the snapshots in {str(path)!r} "
                              f"are stored relative to it")
        z["weights"] = origin[None] + z.pop("offsets").astype(np.float32)
    if "weights" not in z or "steps" not in z:
        raise OptvizError(f"{str(path)!r} is not a snapshot file (no steps or weights)")
    return z


def chunk_epoch(path: Path) -> int:
    """The epoch of a snapshot file: ``epoch-0003.npz`` -> 3."""
    return int(Path(path).stem.split("-")[1])


def chunk_files(folder: Path) -> List[Path]:
    """The epoch files of a run's snapshot folder, in epoch order (both formats)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(list(folder.glob("epoch-*.npz")) + list(folder.glob("epoch-*.pt")),
                  key=lambda p: (chunk_epoch(p), p.suffix))


def read_origin(folder: Path) -> Optional[np.ndarray]:
    path = Path(folder) / "origin.npz"
    return _load_npz(path)["weights"] if path.exists() else None


# ====================================================================== reading a run's snapshots


@dataclasses.dataclass(frozen=True, repr=False)
class Snapshots:
    """The weight snapshots of one run (one optimizer setting, one seed).

    ``weights[k]`` is the flattened parameter vector after ``steps[k]`` updates. Rebuild
    a network with ``snap.load_into(build_model(snap.model), k)``.
    """

    run: str  # run label, e.g. "adam-s0"
    entry: str  # optimizer setting within the comparison, e.g. "adam"
    optimizer: str  # registry name (its colour: registry.get(optimizer).colour)
    label: str  # legend label, e.g. "Adam (η=0.001)"
    backend: str  # "optviz" (TorchOptimizer) or "torch" (torch.optim reference)
    seed: int
    model: str  # model registry name (optviz.mnist.build_model)
    steps: "object"  # torch.int64 (K,): updates behind each snapshot, 0 = initial weights
    weights: "object"  # torch.float32 (K, P): flattened parameters, model.parameters() order
    batch_loss: "object"  # torch.float32 (K,): minibatch loss at the weights (NaN for the final)
    val_loss: "object"  # torch.float32 (K,): loss on the first val_size validation images
    val_size: int
    param_names: tuple  # ("1.weight", "1.bias", ...)
    param_shapes: tuple  # ((128, 784), (128,), ...)
    steps_per_epoch: int
    status: str  # "done", "diverged", "interrupted", "running"

    @property
    def num_params(self) -> int:
        return int(self.weights.shape[1])

    def __len__(self) -> int:
        return int(self.steps.shape[0])

    def step_weights(self) -> np.ndarray:
        """(K,) :func:`step_weights` of these snapshots (for time-weighted sums)."""
        return step_weights(self.steps.numpy())

    def unflatten(self, k: int) -> dict:
        """Snapshot ``k`` as ``{parameter name: tensor}`` (views into ``weights``)."""
        out, start = {}, 0
        for name, shape in zip(self.param_names, self.param_shapes):
            size = math.prod(shape)
            out[name] = self.weights[k, start:start + size].view(*shape)
            start += size
        return out

    def load_into(self, model, k: int):
        """Copy snapshot ``k`` into ``model``'s parameters; returns ``model``."""
        import torch

        with torch.no_grad():
            torch.nn.utils.vector_to_parameters(self.weights[k].to(next(model.parameters())), model.parameters())
        return model

    def __repr__(self) -> str:
        return (f"Snapshots({self.run}: {len(self)} x {self.num_params:,} weights, steps "
                f"{int(self.steps[0]) if len(self) else '-'}..{int(self.steps[-1]) if len(self) else '-'}, "
                f"{self.status})")
