"""What a study is: optimizers x a grid of hyperparameters x seeds, on one training protocol.

A :class:`StudySpec` is data. It expands into *settings* (one optimizer with one point
of the grid; every optimizer's own default setting is always among them) and *runs*
(a setting on a seed); the runs are cut into *shards*, each a stack of runs that one
worker trains as one batched model (:mod:`optviz.mnist.stacked`) into its own run
folder. Where a shard runs (this process, a Ray task) never changes what it computes.

Grids (``--grid KEY=VALUES``, several make a product):

* ``lr=1e-4..1:13``: 13 values log-spaced from 1e-4 to 1, both included;
* ``lr=x0.01..x100:13``: 13 values log-spaced from 0.01 to 100 *times* each
  optimizer's own value (its spec's, else its default): one grid, centred on every
  optimizer's default;
* ``momentum=0.5,0.9,0.99``: these values (``x2,x4`` for multiples, too).

Example::

    spec = StudySpec(optimizers=["sgd:lr=0.01", "adam:lr=0.001"], grid={"lr": "x0.1..x10:5"},
                     seeds=[0, 1], train={"epochs": 2, "subset": 5000})
    spec.settings()          # 10 settings (2 optimizers x 5 rates; the defaults are in the grid)
    spec.shards()            # 2 shards: one per seed
"""
from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import InvalidValue, OptvizError, UnknownName

__all__ = ["StudySpec", "Setting", "Shard", "parse_grid", "grid_values", "STUDY_PRESETS", "study_preset"]

#: The AlgoPerf target for MNIST: validation accuracy for "time to target".
TARGET_ACCURACY = 0.97

#: TrainConfig fields a study may set (the protocol); the rest are the study's own.
TRAIN_FIELDS = ("model", "dataset", "data_dir", "epochs", "batch_size", "subset", "eval_subset", "val_size",
                "split_seed", "schedule", "clip_norm", "weight_decay", "snapshots", "snapshot_every",
                "snapshot_dtype", "eval_batch_size", "num_threads", "compile", "dtype", "device")

_LOG_RANGE = re.compile(r"^(x?)([^.x][^x]*?)\.\.(x?)([^:]+):(\d+)$")


@dataclasses.dataclass(frozen=True)
class Setting:
    """One optimizer with one point of the grid."""

    key: str                 # unique and file-safe: "adam-lr0.001"
    optimizer: str           # registry name
    hyper: Dict[str, Any]    # its hyperparameters (the base spec's, with the grid point on top)
    point: Dict[str, Any]    # the grid coordinates of this setting
    default: bool            # the optimizer's own setting (its base spec), the "lecture default"
    spec: str                # an optimizer spec that builds it: "adam:lr=0.001"
    base: str                # the optimizer's base spec as the study gave it

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Shard:
    """A stack of runs trained together: ``settings`` x ``seeds``, into ``shards/NAME``."""

    name: str                # "s0-0000"
    seeds: Tuple[int, ...]
    settings: Tuple[str, ...]  # setting keys

    @property
    def num_runs(self) -> int:
        return len(self.seeds) * len(self.settings)

    def to_dict(self) -> dict:
        return {"name": self.name, "seeds": list(self.seeds), "settings": list(self.settings)}


def grid_values(text: str) -> Tuple[List[float], bool]:
    """``"1e-4..1:13"`` / ``"x0.01..x100:13"`` / ``"0.5,0.9"`` -> ``(values, relative)``."""
    text = text.strip()
    m = _LOG_RANGE.match(text)
    if m:
        rel_a, a, rel_b, b, n = m.groups()
        if bool(rel_a) != bool(rel_b):
            raise InvalidValue(f"grid {text!r}: write both ends as multiples (x0.1..x10:5) or neither")
        try:
            lo, hi, count = float(a), float(b), int(n)
        except ValueError:
            raise InvalidValue(f"grid {text!r}: write LOW..HIGH:COUNT, e.g. 1e-4..1:13") from None
        if not (lo > 0 and hi > 0 and math.isfinite(lo) and math.isfinite(hi)):
            raise InvalidValue(f"grid {text!r}: a log-spaced range needs two positive ends")
        if count < 1 or count > 1000:
            raise InvalidValue(f"grid {text!r}: the count must be in 1..1000")
        values = [lo] if count == 1 else [float(v) for v in np.geomspace(lo, hi, count)]
        if count > 1:
            values[0], values[-1] = lo, hi  # exact ends
        return _snap(values), bool(rel_a)
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise InvalidValue(f"grid {text!r} has no values")
    relative = {t.startswith("x") for t in items}
    if len(relative) > 1:
        raise InvalidValue(f"grid {text!r}: give all values as multiples (x2) or none")
    rel = relative.pop()
    values = []
    for t in items:
        try:
            v = float(t[1:] if rel else t)
        except ValueError:
            raise InvalidValue(f"grid {text!r}: cannot read {t!r} as a number") from None
        if not math.isfinite(v):
            raise InvalidValue(f"grid {text!r}: {t!r} is not a finite number")
        values.append(v)
    if len(set(values)) != len(values):
        raise InvalidValue(f"grid {text!r} repeats a value")
    return values, rel


def _snap(values: List[float]) -> List[float]:
    """Round log-spaced values to 12 significant digits (10**k stays exact)."""
    return [float(f"{v:.12g}") for v in values]


def parse_grid(items: Sequence[str]) -> Dict[str, str]:
    """``["lr=1e-4..1:13", "momentum=0.5,0.9"]`` -> ``{"lr": "1e-4..1:13", ...}`` (checked)."""
    grid: Dict[str, str] = {}
    for item in items:
        key, eq, values = item.partition("=")
        key = key.strip()
        if not eq or not key or not values.strip():
            raise InvalidValue(f"a grid is KEY=VALUES, e.g. lr=1e-4..1:13 or momentum=0.5,0.9; got {item!r}")
        if key in grid:
            raise InvalidValue(f"--grid {key} is given twice")
        grid_values(values)
        grid[key] = values.strip()
    return grid


@dataclasses.dataclass
class StudySpec:
    """A study. ``train`` holds the protocol (fields of :class:`~optviz.mnist.TrainConfig`)."""

    optimizers: List[str]                               # base specs, "adam:lr=0.001"
    grid: Dict[str, str] = dataclasses.field(default_factory=dict)   # key -> values text (grid_values)
    seeds: Any = 3                                      # a count or a list
    train: Dict[str, Any] = dataclasses.field(default_factory=dict)
    evals_per_epoch: int = 4                            # validations per epoch (time to target)
    target: float = TARGET_ACCURACY
    max_shard_runs: int = 256                           # at most this many runs in one stack
    preset: Optional[str] = None

    # ------------------------------------------------------------------ checking
    def validate(self) -> "StudySpec":
        from ..mnist.config import parse_seeds

        if not self.optimizers:
            raise InvalidValue("a study needs at least one optimizer (--opt)")
        unknown = set(self.train) - set(TRAIN_FIELDS)
        if unknown:
            raise InvalidValue(f"not a protocol field of a study: {', '.join(sorted(unknown))}")
        self.seeds = parse_seeds(self.seeds)
        if isinstance(self.evals_per_epoch, bool) or not isinstance(self.evals_per_epoch, int) \
                or not 1 <= self.evals_per_epoch <= 100:
            raise InvalidValue(f"evals per epoch must be an integer in 1..100, got {self.evals_per_epoch!r}")
        if not (isinstance(self.target, (int, float)) and 0 < self.target <= 1):
            raise InvalidValue(f"the target accuracy must be in (0, 1], got {self.target!r}")
        if isinstance(self.max_shard_runs, bool) or not isinstance(self.max_shard_runs, int) or self.max_shard_runs < 1:
            raise InvalidValue(f"max runs per shard must be an integer >= 1, got {self.max_shard_runs!r}")
        for key, text in self.grid.items():
            grid_values(text)
        # the device's name only: with the Ray executor the driver may have no GPU while its
        # workers do; each shard's train() checks that the device exists where it runs
        self.base_config().validate(device_here=False)
        self.settings()
        return self

    def base_config(self, **extra):
        """The protocol as a :class:`~optviz.mnist.TrainConfig` (with the study's defaults: no
        snapshots unless asked, no steps.csv beside metrics.jsonl: a lecture study's shards
        would hold 80 MB of it)."""
        from ..mnist.config import TrainConfig

        fields = {"snapshots": "none", "steps_csv": False, **self.train, **extra}
        return TrainConfig(**{"optimizers": list(self.optimizers), "seeds": list(self.seeds), **fields})

    # ------------------------------------------------------------------ expanding
    def settings(self) -> List[Setting]:
        """Every optimizer at every grid point, plus its own default setting where the grid
        misses it; in the order of the optimizers, then of the grid."""
        from ..optim import registry

        out: List[Setting] = []
        keys_seen: Dict[str, int] = {}
        for base in self.optimizers:
            name, hyper = registry.parse_spec(base)
            info = registry.get(name)
            own = {**info.defaults, **hyper}
            axes = []
            for key, text in self.grid.items():
                if key not in info.defaults and key not in registry.CLIP_OPTIONS:
                    raise InvalidValue(f"--grid {key}: {name} has no hyperparameter {key!r}; "
                                       f"valid: {', '.join(tuple(info.defaults) + registry.CLIP_OPTIONS)}")
                values, rel = grid_values(text)
                if rel:
                    anchor = own.get(key)
                    if not isinstance(anchor, (int, float)) or isinstance(anchor, bool) or not anchor:
                        raise InvalidValue(f"--grid {key}={text}: {name} has no nonzero {key} to multiply")
                    values = _snap([anchor * v for v in values])
                axes.append((key, values))
            points = [dict(zip([k for k, _ in axes], combo)) for combo in _product([v for _, v in axes])]
            has_default = False
            for point in points:
                full = {**hyper, **point}
                default = all(_close(full.get(k), own.get(k)) for k in point) if point else True
                has_default |= default
                out.append(self._setting(name, full, point, default, base, keys_seen))
            if not has_default:  # the optimizer's own setting, for "tuned vs default"
                point = {k: own.get(k) for k, _ in axes}
                out.append(self._setting(name, dict(hyper), point, True, base, keys_seen))
        for s in out:
            registry.create(s.optimizer, **s.hyper)   # every setting is valid, before any work
        return out

    @staticmethod
    def _setting(name, hyper, point, default, base, keys_seen) -> Setting:
        bits = [f"{k}{_short(v)}" for k, v in point.items()]
        key = re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join([name] + bits))
        if key in keys_seen:   # the same optimizer twice in --opt, with other fixed settings
            keys_seen[key] += 1
            key = f"{key}-{keys_seen[key]}"
        else:
            keys_seen[key] = 1
        spec = name + (":" + ",".join(f"{k}={_exact(v)}" for k, v in hyper.items()) if hyper else "")
        return Setting(key, name, dict(hyper), dict(point), default, spec, base)

    def shards(self) -> List[Shard]:
        """The runs, cut into stacks: one shard per seed, its settings split into chunks of at
        most ``max_shard_runs`` (and of what fits the memory budget)."""
        keys = [s.key for s in self.settings()]
        per = max(1, min(self.max_shard_runs, self._runs_that_fit()))
        out = []
        for seed in self.seeds:
            for i in range(0, len(keys), per):
                out.append(Shard(f"s{seed}-{i // per:04d}", (seed,), tuple(keys[i:i + per])))
        return out

    def _runs_that_fit(self) -> int:
        """How many runs of this protocol one stack can hold within the memory budget."""
        import torch

        from ..memory import default_memory_budget
        from ..mnist.stacked import bytes_per_run

        config = self.base_config()
        per_run = bytes_per_run(config.model, self.settings(), config.batch_size, config.eval_batch_size,
                                self.max_shard_runs, getattr(torch, config.dtype).itemsize)
        return max(1, int(default_memory_budget() // max(per_run, 1)))

    def num_runs(self) -> int:
        return len(self.settings()) * len(self.seeds)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "StudySpec":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def _product(lists):
    if not lists:
        yield ()
        return
    for head in lists[0]:
        for tail in _product(lists[1:]):
            yield (head,) + tail


def _close(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=0.0) or a == b
    return a == b


def _short(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _exact(v) -> str:
    return repr(v) if isinstance(v, float) else str(v).lower() if isinstance(v, bool) else str(v)


# ====================================================================== presets


STUDY_PRESETS: Dict[str, Dict[str, Any]] = {
    "lecture": {
        "description": "the lecture's five, each at 13 learning rates over four decades around its lecture "
                       "setting, 3 seeds, 5 epochs of the lecture protocol",
        "optimizers": ["sgd:lr=0.01", "momentum:lr=0.01,momentum=0.9", "nesterov:lr=0.01,momentum=0.9",
                       "adagrad:lr=0.01", "adam:lr=0.001"],
        "grid": {"lr": "x0.01..x100:13"},
        "seeds": 3,
        "train": {"model": "mlp", "epochs": 5, "batch_size": 32},
    },
    "quick": {
        "description": "a smoke study: the lecture's five at 5 learning rates, 2 seeds, 1 epoch on 5,000 images",
        "optimizers": ["sgd:lr=0.01", "momentum:lr=0.01,momentum=0.9", "nesterov:lr=0.01,momentum=0.9",
                       "adagrad:lr=0.01", "adam:lr=0.001"],
        "grid": {"lr": "x0.01..x100:5"},
        "seeds": 2,
        "train": {"model": "mlp", "epochs": 1, "batch_size": 32, "subset": 5000},
    },
}


def study_preset(name: str) -> Dict[str, Any]:
    """The fields of study preset ``name`` (a fresh copy)."""
    if name not in STUDY_PRESETS:
        raise UnknownName("study preset", name, STUDY_PRESETS)
    fields = {k: (dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v)
              for k, v in STUDY_PRESETS[name].items() if k != "description"}
    fields["preset"] = name
    return fields


def check_same(saved: dict, spec: StudySpec, folder) -> None:
    """A study folder holds one study: running a different one into it is refused."""
    mine = spec.to_dict()
    theirs = {k: saved.get(k) for k in mine}
    diff = [k for k in mine if _norm(mine[k]) != _norm(theirs[k]) and k != "max_shard_runs"]
    if diff:
        raise OptvizError(f"{str(folder)!r} holds another study (its {', '.join(diff)} differ); rerun its own "
                          f"command to resume it, or choose another -o")


def _norm(v):
    if isinstance(v, dict):
        return {k: _norm(x) for k, x in v.items() if x is not None}
    if isinstance(v, (list, tuple)):
        return [_norm(x) for x in v]
    return v
