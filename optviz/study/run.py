"""Running a study: its folder, its shards, and where they run.

A study folder (``optviz tune -o DIR``)::

    study.json              the spec, its settings and its shards (written first)
    shards/NAME/            one run folder per shard (the format of ``optviz mnist``), written only
                            by the worker that trains it
    runs.jsonl, runs.csv    the merged results: one line per run (:mod:`optviz.study.results`)
    summary.md, figures/    the verdict (:mod:`optviz.study.report`)

:func:`run_shard` is the unit of work: it trains one shard into its folder, or
resumes it from its checkpoints, or does nothing if it is finished. An *executor*
decides only where shards run: :class:`LocalExecutor` (this process, one after
another) or the Ray executor (:mod:`optviz.study.ray_executor`). Running the same
study again skips finished shards and resumes interrupted ones; Ctrl-C keeps every
finished epoch of every run.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable, List, Optional

from ..errors import OptvizError
from ..io import write_json
from .spec import Shard, StudySpec, check_same

__all__ = ["STUDY_KIND", "StudyDir", "run_shard", "LocalExecutor", "run_study", "StudyInterrupted",
           "shard_config"]

STUDY_KIND = "optviz-study"
FORMAT = 1


def plural(n: int, word: str) -> str:
    """``plural(1, "seed")`` -> "1 seed"; ``plural(3, "seed")`` -> "3 seeds"."""
    return f"{n} {word}" + ("" if n == 1 else "s")


class StudyInterrupted(KeyboardInterrupt):
    """Ctrl-C during a study, after everything finished so far was saved."""

    def __init__(self, folder: Path):
        super().__init__(str(folder))
        self.folder = Path(folder)


class StudyDir:
    """One study folder. :meth:`create` starts (or reopens the same) study; :meth:`open` reads one."""

    def __init__(self, path):
        self.path = Path(path)
        self._record: Optional[dict] = None   # study.json, once read

    spec_path = property(lambda self: self.path / "study.json")
    shards_dir = property(lambda self: self.path / "shards")
    figures_dir = property(lambda self: self.path / "figures")
    summary_path = property(lambda self: self.path / "summary.md")
    runs_path = property(lambda self: self.path / "runs.jsonl")
    runs_csv_path = property(lambda self: self.path / "runs.csv")
    timing_path = property(lambda self: self.path / "timing.json")

    def shard_dir(self, name: str) -> Path:
        return self.shards_dir / name

    @classmethod
    def is_study(cls, path) -> bool:
        try:
            return json.loads((Path(path) / "study.json").read_text()).get("kind") == STUDY_KIND
        except (OSError, ValueError, AttributeError):
            return False

    @classmethod
    def create(cls, path, spec: StudySpec) -> "StudyDir":
        """The folder for ``spec``: new, or the same study again (to resume it)."""
        path = Path(path)
        study = cls(path)
        if path.exists() and not path.is_dir():
            raise OptvizError(f"cannot use {str(path)!r} as a study folder: it is a file")
        if study.spec_path.exists():
            saved = study.read()
            check_same(saved["spec"], spec, path)
            return study
        if (path / "config.json").exists():
            raise OptvizError(f"{str(path)!r} holds an optviz mnist run, not a study; choose another -o")
        from ..mnist.results import provenance

        # io makes the folder with the file, and removes it again if the write fails
        write_json(study.spec_path, {**provenance(STUDY_KIND, FORMAT), "spec": spec.to_dict(),
                                     "settings": [s.to_dict() for s in spec.settings()],
                                     "shards": [s.to_dict() for s in spec.shards()]})
        return study

    @classmethod
    def open(cls, path) -> "StudyDir":
        path = Path(path)
        if not path.is_dir():
            raise OptvizError(f"no study folder at {str(path)!r}")
        study = cls(path)
        study.read()
        return study

    def read(self) -> dict:
        """The checked record of study.json; read once, since nothing rewrites it after :meth:`create`."""
        if self._record is None:
            self._record = self._load()
        return self._record

    def _load(self) -> dict:
        try:
            record = json.loads(self.spec_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise OptvizError(f"{str(self.path)!r} is not an optviz study folder (it has no study.json)") from None
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise OptvizError(f"{str(self.spec_path)!r} is unreadable: {exc}") from None
        if not isinstance(record, dict) or record.get("kind") != STUDY_KIND:
            raise OptvizError(f"{str(self.spec_path)!r} is not an optviz study (its kind is not {STUDY_KIND!r})")
        if record.get("format", 0) > FORMAT:
            raise OptvizError(f"{str(self.path)!r} was written by a newer optviz (format {record.get('format')})")
        for key in ("spec", "settings", "shards"):
            if not isinstance(record.get(key), (dict, list)):
                raise OptvizError(f"{str(self.spec_path)!r} has no {key!r}")
        return record

    def spec(self) -> StudySpec:
        return StudySpec.from_dict(self.read()["spec"])

    def shards(self) -> List[Shard]:
        return [Shard(d["name"], tuple(d["seeds"]), tuple(d["settings"])) for d in self.read()["shards"]]

    def shard_status(self, shard: Shard) -> str:
        """"done", "started" (a run folder that has not finished) or "new"."""
        folder = self.shard_dir(shard.name)
        if not (folder / "config.json").exists():
            return "new"
        try:
            state = json.loads((folder / "state.json").read_text())
        except (OSError, ValueError):
            return "started"
        return "done" if state.get("status") == "done" else "started"

    def read_timing(self) -> dict:
        """timing.json: the wall-clock seconds of the sessions so far ({} before the first one ends)."""
        try:
            return json.loads(self.timing_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}


def shard_config(spec: StudySpec, shard: Shard):
    """The :class:`~optviz.mnist.TrainConfig` that trains ``shard``: its settings on its seeds."""
    by_key = {s.key: s for s in spec.settings()}
    missing = [k for k in shard.settings if k not in by_key]
    if missing:
        raise OptvizError(f"shard {shard.name}: unknown settings {', '.join(missing)} (study.json was edited?)")
    return spec.base_config(optimizers=[by_key[k].spec for k in shard.settings], seeds=list(shard.seeds),
                            evals_per_epoch=spec.evals_per_epoch)


def _train_size(config) -> int:
    n = 60000 - config.val_size
    return min(n, config.subset) if config.subset else n


def run_shard(study_dir, shard_name: str, *, data=None, data_dir=None, progress=None,
              log: Optional[Callable[[str], None]] = None) -> str:
    """Train shard ``shard_name`` of the study in ``study_dir`` into its folder: from scratch,
    or on from its checkpoints; a finished shard is left as it is. Returns "done" (or raises
    :class:`~optviz.mnist.train.TrainingInterrupted` on Ctrl-C)."""
    from ..mnist.train import resume, train

    study = StudyDir.open(study_dir)
    spec = study.spec()
    shard = next((s for s in study.shards() if s.name == shard_name), None)
    if shard is None:
        raise OptvizError(f"the study in {str(study_dir)!r} has no shard {shard_name!r}")
    folder = study.shard_dir(shard.name)
    status = study.shard_status(shard)
    if status == "done":
        return "done"
    if status == "started":
        resume(folder, data=data, data_dir=data_dir, log=log, progress=progress)
    else:
        config = shard_config(spec, shard)
        if data_dir is not None:
            config.data_dir = str(data_dir)
        train(config, folder, data=data, log=log, progress=progress)
    return "done"


class LocalExecutor:
    """Runs the shards in this process, one after another, with the data loaded once."""

    name = "local"

    def run(self, study: StudyDir, shards: List[Shard], bar, log, data=None) -> None:
        from ..mnist.dataset import MNISTData

        spec = study.spec()
        config = spec.base_config()
        if data is None and shards:
            data = MNISTData.load(config.dataset, config.data_dir, val_size=config.val_size,
                                  split_seed=config.split_seed)
        for shard in shards:
            bar.set_postfix_str(f"shard {shard.name} ({shard.num_runs} runs)")
            run_shard(study.path, shard.name, data=data, progress=_SharedBar(bar), log=log)
            bar.shard_done()


class _SharedBar:
    """The study's progress bar, lent to one shard's trainer (which must not close it)."""

    def __init__(self, bar):
        self._bar = bar
        self.disable = bar.disable

    def update(self, n):
        self._bar.update(n)

    def set_postfix_str(self, text):
        pass  # the study's bar says which shard runs

    def write(self, text):
        self._bar.write(text)

    def close(self):
        pass


class StudyBar:
    """One progress bar for a whole study: runs x steps done, shards done, ETA."""

    def __init__(self, total_steps: int, shards_total: int, shards_done: int, enabled: bool):
        from ..progress import progress_bar

        self.bar = progress_bar(total_steps, desc="study", unit="step", enabled=enabled)
        self.disable = self.bar.disable
        self.shards_total, self.shards_done = shards_total, shards_done
        self._text = ""

    def update(self, n):
        self.bar.update(n)

    def set_postfix_str(self, text):
        self._text = text
        self.bar.set_postfix_str(f"{self.shards_done}/{self.shards_total} shards done; {text}")

    def shard_done(self):
        self.shards_done += 1
        self.bar.set_postfix_str(f"{self.shards_done}/{self.shards_total} shards done")

    def write(self, text):
        self.bar.write(text)

    def close(self):
        self.bar.close()


def remaining_steps(study: StudyDir, shards: List[Shard]) -> int:
    """Run-steps still to train in ``shards`` (for the progress bar's total)."""
    spec = study.spec()
    total = 0
    for shard in shards:
        config = shard_config(spec, shard)
        per_epoch = -(-_train_size(config) // config.batch_size)
        done = 0
        state_path = study.shard_dir(shard.name) / "state.json"
        if state_path.exists():
            try:
                runs = json.loads(state_path.read_text()).get("runs", {})
                done = sum(min(r.get("epoch", 0), config.epochs) for r in runs.values()) * per_epoch
            except (OSError, ValueError):
                done = 0
        total += shard.num_runs * config.epochs * per_epoch - done
    return max(total, 0)


def run_study(spec: StudySpec, folder, *, executor=None, progress: bool = True,
              log: Optional[Callable[[str], None]] = None, data=None) -> StudyDir:
    """Run (or resume) the study ``spec`` in ``folder``: train every unfinished shard with
    ``executor`` (default :class:`LocalExecutor`). The verdict is
    :func:`optviz.study.report.write_study_report`'s (also after Ctrl-C: what is done)."""
    spec.validate()
    study = StudyDir.create(folder, spec)
    shards = study.shards()
    pending = [s for s in shards if study.shard_status(s) != "done"]
    executor = executor or LocalExecutor()
    say = log or (lambda msg: None)
    say(f"study: {len(spec.settings())} settings x {len(spec.seeds)} seeds = {spec.num_runs()} runs in "
        f"{len(shards)} shards ({len(shards) - len(pending)} done); executor: {executor.name}")
    bar = StudyBar(remaining_steps(study, pending), len(shards), len(shards) - len(pending), progress)
    started = time.perf_counter()
    try:
        executor.run(study, pending, bar, log=None if progress and not bar.disable else log, data=data)
    except KeyboardInterrupt:   # Ctrl-C here, or a shard's TrainingInterrupted (a KeyboardInterrupt too)
        _note_time(study, time.perf_counter() - started)
        raise StudyInterrupted(study.path) from None
    finally:
        bar.close()
    _note_time(study, time.perf_counter() - started)
    return study


def _note_time(study: StudyDir, seconds: float) -> None:
    timing = study.read_timing()
    timing["wall_clock"] = float(timing.get("wall_clock", 0.0)) + seconds
    timing.setdefault("sessions", []).append(round(seconds, 3))
    write_json(study.timing_path, timing)
