"""The run folder of an MNIST comparison: what is saved, where, and how to read it back.

Layout (``RUN_DIR`` = ``optviz mnist -o RUN_DIR``)::

    config.json            the resolved TrainConfig, the runs it expands to, versions
    state.json             status of every run (running / done / diverged / interrupted)
    metrics.jsonl          every record, one JSON object a line, appended each epoch
    epochs.csv             the "epoch" records as a table (derived from metrics.jsonl)
    steps.csv              one row per update: run, epoch, step, loss, lr, grad_norm
    summary.md             the summary table (Markdown)
    figures/*.png          drawn by :mod:`optviz.mnist.report`
    checkpoints/RUN.pt     the last finished epoch of RUN: model, optimizer, RNG, position
    snapshots/RUN/meta.json, snapshots/RUN/epoch-0001.pt, ...   weight snapshots

``RUN`` is a run label, ``<entry>-s<seed>`` (e.g. ``adam-s0``, ``sgd-torch-s1``).

Records in ``metrics.jsonl`` (``kind`` says which):

* ``epoch``: ``run, entry, optimizer, backend, seed, epoch`` (finished epochs, 1..E;
  0 = the initial weights), ``step`` (updates so far), ``train_loss`` (the mean of the
  epoch's minibatch losses, each at the weights it was computed at; null at epoch 0),
  ``val_loss, val_acc``, ``lr`` (at the last update), ``epoch_time`` (s training this
  epoch), ``train_time`` and ``wall_time`` (cumulative s, without / with evaluation);
* ``steps``: ``run, epoch, first_step, loss`` (list: the minibatch loss of updates
  ``first_step, first_step + 1, ...``; update ``u`` computes its loss at the weights
  after ``u - 1`` updates), ``lr`` (list), ``grad_norm`` (list or null, with clipping);
* ``test``: ``run, ..., test_loss, test_acc`` once a run has finished;
* ``event``: ``event`` ("diverged", "interrupted", "resumed"), ``run``, ``epoch``, ``step``.

Snapshots (for the loss landscape): per run, ``snapshots/RUN/epoch-EEEE.pt`` is a
``torch.save`` dict of the snapshots taken while training epoch ``EEEE`` (1-based):

* ``steps``: int64 ``(k,)``, the number of updates behind each snapshot (0 = initial
  weights); every ``snapshot_every``-th step, plus the final weights in the last epoch;
* ``weights``: float32 ``(k, P)``, the parameters flattened in ``model.parameters()``
  order (``torch.nn.utils.parameters_to_vector``);
* ``batch_loss``: float32 ``(k,)``, the minibatch loss at those weights (the loss of
  update ``step + 1``, so NaN for the final weights);
* ``val_loss``: float32 ``(k,)``, the cross-entropy at those weights on the first
  ``val_size`` validation images (``meta.json``), NaN when switched off.

``snapshots/RUN/meta.json`` holds the model name, the parameter names and shapes,
``P``, the optimizer, seed, label, ``val_size`` and ``steps_per_epoch``.
:func:`load_snapshots` reads all of it back.
"""
from __future__ import annotations

import csv
import dataclasses
import datetime
import json
import math
import os
import shutil
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional

from ..errors import OptvizError
from ..io import atomic_path, atomic_write

__all__ = ["RUN_KIND", "RunDir", "check_run_folder", "Snapshots", "load_snapshots", "summary_rows",
           "summary_markdown", "EPOCH_COLUMNS", "STEP_COLUMNS"]

RUN_KIND = "optviz-mnist-run"
FORMAT_VERSION = 1

EPOCH_COLUMNS = ["run", "entry", "optimizer", "backend", "seed", "epoch", "step", "train_loss",
                 "val_loss", "val_acc", "lr", "epoch_time", "train_time", "wall_time"]
STEP_COLUMNS = ["run", "epoch", "step", "loss", "lr", "grad_norm"]


def check_run_folder(path) -> Path:
    """Fail early (before any data is loaded) if a new run cannot be written to ``path``,
    or if ``path`` already holds a run (it is never overwritten)."""
    path = Path(path)
    if (path / "config.json").exists():
        raise OptvizError(f"{str(path)!r} already holds a run; continue it with --resume {path} "
                          f"or choose another -o")
    if path.exists() and not path.is_dir():
        raise OptvizError(f"cannot use {str(path)!r} as a run folder: it is a file")
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise OptvizError(f"cannot create run folder {str(path)!r}: {str(probe)!r} is a file")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OptvizError(f"cannot write run folder {str(path)!r}: {str(probe)!r} is not writable")
    return path


def _json_default(obj):
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def _clean(value):
    """JSON has no NaN: non-finite floats become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _dumps(record: dict) -> str:
    return json.dumps({k: _clean(v) for k, v in record.items()}, default=_json_default, ensure_ascii=False)


class RunDir:
    """One run folder. :meth:`create` starts a new one, :meth:`open` an existing one."""

    def __init__(self, path):
        self.path = Path(path)

    # ---------------------------------------------------------------- paths
    config_path = property(lambda self: self.path / "config.json")
    state_path = property(lambda self: self.path / "state.json")
    metrics_path = property(lambda self: self.path / "metrics.jsonl")
    epochs_csv = property(lambda self: self.path / "epochs.csv")
    steps_csv = property(lambda self: self.path / "steps.csv")
    summary_path = property(lambda self: self.path / "summary.md")
    figures_dir = property(lambda self: self.path / "figures")

    def checkpoint_path(self, run: str) -> Path:
        return self.path / "checkpoints" / f"{run}.pt"

    def snapshot_dir(self, run: str) -> Path:
        return self.path / "snapshots" / run

    # ---------------------------------------------------------------- create / open
    @classmethod
    def create(cls, path, config: dict) -> "RunDir":
        """A new run folder holding ``config`` (refuses one that already holds a run)."""
        path = check_run_folder(path)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OptvizError(f"cannot create run folder {str(path)!r}: {exc.strerror or exc}") from None
        run = cls(path)
        import torch

        from .. import __version__ as optviz_version

        header = {"kind": RUN_KIND, "format": FORMAT_VERSION,
                  "created": datetime.datetime.now().isoformat(timespec="seconds"),
                  "versions": {"optviz": optviz_version, "torch": torch.__version__}}
        run._write_json(run.config_path, {**header, **config})
        return run

    @classmethod
    def open(cls, path) -> "RunDir":
        """An existing run folder; a clear error if ``path`` is not one."""
        path = Path(path)
        if not path.is_dir():
            raise OptvizError(f"no run folder at {str(path)!r}")
        run = cls(path)
        try:
            config = json.loads(run.config_path.read_text())
        except FileNotFoundError:
            raise OptvizError(f"{str(path)!r} is not an optviz mnist run folder (it has no config.json)") from None
        except (OSError, ValueError) as exc:
            raise OptvizError(f"{str(path)!r}: unreadable config.json ({exc})") from None
        if not isinstance(config, dict) or config.get("kind") != RUN_KIND:
            raise OptvizError(f"{str(path)!r} is not an optviz mnist run folder (config.json is not a run's)")
        if config.get("format", 0) > FORMAT_VERSION:
            raise OptvizError(f"{str(path)!r} was written by a newer optviz (format {config.get('format')})")
        return run

    def config(self) -> dict:
        return json.loads(self.config_path.read_text())

    def update_config(self, **fields) -> None:
        self._write_json(self.config_path, {**self.config(), **fields})

    def _write_json(self, path: Path, obj) -> None:
        with atomic_write(path, encoding="utf-8") as fh:
            json.dump(_clean_tree(obj), fh, indent=2, default=_json_default, ensure_ascii=False)
            fh.write("\n")

    # ---------------------------------------------------------------- state
    def write_state(self, state: dict) -> None:
        self._write_json(self.state_path, state)

    def read_state(self) -> dict:
        try:
            return json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return {}

    # ---------------------------------------------------------------- metrics
    def append(self, records: Iterable[dict]) -> None:
        """Append ``records`` to metrics.jsonl, and their rows to epochs.csv / steps.csv."""
        records = list(records)
        if not records:
            return
        with open(self.metrics_path, "a", encoding="utf-8") as fh:
            fh.writelines(_dumps(r) + "\n" for r in records)
        self._append_csv(records)

    def _append_csv(self, records: List[dict]) -> None:
        epochs = [r for r in records if r.get("kind") == "epoch"]
        steps = [r for r in records if r.get("kind") == "steps"]
        if epochs:
            _append_rows(self.epochs_csv, EPOCH_COLUMNS, ([_csv_value(r.get(c)) for c in EPOCH_COLUMNS] for r in epochs))
        if steps:
            _append_rows(self.steps_csv, STEP_COLUMNS, _step_rows(steps))

    def records(self, kind: Optional[str] = None) -> List[dict]:
        """Every record of metrics.jsonl (or those of ``kind``). A last line cut off by a
        crash is skipped."""
        if not self.metrics_path.exists():
            return []
        out = []
        with open(self.metrics_path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if kind is None or rec.get("kind") == kind:
                    out.append(rec)
        return out

    def keep_records(self, keep: Callable[[dict], bool]) -> None:
        """Rewrite metrics.jsonl (atomically) with only the records ``keep`` accepts, and
        the CSV files from them (they are derived from metrics.jsonl)."""
        kept = [r for r in self.records() if keep(r)]
        with atomic_write(self.metrics_path, encoding="utf-8") as fh:
            fh.writelines(_dumps(r) + "\n" for r in kept)
        epochs = ([_csv_value(r.get(c)) for c in EPOCH_COLUMNS] for r in kept if r.get("kind") == "epoch")
        for path, columns, rows in ((self.epochs_csv, EPOCH_COLUMNS, epochs),
                                    (self.steps_csv, STEP_COLUMNS, _step_rows([r for r in kept
                                                                               if r.get("kind") == "steps"]))):
            with atomic_write(path, newline="", encoding="utf-8") as fh:
                writer = csv.writer(fh)
                writer.writerow(columns)
                writer.writerows(rows)

    # ---------------------------------------------------------------- checkpoints
    def save_checkpoint(self, run: str, payload: dict) -> None:
        import torch

        with atomic_path(self.checkpoint_path(run)) as tmp:
            torch.save(payload, tmp)

    def load_checkpoint(self, run: str) -> Optional[dict]:
        import torch

        path = self.checkpoint_path(run)
        if not path.exists():
            return None
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001  (a damaged file: say which)
            raise OptvizError(f"cannot read checkpoint {str(path)!r}: {str(exc).splitlines()[0]}") from None

    # ---------------------------------------------------------------- snapshots
    def write_snapshot_meta(self, run: str, meta: dict) -> None:
        self._write_json(self.snapshot_dir(run) / "meta.json", meta)

    def save_snapshots(self, run: str, epoch: int, chunk: dict) -> None:
        import torch

        with atomic_path(self.snapshot_dir(run) / f"epoch-{epoch:04d}.pt") as tmp:
            torch.save(chunk, tmp)

    def snapshot_files(self, run: str) -> List[Path]:
        folder = self.snapshot_dir(run)
        return sorted(folder.glob("epoch-*.pt")) if folder.is_dir() else []

    def drop_snapshots(self, run: str, after_epoch: int) -> None:
        """Remove the snapshot files of epochs after ``after_epoch`` (before a resume)."""
        for path in self.snapshot_files(run):
            if int(path.stem.split("-")[1]) > after_epoch:
                path.unlink()

    def remove_run_files(self, run: str) -> None:
        self.checkpoint_path(run).unlink(missing_ok=True)
        shutil.rmtree(self.snapshot_dir(run), ignore_errors=True)

    # ---------------------------------------------------------------- summary
    def write_summary(self, markdown: str) -> Path:
        with atomic_write(self.summary_path, encoding="utf-8") as fh:
            fh.write(markdown)
        return self.summary_path


def _clean_tree(obj):
    if isinstance(obj, dict):
        return {k: _clean_tree(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean_tree(v) for v in obj]
    return _clean(obj)


def _csv_value(value):
    return "" if value is None else value


def _append_rows(path: Path, columns: List[str], rows) -> None:
    new = not path.exists() or path.stat().st_size == 0
    with open(path, "a", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        if new:
            writer.writerow(columns)
        writer.writerows(rows)


def _step_rows(records: List[dict]):
    for r in records:
        lrs, norms = r.get("lr") or [], r.get("grad_norm") or []
        for i, loss in enumerate(r["loss"]):
            yield (r["run"], r["epoch"], r["first_step"] + i, _csv_value(loss),
                   _csv_value(lrs[i] if i < len(lrs) else None), _csv_value(norms[i] if i < len(norms) else None))


# ==================================================================== snapshots


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


def load_snapshots(run_dir, runs: Optional[Iterable[str]] = None) -> Dict[str, Snapshots]:
    """The weight snapshots of a run folder: ``{run label: Snapshots}``, in the run order
    of the comparison (all optimizer settings of a seed share the snapshot at step 0).

    ``runs`` picks some run labels (default: all that have snapshots).

    Example::

        snaps = load_snapshots("runs/lecture")
        adam = snaps["adam-s0"]
        adam.weights.shape            # (K, 101770), float32
        adam.steps[:3]                # tensor([  0,  50, 100])
    """
    import torch

    run = RunDir.open(run_dir)
    config = run.config()
    state = run.read_state().get("runs", {})
    labels = [r["run"] for r in config.get("runs", [])]
    if runs is not None:
        wanted = list(runs)
        unknown = [w for w in wanted if w not in labels]
        if unknown:
            from ..errors import UnknownName

            raise UnknownName("run", unknown[0], labels)
        labels = wanted
    out: Dict[str, Snapshots] = {}
    for label in labels:
        files = run.snapshot_files(label)
        meta_path = run.snapshot_dir(label) / "meta.json"
        if not files or not meta_path.exists():
            continue
        meta = json.loads(meta_path.read_text())
        chunks = [torch.load(f, map_location="cpu", weights_only=True) for f in files]
        cat = lambda key: torch.cat([c[key] for c in chunks])  # noqa: E731
        out[label] = Snapshots(
            run=label, entry=meta["entry"], optimizer=meta["optimizer"], label=meta["label"],
            backend=meta["backend"], seed=meta["seed"], model=meta["model"],
            steps=cat("steps"), weights=cat("weights"), batch_loss=cat("batch_loss"), val_loss=cat("val_loss"),
            val_size=meta["val_size"], param_names=tuple(meta["param_names"]),
            param_shapes=tuple(tuple(s) for s in meta["param_shapes"]),
            steps_per_epoch=meta["steps_per_epoch"], status=state.get(label, {}).get("status", "unknown"))
    return out


# ==================================================================== summary table


def _mean_std(values: List[float]):
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return None, None
    mean = sum(vals) / len(vals)
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
    return mean, std


def summary_rows(records: List[dict], config: dict, state: Optional[dict] = None) -> List[dict]:
    """One row per optimizer setting: values per seed and their mean and std.

    Accuracies are fractions; ``final`` is the validation accuracy after the last
    finished epoch, ``best`` the highest over epochs 1.. and ``best_epoch`` where it was.
    """
    state = (state or {}).get("runs", {})
    by_run: Dict[str, List[dict]] = {}
    tests: Dict[str, dict] = {}
    for r in records:
        if r.get("kind") == "epoch" and r.get("epoch", 0) >= 1:
            by_run.setdefault(r["run"], []).append(r)
        elif r.get("kind") == "test":
            tests[r["run"]] = r
    rows = []
    for entry in config.get("entries", []):
        runs = [r for r in config.get("runs", []) if r["entry"] == entry["key"]]
        per_seed = {"final": [], "best": [], "best_epoch": [], "test": [], "time": [], "epochs": []}
        statuses = []
        for run in runs:
            label = run["run"]
            eps = sorted(by_run.get(label, []), key=lambda r: r["epoch"])
            st = state.get(label, {})
            statuses.append((run["seed"], st))
            if eps:
                accs = [(e.get("val_acc"), e["epoch"]) for e in eps if e.get("val_acc") is not None]
                per_seed["final"].append(eps[-1].get("val_acc"))
                if accs:
                    best, best_epoch = max(accs, key=lambda a: (a[0], -a[1]))
                    per_seed["best"].append(best)
                    per_seed["best_epoch"].append(best_epoch)
                per_seed["time"].append(eps[-1].get("wall_time"))
                per_seed["epochs"].append(eps[-1]["epoch"])
            if label in tests:
                per_seed["test"].append(tests[label].get("test_acc"))
        rows.append({
            "entry": entry["key"], "label": entry["label"], "optimizer": entry["optimizer"],
            "backend": entry["backend"], "seeds": [r["seed"] for r in runs], "values": per_seed,
            **{k: _mean_std(v) for k, v in per_seed.items()},
            "status": _status_text(statuses, config),
        })
    return rows


def _status_text(statuses, config) -> str:
    epochs = config.get("epochs")
    parts = []
    for _, st in statuses:
        s = st.get("status", "not started")
        if s == "diverged":
            parts.append(f"diverged at step {st.get('diverged_at')} (epoch {st.get('epoch', 0) + 1})")
        elif s == "done":
            parts.append("done")
        elif s in ("interrupted", "running"):
            parts.append(f"stopped after epoch {st.get('epoch', 0)}/{epochs}")
        else:
            parts.append(s)
    if len(set(parts)) == 1:
        return parts[0] if parts else "-"
    return "; ".join(f"seed {seed}: {p}" for (seed, _), p in zip(statuses, parts))


def _pct(ms, digits=2) -> str:
    mean, std = ms
    if mean is None:
        return "–"
    return f"{100 * mean:.{digits}f}" + (f" ± {100 * std:.{digits}f}" if std else "")


def _num(ms, fmt="{:.1f}", integer=False) -> str:
    mean, std = ms
    if mean is None:
        return "–"
    if integer and not std:
        return str(int(round(mean)))
    return fmt.format(mean) + (f" ± {fmt.format(std)}" if std else "")


def summary_markdown(rows: List[dict], config: dict) -> str:
    """The summary table, with a heading that states the protocol."""
    seeds = config.get("seeds", [])
    n_seeds = len(seeds)
    what = config.get("preset") or "custom"
    subset = f", first {config['subset']:,} training images" if config.get("subset") else ""
    head = (f"# MNIST comparison ({what})\n\n"
            f"{config.get('dataset', 'mnist')}, model `{config.get('model')}`, batch {config.get('batch_size')}, "
            f"{config.get('epochs')} epoch{'s' if config.get('epochs') != 1 else ''}, schedule {config.get('schedule', 'constant')}{subset}; "
            f"seed{'s' if n_seeds > 1 else ''} {', '.join(map(str, seeds))}. "
            f"Accuracies in %{' (mean ± std over seeds)' if n_seeds > 1 else ''}; "
            f"time = wall-clock seconds of training and evaluation per run.\n\n")
    cols = ["Optimizer", "Final val acc", "Best val acc", "Best epoch", "Test acc", "Time (s)", "Status"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join(["---"] + ["---:"] * 5 + ["---"]) + "|"]
    for r in rows:
        lines.append("| " + " | ".join([
            r["label"], _pct(r["final"]), _pct(r["best"]), _num(r["best_epoch"], integer=True),
            _pct(r["test"]), _num(r["time"], "{:.0f}" if (r["time"][0] or 0) >= 100 else "{:.1f}"), r["status"]]) + " |")
    return head + "\n".join(lines) + "\n"
