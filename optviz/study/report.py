"""A study's verdict on paper: ``summary.md`` and the figures, redrawn from its shards.

``optviz report STUDY_DIR`` (and the end of ``optviz tune``) calls
:func:`write_study_report`: merge the shards (:func:`optviz.study.results.merge`),
decide per optimizer (:func:`~optviz.study.results.verdict`), and write

* ``summary.md``: per optimizer the best setting (chosen on validation), its validation
  and test accuracy, the lecture default's, the robust range of learning rates, and the
  time to the target accuracy; then every setting's numbers;
* ``figures/sensitivity.png``: validation error (log) against the learning rate, mean +- std
  over the seeds, diverged settings counted below, best and default marked (the same
  drawing as the 2-D tuning figure, where lower is better on a log axis too); with two
  grid keys, ``figures/heatmap.png`` too.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from ..io import atomic_write
from ..mnist.results import _pct   # "mean ± std" in %, as in the comparison's summary
from .results import ROBUST_PP, Verdict, lr_line, merge, setting_table, verdict
from .run import plural

__all__ = ["write_study_report", "summary_markdown", "sensitivity_data", "heatmap_data"]


def _point(point: dict) -> str:
    from ..optim.registry import _greek

    return ", ".join(f"{_greek(k)}={v:.3g}" if isinstance(v, float) else f"{_greek(k)}={v}" for k, v in point.items())


def _label(base: str) -> str:
    from ..optim import registry

    name, hyper = registry.parse_spec(base)
    return registry.get(name).display


def summary_markdown(spec, runs: List[dict], verdicts: List[Verdict], timing: dict) -> str:
    config = spec.base_config()
    seeds = spec.seeds
    done = sum(r["status"] == "done" for r in runs)
    subset = f", first {config.subset:,} training images" if config.subset else ""
    head = (f"# Tuning study ({spec.preset or 'custom'})\n\n"
            f"{config.dataset}, model `{config.model}`, batch {config.batch_size}, {plural(config.epochs, 'epoch')}, "
            f"schedule {config.schedule}{subset}; "
            f"grid {', '.join(f'{k}={v}' for k, v in spec.grid.items()) or '(none)'}; seeds "
            f"{', '.join(map(str, seeds))}. {done} of {len(runs)} runs finished"
            + (f"; {timing['wall_clock']:,.0f} s wall-clock in all" if timing.get("wall_clock") else "") + ".\n\n"
            f"The best setting of each optimizer is chosen on the **validation** accuracy (mean over the seeds "
            f"at the last epoch; settings that diverged on any seed are out); only then is its **test** accuracy "
            f"read. *Robust range*: the learning rates around the best whose validation accuracy stays within "
            f"{ROBUST_PP} pp of it. *To {100 * spec.target:g} %*: training steps, epochs and seconds until the "
            f"validation accuracy first reaches {100 * spec.target:g} % (AlgoPerf's MNIST target), at the best "
            f"setting, mean over the seeds; seconds are the run's share of its stack's training time.\n\n")
    cols = ["Optimizer", "Best setting", "Val acc", "Test acc", "Lecture setting", "Its test acc", "Robust range",
            f"To {100 * spec.target:g} %: steps", "epochs", "seconds"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join(["---", "---"] + ["---:"] * 2 + ["---", "---:", "---"]
                                                          + ["---:"] * 3) + "|"]
    for v in verdicts:
        best, default = v.best, v.default
        robust = "–"
        if v.robust is not None:
            dec, lo, hi = v.robust
            robust = f"{dec:.2g} decades ({lo:.2g}–{hi:.2g})" if dec > 0 else f"only η={lo:.2g}"
        t = v.to_target
        if "steps" in t:
            steps, epochs = f"{t['steps']:,.0f}", f"{t['epochs']:.2f}" if t.get("epochs") else "–"
            secs = f"{t['seconds']:.1f}" if t.get("seconds") is not None else "–"
        else:
            steps = "not reached" if t.get("seeds") else "–"
            if 0 < t.get("reached", 0) < t.get("seeds", 0):
                steps = f"{t['reached']}/{t['seeds']} seeds"
            epochs = secs = "–"
        lines.append("| " + " | ".join([
            _label(v.base), _point(best.point) if best else "none finished", _pct(best.val) if best else "–",
            _pct(best.test) if best else "–", _point(default.point) if default else "–",
            _pct(default.test) if default else "–", robust, steps, epochs, secs]) + " |")
    table = setting_table(runs)
    detail = ["", "## Every setting", "", "| Setting | Default | Val acc | Test acc | Seeds done | Diverged |",
              "|---|---|---:|---:|---:|---:|"]
    for s in table:
        detail.append(f"| {_label(s.base)} ({_point(s.point)}) | {'yes' if s.default else ''} | {_pct(s.val)} | "
                      f"{_pct(s.test)} | {s.done}/{s.seeds} | {s.diverged or ''} |")
    return head + "\n".join(lines) + "\n" + "\n".join(detail) + "\n"


def sensitivity_data(spec, runs: List[dict], verdicts: Optional[List[Verdict]] = None):
    """The :class:`~optviz.views.sensitivity.Sensitivity` record of a study over its learning rates:
    per optimizer, the line through its best setting (else its first). ``verdicts``: those of
    ``runs``, if already decided."""
    from ..optim import registry
    from ..views.sensitivity import Sensitivity

    names, labels, xs, values, gone, defaults = [], [], [], [], [], []
    for v in verdicts if verdicts is not None else verdict(runs, spec.target):
        base = v.base
        mine = [s for s in v.settings if "lr" in s.point]
        if not mine:
            continue
        through = v.best.point if v.best else mine[0].point
        line = lr_line(mine, through)
        seeds = max(s.seeds for s in line)
        vals = np.full((len(line), seeds), np.nan)
        div = np.zeros((len(line), seeds), dtype=bool)
        for i, s in enumerate(line):
            for j, r in enumerate(s.runs):
                div[i, j] = r["status"] == "diverged"
                if r["status"] == "done" and r["final_val_acc"] is not None:
                    vals[i, j] = 1.0 - r["final_val_acc"]   # the error: on a log axis 3 % and 4 % lie apart
        name, hyper = registry.parse_spec(base)
        fixed = {k: x for k, x in hyper.items() if k != "lr"}
        others = {k: x for k, x in through.items() if k != "lr"}
        names.append(name)
        labels.append(registry.format_spec(name, {**fixed, **others}, lr=False))
        xs.append(np.array([s.point["lr"] for s in line]))
        values.append(vals)
        gone.append(div)
        defaults.append(next((i for i, s in enumerate(line) if s.default), None))
    if not names:
        return None
    return Sensitivity(names=names, labels=labels, x=xs, values=values, diverged=gone,
                       ylabel="validation error (%)", higher_is_better=False, yscale="log", centre="mean",
                       defaults=defaults, percent=True,
                       subtitle=f"mean ± std over {plural(len(spec.seeds), 'seed')}, "
                                f"{plural(spec.base_config().epochs, 'epoch')}")


def heatmap_data(spec, runs: List[dict], verdicts: Optional[List[Verdict]] = None):
    """A :class:`~optviz.views.sensitivity.Heatmap` when the study has two grid keys.
    ``verdicts``: those of ``runs``, if already decided."""
    from ..optim import registry
    from ..views.sensitivity import Heatmap

    keys = list(spec.grid)
    if len(keys) != 2:
        return None
    kx, ky = ("lr", next(k for k in keys if k != "lr")) if "lr" in keys else tuple(keys)
    out = dict(names=[], labels=[], x=[], y=[], values=[], diverged=[], best=[], defaults=[])
    for v in verdicts if verdicts is not None else verdict(runs, spec.target):
        base = v.base
        mine = [s for s in v.settings if kx in s.point and ky in s.point]
        if not mine:
            continue
        xs = sorted({s.point[kx] for s in mine})
        ys = sorted({s.point[ky] for s in mine})
        vals = np.full((len(ys), len(xs)), np.nan)
        div = np.zeros((len(ys), len(xs)), dtype=bool)
        best = default = None
        for s in mine:
            r, c = ys.index(s.point[ky]), xs.index(s.point[kx])
            div[r, c] = s.diverged > 0
            if s.candidate:
                vals[r, c] = s.val[0]
            if v.best is not None and s.key == v.best.key:
                best = (r, c)
            if s.default:
                default = (r, c)
        name, _ = registry.parse_spec(base)
        out["names"].append(name)
        out["labels"].append(registry.get(name).display)
        out["x"].append(np.array(xs))
        out["y"].append(np.array(ys))
        out["values"].append(vals)
        out["diverged"].append(div)
        out["best"].append(best)
        out["defaults"].append(default)
    if not out["names"]:
        return None
    greek = registry._greek
    return Heatmap(**out, xlabel=f"{greek(kx)}", ylabel=f"{greek(ky)}", zlabel="validation accuracy (%)")


def write_study_report(study_dir, style: str = "paper", figures: bool = True) -> Dict[str, Path]:
    """Merge the shards, write ``summary.md`` and (unless ``figures=False``) the figures.
    Returns ``{name: path}`` of what was written."""
    from ..views.sensitivity import draw_sensitivity, heatmap_figure
    from ..views.style import STYLES
    from .run import StudyDir

    if style not in STYLES:
        from ..errors import UnknownName

        raise UnknownName("style", style, STYLES)
    study = StudyDir.open(study_dir)
    spec = study.spec()
    runs = merge(study.path)
    verdicts = verdict(runs, spec.target)
    timing = study.read_timing()
    paths: Dict[str, Path] = {}
    with atomic_write(study.summary_path, encoding="utf-8") as fh:
        fh.write(summary_markdown(spec, runs, verdicts, timing))
    paths["summary"] = study.summary_path
    paths["runs"] = study.runs_path
    if not figures or not any(r["status"] == "done" for r in runs):
        return paths
    title = f"Which optimizer wins once each is tuned? MNIST, {_model(spec)}"
    sens = sensitivity_data(spec, runs, verdicts)
    if sens is not None:
        paths["sensitivity"] = _save(draw_sensitivity(sens, style, title), study.figures_dir / "sensitivity.png", style)
    heat = heatmap_data(spec, runs, verdicts)
    if heat is not None:
        paths["heatmap"] = _save(heatmap_figure(heat, style, title), study.figures_dir / "heatmap.png", style)
    return paths


def _model(spec) -> str:
    from ..mnist.report import _model_name

    return _model_name(spec.base_config().model)


def _save(fig, path: Path, style: str) -> Path:
    from ..views.save import save_figure

    save_figure(fig, path)   # makes figures/ (through io), and removes it again if the write fails
    return path
