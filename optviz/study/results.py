"""A study's results: its shards merged into one table of runs, and the verdict drawn from it.

:func:`merge` reads every shard's run folder and writes ``runs.jsonl`` (one line per
run: setting, grid point, seed, status, final validation and test accuracy, and the
validation curve used for time to target) and ``runs.csv``. :func:`verdict` decides,
per optimizer, honestly:

* **selection on validation**: the best setting is the one with the highest mean
  final validation accuracy over the seeds (settings that diverged on any seed, or
  have not finished, are not candidates); its *test* accuracy is then reported, so
  the test set never takes part in the choice;
* **the default beside it**: the optimizer's own setting (the lecture's), with its
  validation and test accuracy;
* **robustness**: how many decades of learning rate (around the best, the other grid
  values fixed) stay within 0.5 percentage points of the best validation accuracy;
* **time to target**: steps, epochs and seconds of training until the validation
  accuracy first reaches the target (97 %, AlgoPerf's MNIST target), at the best
  setting, averaged over the seeds; "not reached" if a seed never reaches it.
"""
from __future__ import annotations

import csv
import dataclasses
import math
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from ..errors import OptvizError
from ..io import atomic_write, json_text
from ..mnist.results import mean_std

__all__ = ["merge", "verdict", "Verdict", "setting_table", "lr_line", "ROBUST_PP"]

ROBUST_PP = 0.5   # "within 0.5 percentage points of the best"


def merge(study_dir) -> List[dict]:
    """Merge the shards' run folders into ``runs.jsonl`` and ``runs.csv``; returns the runs."""
    from ..mnist.results import RunDir
    from .run import StudyDir

    study = StudyDir.open(study_dir)
    record = study.read()
    settings = {s["key"]: s for s in record["settings"]}
    spec = study.spec()
    runs: List[dict] = []
    for shard in study.shards():
        folder = study.shard_dir(shard.name)
        base = {"shard": shard.name}
        if not (folder / "config.json").exists():
            runs += [_empty(settings[k], seed, base) for seed in shard.seeds for k in shard.settings]
            continue
        run = RunDir.open(folder)
        config = run.config()
        entries = config.get("entries", [])
        if len(entries) != len(shard.settings):
            raise OptvizError(f"{str(folder)!r} does not hold shard {shard.name} of this study "
                              f"({len(entries)} settings, the shard has {len(shard.settings)})")
        state = run.read_state().get("runs", {})
        by_run: Dict[str, List[dict]] = {}
        for r in run.records():
            if r.get("run"):
                by_run.setdefault(r["run"], []).append(r)
        per_epoch = config.get("steps_per_epoch") or 1
        for seed in shard.seeds:
            for entry, key in zip(entries, shard.settings):
                label = f"{entry['key']}-s{seed}"
                runs.append(_outcome(settings[key], seed, label, by_run.get(label, []), state.get(label, {}),
                                     per_epoch, {**base, "run": label}))
    for r in runs:
        r["target"] = spec.target
    with atomic_write(study.runs_path, encoding="utf-8") as fh:
        fh.writelines(json_text(r) + "\n" for r in runs)
    _write_csv(study.runs_csv_path, runs)
    return runs


def _empty(setting: dict, seed: int, base: dict) -> dict:
    return {**base, "setting": setting["key"], "optimizer": setting["optimizer"], "base": setting["base"],
            "point": setting["point"], "default": setting["default"], "seed": seed, "status": "not started",
            "epochs": 0, "final_val_acc": None, "final_val_loss": None, "test_acc": None, "test_loss": None,
            "train_time": None, "curve": [], "steps_per_epoch": None, "diverged_at": None}


def _outcome(setting: dict, seed: int, label: str, records: List[dict], state: dict, per_epoch: int,
             base: dict) -> dict:
    out = _empty(setting, seed, base)
    epochs = sorted((r for r in records if r["kind"] == "epoch"), key=lambda r: r["epoch"])
    evals = [r for r in records if r["kind"] == "eval"]
    tests = [r for r in records if r["kind"] == "test"]
    curve = sorted([(r["step"], r.get("val_acc"), r.get("train_time")) for r in epochs + evals
                    if r.get("val_acc") is not None])
    last = epochs[-1] if epochs else None
    out.update(status=state.get("status", "not started"), epochs=last["epoch"] if last else 0,
               final_val_acc=last.get("val_acc") if last and last["epoch"] > 0 else None,
               final_val_loss=last.get("val_loss") if last and last["epoch"] > 0 else None,
               train_time=last.get("train_time") if last else None,
               test_acc=tests[-1].get("test_acc") if tests else None,
               test_loss=tests[-1].get("test_loss") if tests else None,
               curve=[list(c) for c in curve], steps_per_epoch=per_epoch, diverged_at=state.get("diverged_at"))
    return out


def _write_csv(path: Path, runs: List[dict]) -> None:
    keys = sorted({k for r in runs for k in r["point"]})
    cols = ["setting", "optimizer", *keys, "default", "seed", "status", "epochs", "final_val_acc", "final_val_loss",
            "test_acc", "test_loss", "train_time", "diverged_at", "shard"]
    with atomic_write(path, newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for r in runs:
            w.writerow([r["point"].get(c, "") if c in keys else ("" if r.get(c) is None else r.get(c))
                        for c in cols])


# ====================================================================== the verdict


@dataclasses.dataclass
class SettingStats:
    key: str
    optimizer: str
    base: str
    point: dict
    default: bool
    seeds: int
    done: int                    # seeds finished
    diverged: int                # seeds that diverged
    val: Tuple[Optional[float], Optional[float]]    # mean, std of the final validation accuracy
    test: Tuple[Optional[float], Optional[float]]
    runs: List[dict]

    @property
    def candidate(self) -> bool:
        return self.done == self.seeds and self.diverged == 0 and self.val[0] is not None


@dataclasses.dataclass
class Verdict:
    base: str                    # the optimizer's base spec
    optimizer: str
    best: Optional[SettingStats]
    default: Optional[SettingStats]
    robust: Optional[Tuple[float, float, float]]   # (decades, lr low, lr high)
    to_target: dict              # steps, epochs, seconds (means), reached, seeds
    settings: List[SettingStats]


def setting_table(runs: List[dict]) -> List[SettingStats]:
    """Per setting (in study order): its seeds' outcomes aggregated."""
    order: List[str] = []
    by: Dict[str, List[dict]] = {}
    for r in runs:
        if r["setting"] not in by:
            order.append(r["setting"])
        by.setdefault(r["setting"], []).append(r)
    out = []
    for key in order:
        rs = by[key]
        first = rs[0]
        out.append(SettingStats(
            key=key, optimizer=first["optimizer"], base=first["base"], point=first["point"], default=first["default"],
            seeds=len(rs), done=sum(r["status"] == "done" for r in rs), diverged=sum(r["status"] == "diverged" for r in rs),
            val=mean_std([r["final_val_acc"] for r in rs if r["status"] == "done"]),
            test=mean_std([r["test_acc"] for r in rs if r["status"] == "done"]), runs=rs))
    return out


def verdict(runs: List[dict], target: float) -> List[Verdict]:
    """One :class:`Verdict` per optimizer (base spec) of the study, in study order."""
    table = setting_table(runs)
    bases: List[str] = []
    for s in table:
        if s.base not in bases:
            bases.append(s.base)
    out = []
    for base in bases:
        mine = [s for s in table if s.base == base]
        candidates = [s for s in mine if s.candidate]
        best = max(candidates, key=lambda s: s.val[0]) if candidates else None  # first of equals wins
        default = next((s for s in mine if s.default), None)
        out.append(Verdict(base=base, optimizer=mine[0].optimizer, best=best, default=default,
                           robust=_robustness(best, mine), to_target=_to_target(best, target), settings=mine))
    return out


def lr_line(settings: List[SettingStats], point: dict) -> List[SettingStats]:
    """The settings that differ from ``point`` in the learning rate alone, by learning rate."""
    def rest(p: dict) -> dict:
        return {k: v for k, v in p.items() if k != "lr"}

    line = [s for s in settings if "lr" in s.point and rest(s.point) == rest(point)]
    return sorted(line, key=lambda s: s.point["lr"])


def _robustness(best: Optional[SettingStats], mine: List[SettingStats]):
    """(decades, lo, hi): the contiguous learning rates around the best within ROBUST_PP of it."""
    if best is None or "lr" not in best.point:
        return None
    line = lr_line(mine, best.point)
    i = next(k for k, s in enumerate(line) if s.key == best.key)
    floor = best.val[0] - ROBUST_PP / 100

    def ok(s):
        return s.candidate and s.val[0] >= floor - 1e-12

    lo = hi = i
    while lo > 0 and ok(line[lo - 1]):
        lo -= 1
    while hi < len(line) - 1 and ok(line[hi + 1]):
        hi += 1
    a, b = line[lo].point["lr"], line[hi].point["lr"]
    return math.log10(b / a), a, b


def _to_target(best: Optional[SettingStats], target: float) -> dict:
    if best is None:
        return {"reached": 0, "seeds": 0}
    steps, seconds, per = [], [], None
    for r in best.runs:
        per = r.get("steps_per_epoch") or per
        hit = next(((s, t) for s, acc, t in r["curve"] if acc is not None and acc >= target), None)
        if hit is not None:
            steps.append(hit[0])
            seconds.append(hit[1])
    out = {"reached": len(steps), "seeds": len(best.runs)}
    if steps and len(steps) == len(best.runs):
        out["steps"] = sum(steps) / len(steps)
        out["epochs"] = out["steps"] / per if per else None
        out["seconds"] = sum(t for t in seconds if t is not None) / len(seconds) if all(
            t is not None for t in seconds) else None
    return out
