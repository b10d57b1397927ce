"""Train a set of optimizers side by side on MNIST, and record everything.

A comparison is a :class:`TrainConfig`: optimizer settings (specs such as
``"adam:lr=0.001"``), seeds, a model and a protocol. It expands into runs, one per
(setting, seed). For one seed every run starts from the same initial weights
(``build_model(model, seed)``) and sees the same batches in the same order
(``batch_order(n, seed, epoch)``), so the only difference between runs is the
optimizer. All runs advance epoch by epoch together, so after Ctrl-C they are
equally far.

Two trainers compute the same numbers:

* **stacked** (the default where it applies): every run of the comparison is a
  member of one batched model (:mod:`optviz.mnist.stacked`): a layer that the runs
  of a seed share is one GEMM, the optimizers of one kind step as one core
  transform with array-valued hyperparameters. It applies when there are several
  runs, every setting runs on the shared core (no ``torch:`` reference specs) and
  the model can be stacked (every registered one can). Its numbers equal the sequential trainer's up to the
  order of sums in GEMMs (``tests/test_stacked.py`` states the tolerance).
* **sequential**: one ``nn.Module`` and one :class:`~optviz.optim.TorchOptimizer`
  (or ``torch.optim`` optimizer, for ``torch:`` specs) per run, stepped in turn.

Both slice preloaded tensors (no DataLoader), keep the per-step losses on the tensor
side (no ``.item()`` per step), check them for divergence every ``check_every`` steps
(:mod:`optviz.mnist.divergence`: a non-finite loss, or a sustained explosion), and
evaluate in large batches under ``torch.inference_mode``. Everything is written to a
run folder (:mod:`optviz.mnist.results`) as it goes: metrics each epoch, a checkpoint
per run per epoch, weight snapshots as the snapshot policy says
(:mod:`optviz.mnist.snapshots`).

Example::

    config = TrainConfig(optimizers=["sgd:lr=0.01", "adam:lr=0.001"], epochs=2, seeds=[0, 1])
    result = train(config, "runs/try")            # a RunResult
    result.summary                                # rows of the summary table
    resume("runs/try", epochs=4)                  # two more epochs

Optimizer specs are those of :func:`optviz.optim.registry.parse_spec`; a spec
``torch:NAME:...`` runs ``torch.optim``'s implementation of ``NAME`` instead of the
shared core (``reference=True`` adds one for every setting). ``clip_norm`` and
``clip_value`` in a spec, or ``TrainConfig.clip_norm``, clip each run's gradient
(as ``torch.nn.utils.clip_grad_norm_`` / ``clip_grad_value_``) before each step.
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from ..errors import InvalidValue, OptvizError
from .config import (DTYPES, SCHEDULE_KINDS, Entry, RunSpec, TrainConfig, _positive_int, make_schedule,  # noqa: F401 (re-exported)
                     parse_seeds)
from .results import RunDir, write_summary_table

__all__ = ["TrainConfig", "Entry", "RunSpec", "RunResult", "TrainingInterrupted", "SCHEDULE_KINDS",
           "parse_seeds", "make_schedule", "train", "resume", "evaluate", "epoch_batches", "choose_trainer"]


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training, after everything so far was saved to ``run_dir``."""

    def __init__(self, run_dir: Path):
        super().__init__(str(run_dir))
        self.run_dir = Path(run_dir)


@dataclass
class RunResult:
    run_dir: Path
    config: TrainConfig
    status: Dict[str, str]  # run label -> "done" / "diverged"
    summary: List[dict]  # rows of the summary table (results.summary_rows)
    markdown: str  # the summary table


def evaluate(model, x, y, batch_size: int = 2000):
    """``(mean cross-entropy, accuracy)`` of ``model`` on ``(x, y)``, in batches, no gradients."""
    import torch
    import torch.nn.functional as F

    was_training = model.training
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=x.device)
    correct = torch.zeros((), dtype=torch.int64, device=x.device)
    with torch.inference_mode():
        for start in range(0, len(x), batch_size):
            out = model(x[start:start + batch_size])
            yb = y[start:start + batch_size]
            total += F.cross_entropy(out, yb, reduction="sum").double()
            correct += (out.argmax(1) == yb).sum()
    model.train(was_training)
    n = max(len(x), 1)
    return total.item() / n, correct.item() / n


@contextlib.contextmanager
def _threads(n: Optional[int]):
    import torch

    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def epoch_batches(x, y, batch_size: int, seed: int, epoch: int):
    """The minibatches of :func:`~optviz.mnist.dataset.iterate_batches` (the same order, the
    same examples), gathered with ``index_select``, which is about twice as fast on the CPU
    as ``x[idx]`` for batches of 32 images."""
    from . import dataset

    order = dataset.batch_order(len(x), seed, epoch).to(x.device)
    for start in range(0, len(x), batch_size):
        idx = order[start:start + batch_size]
        yield x.index_select(0, idx), y.index_select(0, idx)


_FREE_CORES: Optional[int] = None


def _busy_cores(window: float = 0.1) -> Optional[float]:
    """How many cores *other* processes keep busy now: ``/proc/stat`` sampled over ``window``
    seconds, less this process's own time (its OpenMP threads spin on for a moment after torch's
    last parallel operation); ``None`` where there is no ``/proc/stat``."""
    def sample():
        with open("/proc/stat") as fh:
            values = [int(v) for v in fh.readline().split()[1:]]
        with open("/proc/self/stat") as fh:
            mine = fh.read().rsplit(")", 1)[1].split()
        return values[3] + values[4], sum(values), int(mine[11]) + int(mine[12])   # idle, all, own utime+stime

    try:
        idle0, all0, own0 = sample()
        time.sleep(window)
        idle1, all1, own1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    import os

    total = max(all1 - all0, 1)
    busy = (all1 - all0) - (idle1 - idle0) - (own1 - own0)
    return max(busy, 0) / total * (os.cpu_count() or 1)


def free_cores() -> int:
    """The cores free for this process's torch threads: all of them on an idle machine, fewer
    when other processes are busy (the cores less those busy now, rounded, at least 1).
    Decided once per process (a study's later shards would otherwise see its own load).

    Why: two torch threads on a machine whose other core is busy wait on each other at every
    step (OpenMP spins): measured on a 2-core machine, 11x slower than one thread."""
    global _FREE_CORES
    if _FREE_CORES is None:
        import os

        import torch

        cores = torch.get_num_threads()
        busy = _busy_cores()
        if busy is None:
            try:
                busy = os.getloadavg()[0]
            except OSError:
                busy = 0.0
        _FREE_CORES = max(1, min(cores, round(cores - busy)))
    return _FREE_CORES


def choose_trainer(config: TrainConfig) -> Tuple[str, str]:
    """``(trainer, why)``: which trainer runs ``config`` ("stacked" or "sequential") and why."""
    from .models import build_model
    from .stacked import unsupported_reason

    if config.trainer == "sequential":
        return "sequential", "asked for"
    reasons = []
    if any(e.backend == "torch" for e in config.entries()):
        reasons.append("torch.optim reference runs (torch: specs) train one by one")
    why = unsupported_reason(build_model(config.model))
    if why:
        reasons.append(f"the model cannot be stacked ({why})")
    if config.trainer == "stacked":
        if reasons:
            raise OptvizError(f"--trainer stacked cannot run this comparison: {'; '.join(reasons)}")
        return "stacked", "asked for"
    if len(config.runs()) == 1:
        reasons.append("a single run: nothing to stack")
    return ("sequential", reasons[0]) if reasons else ("stacked", "every run shares the model and the core")


# ====================================================================== one run's bookkeeping


@dataclass
class _Run:
    spec: RunSpec
    rng: Any                          # this run's torch CPU RNG state
    model: Any = None                 # sequential: the module; stacked: where its weights wait between stacks
    optimizer: Any = None             # sequential: the optimizer
    opt_state: Optional[dict] = None  # stacked: optimizer state (torch state_dict form) between stacks
    schedule: Optional[Callable[[int], float]] = None
    needs_closure: bool = False
    epoch: int = 0                    # finished epochs
    step: int = 0                     # updates applied
    status: str = "running"
    diverged_at: Optional[int] = None
    reference: float = math.nan       # initial validation loss (the divergence rule's scale)
    train_time: float = 0.0           # seconds of training steps (stacked: this run's share)
    wall_time: float = 0.0            # ... plus evaluation

    @property
    def label(self) -> str:
        return self.spec.label


@dataclass
class _EpochSteps:
    """What one run did in one epoch, before evaluation."""

    losses: Any                      # (n,) tensor of minibatch losses, cut after a divergence
    lrs: List[float]
    norms: Any                       # (n,) float64 tensor of gradient norms before clipping, or None
    snaps: list = field(default_factory=list)   # (step, weights (P,), val loss at them, batch loss)
    evals: list = field(default_factory=list)   # (step, val loss, val acc, train seconds so far)
    diverged: Optional[int] = None   # index (in this epoch) of the step at which it diverged
    seconds: float = 0.0


# ====================================================================== the shared loop


class _Trainer:
    """The loop over epochs, the data, and the run folder; subclasses step the runs."""

    kind = "base"

    def __init__(self, config: TrainConfig, out: Optional[RunDir], data, log, progress, callback):
        import torch

        self.config, self.out = config, out
        self.log = log or (lambda msg: None)
        self.callback = callback
        self.progress = progress
        self.dtype = getattr(torch, config.dtype)
        self.device = torch.device(config.device)
        self.data = self._prepare(data)
        self.steps_per_epoch = -(-len(self.train_x) // config.batch_size)
        self.policy = config.snapshot_policy()
        # the snapshot steps of the whole run, worked out once
        self.snapshot_steps = [int(s) for s in self.policy.steps(self.steps_per_epoch, config.epochs)]
        self.rule = config.divergence_rule()
        self.bar = None  # the progress bar, from run() on

    # ---------------------------------------------------------------- data
    def _prepare(self, data):
        from .dataset import MNISTData

        c = self.config
        if data is None:
            data = MNISTData.load(c.dataset, c.data_dir, val_size=c.val_size, split_seed=c.split_seed)
        if c.subset is not None or c.eval_subset is not None:
            n = min(c.subset or len(data.train[0]), len(data.train[0]))
            n_eval = min(c.eval_subset or max(len(data.val[0]), len(data.test[0])),
                         max(len(data.val[0]), len(data.test[0])))
            data = data.subset(n, n_eval)
        if len(data.train[0]) == 0 or len(data.val[0]) == 0:
            raise InvalidValue(f"nothing to train or validate on: {data!r}")
        cast = lambda split: (split[0].to(self.device, self.dtype), split[1].to(self.device))  # noqa: E731
        self.train_x, self.train_y = cast(data.train)
        self.val_x, self.val_y = cast(data.val)
        self.test_x, self.test_y = cast(data.test)
        return data

    # ---------------------------------------------------------------- runs
    def build(self, spec: RunSpec) -> _Run:
        import torch

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(spec.seed)
            rng = torch.get_rng_state()
        run = _Run(spec, rng)
        lr = spec.entry.full_hyper.get("lr")
        if lr is not None:
            run.schedule = self._schedule(lr)
        return run

    def _schedule(self, lr) -> Optional[Callable[[int], Any]]:
        """The learning rate at each step for the base rate ``lr`` (a float, or a ``(1, g, 1)``
        tensor of a stack's group) under the config's schedule; ``None`` for "constant"."""
        return make_schedule(self.config.schedule, lr, self.config.epochs, self.steps_per_epoch)

    def restore(self, run: _Run, ckpt: dict) -> None:
        run.rng = ckpt["rng"]
        run.epoch, run.step = int(ckpt["epoch"]), int(ckpt["step"])
        run.train_time, run.wall_time = float(ckpt["train_time"]), float(ckpt["wall_time"])
        run.reference = float(ckpt.get("reference", math.nan))
        run.status = "running"

    def _checkpoint_payload(self, run: _Run, model_state: dict, optimizer_state: dict) -> dict:
        return {"format": 2, "trainer": self.kind, "run": run.label, "epoch": run.epoch, "step": run.step,
                "status": run.status, "model": model_state, "optimizer": optimizer_state, "rng": run.rng,
                "reference": run.reference, "train_time": run.train_time, "wall_time": run.wall_time}

    def state(self, runs: List[_Run], status: str) -> dict:
        return {"status": status, "epochs": self.config.epochs, "trainer": self.kind,
                "runs": {r.label: {"status": r.status, "epoch": r.epoch, "step": r.step,
                                   "diverged_at": r.diverged_at} for r in runs}}

    def _base_record(self, run: _Run, kind: str) -> dict:
        s = run.spec
        return {"kind": kind, "run": run.label, "entry": s.entry.key, "optimizer": s.entry.optimizer,
                "backend": s.entry.backend, "seed": s.seed}

    def _snapshots_of_epoch(self, epoch: int):
        """The snapshot steps of ``epoch`` (0-based): ``(in_loop, at_end)``. A step belongs to the
        epoch in which it is reached; step 0 (the initial weights) to the first."""
        S = self.steps_per_epoch
        lo, hi = epoch * S, (epoch + 1) * S
        picked = [s for s in self.snapshot_steps if (lo < s <= hi) or (s == 0 and epoch == 0)]
        return {s for s in picked if s < hi}, hi in picked

    def _eval_steps(self, step0: int) -> set:
        """The steps within the epoch starting at ``step0`` that are validated before the
        epoch's end (``evals_per_epoch - 1`` of them, evenly spaced)."""
        n, S = self.config.evals_per_epoch, self.steps_per_epoch
        return {step0 + round(k * S / n) for k in range(1, n)} - {step0, step0 + S}

    def snapshot_meta(self, run: _Run, names, shapes) -> dict:
        return {**run.spec.to_dict(), "model": self.config.model, "param_names": list(names),
                "param_shapes": [list(s) for s in shapes], "num_params": sum(math.prod(s) for s in shapes),
                "format": 2, "dtype": self.config.snapshot_dtype, "policy": self.policy.to_dict(),
                "val_size": min(self.config.snapshot_val_size, len(self.val_x)),
                "steps_per_epoch": self.steps_per_epoch}

    # ---------------------------------------------------------------- the comparison
    def run(self, runs: List[_Run], fresh: List[_Run]) -> None:
        """Evaluate the ``fresh`` runs' initial weights (epoch 0), then train every running run
        epoch by epoch to ``config.epochs``; then test the finished ones."""
        import torch

        from ..progress import progress_bar

        c = self.config
        remaining = sum((c.epochs - r.epoch) * self.steps_per_epoch for r in runs if r.status == "running")
        lent = hasattr(self.progress, "update")  # a study's bar, lent to this comparison
        self.bar = self.progress if lent else progress_bar(remaining, desc="mnist", unit="step",
                                                            enabled=bool(self.progress))
        if not self.bar.disable:
            self.log = self.bar.write
        try:
            with _threads(self.threads()), torch.random.fork_rng(devices=[]):
                if fresh:
                    self.initial(fresh)
                while True:
                    active = [r for r in runs if r.status == "running" and r.epoch < c.epochs]
                    if not active:
                        break
                    epoch = min(r.epoch for r in active)
                    self.train_epoch([r for r in active if r.epoch == epoch], epoch)
                    self.out.write_state(self.state(runs, "running"))
                finished = [r for r in runs if r.status == "running" and r.epoch >= c.epochs]
                for run in finished:
                    run.status = "done"
                if finished:
                    self.test(finished)
        except KeyboardInterrupt:
            for run in runs:
                if run.status == "running":
                    run.status = "interrupted"
            self.out.append([{"kind": "event", "event": "interrupted", "run": None,
                              "epoch": max((r.epoch for r in runs), default=0), "step": None,
                              "message": "stopped by Ctrl-C"}])
            self.out.write_state(self.state(runs, "interrupted"))
            write_summary_table(self.out)
            raise TrainingInterrupted(self.out.path) from None
        finally:
            self.bar.close()
        self.out.write_state(self.state(runs, "done"))

    def threads(self) -> Optional[int]:
        """torch threads while training: ``num_threads``, else the free cores (stacked: its GEMMs
        are large enough to share)."""
        return self.config.num_threads or free_cores()

    # ---------------------------------------------------------------- recording, shared by both trainers
    def record_initial(self, run: _Run, val_loss: float, val_acc: float, lr: float) -> None:
        run.reference = val_loss
        self.out.append([{**self._base_record(run, "epoch"), "epoch": 0, "step": 0, "train_loss": None,
                          "val_loss": val_loss, "val_acc": val_acc, "lr": lr, "epoch_time": 0.0,
                          "train_time": 0.0, "wall_time": 0.0}])

    def record_epoch(self, run: _Run, epoch: int, res: _EpochSteps, val: Optional[Tuple[float, float]],
                     eval_seconds: float, checkpoint: Callable[[], None], partial: bool = False) -> None:
        """Write what ``run`` did in ``epoch`` (0-based): its steps, snapshots and extra
        evaluations, and, unless it diverged, its epoch record and checkpoint."""
        first_step = run.step + 1
        run.train_time += res.seconds
        run.wall_time += res.seconds
        if partial:  # Ctrl-C: the steps so far, marked partial, and nothing else
            self._save_steps(run, epoch, first_step, res, partial=True)
            return
        if res.diverged is not None:
            run.status, run.diverged_at = "diverged", run.step + res.diverged
            run.step += res.diverged + 1
            self._save_steps(run, epoch, first_step, res)
            reason = self._reason(res.losses[res.diverged])
            self.out.append([{**self._base_record(run, "event"), "event": "diverged", "epoch": epoch + 1,
                              "step": run.diverged_at, "message": f"{reason} at step {run.diverged_at}"}])
            self.log(f"{run.label}: diverged ({reason}) at step {run.diverged_at}, epoch {epoch + 1}; "
                     f"stopped, the others go on")
            return
        run.step += len(res.losses)
        run.epoch = epoch + 1
        run.wall_time += eval_seconds
        val_loss, val_acc = val
        if self.rule.epoch_end_diverged(val_loss, run.reference):
            run.status, run.diverged_at = "diverged", run.step
        self._save_steps(run, epoch, first_step, res)
        train_loss = float(res.losses.double().sum()) / max(len(res.losses), 1)  # mean of the minibatch losses
        lr = res.lrs[-1] if res.lrs else math.nan
        record = {**self._base_record(run, "epoch"), "epoch": run.epoch, "step": run.step, "train_loss": train_loss,
                  "val_loss": val_loss, "val_acc": val_acc, "lr": lr, "epoch_time": res.seconds,
                  "train_time": run.train_time, "wall_time": run.wall_time}
        self.out.append([record])
        if run.status == "diverged":
            what = "non-finite" if not math.isfinite(val_loss) else f"{val_loss:.3g}, above " \
                   f"{self.rule.factor:g}x the initial {run.reference:.3g}"
            self.out.append([{**self._base_record(run, "event"), "event": "diverged", "epoch": run.epoch,
                              "step": run.step, "message": f"validation loss {what}"}])
            self.log(f"{run.label}: diverged (validation loss {what}) after epoch {run.epoch}; stopped")
        else:
            checkpoint()
        if self.callback is not None:
            self.callback("epoch", record)
        self.log(f"{run.label:<16} epoch {run.epoch:>2}/{self.config.epochs}  train loss {train_loss:.4f}  "
                 f"val loss {val_loss:.4f}  val acc {100 * val_acc:6.2f}%  {res.seconds:5.1f} s")

    def _reason(self, loss) -> str:
        value = float(loss)
        if not math.isfinite(value):
            return "non-finite loss"
        return f"loss above {self.rule.factor:g}x the initial loss for {self.rule.patience} steps"

    def _save_steps(self, run: _Run, epoch: int, first_step: int, res: _EpochSteps, partial=False) -> None:
        """Append the epoch's ``steps`` and ``eval`` records and write its snapshot file."""
        from .snapshots import write_chunk

        import torch

        n = len(res.losses)
        short = _f32 if self.dtype == torch.float32 else (lambda v: v)
        loss_list = [short(v) for v in res.losses.tolist()]
        rec = {"kind": "steps", "run": run.label, "epoch": epoch + 1, "first_step": first_step, "loss": loss_list,
               "lr": list(res.lrs[:n]),
               "grad_norm": [short(v) for v in res.norms[:n].tolist()] if res.norms is not None else None}
        if partial:
            rec["partial"] = True
        evals = [{**self._base_record(run, "eval"), "epoch": epoch + 1, "step": s, "val_loss": vl, "val_acc": va,
                  "train_time": run.train_time - res.seconds + t} for s, vl, va, t in res.evals
                 if s < first_step + n]
        self.out.append([rec] + evals)
        last = first_step - 1 + n  # weights after the last recorded update
        snaps = [s for s in res.snaps if s[0] <= last]
        if snaps:
            folder = self.out.snapshot_dir(run.label)
            origin = None
            if self.config.snapshot_dtype == "float16":
                from .snapshots import read_origin

                origin = read_origin(folder)
            write_chunk(folder, epoch + 1, [s for s, *_ in snaps],
                        torch.stack([w for _, w, _, _ in snaps]).numpy(), [b for *_, b in snaps],
                        [v for _, _, v, _ in snaps], self.config.snapshot_dtype, origin)

    def write_origin(self, run: _Run, weights, names, shapes) -> None:
        from .snapshots import write_origin

        self.out.write_snapshot_meta(run.label, self.snapshot_meta(run, names, shapes))
        write_origin(self.out.snapshot_dir(run.label), weights)

    def record_test(self, run: _Run, test_loss: float, test_acc: float) -> None:
        self.out.append([{**self._base_record(run, "test"), "epoch": run.epoch, "step": run.step,
                          "test_loss": test_loss, "test_acc": test_acc}])

    def lr_values(self, run: _Run, first: int, n: int) -> List[float]:
        """The learning rate of updates ``first .. first + n - 1`` (0-based update counts)."""
        if run.schedule is not None:
            return [float(run.schedule(s)) for s in range(first, first + n)]
        lr = run.spec.entry.full_hyper.get("lr")
        return [float(lr)] * n if lr is not None else [math.nan] * n


def _f32(v):
    """A float32 value as the shortest decimal that reads back to it (half the bytes of its
    float64 repr in JSON and CSV); NaN/inf stay as they are (written as null)."""
    if v is None or not math.isfinite(v):
        return v
    import numpy as np

    return float(str(np.float32(v)))


# ====================================================================== sequential


class _SequentialTrainer(_Trainer):
    """One model and one optimizer per run, stepped in turn."""

    kind = "sequential"

    def threads(self) -> Optional[int]:
        return 1 if self.config.num_threads is None else self.config.num_threads

    def build(self, spec: RunSpec) -> _Run:
        from ..optim import TorchOptimizer, registry
        from ..optim.torch_reference import torch_optimizer
        from .models import build_model

        run = super().build(spec)
        e = spec.entry
        run.model = build_model(self.config.model, seed=spec.seed).to(self.device, self.dtype)
        params = list(run.model.parameters())
        if e.backend == "torch":
            run.optimizer = torch_optimizer(params, e.optimizer, **e.hyper)
        else:
            run.optimizer = TorchOptimizer(params, e.optimizer, compile=self.config.compile, **e.hyper)
            run.needs_closure = registry.create(e.optimizer, **e.hyper).eval_point is not None
        return run

    def restore(self, run: _Run, ckpt: dict) -> None:
        run.model.load_state_dict(ckpt["model"])
        run.optimizer.load_state_dict(ckpt["optimizer"])
        super().restore(run, ckpt)

    def checkpoint(self, run: _Run) -> None:
        self.out.save_checkpoint(run.label, self._checkpoint_payload(
            run, run.model.state_dict(), run.optimizer.state_dict()))

    def initial(self, runs: List[_Run]) -> None:
        import torch

        for run in runs:
            if self.policy.active:
                vec = torch.nn.utils.parameters_to_vector(run.model.parameters()).detach().float().cpu().numpy()
                self.write_origin(run, vec, [n for n, _ in run.model.named_parameters()],
                                  [tuple(p.shape) for p in run.model.parameters()])
            val_loss, val_acc = evaluate(run.model, self.val_x, self.val_y, self.config.eval_batch_size)
            self.record_initial(run, val_loss, val_acc, self.lr_values(run, 0, 1)[0])

    def test(self, runs: List[_Run]) -> None:
        for run in runs:
            self.record_test(run, *evaluate(run.model, self.test_x, self.test_y, self.config.eval_batch_size))
            self.checkpoint(run)

    def _snapshot(self, run: _Run):
        """``(weights (P,) float32, loss on the validation head)`` of ``run`` now."""
        import torch

        vec = torch.nn.utils.parameters_to_vector(run.model.parameters()).detach().to("cpu", torch.float32,
                                                                                      copy=True)
        k = min(self.config.snapshot_val_size, len(self.val_x))
        val = evaluate(run.model, self.val_x[:k], self.val_y[:k], self.config.eval_batch_size)[0] if k else math.nan
        return vec, val

    def train_epoch(self, runs: List[_Run], epoch: int) -> None:
        for run in runs:
            self.bar.set_postfix_str(f"{run.label} epoch {epoch + 1}/{self.config.epochs}")
            self._train_epoch(run, epoch)

    def _train_epoch(self, run: _Run, epoch: int) -> None:
        """Train ``run`` for one epoch, evaluate it, record everything, save a checkpoint."""
        import torch
        import torch.nn.functional as F

        c = self.config
        n_batches = self.steps_per_epoch
        clip_norm, clip_value = run.spec.entry.clip_norm, run.spec.entry.clip_value
        norms = torch.full((n_batches,), math.nan, dtype=torch.float64, device=self.device) \
            if clip_norm is not None else None
        res = _EpochSteps(losses=None, lrs=[], norms=norms)
        step_losses = []  # detached 0-d tensors: no sync per step; one stack per epoch
        pending = []      # (step, weights, val) of snapshots whose batch loss is the next step's
        snap_in, snap_end = self._snapshots_of_epoch(epoch)
        evals_at = self._eval_steps(run.step)
        model, opt = run.model, run.optimizer
        params = list(model.parameters())
        scan = self.rule.scanner(torch.tensor([run.reference]))
        step0, done, checked = run.step, 0, 0
        t0 = time.perf_counter()
        torch.set_rng_state(run.rng)
        try:
            for i, (xb, yb) in enumerate(epoch_batches(self.train_x, self.train_y, c.batch_size,
                                                       seed=run.spec.seed, epoch=epoch)):
                step = step0 + i  # updates applied so far
                if step in snap_in or step in evals_at:
                    pause = time.perf_counter()
                    if step in snap_in:
                        pending.append((step, i, *self._snapshot(run)))
                    if step in evals_at:
                        res.evals.append((step, *evaluate(model, self.val_x, self.val_y, c.eval_batch_size),
                                          pause - t0))
                    t0 += time.perf_counter() - pause  # snapshots and evaluations are not training time
                if run.schedule is not None:
                    lr = run.schedule(step)
                    for group in opt.param_groups:
                        group["lr"] = lr
                if run.needs_closure:
                    def closure(xb=xb, yb=yb):
                        opt.zero_grad(set_to_none=True)
                        out = model(xb)
                        loss = F.cross_entropy(out, yb)
                        loss.backward()
                        self._clip(params, clip_norm, clip_value, norms, i)
                        return loss

                    loss = opt.step(closure)
                else:
                    opt.zero_grad(set_to_none=True)
                    loss = F.cross_entropy(model(xb), yb)
                    loss.backward()
                    self._clip(params, clip_norm, clip_value, norms, i)
                    opt.step()
                step_losses.append(loss.detach())
                done = i + 1
                if self.callback is not None:
                    self.callback("step", {"run": run.label, "epoch": epoch + 1, "step": step + 1})
                if done - checked >= c.check_every:
                    first = int(scan(torch.stack(step_losses[checked:done])[:, None])[0])
                    if first >= 0:
                        res.diverged = checked + first
                        break
                    self.bar.update(done - checked)
                    checked = done
        except KeyboardInterrupt:
            res.seconds = time.perf_counter() - t0
            res.losses = _stack(step_losses[:done], self.dtype)
            res.lrs = self.lr_values(run, step0, done)
            res.snaps = _snaps_with_losses(pending, res.losses)
            run.status = "interrupted"
            self.record_epoch(run, epoch, res, None, 0.0, lambda: None, partial=True)
            raise
        finally:
            run.rng = torch.get_rng_state()
        res.seconds = time.perf_counter() - t0
        losses = _stack(step_losses, self.dtype)
        if res.diverged is None and done > checked:
            first = int(scan(losses[checked:done, None])[0])
            if first >= 0:
                res.diverged = checked + first
        self.bar.update(done - checked)
        n = done if res.diverged is None else res.diverged + 1
        res.losses = losses[:n]
        res.lrs = self.lr_values(run, step0, n)
        if snap_end and res.diverged is None:
            pending.append((step0 + n, None, *self._snapshot(run)))
        res.snaps = _snaps_with_losses(pending, res.losses)
        if res.diverged is not None:
            self.record_epoch(run, epoch, res, None, 0.0, lambda: None)
            return
        t1 = time.perf_counter()
        val = evaluate(model, self.val_x, self.val_y, c.eval_batch_size)
        self.record_epoch(run, epoch, res, val, time.perf_counter() - t1, lambda: self.checkpoint(run))

    @staticmethod
    def _clip(params, clip_norm, clip_value, norms, i):
        import torch

        if clip_value is not None:
            torch.nn.utils.clip_grad_value_(params, clip_value)
        if clip_norm is not None:
            norms[i] = torch.nn.utils.clip_grad_norm_(params, clip_norm)


def _snaps_with_losses(pending, losses) -> list:
    """``pending`` (step, i, weights, val loss) as (step, weights, val loss, batch loss): the batch
    loss of a snapshot taken before update ``i`` is that update's loss (NaN for one taken after
    the last update of ``losses``)."""
    out = []
    for step, i, vec, val in pending:
        batch = float(losses[i]) if i is not None and i < len(losses) else math.nan
        out.append((step, vec, val, batch))
    return out


def _stack(tensors: list, dtype):
    """Per-step tensors (losses, on the training device) as one tensor on the CPU: one copy per epoch."""
    import torch

    return torch.stack(tensors).cpu() if tensors else torch.empty(0, dtype=dtype)


# ====================================================================== stacked


class _Stack:
    """The runs that train together in one epoch: a grid of seeds x settings as one
    :class:`~optviz.mnist.stacked.StackedNetwork` with its optimizer groups. A cell with no
    run (a partial grid, when runs are at different epochs after an interrupted resume)
    holds a frozen stand-in."""

    def __init__(self, trainer: "_StackedTrainer", runs: List[_Run], layout: List[_Run]):
        import torch

        from .models import build_model
        from .stacked import StackedNetwork, group_key, make_groups

        # the grid is always the whole comparison's (``layout``), so a stack that trains only
        # some runs (a catch-up after an interrupted resume) computes with the same shapes,
        # and so the same bits, as the full one
        self.labels = tuple(r.label for r in runs)
        seeds = sorted({r.spec.seed for r in layout})
        entries, seen = [], set()
        for r in layout:
            if r.spec.entry.key not in seen:
                seen.add(r.spec.entry.key)
                entries.append(r.spec.entry)
        first_of = {}
        for e in entries:
            first_of.setdefault(group_key(e), len(first_of))
        entries.sort(key=lambda e: first_of[group_key(e)])  # stable: a group's settings stay in order
        self.seeds, self.entries = seeds, entries
        by_cell = {(r.spec.seed, r.spec.entry.key): r for r in runs}
        self.cells: Dict[Tuple[int, int], _Run] = {}
        members = []
        stand_in = None
        for s, seed in enumerate(seeds):
            row = []
            for j, e in enumerate(entries):
                run = by_cell.get((seed, e.key))
                if run is None:
                    stand_in = stand_in or build_model(trainer.config.model, seed=seed).to(trainer.device, trainer.dtype)
                    row.append(stand_in)
                else:
                    self.cells[(s, j)] = run
                    row.append(run.model)
            members.append(row)
        self.net = StackedNetwork(members, dtype=trainer.dtype, device=trainer.device)
        self.groups = make_groups(entries, trainer.make_lr, trainer.dtype, trainer.device, trainer.compile)
        views = self.net.flat_views()
        for g in self.groups:
            g.init(views)
        for (s, j), run in self.cells.items():
            if run.opt_state is not None:
                self.group_of(j).load_member(s, j - self.group_of(j).first, run.opt_state)
        for g in self.groups:   # every member of a group has taken the same number of steps
            steps = {self.cells[(s, j)].step for (s, j) in self.cells if g.first <= j < g.first + g.size}
            if len(steps) == 1:
                g.step = steps.pop()
        self.frozen = torch.zeros(len(seeds), len(entries), dtype=torch.bool)  # on the CPU: read by Python
        self.live: Optional[torch.Tensor] = None  # (S, R, 1) 0 for a frozen member, 1 else; on the device
        for s in range(len(seeds)):
            for j in range(len(entries)):
                if (s, j) not in self.cells:
                    self.freeze(s, j)

    def group_of(self, j: int):
        return next(g for g in self.groups if g.first <= j < g.first + g.size)

    def freeze(self, s: int, j: int) -> None:
        """Member ``(s, j)`` stops: zero parameters and state, gradients zeroed at every step."""
        import torch

        self.frozen[s, j] = True
        self.live = (~self.frozen).to(self.net.params[0])[..., None]  # built here, not at every step
        with torch.no_grad():
            for p in self.net.params:
                p[s, j].zero_()
        g = self.group_of(j)
        g.zero_member(s, j - g.first)

    def zero_frozen_grads(self, grads: List[Any]) -> None:
        """Zero the gradients ``(S, R, n)`` of the frozen members, so their updates stay zero."""
        if self.live is not None:
            for g in grads:
                g.mul_(self.live)

    def weights(self):
        """Every member's weights, ``(S, R, P)`` float32 on the CPU: what a snapshot stores."""
        import torch

        return self.net.member_vectors().to("cpu", torch.float32)

    def member_checkpoint(self, s: int, j: int) -> Tuple[dict, dict]:
        e = self.entries[j]
        g = self.group_of(j)
        opt = g.member_state(s, j - g.first, self.net.shapes)
        opt["param_groups"][0].update(e.full_hyper)
        return self.net.member_state_dict(s, j), opt


class _StackedTrainer(_Trainer):
    """Every run of the comparison as a member of one batched model."""

    kind = "stacked"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.stack: Optional[_Stack] = None
        self.layout: List[_Run] = []

    def run(self, runs: List[_Run], fresh: List[_Run]) -> None:
        self.layout = list(runs)
        super().run(runs, fresh)

    def build(self, spec: RunSpec) -> _Run:
        from .models import build_model

        run = super().build(spec)
        run.model = build_model(self.config.model, seed=spec.seed).to(self.device, self.dtype)
        return run

    def restore(self, run: _Run, ckpt: dict) -> None:
        run.model.load_state_dict(ckpt["model"])
        run.opt_state = ckpt["optimizer"]
        super().restore(run, ckpt)

    @property
    def compile(self):
        from ..optim.compiled import compile_setting

        return compile_setting(self.config.compile)

    def make_lr(self, lr, entry):
        """The group's learning rate: ``lr`` (a float or a ``(1, g, 1)`` tensor) or its schedule."""
        if lr is None:
            return 0.0
        return self._schedule(lr) or lr

    def _stack_for(self, runs: List[_Run]) -> _Stack:
        labels = tuple(r.label for r in runs)
        if self.stack is None or self.stack.labels != labels:
            self.stack = None  # free the old one first
            self.stack = _Stack(self, runs, self.layout or runs)
        return self.stack

    def check_memory(self, n_runs: int) -> None:
        """Refuse, before any work, a comparison whose stack would not fit in memory."""
        from ..memory import check_memory
        from .stacked import bytes_per_run

        c = self.config
        per = bytes_per_run(c.model, c.entries(), c.batch_size, c.eval_batch_size, n_runs, self.dtype.itemsize,
                            tuple(self.train_x.shape[1:]))
        check_memory(per * n_runs, f"training {n_runs:,} runs as one stacked model",
                     "use fewer settings or seeds, or optviz tune, which splits a study into stacks that fit")

    def _eval_all(self, stack: _Stack, x, y, k: Optional[int] = None):
        """``(loss, acc)``, each ``(S, R)`` float64 on the CPU, of every member on ``(x[:k], y[:k])``."""
        import torch
        import torch.nn.functional as F

        from .stacked import eval_chunk

        if k is not None:
            x, y = x[:k], y[:k]
        S, R = stack.net.S, stack.net.R
        total = torch.zeros(S, R, dtype=torch.float64, device=x.device)
        correct = torch.zeros(S, R, dtype=torch.int64, device=x.device)
        bs = eval_chunk(S * R, self.config.eval_batch_size)  # bounded activation memory
        with torch.inference_mode():
            for start in range(0, len(x), bs):
                out = stack.net.eval_logits(x[start:start + bs])                     # (S, R, b, C)
                yb = y[start:start + bs]
                lab = yb.expand(S, R, len(yb)).reshape(-1)
                total += F.cross_entropy(out.reshape(-1, out.shape[-1]), lab, reduction="none") \
                    .view(S, R, -1).double().sum(-1)
                correct += (out.argmax(-1) == yb).sum(-1)
        n = max(len(x), 1)
        return (total / n).cpu(), (correct.double() / n).cpu()

    def initial(self, runs: List[_Run]) -> None:
        stack = self._stack_for(runs)
        loss, acc = self._eval_all(stack, self.val_x, self.val_y)
        names, shapes = stack.net.names, stack.net.shapes
        vectors = stack.weights() if self.policy.active else None
        for (s, j), run in stack.cells.items():
            if self.policy.active:
                self.write_origin(run, vectors[s, j].numpy(), names, shapes)
            lr = self.lr_values(run, 0, 1)[0]
            self.record_initial(run, float(loss[s, j]), float(acc[s, j]), lr)

    def test(self, runs: List[_Run]) -> None:
        stack = self._stack_for(runs)
        loss, acc = self._eval_all(stack, self.test_x, self.test_y)
        for (s, j), run in stack.cells.items():
            if run.status == "done":
                self.record_test(run, float(loss[s, j]), float(acc[s, j]))
                self._checkpoint(stack, s, j, run)

    def _checkpoint(self, stack: _Stack, s: int, j: int, run: _Run) -> None:
        model, opt = stack.member_checkpoint(s, j)
        run.model.load_state_dict(model)  # the run's own copy, for a stack built later
        run.opt_state = opt
        self.out.save_checkpoint(run.label, self._checkpoint_payload(run, model, opt))

    def train_epoch(self, runs: List[_Run], epoch: int) -> None:
        import torch
        import torch.nn.functional as F

        from . import dataset

        c = self.config
        stack = self._stack_for(runs)
        net, groups = stack.net, stack.groups
        S, R = net.S, net.R
        n_batches = self.steps_per_epoch
        self.bar.set_postfix_str(f"{len(stack.cells)} runs, epoch {epoch + 1}/{c.epochs}")
        step0 = next(iter(stack.cells.values())).step
        snap_in, snap_end = self._snapshots_of_epoch(epoch)
        evals_at = self._eval_steps(step0)
        orders = torch.stack([dataset.batch_order(len(self.train_x), seed, epoch) for seed in stack.seeds])
        orders = orders.to(self.train_x.device)
        clipped = any(g.clip_norm is not None for g in groups)
        norms = torch.full((n_batches, S, R), math.nan, dtype=torch.float64, device=self.device) if clipped else None
        views = net.flat_views()
        step_losses = []           # (S, R) per step
        snaps = []                 # (step, i or None, vectors (S, R, P), val (S, R))
        evals = []                 # (step, val loss (S, R), val acc (S, R), seconds so far)
        diverged: Dict[Tuple[int, int], int] = {}
        reference = torch.tensor([[stack.cells[(s, j)].reference if (s, j) in stack.cells else 1.0
                                   for j in range(R)] for s in range(S)])
        scan = self.rule.scanner(reference.reshape(-1))
        fb_time, group_time = 0.0, [0.0] * len(groups)
        lookahead = [g for g in groups if g.tx.eval_point is not None]
        done, checked = 0, 0
        t_start = time.perf_counter()
        paused = 0.0

        def pause_for(fn):
            nonlocal paused
            t = time.perf_counter()
            out = fn()
            paused += time.perf_counter() - t
            return out

        try:
            for i, start in enumerate(range(0, len(self.train_x), c.batch_size)):
                step = step0 + i
                if step in snap_in:
                    snaps.append(pause_for(lambda: (step, i, *self._snapshot(stack))))
                if step in evals_at:
                    evals.append(pause_for(lambda: (step, *self._eval_all(stack, self.val_x, self.val_y),
                                                    time.perf_counter() - t_start - paused)))
                idx = orders[:, start:start + c.batch_size]                          # (S, b)
                b = idx.shape[1]
                xb = self.train_x.index_select(0, idx.reshape(-1)).view(S, b, *self.train_x.shape[1:])
                yb = self.train_y.index_select(0, idx.reshape(-1)).view(S, b)
                t0 = time.perf_counter()
                for p in net.params:
                    p.grad = None
                saved = []
                if lookahead:  # look-ahead Nesterov: the gradient at theta - gamma v
                    with torch.no_grad():
                        for g in lookahead:
                            for x, e in zip(g.views(views), g.eval_points(views)):
                                saved.append((x, x.clone()))
                                x.copy_(e)
                logits = net.train_logits(xb)                                         # (S, R, b, C)
                lab = yb[:, None, :].expand(S, R, b).reshape(-1)
                losses = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), lab, reduction="none") \
                    .view(S, R, b).mean(-1)                                           # (S, R)
                losses.sum().backward()
                with torch.no_grad():
                    for x, original in saved:
                        x.copy_(original)
                    grads = [p.grad.view(S, R, -1) for p in net.params]
                    stack.zero_frozen_grads(grads)
                    fb_time += time.perf_counter() - t0
                    for k, g in enumerate(groups):
                        t1 = time.perf_counter()
                        g.update(views, grads, norms[i] if norms is not None else None)
                        group_time[k] += time.perf_counter() - t1
                step_losses.append(losses.detach())
                done = i + 1
                if self.callback is not None:
                    for run in stack.cells.values():
                        if run.status == "running":
                            self.callback("step", {"run": run.label, "epoch": epoch + 1, "step": step + 1})
                if done - checked >= c.check_every:
                    self._check(stack, scan, step_losses, checked, done, diverged)
                    self.bar.update((done - checked) * len(stack.cells))
                    checked = done
        except KeyboardInterrupt:
            elapsed = time.perf_counter() - t_start - paused
            self._record(stack, epoch, step_losses[:done], norms, snaps, evals, diverged, fb_time, group_time,
                         elapsed, snap_end=False, partial=True)
            for run in stack.cells.values():
                if run.status == "running":
                    run.status = "interrupted"
            raise
        if done > checked:
            self._check(stack, scan, step_losses, checked, done, diverged)
            self.bar.update((done - checked) * len(stack.cells))
        elapsed = time.perf_counter() - t_start - paused
        self._record(stack, epoch, step_losses, norms, snaps, evals, diverged, fb_time, group_time, elapsed,
                     snap_end=snap_end)

    def _check(self, stack: _Stack, scan, step_losses, checked: int, done: int, diverged: dict) -> None:
        """Scan the losses of steps ``checked .. done`` for divergence; freeze new casualties."""
        import torch

        S, R = stack.net.S, stack.net.R
        chunk = torch.stack(step_losses[checked:done]).reshape(done - checked, S * R)
        first = scan(chunk).view(S, R)
        for s, j in ((first >= 0) & ~stack.frozen).nonzero().tolist():  # stand-ins are frozen from the start
            diverged[(s, j)] = checked + int(first[s, j])
            stack.freeze(s, j)

    def _snapshot(self, stack: _Stack):
        k = min(self.config.snapshot_val_size, len(self.val_x))
        val = self._eval_all(stack, self.val_x, self.val_y, k)[0] if k else None
        return stack.weights(), val

    def _record(self, stack: _Stack, epoch: int, step_losses, norms, snaps, evals, diverged, fb_time, group_time,
                elapsed, snap_end: bool, partial: bool = False) -> None:
        """Per member: its losses, learning rates, norms, snapshots, evaluations and time; then
        the epoch's validation of all members at once, and each member's records."""
        S, R = stack.net.S, stack.net.R
        n = len(step_losses)
        losses = _stack(step_losses, self.dtype).reshape(n, S, R)
        norms = norms.cpu() if norms is not None else None
        if snap_end and not partial:
            snaps.append((stack.cells[next(iter(stack.cells))].step + n, None, *self._snapshot(stack)))
        val = None
        eval_seconds = 0.0
        if not partial:
            t = time.perf_counter()
            val = self._eval_all(stack, self.val_x, self.val_y)
            eval_seconds = (time.perf_counter() - t) / max(len(stack.cells), 1)
        # each member's share of the time: the forward and backward pass split evenly across the
        # stack, each optimizer group's update across the group's members
        members = S * R
        shares = {}
        for k, g in enumerate(stack.groups):
            for j in range(g.first, g.first + g.size):
                shares[j] = (fb_time / members + group_time[k] / (S * g.size)) / max(fb_time + sum(group_time), 1e-12)
        for (s, j), run in stack.cells.items():
            if run.status != "running":
                continue
            seconds = elapsed * shares[j]
            cut = diverged.get((s, j))
            m = n if cut is None else cut + 1
            res = _EpochSteps(losses=losses[:m, s, j].clone(), lrs=self.lr_values(run, run.step, m),
                              norms=norms[:m, s, j].clone() if norms is not None and stack.group_of(j).clip_norm
                              is not None else None, diverged=cut, seconds=seconds)
            res.snaps = _snaps_with_losses([(st, i, vec[s, j].clone(), float(v[s, j]) if v is not None else math.nan)
                                            for st, i, vec, v in snaps], res.losses)
            res.evals = [(st, float(vl[s, j]), float(va[s, j]), t * shares[j]) for st, vl, va, t in evals]
            if partial:
                self.record_epoch(run, epoch, res, None, 0.0, lambda: None, partial=True)
                continue
            member_val = None if cut is not None else (float(val[0][s, j]), float(val[1][s, j]))
            self.record_epoch(run, epoch, res, member_val, eval_seconds,
                              lambda s=s, j=j, run=run: self._checkpoint(stack, s, j, run))
            if run.status == "diverged" and not stack.frozen[s, j]:
                stack.freeze(s, j)


# ====================================================================== entry points


def _trainer(config: TrainConfig, out, data, log, progress, callback) -> _Trainer:
    kind, _ = choose_trainer(config)
    cls = _StackedTrainer if kind == "stacked" else _SequentialTrainer
    return cls(config, out, data, log, progress, callback)


def _config_record(config: TrainConfig) -> dict:
    return {**config.to_dict(), "entries": [e.to_dict() for e in config.entries()],
            "runs": [r.to_dict() for r in config.runs()]}


def _finish(trainer: _Trainer, runs: List[_Run], started: float) -> RunResult:
    out = trainer.out
    out.add_wall_clock(time.perf_counter() - started)
    rows, md = write_summary_table(out)
    return RunResult(out.path, trainer.config, {r.label: r.status for r in runs}, rows, md)


def train(config: TrainConfig, run_dir, *, data=None, log: Optional[Callable[[str], None]] = None,
          progress: bool = False, callback: Optional[Callable[[str, dict], None]] = None) -> RunResult:
    """Run the comparison ``config`` and write it to the new run folder ``run_dir``.

    ``data``: an :class:`~optviz.mnist.MNISTData` to use instead of loading
    ``config.dataset`` (tests, notebooks). ``log`` receives one line per epoch and run;
    ``progress`` shows a progress bar (quiet when not a terminal), or is a bar to advance
    (an object with ``update(n)``, ``write``, ``set_postfix_str``, ``close``, ``disable``:
    a study's); ``callback(kind, info)``
    is called after every step of every run (``kind`` "step") and epoch ("epoch", the record).

    On Ctrl-C everything up to that moment is saved and :class:`TrainingInterrupted`
    (a ``KeyboardInterrupt``) is raised; :func:`resume` continues from the last
    finished epoch of every run. Bad input raises :class:`OptvizError` before anything
    is written.
    """
    from .results import check_run_folder

    started = time.perf_counter()
    config.validate()
    check_run_folder(run_dir)  # before loading data: fail fast
    trainer = _trainer(config, None, data, log, progress, callback)
    specs = config.runs()
    if trainer.kind == "stacked":
        trainer.check_memory(len(specs))  # before anything is built or written
    runs = [trainer.build(spec) for spec in specs]
    out = RunDir.create(run_dir, {**_config_record(config), "steps_per_epoch": trainer.steps_per_epoch,
                                  "trainer_used": trainer.kind, "sizes": {
        "train": len(trainer.train_x), "val": len(trainer.val_x), "test": len(trainer.test_x)}})
    trainer.out = out
    try:
        out.write_state(trainer.state(runs, "running"))
        trainer.run(runs, fresh=runs)
    except TrainingInterrupted:
        out.add_wall_clock(time.perf_counter() - started)
        raise
    return _finish(trainer, runs, started)


def resume(run_dir, *, epochs: Optional[int] = None, data=None, data_dir=None,
           log: Optional[Callable[[str], None]] = None, progress: bool = False,
           callback: Optional[Callable[[str, dict], None]] = None) -> RunResult:
    """Continue the run folder ``run_dir`` from each run's last checkpoint (the end of its
    last finished epoch); with ``epochs``, train to that many epochs in all.

    Everything is checked before anything is written: the folder, its config, every
    checkpoint. What was recorded after a run's checkpoint (a partly trained epoch) is
    then dropped, so the finished run is the same, bit for bit, as one that never
    stopped. Diverged and finished runs are kept as they are. ``data_dir`` overrides
    where the data are read from (the same files, on another machine).
    """
    from ..devices import check_device

    started = time.perf_counter()
    out = RunDir.open(run_dir)
    saved = out.config()
    check_device(saved.get("device", "cpu"))  # a run moved to a machine without its device: one line
    try:
        config = TrainConfig.from_dict(saved).validate()
    except (TypeError, OptvizError) as exc:
        raise OptvizError(f"{str(out.config_path)!r} does not describe a comparison optviz can continue: {exc}") \
            from None
    if data_dir is not None:
        config.data_dir = str(data_dir)
    epochs_changed = epochs is not None and epochs != config.epochs
    if epochs_changed:
        _positive_int("epochs", epochs)
    records = out.records()  # every line of metrics.jsonl is readable (else: one clear error, nothing written)
    epoch_records = [r for r in records if r["kind"] == "epoch"]
    if epochs_changed:
        if epochs < max((r.get("epoch", 0) for r in epoch_records), default=0):
            raise InvalidValue(f"{str(run_dir)!r} already has more than {epochs} epochs")
        if config.schedule != "constant":
            raise OptvizError(f"cannot change the number of epochs of a run with the {config.schedule!r} "
                              f"schedule: its learning rates depend on the total")
        config.epochs = epochs
    trainer = _trainer(config, out, data, log, progress, callback)
    if trainer.steps_per_epoch != saved.get("steps_per_epoch"):
        raise OptvizError(f"the data differ from the run's: {trainer.steps_per_epoch} steps per epoch, "
                          f"the run had {saved.get('steps_per_epoch')}")
    state = out.read_state().get("runs", {})
    runs = [trainer.build(spec) for spec in config.runs()]
    checkpoints = {run.label: out.load_checkpoint(run.label) for run in runs
                   if state.get(run.label, {}).get("status") != "diverged"}  # all read (and checked) first
    from .results import load_snapshots

    for run in runs:  # every snapshot file is readable, before anything is changed (one run in memory at a time)
        load_snapshots(out.path, runs=[run.label])
    for run in runs:
        ckpt = checkpoints.get(run.label)
        if ckpt is not None:
            try:
                trainer.restore(run, ckpt)
            except (KeyError, RuntimeError, ValueError, TypeError) as exc:
                raise OptvizError(f"checkpoint {str(out.checkpoint_path(run.label))!r} does not fit this run: "
                                  f"{str(exc).splitlines()[0]}") from None
    keep_upto: Dict[str, Optional[int]] = {}  # run -> last epoch whose records stay (None: all)
    for run in runs:
        st = state.get(run.label, {})
        if st.get("status") == "diverged":
            run.status, run.diverged_at = "diverged", st.get("diverged_at")
            run.epoch, run.step = st.get("epoch", 0), st.get("step", 0)
            keep_upto[run.label] = None
        elif run.epoch >= config.epochs:
            run.status = "done"
            keep_upto[run.label] = None
        else:
            keep_upto[run.label] = run.epoch
    # from here on the folder is changed: drop what came after each run's checkpoint
    for run in runs:
        upto = keep_upto[run.label]
        if upto is None:
            continue
        if upto == 0:
            out.remove_run_files(run.label)
        else:
            out.drop_snapshots(run.label, upto)
            if config.epochs != saved.get("epochs"):  # a longer run: its old final snapshot may be off the policy
                out.prune_snapshots(run.label, set(trainer.snapshot_steps), trainer.config.snapshot_dtype)
    initial = {r["run"]: r for r in epoch_records if r.get("epoch") == 0}
    for run in runs:
        if run.label in initial and not math.isfinite(run.reference):
            run.reference = float(initial[run.label].get("val_loss") or math.nan)

    def keep(r: dict) -> bool:
        label = r.get("run")
        if label is None:
            return True  # "interrupted" / "resumed" events: the run's history
        upto = keep_upto.get(label)
        if upto is None:
            return True
        if upto == 0 or r["kind"] in ("test", "event") or r.get("partial"):
            return False
        return r.get("epoch", 0) <= upto

    out.keep_records(keep, records)
    if config.epochs != saved.get("epochs"):
        out.update_config(epochs=config.epochs)
    out.append([{"kind": "event", "event": "resumed", "run": None,
                 "epoch": min((r.epoch for r in runs if r.status == "running"), default=config.epochs),
                 "step": None, "message": "resumed from the last checkpoints"}])
    out.write_state(trainer.state(runs, "running"))
    try:
        trainer.run(runs, fresh=[r for r in runs if r.status == "running" and r.epoch == 0])
    except TrainingInterrupted:
        out.add_wall_clock(time.perf_counter() - started)
        raise
    return _finish(trainer, runs, started)
