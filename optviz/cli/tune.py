"""``optviz tune``: a study on MNIST, every optimizer at every point of a grid, several seeds."""
from __future__ import annotations

from pathlib import Path

import click

from ..errors import OptvizError
from ._common import EXIT_INTERRUPTED, choice, complete_specs, snapshot_kinds, study_presets
from .mnist import _Number, _echo_err, _print_study, _style_option, protocol_options

EXECUTORS = ("local", "ray")


@click.command("tune")
@click.option("--preset", default=None, **choice("study preset", study_presets), metavar="[lecture|quick]",
              help="A whole study: 'lecture' is the lecture's five, 13 learning rates over four decades around "
                   "each one's lecture setting, 3 seeds, 5 epochs. Options below override it.")
@click.option("--opt", "opt", multiple=True, metavar="SPEC", shell_complete=complete_specs,
              help="Optimizer to tune, repeatable: NAME[:KEY=VALUE,...]; its values are its default setting.")
@click.option("--grid", "grid", multiple=True, metavar="KEY=VALUES",
              help="Values to try, repeatable (a product): lr=1e-4..1:13 (13 log-spaced), lr=x0.01..x100:13 "
                   "(multiples of each optimizer's own), momentum=0.5,0.9,0.99.")
@click.option("--seeds", default=None, metavar="N|S,S,...", help="A count (3 = seeds 0,1,2) or a list.")
@click.option("--epochs", type=_Number(int, 0, strict=True), default=None, help="Epochs per run.")
@click.option("--batch-size", type=_Number(int, 0, strict=True), default=None, help="Minibatch size.")
@protocol_options
@click.option("--evals-per-epoch", type=_Number(int, 0, strict=True), default=None,
              help="Validations per epoch, for the time to the target accuracy (default 4).")
@click.option("--snapshots", default=None, **choice("snapshot policy", snapshot_kinds),
              metavar="[landscape|dense|none]", help="Weight snapshots (default none in a study).")
@click.option("--executor", default="local", show_default=True, **choice("executor", lambda: EXECUTORS),
              metavar="[local|ray]", help="Where the shards run: this process, or Ray tasks (pip install -e '.[ray]').")
@click.option("--address", default=None, metavar="HOST:PORT|auto",
              help="With --executor ray: join this Ray cluster (default: start a local one).")
@click.option("--workers", type=_Number(int, 0, strict=True), default=None,
              help="With --executor ray: shards at a time (default: one per CPU of the cluster).")
@click.option("--shard-runs", type=_Number(int, 0, strict=True), default=None, metavar="N",
              help="At most N runs per shard (default 256, and what fits in memory). A shard is a stack of runs "
                   "that one worker trains; more, smaller shards spread a study over more workers.")
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True, help="Study folder (created; "
              "the same command again resumes it).")
@_style_option
@click.option("--no-figures", is_flag=True, help="Write the tables only.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def tune(ctx, preset, opt, grid, seeds, epochs, batch_size, model, dataset, data_dir, subset, eval_subset, val_size,
         schedule, device, compile_, evals_per_epoch, snapshots, executor, address, workers, shard_runs, out, style,
         no_figures, quiet):
    """Tune every optimizer on MNIST: a grid of hyperparameters x seeds, trained as stacks, judged fairly.

    Each optimizer's best setting is chosen on validation accuracy, then reported on the
    test set, beside the lecture's setting; summary.md adds how forgiving each one is
    (the range of learning rates within 0.5 pp of its best) and how fast it reaches 97 %.
    Ctrl-C keeps every finished run; the same command again resumes.

    \b
    Examples:
      optviz tune --preset lecture -o runs/tuned                 # the lecture's five, tuned (about 15 min)
      optviz tune --preset quick -o runs/quick-study             # a smoke study in a minute
      optviz tune --opt momentum --opt nesterov --grid lr=1e-3..1:7 --grid momentum=0.5,0.9,0.99 \\
                  --seeds 2 --epochs 2 -o runs/momentum
      optviz report runs/tuned                                   # redraw a study
    """
    from ..study.report import write_study_report
    from ..study.run import StudyInterrupted, run_study
    from ..study.spec import StudySpec, parse_grid, study_preset

    if preset is None and not opt:
        raise OptvizError("give --preset lecture (or quick), or the optimizers to tune with --opt")
    fields = study_preset(preset) if preset else {}   # StudySpec's defaults, and the options below
    if opt:
        fields["optimizers"] = list(opt)
    if grid:
        fields["grid"] = parse_grid(grid)
    elif not preset:
        fields["grid"] = {"lr": "x0.01..x100:13"}
    if seeds is not None:
        fields["seeds"] = seeds
    train = dict(fields.get("train", {}))
    for key, value in (("epochs", epochs), ("batch_size", batch_size), ("model", model), ("dataset", dataset),
                       ("data_dir", str(data_dir) if data_dir else None), ("subset", subset),
                       ("eval_subset", eval_subset), ("val_size", val_size), ("schedule", schedule),
                       ("snapshots", snapshots), ("device", device), ("compile", compile_)):
        if value is not None:
            train[key] = value
    fields["train"] = train
    if evals_per_epoch is not None:
        fields["evals_per_epoch"] = evals_per_epoch
    if shard_runs is not None:
        fields["max_shard_runs"] = shard_runs
    spec = StudySpec(**fields).validate()
    if executor == "ray":
        from ..study.ray_executor import RayExecutor

        runner = RayExecutor(address=address, workers=workers)
    else:
        if address is not None or workers is not None:
            raise OptvizError("--address and --workers go with --executor ray")
        runner = None
    log = None if quiet else _echo_err
    try:
        study = run_study(spec, out, executor=runner, progress=not quiet, log=log)
    except StudyInterrupted as stop:
        _echo_err(f"Interrupted: every finished epoch is saved in {stop.folder}; run the same command to resume")
        try:
            write_study_report(stop.folder, style, figures=False)  # the verdict so far
        except OptvizError as exc:
            _echo_err(f"(summary not written: {exc})")
        ctx.exit(EXIT_INTERRUPTED)
    _print_study(study.path, write_study_report(study.path, style, figures=not no_figures))


COMMANDS = [tune]
