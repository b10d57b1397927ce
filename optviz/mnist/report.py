"""Figures and the summary table of an MNIST run folder, drawn from its saved records.

Everything here reads ``metrics.jsonl`` and ``config.json`` (never a model or an
optimizer), so ``optviz report RUN_DIR`` redraws a finished, interrupted or still
running comparison. Colours are the registry's, one per optimizer name, exactly
as in the 2-D figures; the ``paper`` / ``slides`` / ``dark`` presets of
:mod:`optviz.views.style` set sizes and type. With several seeds each curve is
the mean and its band the mean ± one standard deviation.

Figures (``RUN_DIR/figures/``):

* ``curves_epoch.png``: loss (validation solid, training dashed) and validation
  accuracy against epochs;
* ``curves_time.png``: the same against wall-clock seconds of training;
* ``step_loss.png``: the minibatch loss of every step, smoothed, against epochs.

Example::

    paths = write_report("runs/lecture", style="slides")
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from ..io import atomic_path
from .results import RunDir, write_summary_table

__all__ = ["curves_figure", "step_loss_figure", "write_report", "FIGURES"]

FIGURES = ("curves_epoch.png", "curves_time.png", "step_loss.png")


def _entries(config: dict) -> List[dict]:
    return list(config.get("entries", []))


def _series(records: List[dict], config: dict, key: str, x: str, min_epoch: int = 0) -> Dict[str, tuple]:
    """entry -> (x, mean, std) over seeds of ``key`` in the epoch records, for the epochs
    every seed has reached."""
    runs_of = {}
    for r in config.get("runs", []):
        runs_of.setdefault(r["entry"], []).append(r["run"])
    by_run: Dict[str, Dict[int, dict]] = {}
    for r in records:
        if r.get("kind") == "epoch" and r.get("epoch", 0) >= min_epoch:
            by_run.setdefault(r["run"], {})[r["epoch"]] = r
    out = {}
    for entry, runs in runs_of.items():
        per_run = [by_run.get(run, {}) for run in runs]
        per_run = [p for p in per_run if p]
        if not per_run:
            continue
        epochs = sorted(set.intersection(*(set(p) for p in per_run)))
        if not epochs:
            continue
        vals = np.array([[_num(p[e].get(key)) for e in epochs] for p in per_run])
        xs = np.array([[_num(p[e].get("train_time" if x == "time" else "epoch")) for e in epochs] for p in per_run])
        if not np.isfinite(vals).any():
            continue
        with np.errstate(all="ignore"), _quiet():
            mean = np.nanmean(vals, axis=0)
            std = np.nanstd(vals, axis=0, ddof=1) if len(vals) > 1 else np.zeros_like(mean)
        out[entry] = (np.nanmean(xs, axis=0), mean, np.nan_to_num(std))
    return out


def _num(v) -> float:
    return float("nan") if v is None else float(v)


class _quiet:
    """Silence numpy's 'mean of empty slice' warnings (a seed that diverged)."""

    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)


def _style_of(entry: dict, style: str) -> dict:
    from ..views.style import colour_for

    torch_ref = entry.get("backend") == "torch"
    return {"color": colour_for(entry["optimizer"], style),
            "marker": "o" if torch_ref else None, "markerfacecolor": "none", "markevery": 1}


def _band(ax, x, mean, std, colour, **kw):
    line, = ax.plot(x, mean, color=colour, **kw)
    if np.any(std > 0):
        ax.fill_between(x, mean - std, mean + std, color=colour, alpha=0.18, linewidth=0)
    return line


def _title(config: dict) -> str:
    seeds = config.get("seeds", [])
    subset = f", {config['subset']:,} training images" if config.get("subset") else ""
    seeds_text = f"{len(seeds)} seeds (mean ± std)" if len(seeds) > 1 else f"seed {seeds[0]}" if seeds else ""
    data = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST"}.get(config.get("dataset"), config.get("dataset"))
    return (f"{data}: {_model_name(config.get('model'))}, batch {config.get('batch_size')}{subset}, "
            f"{config.get('epochs')} epochs, {seeds_text}")


def _model_name(model: str) -> str:
    """"mlp" -> "MLP 784-128-ReLU-10", from the model registry's description."""
    from .models import MODELS

    info = MODELS.get(model)
    if info is None:
        return str(model)
    desc = info.description.split(":", 1)[-1].split("(")[0].split(" with ")[0].strip()
    name = {"mlp": "MLP", "deep_mlp": "deep MLP", "cnn": "CNN"}.get(model, model)
    return f"{name} {desc}" if desc[:1].isdigit() else name


def _legend(fig, entries: List[dict], style: str, extra=()):
    import matplotlib.lines as mlines

    handles = []
    for e in entries:
        st = _style_of(e, style)
        handles.append(mlines.Line2D([], [], color=st["color"], marker=st["marker"], markerfacecolor="none",
                                     label=e["label"]))
    handles += list(extra)
    ncol = min(len(handles), 3 if style == "paper" else 3)
    fig.legend(handles=handles, loc="outside lower center", ncol=ncol)


def curves_figure(records: List[dict], config: dict, x: str = "epoch", style: str = "paper"):
    """Loss and validation accuracy against ``x`` = "epoch" or "time" (wall-clock seconds
    of training); returns a matplotlib ``Figure``."""
    import matplotlib
    import matplotlib.lines as mlines
    from matplotlib.figure import Figure

    from ..views.style import style_context

    with style_context(style):
        fig = Figure(layout="constrained")
        ax_loss, ax_acc = fig.subplots(1, 2)
        entries = _entries(config)
        val = _series(records, config, "val_loss", x)
        trn = _series(records, config, "train_loss", x, min_epoch=1)
        acc = _series(records, config, "val_acc", x, min_epoch=1)
        lows = []
        for e in entries:
            st = _style_of(e, style)
            kw = {k: v for k, v in st.items() if k != "color"}
            if e["key"] in val:
                _band(ax_loss, *val[e["key"]], st["color"], **kw)
            if e["key"] in trn:
                _band(ax_loss, *trn[e["key"]], st["color"], linestyle="--", alpha=0.75, **kw)
            if e["key"] in acc:
                xs, mean, std = acc[e["key"]]
                _band(ax_acc, xs, 100 * mean, 100 * std, st["color"], **kw)
                lows.append(np.nanmin(100 * (mean - std)))
        threads = config.get("num_threads")
        where = f"{config.get('device', 'cpu')}" + (f", {threads} thread{'s' if threads != 1 else ''}" if threads else "")
        xlabel = "epoch" if x == "epoch" else f"training time (s; {where})"
        ax_loss.set_xlabel(xlabel)
        ax_loss.set_ylabel("cross-entropy loss")
        ax_loss.set_yscale("log")
        ax_loss.set_title("loss")
        ax_acc.set_xlabel(xlabel)
        ax_acc.set_ylabel("validation accuracy (%)")
        ax_acc.set_title("validation accuracy")
        if lows and np.isfinite(lows).any():
            low = float(np.nanmin(lows))
            ax_acc.set_ylim(max(0.0, math.floor(low - 0.5)), 100.0 if low < 99 else 100.2)
        if x == "epoch":
            for ax in (ax_loss, ax_acc):
                ax.xaxis.get_major_locator().set_params(integer=True)
        for ax in (ax_loss, ax_acc):
            ax.grid(True, alpha=0.25)
        ink = matplotlib.rcParams["text.color"]
        keys = [mlines.Line2D([], [], color=ink, label="validation"),
                mlines.Line2D([], [], color=ink, linestyle="--", alpha=0.75, label="training (minibatches)")]
        ax_loss.legend(handles=keys, loc="upper right")
        _legend(fig, entries, style)
        fig.suptitle(_title(config))
    fig._optviz_style = style
    return fig


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average that skips NaN (a diverged tail stays NaN)."""
    if window <= 1 or len(values) < 2:
        return values
    ok = np.isfinite(values)
    v = np.where(ok, values, 0.0)
    c = np.cumsum(np.insert(v, 0, 0.0))
    n = np.cumsum(np.insert(ok.astype(float), 0, 0.0))
    idx = np.arange(1, len(values) + 1)
    lo = np.maximum(idx - window, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (c[idx] - c[lo]) / (n[idx] - n[lo])
    out[~ok] = np.nan
    return out


def step_loss_figure(records: List[dict], config: dict, style: str = "paper", window: Optional[int] = None):
    """The minibatch loss of every step (moving average over ``window`` steps, default a
    tenth of an epoch) against epochs; returns a ``Figure``."""
    import matplotlib.lines as mlines
    from matplotlib.figure import Figure

    from ..views.style import style_context

    spe = max(int(config.get("steps_per_epoch") or 1), 1)
    window = window or max(1, min(200, spe // 10))
    losses: Dict[str, Dict[int, float]] = {}
    for r in records:
        if r.get("kind") == "steps":
            d = losses.setdefault(r["run"], {})
            for i, v in enumerate(r["loss"]):
                d[r["first_step"] + i] = _num(v)
    runs_of = {}
    for r in config.get("runs", []):
        runs_of.setdefault(r["entry"], []).append(r["run"])
    with style_context(style):
        fig = Figure(layout="constrained")
        ax = fig.subplots()
        entries = _entries(config)
        for e in entries:
            curves = []
            for run in runs_of.get(e["key"], []):
                d = losses.get(run)
                if d:
                    n = max(d)
                    arr = np.full(n, np.nan)
                    for s, v in d.items():
                        arr[s - 1] = v
                    curves.append(_smooth(arr, window))
            if not curves:
                continue
            n = min(len(c) for c in curves)
            stack = np.array([c[:n] for c in curves])
            with _quiet():
                mean = np.nanmean(stack, axis=0)
                std = np.nanstd(stack, axis=0, ddof=1) if len(stack) > 1 else np.zeros(n)
            xs = np.arange(1, n + 1) / spe
            st = _style_of(e, style)
            kw = {"linestyle": ":" if e.get("backend") == "torch" else "-"}
            _band(ax, xs, mean, np.nan_to_num(std), st["color"], **kw)
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"minibatch loss (moving average, {window} steps)")
        ax.grid(True, alpha=0.25)
        handles = [mlines.Line2D([], [], color=_style_of(e, style)["color"],
                                 linestyle=":" if e.get("backend") == "torch" else "-", label=e["label"])
                   for e in entries]
        fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 3))
        fig.suptitle(_title(config))
    fig._optviz_style = style
    return fig


def _save(fig, path: Path, style: str) -> Path:
    from ..views.style import STYLES, style_context

    with style_context(style), atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=STYLES[style]["savefig.dpi"], facecolor=fig.get_facecolor(),
                    metadata={"Software": "optviz (matplotlib)"})
    return path


def write_report(run_dir, style: str = "paper", figures: bool = True) -> Dict[str, Path]:
    """(Re)write ``summary.md`` and the figures of ``run_dir`` from its saved records.

    Returns ``{"summary": path, "curves_epoch": path, ...}``; the table's Markdown is in
    ``path.read_text()``.
    """
    from ..errors import UnknownName
    from ..views.style import STYLES

    if style not in STYLES:
        raise UnknownName("style", style, STYLES)
    run = RunDir.open(run_dir)
    config = run.config()
    records = run.records()
    write_summary_table(run, records)
    paths = {"summary": run.summary_path}
    if not figures or not any(r.get("kind") == "epoch" for r in records):
        return paths
    run.figures_dir.mkdir(exist_ok=True)
    paths["curves_epoch"] = _save(curves_figure(records, config, "epoch", style),
                                  run.figures_dir / "curves_epoch.png", style)
    paths["curves_time"] = _save(curves_figure(records, config, "time", style),
                                 run.figures_dir / "curves_time.png", style)
    if any(r.get("kind") == "steps" for r in records):
        paths["step_loss"] = _save(step_loss_figure(records, config, style), run.figures_dir / "step_loss.png", style)
    return paths
