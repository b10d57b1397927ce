"""Train a set of optimizers side by side on MNIST, and record everything.

A comparison is a :class:`TrainConfig`: optimizer settings (specs such as
``"adam:lr=0.001"``), seeds, a model and a protocol. It expands into runs, one per
(setting, seed). For one seed every run starts from the same initial weights
(``build_model(model, seed)``) and sees the same batches in the same order
(``iterate_batches(..., seed, epoch)``), so the only difference between runs is
the optimizer. The runs advance epoch by epoch in turn, so after Ctrl-C all of
them are equally far, and each keeps its own RNG state, so a run's numbers do
not depend on which other runs share the comparison.

The loop slices preloaded tensors (no DataLoader), keeps the per-step losses on
the tensor side (no ``.item()`` per step: one ``stack().tolist()`` per epoch), checks
them for NaN/inf every ``check_every`` steps, and evaluates in large batches
under ``torch.inference_mode``. Everything is written to a run folder
(:mod:`optviz.mnist.results`) as it goes: metrics each epoch, a checkpoint per
run per epoch, weight snapshots every ``snapshot_every`` steps.

Example::

    config = TrainConfig(optimizers=["sgd:lr=0.01", "adam:lr=0.001"], epochs=2, seeds=[0, 1])
    result = train(config, "runs/try")            # a RunResult
    result.summary                                # rows of the summary table
    resume("runs/try", epochs=4)                  # two more epochs

Optimizer specs are those of :func:`optviz.optim.registry.parse_spec`; a spec
``torch:NAME:...`` runs ``torch.optim``'s implementation of ``NAME`` instead of
the shared core (``reference=True`` adds one for every setting). ``clip_norm``
and ``clip_value`` in a spec, or ``TrainConfig.clip_norm``, clip the gradient
with ``torch.nn.utils.clip_grad_norm_`` / ``clip_grad_value_`` before each step,
the same for both implementations.
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from ..errors import InvalidValue, OptvizError
from .config import (DTYPES, SCHEDULE_KINDS, Entry, RunSpec, TrainConfig, _positive_int, make_schedule,  # noqa: F401 (re-exported)
                     parse_seeds)
from .results import RunDir, summary_markdown, summary_rows

__all__ = ["TrainConfig", "Entry", "RunSpec", "RunResult", "TrainingInterrupted", "SCHEDULE_KINDS",
           "parse_seeds", "make_schedule", "train", "resume", "evaluate", "epoch_batches"]

# ====================================================================== results


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


# ====================================================================== the loop


@dataclass
class _Run:
    spec: RunSpec
    model: Any
    optimizer: Any
    params: list
    needs_closure: bool
    schedule: Optional[Callable[[int], float]]
    rng: Any  # this run's torch CPU RNG state
    epoch: int = 0  # finished epochs
    step: int = 0  # updates applied
    status: str = "running"
    diverged_at: Optional[int] = None
    train_time: float = 0.0
    wall_time: float = 0.0

    @property
    def label(self) -> str:
        return self.spec.label


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


def _stack(tensors: list, dtype):
    import torch

    return torch.stack(tensors) if tensors else torch.empty(0, dtype=dtype)


class _Trainer:
    """The loop over runs and epochs, with the data and the run folder it writes to."""

    def __init__(self, config: TrainConfig, out: RunDir, data, log, progress, callback):
        import torch

        self.config, self.out = config, out
        self.log = log or (lambda msg: None)
        self.callback = callback
        self.progress = progress
        self.dtype = getattr(torch, config.dtype)
        self.device = torch.device(config.device)
        self.data = self._prepare(data)
        self.steps_per_epoch = -(-len(self.train_x) // config.batch_size)
        self.bar = None

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
    def _build(self, spec: RunSpec) -> _Run:
        import torch

        from ..optim import TorchOptimizer, registry
        from ..optim.torch_reference import torch_optimizer
        from .models import build_model

        e = spec.entry
        model = build_model(self.config.model, seed=spec.seed).to(self.device, self.dtype)
        params = list(model.parameters())
        if e.backend == "torch":
            opt = torch_optimizer(params, e.optimizer, **e.hyper)
            needs_closure = False
        else:
            opt = TorchOptimizer(params, e.optimizer, **e.hyper)
            needs_closure = registry.create(e.optimizer, **e.hyper).eval_point is not None
        lr = dict(registry.get(e.optimizer).defaults, **e.hyper).get("lr")
        schedule = make_schedule(self.config.schedule, lr, self.config.epochs, self.steps_per_epoch) \
            if lr is not None else None
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(spec.seed)
            rng = torch.get_rng_state()
        return _Run(spec, model, opt, params, needs_closure, schedule, rng)

    def _snapshot_meta(self, run: _Run) -> dict:
        names = [n for n, _ in run.model.named_parameters()]
        return {**run.spec.to_dict(), "model": self.config.model, "param_names": names,
                "param_shapes": [list(p.shape) for p in run.params], "num_params": sum(p.numel() for p in run.params),
                "dtype": "float32", "snapshot_every": self.config.snapshot_every,
                "val_size": min(self.config.snapshot_val_size, len(self.val_x)),
                "steps_per_epoch": self.steps_per_epoch}

    def _checkpoint(self, run: _Run) -> None:
        self.out.save_checkpoint(run.label, {
            "format": 1, "run": run.label, "epoch": run.epoch, "step": run.step, "status": run.status,
            "model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(), "rng": run.rng,
            "train_time": run.train_time, "wall_time": run.wall_time})

    def _restore(self, run: _Run, ckpt: dict) -> None:
        run.model.load_state_dict(ckpt["model"])
        run.optimizer.load_state_dict(ckpt["optimizer"])
        run.rng = ckpt["rng"]
        run.epoch, run.step = int(ckpt["epoch"]), int(ckpt["step"])
        run.train_time, run.wall_time = float(ckpt["train_time"]), float(ckpt["wall_time"])
        run.status = "running"

    def _state(self, runs: List[_Run], status: str) -> dict:
        return {"status": status, "epochs": self.config.epochs,
                "runs": {r.label: {"status": r.status, "epoch": r.epoch, "step": r.step,
                                   "diverged_at": r.diverged_at} for r in runs}}

    def _base_record(self, run: _Run, kind: str) -> dict:
        s = run.spec
        return {"kind": kind, "run": run.label, "entry": s.entry.key, "optimizer": s.entry.optimizer,
                "backend": s.entry.backend, "seed": s.seed}

    # ---------------------------------------------------------------- one epoch of one run
    def _snapshot(self, run: _Run):
        import torch

        vec = torch.nn.utils.parameters_to_vector(run.params).detach().to("cpu", torch.float32, copy=True)
        k = min(self.config.snapshot_val_size, len(self.val_x))
        val = evaluate(run.model, self.val_x[:k], self.val_y[:k], self.config.eval_batch_size)[0] if k else math.nan
        return vec, val

    def _train_epoch(self, run: _Run) -> None:
        """Train ``run`` for one epoch, evaluate it, record everything, save a checkpoint."""
        import torch
        import torch.nn.functional as F

        c = self.config
        epoch = run.epoch  # 0-based index of the epoch being trained
        n_batches = self.steps_per_epoch
        step_losses = []  # detached 0-d tensors: no sync per step; one stack per epoch
        norms = torch.full((n_batches,), math.nan, dtype=torch.float64) \
            if run.spec.entry.clip_norm is not None else None
        lrs: List[float] = []
        snaps = []  # (step, weights, batch index, val loss)
        k = c.snapshot_every
        clip_norm, clip_value = run.spec.entry.clip_norm, run.spec.entry.clip_value
        model, opt, params = run.model, run.optimizer, run.params
        step0, done, checked = run.step, 0, 0
        t0 = time.perf_counter()
        torch.set_rng_state(run.rng)
        try:
            for i, (xb, yb) in enumerate(epoch_batches(self.train_x, self.train_y, c.batch_size,
                                                       seed=run.spec.seed, epoch=epoch)):
                step = step0 + i  # updates applied so far
                if k and step % k == 0:
                    snaps.append((step, *self._snapshot(run), i))
                if run.schedule is not None:
                    lr = run.schedule(step)
                    for group in opt.param_groups:
                        group["lr"] = lr
                    lrs.append(lr)
                if run.needs_closure:
                    cache = {}

                    def closure(xb=xb, yb=yb, cache=cache):
                        opt.zero_grad(set_to_none=True)
                        out = model(xb)
                        loss = F.cross_entropy(out, yb)
                        loss.backward()
                        self._clip(params, clip_norm, clip_value, norms, i)
                        cache["out"] = out
                        return loss

                    loss = opt.step(closure)
                    out = cache["out"]
                else:
                    opt.zero_grad(set_to_none=True)
                    out = model(xb)
                    loss = F.cross_entropy(out, yb)
                    loss.backward()
                    self._clip(params, clip_norm, clip_value, norms, i)
                    opt.step()
                step_losses.append(loss.detach())
                done = i + 1
                if self.callback is not None:
                    self.callback("step", {"run": run.label, "epoch": epoch + 1, "step": step + 1})
                if done - checked >= c.check_every:
                    if not bool(torch.isfinite(torch.stack(step_losses[checked:done])).all()):
                        break
                    checked = done
                    if self.bar is not None:
                        self.bar.update(c.check_every)
        except KeyboardInterrupt:
            run.train_time += time.perf_counter() - t0
            run.status = "interrupted"
            self._save_epoch_steps(run, epoch, step0 + 1, _stack(step_losses[:done], self.dtype), lrs, norms,
                                   snaps, partial=True)
            raise
        finally:
            run.rng = torch.get_rng_state()
        train_seconds = time.perf_counter() - t0
        if self.bar is not None:
            self.bar.update(done - checked)

        losses = _stack(step_losses, self.dtype)  # (done,)
        finite = torch.isfinite(losses)
        if not bool(finite.all()):  # diverged: keep the steps up to the first bad loss
            bad = int((~finite).nonzero()[0])
            run.status, run.diverged_at = "diverged", step0 + bad
            run.step = step0 + bad + 1
            run.train_time += train_seconds
            run.wall_time += train_seconds
            self._save_epoch_steps(run, epoch, step0 + 1, losses[:bad + 1], lrs, norms,
                                   [s for s in snaps if s[0] <= step0 + bad])
            event = {**self._base_record(run, "event"), "event": "diverged", "epoch": epoch + 1,
                     "step": run.diverged_at, "message": f"non-finite loss at step {run.diverged_at}"}
            self.out.append([event])
            self.log(f"{run.label}: diverged (non-finite loss) at step {run.diverged_at}, epoch {epoch + 1}; "
                     f"stopped, the others go on")
            return

        run.step = step0 + done
        run.epoch = epoch + 1
        if run.epoch == c.epochs and k:  # the final weights
            snaps.append((run.step, *self._snapshot(run), None))
        t1 = time.perf_counter()
        val_loss, val_acc = evaluate(model, self.val_x, self.val_y, c.eval_batch_size)
        run.train_time += train_seconds
        run.wall_time += train_seconds + (time.perf_counter() - t1)
        if not math.isfinite(val_loss):
            run.status, run.diverged_at = "diverged", run.step
        self._save_epoch_steps(run, epoch, step0 + 1, losses[:done], lrs, norms, snaps)
        train_loss = float(losses.double().sum()) / max(done, 1)  # mean of the minibatch losses
        record = {**self._base_record(run, "epoch"), "epoch": run.epoch, "step": run.step,
                  "train_loss": train_loss,
                  "val_loss": val_loss, "val_acc": val_acc,
                  "lr": float(opt.param_groups[0]["lr"]), "epoch_time": train_seconds,
                  "train_time": run.train_time, "wall_time": run.wall_time}
        self.out.append([record])
        if run.status == "diverged":
            self.out.append([{**self._base_record(run, "event"), "event": "diverged", "epoch": run.epoch,
                              "step": run.step, "message": "non-finite validation loss"}])
            self.log(f"{run.label}: diverged (non-finite validation loss) after epoch {run.epoch}; stopped")
        else:
            self._checkpoint(run)
        if self.callback is not None:
            self.callback("epoch", record)
        self.log(f"{run.label:<16} epoch {run.epoch:>2}/{c.epochs}  train loss {train_loss:.4f}  "
                 f"val loss {val_loss:.4f}  val acc {100 * val_acc:6.2f}%  {train_seconds:5.1f} s")

    @staticmethod
    def _clip(params, clip_norm, clip_value, norms, i):
        import torch

        if clip_value is not None:
            torch.nn.utils.clip_grad_value_(params, clip_value)
        if clip_norm is not None:
            norms[i] = torch.nn.utils.clip_grad_norm_(params, clip_norm)

    def _save_epoch_steps(self, run, epoch, first_step, losses, lrs, norms, snaps, partial=False):
        """Append the epoch's ``steps`` record and write its snapshot file."""
        import torch

        n = len(losses)
        loss_list = losses.tolist()
        rec = {"kind": "steps", "run": run.label, "epoch": epoch + 1, "first_step": first_step, "loss": loss_list,
               "lr": list(lrs[:n]) if lrs else [float(run.optimizer.param_groups[0]["lr"])] * n,
               "grad_norm": norms[:n].tolist() if norms is not None else None}
        if partial:
            rec["partial"] = True
        self.out.append([rec])
        if snaps:
            batch_loss = [loss_list[i] if i is not None and i < n else math.nan for (_, _, _, i) in snaps]
            self.out.save_snapshots(run.label, epoch + 1, {
                "steps": torch.tensor([s for s, *_ in snaps], dtype=torch.int64),
                "weights": torch.stack([w for _, w, _, _ in snaps]),
                "batch_loss": torch.tensor(batch_loss, dtype=torch.float32),
                "val_loss": torch.tensor([v for _, _, v, _ in snaps], dtype=torch.float32)})

    # ---------------------------------------------------------------- the comparison
    def run(self, runs: List[_Run], fresh: List[_Run]) -> None:
        """Evaluate the ``fresh`` runs' initial weights (epoch 0), then train every running
        run epoch by epoch, in turn, to ``config.epochs``; then test the finished ones."""
        import torch

        c = self.config
        remaining = sum((c.epochs - r.epoch) * self.steps_per_epoch for r in runs if r.status == "running")
        if self.progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=remaining, unit="step", desc="mnist", dynamic_ncols=True, leave=False,
                            disable=None)
            if not self.bar.disable:
                self.log = self.bar.write
        try:
            with _threads(c.num_threads), torch.random.fork_rng(devices=[]):
                for run in fresh:
                    self._initial(run)
                first = min((r.epoch for r in runs if r.status == "running"), default=c.epochs)
                for epoch in range(first, c.epochs):
                    for run in runs:
                        if run.status == "running" and run.epoch == epoch:
                            if self.bar is not None:
                                self.bar.set_postfix_str(f"{run.label} epoch {epoch + 1}/{c.epochs}")
                            self._train_epoch(run)
                    self.out.write_state(self._state(runs, "running"))
                for run in runs:
                    if run.status == "running" and run.epoch >= c.epochs:
                        run.status = "done"
                        self._test(run)
                        self._checkpoint(run)
        except KeyboardInterrupt:
            for run in runs:
                if run.status == "running":
                    run.status = "interrupted"
            self.out.append([{"kind": "event", "event": "interrupted", "run": None,
                              "epoch": max((r.epoch for r in runs), default=0), "step": None,
                              "message": "stopped by Ctrl-C"}])
            self.out.write_state(self._state(runs, "interrupted"))
            _write_summary(self.out)
            raise TrainingInterrupted(self.out.path) from None
        finally:
            if self.bar is not None:
                self.bar.close()
                self.bar = None
        self.out.write_state(self._state(runs, "done"))

    def _initial(self, run: _Run) -> None:
        """Epoch 0: validation loss and accuracy of the initial weights; the snapshot meta."""
        if self.config.snapshot_every:
            self.out.write_snapshot_meta(run.label, self._snapshot_meta(run))
        val_loss, val_acc = evaluate(run.model, self.val_x, self.val_y, self.config.eval_batch_size)
        self.out.append([{**self._base_record(run, "epoch"), "epoch": 0, "step": 0, "train_loss": None,
                          "val_loss": val_loss, "val_acc": val_acc,
                          "lr": float(run.optimizer.param_groups[0]["lr"]), "epoch_time": 0.0,
                          "train_time": 0.0, "wall_time": 0.0}])

    def _test(self, run: _Run) -> None:
        test_loss, test_acc = evaluate(run.model, self.test_x, self.test_y, self.config.eval_batch_size)
        self.out.append([{**self._base_record(run, "test"), "epoch": run.epoch, "step": run.step,
                          "test_loss": test_loss, "test_acc": test_acc}])


def _config_record(config: TrainConfig) -> dict:
    return {**config.to_dict(), "entries": [e.to_dict() for e in config.entries()],
            "runs": [r.to_dict() for r in config.runs()]}


def _finish(trainer: _Trainer, runs: List[_Run]) -> RunResult:
    out = trainer.out
    config_dict = out.config()
    rows = summary_rows(out.records(), config_dict, out.read_state())
    md = summary_markdown(rows, config_dict)
    out.write_summary(md)
    return RunResult(out.path, trainer.config, {r.label: r.status for r in runs}, rows, md)


def _write_summary(out: RunDir) -> None:
    config_dict = out.config()
    out.write_summary(summary_markdown(summary_rows(out.records(), config_dict, out.read_state()), config_dict))


def train(config: TrainConfig, run_dir, *, data=None, log: Optional[Callable[[str], None]] = None,
          progress: bool = False, callback: Optional[Callable[[str, dict], None]] = None) -> RunResult:
    """Run the comparison ``config`` and write it to the new run folder ``run_dir``.

    ``data``: an :class:`~optviz.mnist.MNISTData` to use instead of loading
    ``config.dataset`` (tests, notebooks). ``log`` receives one line per epoch and run;
    ``progress`` shows a tqdm bar (quiet when not a terminal); ``callback(kind, info)``
    is called after every step (``kind`` "step") and epoch ("epoch", the record).

    On Ctrl-C everything up to that moment is saved and :class:`TrainingInterrupted`
    (a ``KeyboardInterrupt``) is raised; :func:`resume` continues from the last
    finished epoch of every run. Bad input raises :class:`OptvizError` before anything
    is written.
    """
    from .results import check_run_folder

    config.validate()
    check_run_folder(run_dir)  # before loading data: fail fast
    trainer = _Trainer(config, None, data, log, progress, callback)
    out = RunDir.create(run_dir, {**_config_record(config), "steps_per_epoch": trainer.steps_per_epoch, "sizes": {
        "train": len(trainer.train_x), "val": len(trainer.val_x), "test": len(trainer.test_x)}})
    trainer.out = out
    runs = [trainer._build(spec) for spec in config.runs()]
    out.write_state(trainer._state(runs, "running"))
    trainer.run(runs, fresh=runs)
    return _finish(trainer, runs)


def resume(run_dir, *, epochs: Optional[int] = None, data=None, data_dir=None,
           log: Optional[Callable[[str], None]] = None, progress: bool = False,
           callback: Optional[Callable[[str, dict], None]] = None) -> RunResult:
    """Continue the run folder ``run_dir`` from each run's last checkpoint (the end of its
    last finished epoch); with ``epochs``, train to that many epochs in all.

    What was recorded after a run's checkpoint (a partly trained epoch) is dropped
    first, so the finished run is the same, bit for bit, as one that never stopped.
    Diverged and finished runs are kept as they are. ``data_dir`` overrides where the
    data are read from (the same files, on another machine).
    """
    out = RunDir.open(run_dir)
    saved = out.config()
    config = TrainConfig.from_dict(saved).validate()
    if data_dir is not None:
        config.data_dir = str(data_dir)
    if epochs is not None and epochs != config.epochs:
        _positive_int("epochs", epochs)
        if epochs < max((r.get("epoch", 0) for r in out.records("epoch")), default=0):
            raise InvalidValue(f"{str(run_dir)!r} already has more than {epochs} epochs")
        if config.schedule != "constant":
            raise OptvizError(f"cannot change the number of epochs of a run with the {config.schedule!r} "
                              f"schedule: its learning rates depend on the total")
        config.epochs = epochs
    trainer = _Trainer(config, out, data, log, progress, callback)
    if trainer.steps_per_epoch != saved.get("steps_per_epoch"):
        raise OptvizError(f"the data differ from the run's: {trainer.steps_per_epoch} steps per epoch, "
                          f"the run had {saved.get('steps_per_epoch')}")
    state = out.read_state().get("runs", {})
    runs = [trainer._build(spec) for spec in config.runs()]
    keep_upto: Dict[str, Optional[int]] = {}  # run -> last epoch whose records stay (None: all)
    for run in runs:
        st = state.get(run.label, {})
        if st.get("status") == "diverged":
            run.status, run.diverged_at = "diverged", st.get("diverged_at")
            run.epoch, run.step = st.get("epoch", 0), st.get("step", 0)
            keep_upto[run.label] = None
            continue
        ckpt = out.load_checkpoint(run.label)
        if ckpt is not None:
            trainer._restore(run, ckpt)
        if run.epoch >= config.epochs:
            run.status = "done"
            keep_upto[run.label] = None
            continue
        keep_upto[run.label] = run.epoch
        if run.epoch == 0:
            out.remove_run_files(run.label)
        else:
            out.drop_snapshots(run.label, run.epoch)
            _drop_final_snapshot(out, run.label, run.epoch, run.step)

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

    out.keep_records(keep)
    if config.epochs != saved.get("epochs"):
        out.update_config(epochs=config.epochs)
    out.append([{"kind": "event", "event": "resumed", "run": None,
                 "epoch": min((r.epoch for r in runs if r.status == "running"), default=config.epochs),
                 "step": None, "message": "resumed from the last checkpoints"}])
    out.write_state(trainer._state(runs, "running"))
    trainer.run(runs, fresh=[r for r in runs if r.status == "running" and r.epoch == 0])
    return _finish(trainer, runs)


def _drop_final_snapshot(out: RunDir, label: str, epoch: int, step: int) -> None:
    """Before a finished run is trained further: its last snapshot file ends with the final
    weights (step ``step``), which the next epoch takes again if they fall on the grid."""
    import torch

    path = out.snapshot_dir(label) / f"epoch-{epoch:04d}.pt"
    if not path.exists():
        return
    chunk = torch.load(path, map_location="cpu", weights_only=True)
    keep = chunk["steps"] != step
    if not bool(keep.all()):
        out.save_snapshots(label, epoch, {k: v[keep] for k, v in chunk.items()})
