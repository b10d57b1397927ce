"""Studies: every optimizer tuned, on MNIST, as grids x seeds, trained as stacks, judged fairly.

* :mod:`.spec`: what a study is (``StudySpec``), grids, presets, settings and shards;
* :mod:`.run`: the study folder, ``run_shard`` (the unit of work), the local executor, ``run_study``;
* :mod:`.ray_executor`: the same shards as Ray tasks, on a local Ray or a cluster;
* :mod:`.results`: shards merged into one table of runs, and the verdict;
* :mod:`.report`: ``summary.md`` and the figures.

Example::

    from optviz.study import StudySpec, run_study, write_study_report
    spec = StudySpec(optimizers=["sgd:lr=0.01", "adam:lr=0.001"], grid={"lr": "x0.1..x10:5"},
                     seeds=2, train={"epochs": 1, "subset": 5000})
    run_study(spec, "runs/study")
    write_study_report("runs/study")

Names are imported lazily, so ``import optviz.study`` does not import torch.
"""
from __future__ import annotations

from ..lazy import lazy_exports

_EXPORTS = {
    "StudySpec": "spec", "Setting": "spec", "Shard": "spec", "parse_grid": "spec", "grid_values": "spec",
    "STUDY_PRESETS": "spec", "study_preset": "spec",
    "StudyDir": "run", "run_shard": "run", "LocalExecutor": "run", "run_study": "run", "StudyInterrupted": "run",
    "RayExecutor": "ray_executor",
    "merge": "results", "verdict": "results",
    "write_study_report": "report",
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
