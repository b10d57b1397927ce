"""The run folder of an MNIST comparison: what is saved, where, and how to read it back.

Layout (``RUN_DIR`` = ``optviz mnist -o RUN_DIR``)::

    config.json            the resolved TrainConfig, the runs it expands to, versions
    state.json             status of every run (running / done / diverged / interrupted)
    metrics.jsonl          every record, one JSON object a line, appended each epoch
    epochs.csv             the "epoch" records as a table (derived from metrics.jsonl)
    steps.csv              one row per update: run, epoch, step, loss, lr, grad_norm (not in a study's shards)
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

* ``eval``: ``run, ..., epoch, step, val_loss, val_acc, train_time``: validations within
  an epoch (``evals_per_epoch``), for time to target.

Snapshots (for the loss landscape): per run, ``snapshots/RUN/origin.npz`` (the initial
weights) and ``snapshots/RUN/epoch-EEEE.npz`` (the snapshots taken while training epoch
``EEEE``), with ``snapshots/RUN/meta.json``; :mod:`optviz.mnist.snapshots` describes the
format and the policy, and :func:`load_snapshots` reads them back.

``state.json`` also keeps ``wall_clock``: the seconds of every command that trained this
folder (start-up, data, training, evaluation and writing), added up over resumes.
"""
from __future__ import annotations

import csv
import datetime
import json
import math
import os
import shutil
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Tuple

from ..errors import OptvizError
from ..io import atomic_path, atomic_write, json_text, write_json
from .snapshots import Snapshots, chunk_epoch, chunk_files

__all__ = ["RUN_KIND", "RunDir", "check_run_folder", "Snapshots", "load_snapshots", "summary_rows",
           "summary_markdown", "write_summary_table", "EPOCH_COLUMNS", "STEP_COLUMNS", "disk_usage"]

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


def provenance(kind: str, fmt: int) -> dict:
    """The header of a folder's record: what it is, its format, when and by which versions."""
    import torch

    from .. import __version__

    return {"kind": kind, "format": fmt, "created": datetime.datetime.now().isoformat(timespec="seconds"),
            "versions": {"optviz": __version__, "torch": torch.__version__}}


class RunDir:
    """One run folder. :meth:`create` starts a new one, :meth:`open` an existing one."""

    def __init__(self, path):
        self.path = Path(path)
        self.with_steps_csv = True   # steps.csv beside metrics.jsonl (config's "steps_csv"; studies skip it)

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

    def fingerprint(self) -> list:
        """What identifies the folder's snapshots, for cache keys: the config, and every
        snapshot file's name, size and modification time (cheap: only metadata is read)."""
        parts = [json.dumps(self.config(), sort_keys=True, default=str)]
        root = self.path / "snapshots"
        for f in sorted(root.rglob("*")) if root.is_dir() else ():
            if f.is_file():
                st = f.stat()
                parts.append([str(f.relative_to(root)), st.st_size, st.st_mtime_ns])
        return parts

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
        run.with_steps_csv = bool(config.get("steps_csv", True))
        write_json(run.config_path, {**provenance(RUN_KIND, FORMAT_VERSION), **config})
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
        _check_config(config, run.config_path)
        run.with_steps_csv = bool(config.get("steps_csv", True))
        return run

    def config(self) -> dict:
        return json.loads(self.config_path.read_text())

    def update_config(self, **fields) -> None:
        write_json(self.config_path, {**self.config(), **fields})

    # ---------------------------------------------------------------- state
    def write_state(self, state: dict) -> None:
        """Write ``state`` (the runs' status), keeping the recorded wall-clock time."""
        kept = {k: v for k, v in self.read_state().items() if k == "wall_clock"}
        write_json(self.state_path, {**state, **kept})

    def read_state(self) -> dict:
        try:
            state = json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return {}
        return state if isinstance(state, dict) else {}

    def add_wall_clock(self, seconds: float) -> None:
        """Add one command's wall-clock seconds to ``state.json``'s ``wall_clock``."""
        state = self.read_state()
        state["wall_clock"] = float(state.get("wall_clock") or 0.0) + float(seconds)
        write_json(self.state_path, state)

    # ---------------------------------------------------------------- metrics
    def append(self, records: Iterable[dict]) -> None:
        """Append ``records`` to metrics.jsonl, and their rows to epochs.csv / steps.csv."""
        records = list(records)
        if not records:
            return
        with open(self.metrics_path, "a", encoding="utf-8") as fh:
            fh.writelines(json_text(r) + "\n" for r in records)
        self._append_csv(records)

    def _append_csv(self, records: List[dict]) -> None:
        epochs = [r for r in records if r.get("kind") == "epoch"]
        steps = [r for r in records if r.get("kind") == "steps"]
        if epochs:
            _append_rows(self.epochs_csv, EPOCH_COLUMNS, ([_csv_value(r.get(c)) for c in EPOCH_COLUMNS] for r in epochs))
        if steps and self.with_steps_csv:
            _append_rows(self.steps_csv, STEP_COLUMNS, _step_rows(steps))

    def records(self, kind: Optional[str] = None) -> List[dict]:
        """Every record of metrics.jsonl (or those of ``kind``). A last line cut off by a
        crash (no newline at its end) is skipped; any other line that is not a JSON object
        with a ``kind`` is an error that names the file and the line."""
        path = self.metrics_path
        if path.is_dir():
            raise OptvizError(f"{str(path)!r} is a folder, not a metrics file")
        if not path.exists():
            return []
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise OptvizError(f"cannot read {str(path)!r}: {exc}") from None
        lines = text.split("\n")
        out = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                if number == len(lines):   # the last line, with no newline: a write cut off by a crash
                    continue
                raise OptvizError(f"{str(path)!r} line {number} is not JSON: {line[:60]!r}") from None
            if not isinstance(rec, dict) or not isinstance(rec.get("kind"), str):
                raise OptvizError(f"{str(path)!r} line {number} is not an optviz record (a JSON object "
                                  f"with a 'kind'): {line[:60]!r}")
            if kind is None or rec.get("kind") == kind:
                out.append(rec)
        return out

    def keep_records(self, keep: Callable[[dict], bool], records: Optional[List[dict]] = None) -> None:
        """Rewrite metrics.jsonl (atomically) with only the records ``keep`` accepts, and
        the CSV files from them (they are derived from metrics.jsonl). ``records``: those of
        metrics.jsonl, if already read."""
        kept = [r for r in (self.records() if records is None else records) if keep(r)]
        with atomic_write(self.metrics_path, encoding="utf-8") as fh:
            fh.writelines(json_text(r) + "\n" for r in kept)
        epochs = ([_csv_value(r.get(c)) for c in EPOCH_COLUMNS] for r in kept if r.get("kind") == "epoch")
        tables = [(self.epochs_csv, EPOCH_COLUMNS, epochs)]
        if self.with_steps_csv:
            tables.append((self.steps_csv, STEP_COLUMNS, _step_rows([r for r in kept if r.get("kind") == "steps"])))
        for path, columns, rows in tables:
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
        """Run ``run``'s checkpoint (``None`` if it has none); a damaged one is one clear error."""
        import torch

        path = self.checkpoint_path(run)
        if not path.exists():
            return None
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001  (a damaged file: say which)
            first = str(exc).splitlines()[0].split(". ")[0] if str(exc) else type(exc).__name__
            raise OptvizError(f"cannot read checkpoint {str(path)!r}: truncated or damaged ({first})") from None
        missing = [k for k in ("epoch", "step", "model", "optimizer", "rng", "train_time", "wall_time")
                   if not isinstance(ckpt, dict) or k not in ckpt]
        if missing:
            raise OptvizError(f"checkpoint {str(path)!r} is not an optviz checkpoint (no {', '.join(missing)})")
        return ckpt

    # ---------------------------------------------------------------- snapshots
    def write_snapshot_meta(self, run: str, meta: dict) -> None:
        write_json(self.snapshot_dir(run) / "meta.json", meta)

    def snapshot_files(self, run: str) -> List[Path]:
        return chunk_files(self.snapshot_dir(run))

    def prune_snapshots(self, run: str, allowed: set, dtype: str) -> None:
        """Rewrite the snapshot files of ``run`` without the steps not in ``allowed``."""
        from .snapshots import read_chunk, read_origin, write_chunk

        folder = self.snapshot_dir(run)
        origin = read_origin(folder)
        for path in self.snapshot_files(run):
            chunk = read_chunk(path, origin)
            keep = [i for i, step in enumerate(chunk["steps"]) if int(step) in allowed]
            if len(keep) == len(chunk["steps"]):
                continue
            path.unlink()
            if keep:
                write_chunk(folder, chunk_epoch(path), chunk["steps"][keep], chunk["weights"][keep],
                            chunk["batch_loss"][keep], chunk["val_loss"][keep],
                            dtype if origin is not None or dtype == "float32" else "float32", origin)

    def drop_snapshots(self, run: str, after_epoch: int) -> None:
        """Remove the snapshot files of epochs after ``after_epoch`` (before a resume)."""
        for path in self.snapshot_files(run):
            if chunk_epoch(path) > after_epoch:
                path.unlink()

    def remove_run_files(self, run: str) -> None:
        self.checkpoint_path(run).unlink(missing_ok=True)
        shutil.rmtree(self.snapshot_dir(run), ignore_errors=True)

    # ---------------------------------------------------------------- summary
    def write_summary(self, markdown: str) -> Path:
        with atomic_write(self.summary_path, encoding="utf-8") as fh:
            fh.write(markdown)
        return self.summary_path


#: What a run's config.json must hold, and of which type (anything else is a foreign or damaged file).
_CONFIG_FIELDS = {"entries": list, "runs": list, "model": str, "dataset": str, "epochs": int, "seeds": list,
                  "batch_size": int, "steps_per_epoch": int}
_ENTRY_FIELDS = {"key": str, "optimizer": str, "label": str, "backend": str, "spec": str}
_RUN_FIELDS = {"run": str, "entry": str, "seed": int}


def _check_config(config: dict, path: Path) -> None:
    """One clear error naming ``path`` and the first field that is missing or of the wrong kind."""
    def bad(what: str):
        raise OptvizError(f"{str(path)!r} is not a complete optviz run config: {what}")

    for key, kind in _CONFIG_FIELDS.items():
        if not isinstance(config.get(key), kind) or isinstance(config.get(key), bool):
            bad(f"{key!r} is {'missing' if key not in config else f'not a {kind.__name__}'}")
    for i, entry in enumerate(config["entries"]):
        if not isinstance(entry, dict) or any(not isinstance(entry.get(k), t) for k, t in _ENTRY_FIELDS.items()):
            bad(f"setting {i} of 'entries' lacks one of {', '.join(_ENTRY_FIELDS)}")
    keys = {e["key"] for e in config["entries"]}
    for i, run in enumerate(config["runs"]):
        if not isinstance(run, dict) or any(not isinstance(run.get(k), t) for k, t in _RUN_FIELDS.items()):
            bad(f"run {i} of 'runs' lacks one of {', '.join(_RUN_FIELDS)}")
        if run["entry"] not in keys:
            bad(f"run {run['run']!r} names a setting {run['entry']!r} that 'entries' does not have")
    if not config["entries"] or not config["runs"]:
        bad("it has no settings or no runs")


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


# ==================================================================== summary table


def mean_std(values: Iterable[Optional[float]]):
    """Mean and sample standard deviation of the finite values (``None, None`` if none)."""
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
                per_seed["time"].append(eps[-1].get("train_time"))
                per_seed["epochs"].append(eps[-1]["epoch"])
            if label in tests:
                per_seed["test"].append(tests[label].get("test_acc"))
        rows.append({
            "entry": entry["key"], "label": entry["label"], "optimizer": entry["optimizer"],
            "backend": entry["backend"], "seeds": [r["seed"] for r in runs], "values": per_seed,
            **{k: mean_std(v) for k, v in per_seed.items()},
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


def summary_markdown(rows: List[dict], config: dict, state: Optional[dict] = None) -> str:
    """The summary table, with a heading that states the protocol and what the times measure."""
    seeds = config.get("seeds", [])
    n_seeds = len(seeds)
    what = config.get("preset") or "custom"
    subset = f", first {config['subset']:,} training images" if config.get("subset") else ""
    head = (f"# MNIST comparison ({what})\n\n"
            f"{config.get('dataset', 'mnist')}, model `{config.get('model')}`, batch {config.get('batch_size')}, "
            f"{config.get('epochs')} epoch{'s' if config.get('epochs') != 1 else ''}, schedule {config.get('schedule', 'constant')}{subset}; "
            f"seed{'s' if n_seeds > 1 else ''} {', '.join(map(str, seeds))}. "
            f"Accuracies in %{' (mean ± std over seeds)' if n_seeds > 1 else ''}. "
            f"{_time_note(config, state)}\n\n")
    cols = ["Optimizer", "Final val acc", "Best val acc", "Best epoch", "Test acc", "Train time (s)", "Status"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join(["---"] + ["---:"] * 5 + ["---"]) + "|"]
    for r in rows:
        lines.append("| " + " | ".join([
            r["label"], _pct(r["final"]), _pct(r["best"]), _num(r["best_epoch"], integer=True),
            _pct(r["test"]), _num(r["time"], "{:.0f}" if (r["time"][0] or 0) >= 100 else "{:.1f}"), r["status"]]) + " |")
    return head + "\n".join(lines) + "\n"


def write_summary_table(run: RunDir, records: Optional[List[dict]] = None) -> Tuple[List[dict], str]:
    """Write ``summary.md`` of ``run`` from its saved records (or ``records``, already read);
    returns the table's rows (:func:`summary_rows`) and its Markdown."""
    config, state = run.config(), run.read_state()
    rows = summary_rows(run.records() if records is None else records, config, state)
    markdown = summary_markdown(rows, config, state)
    run.write_summary(markdown)
    return rows, markdown


def _time_note(config: dict, state: Optional[dict]) -> str:
    trainer = (state or {}).get("trainer") or config.get("trainer_used") or "sequential"
    if trainer == "stacked":
        what = ("Train time = seconds of a run's training steps; the runs trained as one stacked model, "
                "so each run is charged its share (the forward and backward pass split evenly, each "
                "optimizer's update among its runs)")
    else:
        what = "Train time = seconds of a run's own training steps (without evaluation, snapshots and I/O)"
    wall = (state or {}).get("wall_clock")
    if wall:
        what += f"; the whole command took {wall:,.0f} s wall-clock" if wall >= 10 else \
            f"; the whole command took {wall:.1f} s wall-clock"
    return what + "."


def disk_usage(run_dir) -> List[tuple]:
    """``[(what, files, bytes)]`` of a run folder (or a study folder, its shards' run folders
    counted together), largest first: snapshots, checkpoints, metrics, figures, landscape
    caches, the rest."""
    root = Path(run_dir)
    if not root.is_dir():
        raise OptvizError(f"no run folder at {str(root)!r}")
    parts: Dict[str, list] = {}
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        rel = path.relative_to(root).parts
        if rel[0] == "shards" and len(rel) > 2:   # a study: inside each shard's run folder
            rel = rel[2:]
        if rel[0] in ("snapshots", "checkpoints", "figures", "landscape"):
            what = rel[0]
        elif path.name in ("metrics.jsonl", "epochs.csv", "steps.csv"):
            what = "metrics"
        else:
            what = "other"
        entry = parts.setdefault(what, [0, 0])
        entry[0] += 1
        entry[1] += path.stat().st_size
    return sorted(((k, v[0], v[1]) for k, v in parts.items()), key=lambda t: -t[2])


# ==================================================================== snapshots


def load_snapshots(run_dir, runs: Optional[Iterable[str]] = None) -> Dict[str, Snapshots]:
    """The weight snapshots of a run folder: ``{run label: Snapshots}``, in the run order
    of the comparison. ``runs`` picks some run labels (default: all that have snapshots).
    A damaged or truncated file raises one clear :class:`OptvizError` naming it."""
    import numpy as np
    import torch

    from .snapshots import read_chunk, read_origin

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
        folder = run.snapshot_dir(label)
        files = chunk_files(folder)
        meta_path = folder / "meta.json"
        if not files or not meta_path.exists():
            continue
        try:
            meta = json.loads(meta_path.read_text())
            origin = read_origin(folder)
            chunks = [read_chunk(f, origin) for f in files]
            cat = lambda key: torch.from_numpy(np.concatenate([c[key] for c in chunks]))  # noqa: E731
            out[label] = Snapshots(
                run=label, entry=meta["entry"], optimizer=meta["optimizer"], label=meta["label"],
                backend=meta["backend"], seed=meta["seed"], model=meta["model"],
                steps=cat("steps").to(torch.int64), weights=cat("weights").to(torch.float32),
                batch_loss=cat("batch_loss").to(torch.float32), val_loss=cat("val_loss").to(torch.float32),
                val_size=meta["val_size"], param_names=tuple(meta["param_names"]),
                param_shapes=tuple(tuple(s) for s in meta["param_shapes"]),
                steps_per_epoch=meta["steps_per_epoch"], status=state.get(label, {}).get("status", "unknown"))
        except (ValueError, KeyError, TypeError) as exc:
            raise OptvizError(f"{str(folder)!r}: unreadable snapshots ({type(exc).__name__}: {exc})") from None
        if out[label].weights.shape[1] != meta.get("num_params", out[label].weights.shape[1]):
            raise OptvizError(f"{str(folder)!r}: the snapshots have {out[label].weights.shape[1]} weights, "
                              f"meta.json says {meta['num_params']}")
    return out
