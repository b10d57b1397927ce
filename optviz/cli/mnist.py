"""``optviz mnist``: train optimizers side by side on MNIST; ``optviz report``: redraw a run."""
from __future__ import annotations

import datetime
from pathlib import Path

import click

from ..errors import InvalidValue, OptvizError, UnknownName
from ._common import (EXIT_INTERRUPTED, choice, complete_specs, datasets, dtypes, lr_schedules, models, presets, snapshot_kinds, styles,
                      trainers)


class _Number(click.ParamType):
    """int / float options whose bad values give optviz's one-line error (exit 2), not a usage screen."""

    def __init__(self, kind, low=None, strict=False):
        self.kind, self.low, self.strict = kind, low, strict
        self.name = kind.__name__

    def convert(self, value, param, ctx):
        if isinstance(value, self.kind) and not isinstance(value, bool):
            number = value
        else:
            try:
                number = self.kind(str(value).strip())
            except ValueError:
                raise InvalidValue(f"{_opt(param)} must be {'an integer' if self.kind is int else 'a number'}, "
                                   f"got {value!r}") from None
        if self.low is not None and (number <= self.low if self.strict else number < self.low):
            raise InvalidValue(f"{_opt(param)} must be {'>' if self.strict else '>='} {self.low}, got {value}")
        return number


def _opt(param) -> str:
    return param.opts[0] if param is not None and param.opts else "value"


def _compile(value):
    """--compile on|off|auto -> True|False|"auto" (None: not given)."""
    if value is None:
        return None
    table = {"on": True, "off": False, "auto": "auto"}
    if value not in table:
        raise UnknownName("compile setting", value, table)
    return table[value]


def _device(value):
    if value is None:
        return None
    from ..devices import check_device

    check_device(value)
    return value


def _echo_err(msg: str) -> None:
    click.echo(msg, err=True)


_style_option = click.option("--style", default="paper", show_default=True, **choice("style", styles),
                             metavar="[paper|slides|dark]", help="Figure style preset.")

def protocol_options(f):
    """The options that say what data and which protocol a comparison or a study trains on,
    shared by ``optviz mnist`` and ``optviz tune`` (one definition, one help text)."""
    for option in reversed([
        click.option("--model", default=None, **choice("model", models), metavar="[mlp|deep_mlp|cnn]",
                     help="Network (lecture: mlp, 784-128-ReLU-10)."),
        click.option("--dataset", default=None, **choice("dataset", datasets), metavar="[mnist|fashion_mnist]",
                     help="Dataset."),
        click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="Data folder (holds MNIST/raw/). Default: $OPTVIZ_DATA_DIR, else the per-user cache."),
        click.option("--subset", type=_Number(int, 0, strict=True), default=None, metavar="N",
                     help="Train on the first N training images only."),
        click.option("--eval-subset", type=_Number(int, 0, strict=True), default=None, metavar="N",
                     help="Validate and test on the first N images only."),
        click.option("--val-size", type=_Number(int, 0, strict=True), default=None, metavar="N",
                     help="Training images held out for validation (lecture: 10000)."),
        click.option("--schedule", default=None, **choice("schedule", lr_schedules),
                     metavar="[constant|cosine|step|warmup_cosine|one_cycle]", help="Learning-rate schedule over the run."),
        click.option("--compile", "compile_", default=None, callback=lambda ctx, param, value: _compile(value),
                     metavar="[on|off|auto]", help="torch.compile the optimizer updates (one fused loop per step; the first "
                     "compile on a machine takes ~30 s, then it is cached). Default: $OPTVIZ_COMPILE, else off."),
        click.option("--device", default=None, callback=lambda ctx, param, value: _device(value),
                     help="torch device, e.g. cpu or cuda (checked: it must exist here)."),
    ]):
        f = option(f)
    return f


# Options that define a comparison; with --resume the saved ones are used.
_TRAINING_OPTIONS = ("preset", "opt", "reference", "batch_size", "seeds", "model", "dataset", "subset",
                     "eval_subset", "val_size", "schedule", "clip_norm", "weight_decay", "snapshots",
                     "snapshot_every", "trainer", "threads", "compile_", "dtype", "device", "out")


@click.command("mnist")
@click.option("--preset", default="lecture", show_default=True, **choice("preset", presets), metavar="[lecture|quick]",
              help="Protocol to start from; the options below override it.")
@click.option("--opt", "opt", multiple=True, metavar="SPEC", shell_complete=complete_specs,
              help="Optimizer setting, repeatable: NAME[:KEY=VALUE,...], e.g. adam:lr=0.001 "
                   "(torch:NAME:... runs torch.optim's). Default: the preset's.")
@click.option("--reference", is_flag=True, default=None,
              help="Also run torch.optim's implementation of every setting, side by side.")
@click.option("--epochs", type=_Number(int, 0, strict=True), default=None, help="Epochs (lecture: 15).")
@click.option("--batch-size", type=_Number(int, 0, strict=True), default=None, help="Minibatch size (lecture: 32).")
@protocol_options
@click.option("--seeds", default=None, metavar="N|S,S,...",
              help="Repeats: a count (3 = seeds 0,1,2) or a list (0,4,7); curves show mean ± std.")
@click.option("--clip-norm", type=_Number(float, 0, strict=True), default=None,
              help="Clip the gradient's global norm to this before every step.")
@click.option("--weight-decay", type=_Number(float, 0), default=None,
              help="weight_decay for every optimizer that has one (a spec's own value wins).")
@click.option("--snapshots", default=None, **choice("snapshot policy", snapshot_kinds),
              metavar="[landscape|dense|none]",
              help="Weight snapshots for the loss landscape: landscape (the default: dense early, 2 per epoch; "
                   "~40 MB per seed for the lecture), dense (every --snapshot-every steps), none.")
@click.option("--snapshot-every", type=_Number(int, 0), default=None, metavar="K",
              help="Dense snapshots: the weights every K steps (0: none).")
@click.option("--trainer", default=None, **choice("trainer", trainers), metavar="[auto|stacked|sequential]",
              help="stacked: all runs as one batched model (the default where it applies); sequential: one by one.")
@click.option("--threads", type=_Number(int, 0, strict=True), default=None,
              help="torch threads while training (default: 1 sequential; stacked: the cores that are free, "
                   "i.e. not busy with other work).")
@click.option("--dtype", default=None, **choice("dtype", dtypes), metavar="[float32|float64]",
              help="Precision (float64 for exact comparisons).")
@click.option("-o", "--out", type=click.Path(path_type=Path), default=None,
              help="Run folder to create. Default: runs/<date>-<time>.")
@click.option("--resume", type=click.Path(path_type=Path), default=None, metavar="RUN_DIR",
              help="Continue the run in RUN_DIR from its last checkpoints (with --epochs: train further).")
@_style_option
@click.option("--no-figures", is_flag=True, help="Write the table only, no figures.")
@click.option("--landscape", is_flag=True,
              help="Afterwards, draw the paths on the loss landscape (PCA plane, 51x51 grid) into RUN_DIR/landscape/.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no per-epoch lines.")
@click.pass_context
def mnist(ctx, preset, opt, reference, epochs, batch_size, seeds, model, dataset, data_dir, subset, eval_subset,
          val_size, schedule, clip_norm, weight_decay, snapshots, snapshot_every, trainer, threads, compile_, dtype,
          device, out, resume, style, no_figures, landscape, quiet):
    """Train optimizers side by side on MNIST and save curves, a table and weight snapshots.

    Every optimizer starts from the same initial weights and sees the same batches;
    metrics, checkpoints and snapshots go to the run folder as training runs. Ctrl-C
    stops cleanly; --resume continues.

    \b
    Examples:
      optviz mnist                                   # the lecture: 5 optimizers x 15 epochs
      optviz mnist --preset quick                    # one epoch on 5,000 images
      optviz mnist --opt sgd:lr=0.1 --opt adam:lr=1e-3 --seeds 3 --schedule cosine -o runs/cos
      optviz mnist --reference --epochs 2            # the core vs torch.optim
      optviz mnist --resume runs/lecture
      optviz mnist --preset quick --landscape -o runs/q   # the whole pipeline, landscape included
    """
    from ..mnist import report
    from ..mnist.train import TrainingInterrupted
    from ..mnist.train import resume as resume_run
    from ..mnist.train import train

    log = None if quiet else _echo_err
    if resume is not None:
        given = [name for name in _TRAINING_OPTIONS
                 if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE]
        if given:
            flags = ", ".join("--" + g.strip("_").replace("_", "-") for g in given)
            raise OptvizError(f"--resume continues the saved settings; drop {flags} "
                              f"(only --epochs, --data-dir, --style, --no-figures and --quiet go with it)")
        run_dir = resume
        action = lambda: resume_run(resume, epochs=epochs, data_dir=data_dir, log=log,  # noqa: E731
                                    progress=not quiet)
    else:
        from ..mnist.presets import preset_config

        if snapshot_every is not None and snapshots is None:  # --snapshot-every K says: dense (0: none)
            snapshots = "dense" if snapshot_every else "none"
        config = preset_config(
            preset, optimizers=list(opt) or None, reference=reference, epochs=epochs, batch_size=batch_size,
            seeds=seeds, model=model, dataset=dataset, data_dir=str(data_dir) if data_dir else None, subset=subset,
            eval_subset=eval_subset, val_size=val_size, schedule=schedule, clip_norm=clip_norm,
            weight_decay=weight_decay, snapshots=snapshots, snapshot_every=snapshot_every, trainer=trainer,
            num_threads=threads, compile=compile_, dtype=dtype, device=device)
        config.validate()
        if landscape and not config.snapshot_policy().active:
            raise OptvizError("--landscape needs weight snapshots: drop --snapshots none / --snapshot-every 0")
        run_dir = out if out is not None else _default_run_dir()
        action = lambda: train(config, run_dir, log=log, progress=not quiet)  # noqa: E731
    try:
        result = action()
    except TrainingInterrupted as stop:
        _echo_err(f"Interrupted: everything so far is saved in {stop.run_dir}; "
                  f"continue with `optviz mnist --resume {stop.run_dir}`")
        if not no_figures:
            try:
                report.write_report(stop.run_dir, style)
            except Exception as exc:  # noqa: BLE001  (the data are safe; figures are a bonus)
                _echo_err(f"(figures not drawn: {exc})")
        ctx.exit(EXIT_INTERRUPTED)
    paths = report.write_report(result.run_dir, style, figures=not no_figures)
    click.echo(result.markdown)
    if landscape:
        from ..landscape import landscape_pipeline

        written = landscape_pipeline(result.run_dir, Path(result.run_dir) / "landscape", style=style, log=log)
        paths.update({f"landscape/{Path(p).name}": p for p in written})
    _print_paths(result.run_dir, paths)


def _default_run_dir() -> Path:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = Path("runs") / stamp
    i = 1
    while path.exists():
        i += 1
        path = Path("runs") / f"{stamp}-{i}"
    return path


def _print_paths(run_dir: Path, paths: dict) -> None:
    from ..mnist.results import disk_usage

    total = sum(b for _, _, b in disk_usage(run_dir))
    click.echo(f"run folder: {run_dir} ({_megabytes(total)}; `optviz runs du {run_dir}` shows what takes the space)")
    for key, path in paths.items():
        click.echo(f"  {key:<13} {path}")


def _print_study(folder: Path, paths: dict) -> None:
    """A study's summary, then its folder and what was written there."""
    click.echo(paths["summary"].read_text(encoding="utf-8"))
    click.echo(f"study folder: {folder}")
    for key, path in paths.items():
        click.echo(f"  {key:<12} {path}")


@click.command("report")
@click.argument("run_dir", type=click.Path(path_type=Path))
@_style_option
@click.option("--no-figures", is_flag=True, help="Write the table only.")
def report_command(run_dir, style, no_figures):
    """Redraw the figures and the summary table of an MNIST run folder, or of a study folder
    (optviz tune), from its saved results.

    Works on finished, interrupted and running comparisons and studies.

    \b
    Example:
      optviz report runs/lecture --style slides
    """
    from ..study.run import StudyDir

    if StudyDir.is_study(run_dir):  # a study folder: its verdict
        from ..study.report import write_study_report

        _print_study(run_dir, write_study_report(run_dir, style, figures=not no_figures))
        return
    from ..mnist import report

    paths = report.write_report(run_dir, style, figures=not no_figures)
    click.echo(paths["summary"].read_text(encoding="utf-8"))
    _print_paths(run_dir, paths)




def _megabytes(n: int) -> str:
    return f"{n / 1e6:,.1f} MB" if n >= 1e5 else f"{n / 1e3:,.0f} kB"


@click.group("runs")
def runs():
    """Look after run and study folders."""


@runs.command("du")
@click.argument("run_dir", type=click.Path(path_type=Path))
def du(run_dir):
    """What takes the space in a run (or study) folder.

    \b
    Example:
      optviz runs du runs/lecture
    """
    from ..mnist.results import disk_usage
    from ._common import table

    parts = disk_usage(run_dir)
    total = sum(b for _, _, b in parts)
    rows = [(what, f"{files:,}", _megabytes(b), f"{100 * b / total:.0f} %" if total else "-") for what, files, b in parts]
    click.echo(table(rows + [("total", f"{sum(f for _, f, _ in parts):,}", _megabytes(total), "")],
                     ["what", "files", "size", "share"]))


COMMANDS = [mnist, report_command, runs]
