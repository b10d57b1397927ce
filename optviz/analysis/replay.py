"""An adaptive optimizer's state at each weight snapshot of a run, by replaying its training.

A run folder keeps the weights every ``snapshot_every`` steps but the optimizer's
state (Adam's ``v``, AdaGrad's ``G``) only at epoch ends, in its checkpoints. The
preconditioned sharpness needs that state at every snapshot, so the run is trained
again from its initial weights with the protocol its folder records: the same model
and seed, the same batches in the same order (``epoch_batches(x, y, batch_size,
seed, epoch)``), the same optimizer, learning-rate schedule and clipping, in the
same precision and thread count. Training is deterministic on the CPU, so the
replayed weights match the snapshots; :class:`Replay` reports the largest relative
difference, and a replay that does not reproduce its run is refused
(:class:`ReplayMismatch`) rather than silently used.

The replay costs what training cost (about a second per epoch of the lecture MLP)
and reads only the run's config and snapshots.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional, Sequence

from ..errors import OptvizError
from ._threads import torch_threads
from .thresholds import PRECONDITIONED, preconditioner

__all__ = ["Replay", "ReplayMismatch", "replay_preconditioners", "run_entry"]


class ReplayMismatch(OptvizError):
    """The replayed weights differ from the run's snapshots (the trainer's protocol changed)."""

    exit_code = 1


@dataclass
class Replay:
    run: str
    preconditioners: Dict[int, object] = field(default_factory=dict)  # step -> P (P,) float32 on the CPU
    drift: Dict[int, float] = field(default_factory=dict)             # step -> max |w - w_snap| / max |w_snap|
    seconds: float = 0.0

    @property
    def max_drift(self) -> float:
        return max(self.drift.values(), default=0.0)


def run_entry(config: dict, entry_key: str) -> dict:
    """The optimizer entry of ``entry_key`` from a run's ``config.json`` (optimizer, hyper,
    clipping, backend)."""
    for e in config.get("entries", []):
        if e.get("key") == entry_key:
            return e
    raise OptvizError(f"the run folder's config has no optimizer entry {entry_key!r}")


def _state_vector(opt, params, name: str, hyper: dict, step: int):
    """The flat preconditioner of a torch optimizer (TorchOptimizer or torch.optim) after ``step`` updates."""
    import torch

    parts = []
    for p in params:
        st = opt.state.get(p, {})
        if not st:
            return None
        buffers = {k: v for k, v in st.items() if torch.is_tensor(v) and v.shape == p.shape}
        P = preconditioner(name, hyper, buffers, step)
        if P is None:
            return None
        parts.append(P.reshape(-1))
    return torch.cat(parts).detach().to("cpu", torch.float32)


def replay_preconditioners(run_dir, snapshots, steps: Sequence[int], data=None, tolerance: float = 1e-3,
                           log: Optional[Callable[[str], None]] = None, config: Optional[dict] = None) -> Replay:
    """Retrain the run of ``snapshots`` (a :class:`~optviz.mnist.results.Snapshots`) and
    take its preconditioner ``P`` after each of ``steps`` updates (snapshot steps).

    ``data``: a loaded :class:`~optviz.mnist.dataset.MNISTData` (default: loaded as the
    run's config says); ``config``: the run's ``config.json`` (default: read from
    ``run_dir``). Raises :class:`ReplayMismatch` when a replayed weight vector differs from
    its snapshot by more than ``tolerance``, measured as ``|w - snapshot| / |snapshot -
    initial weights|`` (relative to the distance the run has travelled: float16 snapshots
    are exact to 2^-11 of that distance).

    A replay is exact for a run of the sequential trainer. A run of the stacked trainer
    summed its GEMMs in another order: in float64 that changes nothing that matters (the
    two trainers agree to 1e-15 over an MNIST epoch), but in float32 Adam amplifies such
    rounding (a ReLU pre-activation at zero flips, and its normalised steps carry the
    difference on), so after about a thousand steps its replayed weights no longer match
    and the replay is refused (the preconditioned sharpness is then reported unavailable;
    train with ``--dtype float64`` or ``--trainer sequential`` to have it).
    """
    import time

    import torch
    import torch.nn.functional as F

    from ..mnist.dataset import MNISTData
    from ..mnist.models import build_model
    from ..mnist.results import RunDir
    from ..mnist.train import epoch_batches, make_schedule   # the trainer's own batches and schedules
    from ..optim import TorchOptimizer, registry

    if config is None:
        config = RunDir.open(run_dir).config()
    entry = run_entry(config, snapshots.entry)
    name, hyper = entry["optimizer"], dict(entry["hyper"])
    if name not in PRECONDITIONED:
        raise OptvizError(f"{snapshots.run}: {name} has no preconditioner to replay")
    wanted = {int(s) for s in steps}
    snap_index = {int(s): k for k, s in enumerate(snapshots.steps.tolist())}
    missing = sorted(s for s in wanted if s not in snap_index)
    if missing:
        raise OptvizError(f"{snapshots.run}: no snapshot at step {missing[0]}")
    if data is None:
        data = MNISTData.load(config.get("dataset", "mnist"), config.get("data_dir"),
                              val_size=config.get("val_size", 10000), split_seed=config.get("split_seed", 0))
    x, y = data.train
    if config.get("subset"):
        x, y = x[:config["subset"]], y[:config["subset"]]
    dtype = getattr(torch, config.get("dtype", "float32"))
    x = x.to(dtype)
    batch_size, epochs = int(config["batch_size"]), int(config["epochs"])
    steps_per_epoch = -(-len(x) // batch_size)
    model = build_model(snapshots.model, seed=snapshots.seed).to(dtype)
    params = list(model.parameters())
    if entry.get("backend") == "torch":
        from ..optim.torch_reference import torch_optimizer

        opt = torch_optimizer(params, name, **hyper)
    else:
        opt = TorchOptimizer(params, name, **hyper)
    lr = dict(registry.get(name).defaults, **hyper).get("lr")
    schedule = make_schedule(config.get("schedule", "constant"), lr, epochs, steps_per_epoch)
    clip_norm, clip_value = entry.get("clip_norm"), entry.get("clip_value")
    out = Replay(snapshots.run)
    last = max(wanted, default=0)
    # the sequential trainer's thread count (one unless the run named one): another count sums
    # the GEMMs in another order, and the replayed weights would drift from the snapshots
    threads = config.get("num_threads") or 1
    t0 = time.perf_counter()

    def take(step: int) -> None:
        w = torch.nn.utils.parameters_to_vector(params).detach().to("cpu", torch.float32)
        ref = snapshots.weights[snap_index[step]]
        travelled = float((ref - snapshots.weights[0]).norm())
        out.drift[step] = float((w - ref).norm()) / max(travelled, 1e-12 * max(float(ref.norm()), 1e-30))
        if out.drift[step] > tolerance:
            raise ReplayMismatch(
                f"{snapshots.run}: replaying the training does not reproduce snapshot step {step} "
                f"(relative difference {out.drift[step]:.1e} > {tolerance:g}); the preconditioned "
                f"sharpness needs the optimizer state, which the run folder keeps only at epoch ends")
        out.preconditioners[step] = _state_vector(opt, params, name, hyper, step)

    with torch_threads(threads):
        step = 0
        for epoch in range(epochs):
            for xb, yb in epoch_batches(x, y, batch_size, seed=snapshots.seed, epoch=epoch):
                if step in wanted:
                    take(step)
                if step >= last:
                    break
                if schedule is not None:
                    for group in opt.param_groups:
                        group["lr"] = schedule(step)
                opt.zero_grad(set_to_none=True)
                loss = F.cross_entropy(model(xb), yb)
                loss.backward()
                if clip_value is not None:
                    torch.nn.utils.clip_grad_value_(params, clip_value)
                if clip_norm is not None:
                    torch.nn.utils.clip_grad_norm_(params, clip_norm)
                opt.step()
                step += 1
            if step >= last:
                break
        if last == step and last not in out.preconditioners and last in wanted:
            take(step)
    out.seconds = time.perf_counter() - t0
    if log is not None:
        log(f"{snapshots.run}: replayed {step:,} steps in {out.seconds:.1f} s to recover the optimizer state "
            f"(weights reproduced to {out.max_drift:.1e})")
    if any(math.isnan(v) for v in out.drift.values()):
        raise ReplayMismatch(f"{snapshots.run}: the replay produced non-finite weights")
    return out
